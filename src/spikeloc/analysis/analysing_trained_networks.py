"""Analysing trained networks (research/Analysing-Trained-Networks-Part2.ipynb): which hidden
units never spike, single-unit ablation, and the network reduced to its spiking units.

Removing hidden unit ``h`` deletes column ``h`` of W1 and row ``h`` of W2; the hidden layer has
no recurrence, so that is the same as setting both to zero (what :func:`ablate` does: the other
units' spikes are unchanged).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from spikeloc.core import evaluation
from spikeloc.core.models import SNN
from spikeloc.core.stimuli import SpikeDataset

__all__ = ["silent_units", "ablate", "ablation_accuracies", "ablation_figure"]


def silent_units(model: SNN, data: SpikeDataset) -> np.ndarray:
    """Indices of the hidden units that never spike on ``data`` (ascending)."""
    pred = evaluation.predict(model, data)
    counts = pred.hidden_counts.sum(0).cpu().numpy()
    return np.flatnonzero(counts == 0)


def ablate(model: SNN, units: Any) -> SNN:
    """A copy of ``model`` with hidden ``units`` removed (their W1 columns and W2 rows zero)."""
    if model.W2 is None:
        raise ValueError("ablate: the membrane-only model has no hidden units")
    idx = torch.as_tensor(np.asarray(units, dtype=np.int64).reshape(-1))
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= model.cfg.n_hidden):
        raise ValueError(f"ablate: hidden units must be in [0, {model.cfg.n_hidden - 1}]")
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.W1[:, idx] = 0.0
        out.W2[idx, :] = 0.0
    return out


def ablation_accuracies(model: SNN, data: SpikeDataset) -> np.ndarray:
    """Accuracy on ``data`` after removing each hidden unit alone, (n_hidden,)."""
    return np.array(
        [evaluation.accuracy(evaluation.predict(ablate(model, [h]), data))
         for h in range(model.cfg.n_hidden)]
    )


def ablation_figure(accuracies: np.ndarray, silent: np.ndarray, intact: float) -> Figure:
    """Bar chart: accuracy after removing each hidden unit, silent units grey, spiking black,
    the intact network's accuracy dashed."""
    acc = np.asarray(accuracies, float)
    is_silent = np.zeros(len(acc), bool)
    is_silent[np.asarray(silent, int)] = True
    fig = Figure(figsize=(6, 2.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(acc))
    ax.bar(x[is_silent], 100 * acc[is_silent], color="0.75", label="silent unit removed")
    ax.bar(x[~is_silent], 100 * acc[~is_silent], color="k", label="spiking unit removed")
    ax.axhline(100 * intact, color="tab:red", ls="--", lw=1, label="intact network")
    ax.axhline(100 / 12, color="0.4", ls=":", lw=0.8, label="chance")
    ax.set_xlabel("Hidden unit removed")
    ax.set_ylabel("Accuracy (%)")
    ax.set_xlim(-0.7, len(acc) - 0.3)
    ax.legend(fontsize=6.5, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    return fig
