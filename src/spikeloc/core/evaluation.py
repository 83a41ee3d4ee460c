"""Evaluation: accuracy, both MAE definitions, confusion matrix, firing rates, tuning curves.

Two mean-absolute-error definitions are in use in the published notebooks (catalogue §2.0):

* ``mae_midpoint``: between the class midpoint of the true IPD and the estimated midpoint, so a
  correct classification counts 0 (``time-constant-solutions``, the basic-model appendix: 2.6 deg);
* ``mae_continuous``: between the continuous true IPD and the estimated midpoint (all other
  notebooks; 4.5 deg for the same model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spikeloc.core.models import SNN
from spikeloc.core.stimuli import SpikeDataset, continuise, discretise

__all__ = [
    "Predictions",
    "predict",
    "accuracy",
    "mae_midpoint_deg",
    "mae_continuous_deg",
    "confusion_matrix",
    "firing_rates_hz",
    "tuning_curves",
    "summarise",
]


@dataclass
class Predictions:
    """Everything an analysis needs from one pass over a dataset (CPU tensors)."""

    ipd: torch.Tensor  # (n,) true IPD, rad
    labels: torch.Tensor  # (n,) true class
    predicted: torch.Tensor  # (n,) estimated class
    estimate: torch.Tensor  # (n,) estimated IPD, rad (class midpoint, or regression value)
    readout: torch.Tensor  # (n, n_out) logits / readout
    hidden_counts: torch.Tensor  # (n, n_hidden) spike count per sample
    n_classes: int
    duration_s: float


@torch.no_grad()
def predict(
    model: SNN,
    data: SpikeDataset,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    keep_hidden_spikes: bool = False,
) -> Predictions | tuple[Predictions, torch.Tensor]:
    """Run the model in eval mode over ``data``; class estimate = argmax of the readout."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    n_classes = data.config.n_classes
    readouts, counts, spikes_all = [], [], []
    for x, _, _ in data.batches(batch_size):
        out = model(x.to(device))
        readouts.append(out.readout.float().cpu())
        counts.append(out.hidden_spikes.sum(1).float().cpu())
        if keep_hidden_spikes:
            spikes_all.append(out.hidden_spikes.to(torch.uint8).cpu())
    model.train(was_training)
    readout = torch.cat(readouts)
    if model.cfg.readout == "regression":
        estimate = readout.double()
        predicted = discretise(estimate, n_classes)
    else:
        predicted = readout.argmax(1)
        estimate = continuise(predicted, n_classes)
    pred = Predictions(
        ipd=data.ipd.double().cpu(),
        labels=data.labels.cpu(),
        predicted=predicted,
        estimate=estimate,
        readout=readout,
        hidden_counts=torch.cat(counts),
        n_classes=n_classes,
        duration_s=data.config.duration_s,
    )
    if keep_hidden_spikes:
        return pred, torch.cat(spikes_all)
    return pred


def accuracy(p: Predictions) -> float:
    """Fraction of samples whose estimated class is the true class."""
    return float((p.predicted == p.labels).double().mean())


def mae_midpoint_deg(p: Predictions) -> float:
    """Mean |midpoint(true class) - midpoint(estimated class)| in degrees (basic-model appendix)."""
    true_mid = continuise(p.labels, p.n_classes)
    est_mid = continuise(p.predicted, p.n_classes)
    return float((true_mid - est_mid).abs().mean() * 180 / math.pi)


def mae_continuous_deg(p: Predictions) -> float:
    """Mean |true IPD - estimate| in degrees (all other notebooks)."""
    return float((p.ipd - p.estimate).abs().mean() * 180 / math.pi)


def confusion_matrix(p: Predictions, *, normalise: str | None = "column") -> np.ndarray:
    """``C[estimated, true]`` counts; ``normalise="column"`` divides each true-class column."""
    n = p.n_classes
    c = np.zeros((n, n))
    np.add.at(c, (p.predicted.numpy(), p.labels.numpy()), 1)
    if normalise == "column":
        c = c / np.maximum(c.sum(0, keepdims=True), 1)
    return c


def firing_rates_hz(p: Predictions) -> np.ndarray:
    """Mean hidden firing rate per neuron (spike count / duration), Hz."""
    return (p.hidden_counts.double().mean(0) / p.duration_s).numpy()


def tuning_curves(
    values: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per true class: mean, standard deviation and count of ``values`` (n, units).

    Returns ``(mean, sd, count)`` with shapes (n_classes, units), (n_classes, units),
    (n_classes,). Classes without samples give NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    lab = np.asarray(labels)
    mean = np.full((n_classes, v.shape[1]), np.nan)
    sd = np.full_like(mean, np.nan)
    count = np.zeros(n_classes, dtype=int)
    for k in range(n_classes):
        sel = v[lab == k]
        count[k] = len(sel)
        if len(sel):
            mean[k] = sel.mean(0)
            sd[k] = sel.std(0)
    return mean, sd, count


def summarise(p: Predictions) -> dict:
    """The headline numbers, JSON-ready."""
    return {
        "accuracy": accuracy(p),
        "mae_midpoint_deg": mae_midpoint_deg(p),
        "mae_continuous_deg": mae_continuous_deg(p),
        "hidden_rates_hz": [float(r) for r in firing_rates_hz(p)],
        "n_samples": int(p.labels.shape[0]),
        "chance": 1.0 / p.n_classes,
    }
