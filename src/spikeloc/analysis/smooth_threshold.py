r"""Training the tutorial network with a *smooth threshold* (after Huh & Sejnowski 2018).

The tutorial's second part lists a smooth threshold among the alternatives to surrogate
gradients ("works, but slow and not an SNN"). Here the hidden nonlinearity is a smooth
function of the membrane potential in the forward pass as well as the backward pass, so the
network is an ordinary differentiable recurrent network, trained by plain autograd through
time; its slope is annealed so that the trained network ends close to a spiking one, and the
same weights are then run with the hard threshold (the tutorial's spiking network) to measure
how close.

**Network** (the tutorial network: 200 inputs, ``N_h`` hidden, 12 leaky-integrator outputs, no
biases, ``dt`` = 1 ms, update order of the published notebooks, reset to zero). With input
spikes ``x_t`` (t = 0 .. T-1), ``alpha = exp(-dt/tau_h)``, ``beta = exp(-dt/tau_o)``,
``v_0 = 0`` and ``s_0 = 0``:

.. math::

    h_t &= x_t W_1 \\
    s_{t+1} &= \sigma\!\left(\frac{v_t - \theta}{\kappa}\right), \qquad
        \sigma(z) = \frac{1}{1 + e^{-z}} \\
    v_{t+1} &= (\alpha v_t + h_t)\,(1 - s_t) \\
    u_{t+1} &= \beta u_t + s_t W_2, \qquad u_0 = 0 \\
    y &= \frac{1}{T} \sum_{t=0}^{T-1} u_t, \qquad
        L = -\log \operatorname{softmax}(y)_{c}

(the readout records ``u_0 .. u_{T-1}`` and the hidden layer ``s_0 .. s_{T-1}``, as the core's
:class:`~spikeloc.core.models.SNN` does). The hard network replaces ``sigma((v - theta)/kappa)``
by the Heaviside step ``H(v - theta)``: with the same weights it *is* the core's tutorial SNN,
and the hard evaluation below runs exactly that model. As ``kappa -> 0`` the smooth network
tends to the hard one (``sigma(z / kappa) -> H(z)`` for every ``z != 0``).

**Annealing** of the slope over the epochs ``e = 0 .. E-1`` (``kappa`` is held for an epoch):
``geometric``: ``kappa_e = kappa_0 (kappa_1 / kappa_0)^(e / (E-1))``; ``linear``:
``kappa_e = kappa_0 + (kappa_1 - kappa_0) e / (E-1)``; ``none``: ``kappa_e = kappa_1``.
(``sigma(z / kappa)`` has slope ``1 / (4 kappa)`` at threshold; the tutorial's surrogate
derivative, a sigmoid of steepness 5, corresponds to ``kappa = 0.2``.)

**How far from spiking** the smooth network's hidden outputs ``s`` are, over all test samples,
steps and hidden units: ``mean |s - round(s)|`` (0 for a spiking network, at most 0.5) and the
fraction of outputs within 0.1 of 0 or 1.

Difference from Huh & Sejnowski (2018): their neurons are quadratic integrate-and-fire units
whose synaptic current is driven by a gate function of the membrane potential,
``tau_s ds/dt = -s + g(v) dv/dt``, non-zero only in an active zone around threshold, so the
dynamics stay spiking-like at any width of the zone. This module keeps the tutorial's LIF
neuron and makes its *output* a sigmoid of the membrane (the slide's "smooth threshold"), so
that the hard network is exactly the tutorial one; the gated-current QIF model is not
implemented.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc.core.config import RunConfig, config_from_dict
from spikeloc.core.models import SNN
from spikeloc.core.stimuli import SpikeDataset, continuise
from spikeloc.core.training import make_datasets, seeded_generator
from spikeloc.errors import ConfigError, SpikelocError
from spikeloc.io import atomic_torch_save, atomic_write_text, load_model_file, save_model

__all__ = [
    "DEFAULTS",
    "SmoothThresholdNet",
    "kappa_schedule",
    "smooth_forward",
    "spiking_distance",
    "run_config",
    "train_smooth_threshold",
    "leaderboard_localiser",
]

#: the task's parameters and their defaults (the tutorial network and its training budget:
#: 10 epochs of 4096 samples, batch 64, Adam, lr 0.01)
DEFAULTS: dict[str, Any] = {
    "n_hidden": 30,
    "epochs": 10,
    "n_train": 4096,
    "n_val": 512,
    "n_test": 2048,
    "batch_size": 64,
    "lr": 0.01,
    "kappa_start": 1.0,
    "kappa_end": 0.02,
    "anneal": "geometric",
    "phase_offset": "per_sample",
}
_ANNEALS = ("geometric", "linear", "none")


# ------------------------------------------------------------------------- parameters


def _check_params(params: dict) -> dict:
    """``params`` over :data:`DEFAULTS`, checked (a bad one raises ConfigError naming it)."""
    if not isinstance(params, dict):
        raise ConfigError("params", "<params>", f"must be a mapping, got {type(params).__name__}")
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            None, unknown[0], f"unknown parameter (allowed: {', '.join(sorted(DEFAULTS))})"
        )
    p = {**DEFAULTS, **params}
    for key in ("n_hidden", "epochs", "n_train", "n_test", "batch_size"):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError("params", key, f"must be a positive integer, got {v!r}")
    v = p["n_val"]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError("params", "n_val", f"must be an integer >= 0, got {v!r}")
    for key in ("lr", "kappa_start", "kappa_end"):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise ConfigError("params", key, f"must be a number > 0, got {v!r}")
    if p["anneal"] not in _ANNEALS:
        raise ConfigError(
            "params", "anneal", f"must be one of {list(_ANNEALS)}, got {p['anneal']!r}"
        )
    return p


def run_config(params: dict, seed: int) -> RunConfig:
    """The core run config of the task: preset ``tutorial`` with the task's sizes and phase.

    Its datasets (:func:`spikeloc.core.training.make_datasets`) are those of an SNN run of the
    same preset, overrides and seed, so a surrogate-gradient run of the tutorial preset with
    ``stimulus.phase_offset`` and the same sizes sees the same training and test samples.
    """
    p = _check_params(params)
    data = {
        "preset": "tutorial",
        "seed": int(seed),
        "stimulus": {"phase_offset": p["phase_offset"]},
        "model": {"n_hidden": p["n_hidden"]},
        "training": {
            "epochs": p["epochs"],
            "n_train": p["n_train"],
            "n_val": p["n_val"],
            "n_test": p["n_test"],
            "batch_size": p["batch_size"],
            "lr": float(p["lr"]),
        },
    }
    try:
        return config_from_dict(data, "<params>")
    except ConfigError as exc:
        # name the task's own parameter (stimulus.phase_offset -> phase_offset)
        raise ConfigError("params", exc.field.rsplit(".", 1)[-1], exc.problem) from None


def kappa_schedule(start: float, end: float, epochs: int, anneal: str = "geometric") -> list[float]:
    """The slope ``kappa_e`` of each epoch (see the module docstring)."""
    if epochs == 1 or anneal == "none":
        return [float(end)] * epochs
    frac = np.arange(epochs) / (epochs - 1)
    if anneal == "geometric":
        k = start * (end / start) ** frac
    elif anneal == "linear":
        k = start + (end - start) * frac
    else:
        raise ValueError(f"unknown anneal {anneal!r}")
    return [float(x) for x in k]


# ------------------------------------------------------------------------- the network


class SmoothThresholdNet(torch.nn.Module):
    """The tutorial network's weights ``W1`` (n_in x n_h) and ``W2`` (n_h x 12), drawn as the
    core draws them (:class:`~spikeloc.core.models.SNN` with the same generator), run with a
    smooth (:func:`smooth_forward`) or the hard threshold (:meth:`spiking`)."""

    def __init__(self, cfg: RunConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        core = SNN(cfg.model, cfg.stimulus.dt_s, generator=generator, backend="reference")
        self.W1 = torch.nn.Parameter(core.W1.detach().clone())
        self.W2 = torch.nn.Parameter(core.W2.detach().clone())

    def forward(self, x: torch.Tensor, kappa: float) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.cfg.model
        return smooth_forward(
            x.to(self.W1.dtype),
            self.W1,
            self.W2,
            kappa=kappa,
            threshold=m.threshold,
            alpha=math.exp(-self.cfg.stimulus.dt_s / m.tau_hidden_s),
            beta=math.exp(-self.cfg.stimulus.dt_s / m.tau_output_s),
        )

    def spiking(self) -> SNN:
        """The same weights in the core's spiking network (hard threshold; reference loop)."""
        net = SNN(self.cfg.model, self.cfg.stimulus.dt_s, backend="reference")
        with torch.no_grad():
            net.W1.copy_(self.W1)
            net.W2.copy_(self.W2)
        return net.eval()


def smooth_forward(
    x: torch.Tensor,
    W1: torch.Tensor,
    W2: torch.Tensor,
    *,
    kappa: float,
    threshold: float = 1.0,
    alpha: float,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The smooth network: ``(readout (batch, 12), hidden outputs s (batch, T, N_h))``.

    The equations of the module docstring; differentiable in ``W1`` and ``W2`` by autograd.
    """
    batch, T, _ = x.shape
    h = x @ W1
    v = h.new_zeros(batch, W1.shape[1])
    s = h.new_zeros(batch, W1.shape[1])
    hidden = [s]
    for t in range(T - 1):
        s_next = torch.sigmoid((v - threshold) / kappa)
        v = (alpha * v + h[:, t]) * (1 - s)
        s = s_next
        hidden.append(s)
    s_all = torch.stack(hidden, dim=1)
    i_out = s_all @ W2
    u = i_out.new_zeros(batch, W2.shape[1])
    out = [u]
    for t in range(T - 1):
        u = beta * u + i_out[:, t]
        out.append(u)
    readout = torch.stack(out, dim=1).mean(1)
    return readout, s_all


def spiking_distance(s: torch.Tensor, tol: float = 0.1) -> tuple[float, float]:
    """``(mean |s - round(s)|, fraction of s within tol of 0 or 1)`` of hidden outputs."""
    s = s.double()
    dist = (s - s.round()).abs()
    return float(dist.mean()), float((dist <= tol).double().mean())


# ------------------------------------------------------------------------- evaluation


@torch.no_grad()
def _evaluate_smooth(net: SmoothThresholdNet, data: SpikeDataset, kappa: float, device) -> dict:
    n_cls = data.config.n_classes
    correct, loss, err, dsum, bsum, ssum, n, cells = 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0
    for x, y, ipd in data.batches(512):
        readout, s = net(x.to(device), kappa)
        pred = readout.argmax(1).cpu()
        correct += int((pred == y).sum())
        loss += float(F.cross_entropy(readout.cpu().double(), y, reduction="sum"))
        err += float((continuise(pred, n_cls) - ipd.double()).abs().sum())
        dist = (s.double() - s.double().round()).abs()
        dsum += float(dist.sum())
        bsum += float((dist <= 0.1).sum())
        ssum += float(s.double().sum())
        n += len(y)
        cells += s.numel()
    return {
        "accuracy": correct / n,
        "loss": loss / n,
        "mae_deg": math.degrees(err / n),
        "distance": dsum / cells,
        "binary_fraction": bsum / cells,
        "output_per_sample": ssum / n,
    }


@torch.no_grad()
def _evaluate_hard(net: SmoothThresholdNet, data: SpikeDataset, device) -> dict:
    from spikeloc.core import evaluation

    model = net.spiking().to(device)
    p = evaluation.predict(model, data, device=device)
    return {
        "accuracy": evaluation.accuracy(p),
        "mae_deg": evaluation.mae_continuous_deg(p),
        "spikes_per_sample": float(p.hidden_counts.sum(1).mean()),
        "rate_hz": float(p.hidden_counts.mean() / p.duration_s),
    }


# ------------------------------------------------------------------------- the task


def _resolve_device(device: str | None) -> torch.device:
    from spikeloc.core.training import resolve_device

    return resolve_device(device or "auto")


def train_smooth_threshold(
    params: dict,
    *,
    seed: int,
    out_dir: Path,
    device: str | None = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Train one smooth-threshold network (the task of this module's runs).

    ``params``: the keys of :data:`DEFAULTS`. Datasets, the weight initialisation and the
    shuffling come from the core's seeded streams of the run config :func:`run_config`
    (``model``, ``data``, ``shuffle``, ``val``, ``test``). Writes ``out_dir/model.pt``
    (the hard network in the core's format: :func:`spikeloc.io.save_model`, readable by
    :func:`spikeloc.pipeline.results.load_trained_model`), ``out_dir/history.csv`` and, after each
    epoch, ``out_dir/checkpoint.pt``, from which a killed run resumes to the same result.
    Returns the run's metrics (smooth and hard test accuracy, MAE, distance from spiking,
    the learning curve on the validation set, ``train_wall_s``).
    """
    p = _check_params(params)
    cfg = run_config(p, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    dev = _resolve_device(device)
    data = make_datasets(cfg, dev)
    tr = cfg.training
    kappas = kappa_schedule(p["kappa_start"], p["kappa_end"], p["epochs"], p["anneal"])
    net = SmoothThresholdNet(cfg, generator=seeded_generator(seed, "model")).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=tr.lr)
    shuffle = seeded_generator(seed, "shuffle")
    history: list[dict] = []
    wall = 0.0
    start_epoch = 0
    ckpt = out_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        shuffle.set_state(state["shuffle"])
        history = [dict(zip(state["history_keys"], row, strict=True)) for row in state["history"]]
        wall = float(state["wall"])
        start_epoch = int(state["epoch"])
    for epoch in range(start_epoch, tr.epochs):
        kappa = kappas[epoch]
        t0 = time.perf_counter()
        total, correct, n = 0.0, 0, 0
        for x, y, _ in data["train"].batches(tr.batch_size, shuffle=True, generator=shuffle):
            readout, _s = net(x.to(dev), kappa)
            loss = F.cross_entropy(readout, y.to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
            correct += int((readout.argmax(1).cpu() == y).sum())
            n += len(y)
        wall += time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            "kappa": kappa,
            "train_loss": total / n,
            "train_accuracy": correct / n,
            "seconds": wall,
        }
        if data["val"] is not None:
            sm = _evaluate_smooth(net, data["val"], kappa, dev)
            hd = _evaluate_hard(net, data["val"], dev)
            row.update(
                val_accuracy_smooth=sm["accuracy"],
                val_accuracy_hard=hd["accuracy"],
                val_distance=sm["distance"],
                val_binary_fraction=sm["binary_fraction"],
            )
        history.append(row)
        if progress:
            print(
                f"smooth_threshold seed {seed} epoch {epoch + 1}/{tr.epochs}: "
                + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"),
                flush=True,
            )
        keys = list(history[0])
        atomic_torch_save(
            ckpt,
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "shuffle": shuffle.get_state(),
                "history_keys": keys,
                "history": [[r[k] for k in keys] for r in history],
                "wall": wall,
                "epoch": epoch + 1,
            },
        )
    kappa = kappas[-1]
    smooth = _evaluate_smooth(net, data["test"], kappa, dev)
    hard = _evaluate_hard(net, data["test"], dev)
    train_smooth = _evaluate_smooth(net, data["train"], kappa, dev)
    save_model(out_dir / "model.pt", net.spiking().cpu(), cfg.to_dict())
    _write_history(history, out_dir / "history.csv")
    ckpt.unlink(missing_ok=True)
    metrics: dict[str, Any] = {
        "accuracy_smooth": smooth["accuracy"],
        "accuracy_hard": hard["accuracy"],
        "mae_smooth_deg": smooth["mae_deg"],
        "mae_hard_deg": hard["mae_deg"],
        "test_loss_smooth": smooth["loss"],
        "train_accuracy_smooth": train_smooth["accuracy"],
        "spiking_distance": smooth["distance"],
        "binary_fraction": smooth["binary_fraction"],
        "smooth_output_per_sample": smooth["output_per_sample"],
        "hard_spikes_per_sample": hard["spikes_per_sample"],
        "hard_rate_hz": hard["rate_hz"],
        "kappa_final": kappa,
        "chance": 1.0 / cfg.model.n_classes,
        "epochs_run": len(history),
        "n_parameters": int(net.W1.numel() + net.W2.numel()),
        "train_wall_s": wall,
        "device": str(dev),
    }
    for key in (
        "kappa",
        "train_loss",
        "train_accuracy",
        "val_accuracy_smooth",
        "val_accuracy_hard",
        "val_distance",
        "val_binary_fraction",
    ):
        if key in history[0]:
            metrics[f"curve_{key}"] = [r[key] for r in history]
    return metrics


def _write_history(history: list[dict], path: Path) -> None:
    keys = list(history[0])
    lines = [",".join(keys)] + [",".join(f"{r[k]:.10g}" for k in keys) for r in history]
    atomic_write_text(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------- leaderboard


def load_network(run: Any) -> tuple[SmoothThresholdNet, RunConfig]:
    """The trained network of a task run (``run``: a TaskRun: ``path``, ``params``, ``seed``)."""
    if run is None:
        raise SpikelocError("smooth_threshold leaderboard entry: needs a run of its module")
    cfg = run_config(dict(run.params), int(run.seed))
    net = SmoothThresholdNet(cfg)
    state = load_model_file(Path(run.path) / "model.pt")["state_dict"]
    with torch.no_grad():
        net.W1.copy_(state["W1"])
        net.W2.copy_(state["W2"])
    return net.eval(), cfg


@dataclasses.dataclass
class _SmoothLocaliser:
    net: SmoothThresholdNet
    cfg: RunConfig
    forward: str
    kappa: float
    n_parameters: int
    training_time_s: float

    @property
    def stimulus(self) -> str:
        s = self.cfg.stimulus
        return (
            f"2 x {s.anf_per_ear} Poisson fibres, {s.frequency_hz:g} Hz, {s.duration_s:g} s, "
            f"phase {s.phase_offset.replace('_', ' ')}"
        )

    @torch.no_grad()
    def localise(self, ipds_rad, seed):
        from spikeloc.core.stimuli import generate_spikes

        gen = torch.Generator().manual_seed(int(seed))
        x = generate_spikes(
            torch.as_tensor(ipds_rad, dtype=torch.float64), self.cfg.stimulus, generator=gen
        )
        if self.forward == "hard":
            out = self.net.spiking()(x)
            readout, s = out.readout, out.hidden_spikes
        else:
            readout, s = self.net(x, self.kappa)
        est = continuise(readout.argmax(1), self.cfg.stimulus.n_classes)
        # hard: hidden spikes per decision; smooth: the summed hidden output (not spikes)
        return est.numpy(), s.double().sum((1, 2)).numpy()


def leaderboard_localiser(options: dict, run: Any) -> _SmoothLocaliser:
    """Leaderboard factory: ``options = {forward: hard | smooth}`` (default hard: the trained
    weights in the spiking tutorial network); ``run``: the entry's task run."""
    forward = (options or {}).get("forward", "hard")
    if forward not in ("hard", "smooth"):
        raise SpikelocError(
            f"smooth_threshold leaderboard: forward must be hard or smooth, got {forward!r}"
        )
    net, cfg = load_network(run)
    metrics = dict(getattr(run, "metrics", {}) or {})
    return _SmoothLocaliser(
        net,
        cfg,
        forward,
        float(metrics.get("kappa_final", DEFAULTS["kappa_end"])),
        int(net.W1.numel() + net.W2.numel()),
        float(metrics.get("train_wall_s", math.nan)),
    )
