"""The differentiable delay layer study (figs 11-15; ``research/Solving_problem_with_delay_learning``):
its stimulus, training loop and evaluation. The model is :mod:`spikeloc.core.delays`; the
figures are in :mod:`spikeloc.analysis.delay_layer_plots` (kept apart: this module's code
decides when a run retrains).

The pipeline trains it as a *task run* (``task: spikeloc.analysis.delay_layer:train_task`` in
``workflow/analyses/delay_layer.yaml``): :func:`train_task` trains one seed into its
directory with a checkpoint after every epoch (a killed run resumes where it stopped) and
evaluates it; the notebook reads finished runs with :func:`load_run`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc.analysis.task_params import settings_dict, settings_from_params
from spikeloc.core import delays
from spikeloc.errors import ConfigError, WeightsError
from spikeloc.io import atomic_torch_save, atomic_write_bytes, atomic_write_text

__all__ = [
    "DDLRun",
    "DDLSettings",
    "eval_tau",
    "evaluate",
    "load_run",
    "make_batch",
    "settings_from",
    "train",
    "train_task",
]

MODEL_FORMAT = "spikeloc-ddl/1"
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class DDLSettings:
    """The notebook's settings (defaults = published HEAD)."""

    n_classes: int = 36
    ang_step_deg: float = 5.0  # classes -90, -85, ..., +85
    frequency_hz: float = 20.0
    envelope_power: float = 10.0
    rate_max_hz: float = 600.0
    dt_s: float = 1e-3
    duration_steps: int = 50
    max_delay: int = 20  # padding 2 x max_delay before, 1 x after: 110 steps
    batch_size: int = 200
    epochs: int = 151  # the notebook breaks at e >= 150 (HEAD); ~500 for the published loss curve
    lr: float = 2.0
    tau_start: float = 40.0
    tau_decay: float = 0.005
    tau_floor: float = 5.0
    synapse: str = "subtractive"
    fix_first: bool = True
    integrate_last_step: bool = False  # published: the last step's potential stays 0
    n_test_batches: int = 50  # performance measure 1: 50 x 200 samples
    n_train_eval: int = 2000  # performance measure 2: first 2000 collected training inputs
    n_test_eval: int = 2000  # ... and one fresh batch of 2000
    seed: int = 0

    @property
    def n_steps(self) -> int:
        return 3 * self.max_delay + self.duration_steps

    def ipd_deg(self) -> np.ndarray:
        return -90.0 + self.ang_step_deg * np.arange(self.n_classes)


_AT_LEAST_1 = (lambda v: v >= 1, "must be >= 1")
_POSITIVE = (lambda v: v > 0, "must be > 0")
CHECKS = {
    "n_classes": (lambda v: v >= 2, "must be >= 2"),
    **{k: _AT_LEAST_1 for k in ("duration_steps", "batch_size", "epochs", "n_test_batches",
                                "n_test_eval", "n_train_eval")},
    "max_delay": (lambda v: v >= 2, "must be >= 2 (initial delays are drawn from 1 .. max - 1)"),
    **{k: _POSITIVE for k in ("ang_step_deg", "frequency_hz", "envelope_power", "rate_max_hz",
                              "dt_s", "lr", "tau_start", "tau_floor")},
    "tau_decay": (lambda v: v >= 0, "must be >= 0"),
    "synapse": (lambda v: v in ("subtractive", "multiplicative"),
                "must be subtractive or multiplicative"),
}


def settings_from(params: dict | None, seed: int = 0) -> DDLSettings:
    """Validated settings from a task run's ``params`` (:class:`ConfigError` naming the key)."""
    s = settings_from_params(DDLSettings, params, seed=seed, checks=CHECKS)
    if s.n_train_eval > s.epochs * s.batch_size:
        raise ConfigError(None, "n_train_eval", f"must be <= epochs x batch_size "
                          f"({s.epochs * s.batch_size}: the training samples there are), "
                          f"got {s.n_train_eval}")
    return s


def _generator(seed: int, *stream: int) -> torch.Generator:
    """An independent generator per (seed, purpose, index): the initial delays, every epoch's
    batch and the test sets draw from their own, so a resumed run draws what an uninterrupted
    one does and the training samples can be drawn again for evaluation."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


_INIT, _EPOCH, _TEST, _FIGURE = range(4)


def make_batch(s: DDLSettings, n: int, gen: torch.Generator):
    """(x (n, 2, C, T), labels (n,)): one IPD class per sample, a random phase per sample,
    an independent pair of Poisson trains per output class, zero padded."""
    labels = torch.randint(0, s.n_classes, (n,), generator=gen)
    ipd = torch.as_tensor(np.deg2rad(s.ipd_deg()), dtype=torch.float32)[labels]
    phi0 = torch.rand(n, generator=gen)
    t = torch.arange(s.duration_steps, dtype=torch.float32) * s.dt_s
    ear = torch.tensor([0.0, 1.0])
    theta = (2 * math.pi * (s.frequency_hz * t[None, None, :] + phi0[:, None, None])
             + ear[None, :, None] * ipd[:, None, None])  # (n, 2, L)
    p = s.rate_max_hz * s.dt_s * ((1 + torch.sin(theta)) / 2) ** s.envelope_power
    u = torch.rand(n, 2, s.n_classes, s.duration_steps, generator=gen)
    spikes = (u < p[:, :, None, :]).float()
    x = F.pad(spikes, (2 * s.max_delay, s.max_delay))
    return x, labels


def epoch_batch(s: DDLSettings, epoch: int):
    """The training batch of ``epoch`` (one fresh batch of ``batch_size`` per epoch)."""
    return make_batch(s, s.batch_size, _generator(s.seed, _EPOCH, epoch))


def figure_batch(s: DDLSettings, n: int):
    """Samples for figures (their own stream, never trained on)."""
    return make_batch(s, n, _generator(s.seed, _FIGURE))


def build_model(s: DDLSettings) -> delays.DDLNetwork:
    """The network with the seed's initial delays (uniform integers 1 .. max_delay - 1)."""
    return delays.DDLNetwork(s.n_classes, s.max_delay, fix_first=s.fix_first,
                             synapse=s.synapse, integrate_last_step=s.integrate_last_step,
                             generator=_generator(s.seed, _INIT))


def _device(requested: str | None) -> torch.device:
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda"):
        raise ConfigError(None, "device", f"must be auto, cpu or cuda, got {requested!r}")
    return torch.device(requested)


def train(s: DDLSettings, *, device: str | None = "cpu", checkpoint: Path | None = None):
    """One fresh batch per epoch, SGD on the delays, tau decaying per epoch. With
    ``checkpoint`` the state after every epoch is saved there, and a run that finds one
    continues from it. Returns ``(model, initial_delays, losses, taus, wall_s)``."""
    dev = _device(device)
    model = build_model(s)
    initial = model.ddl.integer_delays().detach().numpy().copy()
    model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=s.lr)
    losses: list[float] = []
    taus: list[float] = []
    wall = 0.0
    if checkpoint is not None and checkpoint.is_file():
        ck = _load_checkpoint(checkpoint, s)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        losses, taus, wall = list(ck["losses"]), list(ck["taus"]), float(ck["wall_s"])
    t0 = time.perf_counter() - wall
    for e in range(len(losses), s.epochs):
        tau = delays.tau_schedule(e, s.tau_start, s.tau_decay, s.tau_floor)
        x, y = epoch_batch(s, e)
        loss = F.nll_loss(model(x.to(dev), tau), y.to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        taus.append(tau)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, s, model, opt, losses, taus, time.perf_counter() - t0)
    return model, initial, losses, taus, time.perf_counter() - t0


def eval_tau(s: DDLSettings) -> float:
    """The time constant the notebook evaluates with: the global ``TAU`` after the last
    epoch's decay (18.80 after 151 epochs; the last epoch trained with 18.89)."""
    return delays.tau_schedule(s.epochs, s.tau_start, s.tau_decay, s.tau_floor)


def _save_checkpoint(path, s, model, opt, losses, taus, wall_s) -> None:
    atomic_torch_save(path, {
        "format": MODEL_FORMAT + "-checkpoint",
        "settings": settings_dict(s),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "losses": losses,
        "taus": taus,
        "wall_s": wall_s,
    })


def _load_checkpoint(path: Path, s: DDLSettings) -> dict:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, unpickling errors of many types
        raise WeightsError(path, "<file>", f"not a readable checkpoint ({type(exc).__name__}); "
                           "delete it to train afresh") from None
    if not isinstance(ck, dict) or ck.get("settings") != settings_dict(s):
        raise WeightsError(path, "settings", "the checkpoint is of other settings; delete it "
                           "to train afresh")
    return ck


@torch.no_grad()
def predict(model: delays.DDLNetwork, x: torch.Tensor, tau: float, batch: int = 500):
    dev = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch].to(dev), tau).argmax(1).cpu()
                      for i in range(0, len(x), batch)]).numpy()


@torch.no_grad()
def evaluate(model: delays.DDLNetwork, s: DDLSettings, tau: float) -> dict:
    """Measure 1 (absolute errors over ``n_test_batches`` fresh batches) and measure 2
    (accuracy and MAE on the first ``n_train_eval`` training inputs, drawn again from the
    epochs' generators, and on one fresh batch of ``n_test_eval``)."""
    gen = _generator(s.seed, _TEST)
    errs = []
    for _ in range(s.n_test_batches):
        x, y = make_batch(s, s.batch_size, gen)
        errs.append(np.abs(predict(model, x, tau) - y.numpy()) * s.ang_step_deg)
    xt, yt = make_batch(s, s.n_test_eval, gen)
    n_ep = math.ceil(s.n_train_eval / s.batch_size)
    batches = [epoch_batch(s, e) for e in range(n_ep)]
    xtr = torch.cat([b[0] for b in batches])[: s.n_train_eval]
    ytr = torch.cat([b[1] for b in batches])[: s.n_train_eval]
    out: dict = {"abs_errors_deg": np.concatenate(errs)}
    for name, x, y in (("train", xtr, ytr), ("test", xt, yt)):
        pred, true = predict(model, x, tau), y.numpy()
        out[name] = {"true": true, "pred": pred,
                     "accuracy": float(np.mean(pred == true)),
                     "mae_deg": float(np.mean(np.abs(pred - true)) * s.ang_step_deg)}
    return out


def confusion(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts normalised per true class (column), row = estimate."""
    m = np.zeros((n, n))
    np.add.at(m, (pred, true), 1)
    return m / np.maximum(m.sum(0, keepdims=True), 1)


def _history_csv(losses, taus) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", "loss", "tau_steps"])
    for e, (loss, tau) in enumerate(zip(losses, taus, strict=True)):
        w.writerow([e, repr(loss), repr(tau)])
    return buf.getvalue()


def train_task(params: dict, *, seed: int, out_dir: Path, device: str = "cpu",
               threads: int | None = None, progress: bool = False) -> dict:
    """One DDL run (a task run): validate ``params`` (the :class:`DDLSettings` fields but
    ``seed``), train with a checkpoint per epoch in ``out_dir``, evaluate, and write
    ``model.pt`` (state dict, settings, initial delays), ``history.csv`` (loss and tau per
    epoch) and ``evaluation.npz`` (measure 1's absolute errors; measure 2's true and
    estimated classes). Returns the metrics."""
    s = settings_from(params, seed)
    if threads:
        torch.set_num_threads(int(threads))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, initial, losses, taus, wall = train(s, device=device,
                                               checkpoint=out_dir / CHECKPOINT)
    t0 = time.perf_counter()
    tau_eval = eval_tau(s)
    ev = evaluate(model, s, tau_eval)
    learned = model.ddl.integer_delays().detach().cpu().numpy()
    atomic_torch_save(out_dir / "model.pt", {
        "format": MODEL_FORMAT, "settings": settings_dict(s),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "initial_delays": torch.as_tensor(initial),
    })
    atomic_write_text(out_dir / "history.csv", _history_csv(losses, taus))
    buf = io.BytesIO()
    np.savez(buf, abs_errors_deg=ev["abs_errors_deg"],
             **{f"{n}_{k}": ev[n][k] for n in ("train", "test") for k in ("true", "pred")})
    atomic_write_bytes(out_dir / "evaluation.npz", buf.getvalue())
    if progress:
        print(f"seed {seed}: {s.epochs} epochs in {wall:.1f} s; test "
              f"{100 * ev['test']['accuracy']:.1f}% / {ev['test']['mae_deg']:.1f} deg", flush=True)
    return {
        "n_classes": s.n_classes,
        "chance": 1.0 / s.n_classes,
        "epochs": s.epochs,
        "final_loss": losses[-1],
        "final_tau_steps": tau_eval,
        "last_training_tau_steps": taus[-1],
        "train_accuracy": ev["train"]["accuracy"],
        "train_mae_deg": ev["train"]["mae_deg"],
        "test_accuracy": ev["test"]["accuracy"],
        "test_mae_deg": ev["test"]["mae_deg"],
        "measure1_mae_deg": float(ev["abs_errors_deg"].mean()),
        "measure1_samples": int(ev["abs_errors_deg"].size),
        "initial_delays": [int(v) for v in initial[-1]],
        "learned_delays": [int(v) for v in learned[-1]],
        "delay_first": int(learned[-1][0]),
        "delay_min": int(learned[-1].min()),
        "delay_max": int(learned[-1].max()),
        "train_wall_s": wall,
        "eval_wall_s": time.perf_counter() - t0,
    }


@dataclass
class DDLRun:
    """A finished run, as :func:`load_run` reads it."""

    path: Path
    settings: DDLSettings
    model: delays.DDLNetwork
    initial_delays: np.ndarray  # (1 or 2, C)
    losses: list[float]
    taus: list[float]
    evaluation: dict
    metrics: dict | None

    @property
    def final_tau(self) -> float:
        """The evaluation time constant (after the last epoch's decay)."""
        return eval_tau(self.settings)

    @property
    def learned_delays(self) -> np.ndarray:
        return self.model.ddl.integer_delays().detach().numpy()


def load_run(path: str | Path) -> DDLRun:
    """A run directory written by :func:`train_task`."""
    path = Path(path)
    f = path / "model.pt"
    if not f.is_file():
        raise WeightsError(f, "<file>", "no such file; train the run first (snakemake "
                           "analyse_delay_layer, or the run's chunk)")
    obj = torch.load(f, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise WeightsError(f, "format", f"not a {MODEL_FORMAT} model file")
    s = DDLSettings(**obj["settings"])
    model = build_model(s)
    model.load_state_dict(obj["state_dict"])
    with open(path / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with np.load(path / "evaluation.npz") as z:
        ev: dict = {"abs_errors_deg": z["abs_errors_deg"], "train": {}, "test": {}}
        for name in ("train", "test"):
            true, pred = z[f"{name}_true"], z[f"{name}_pred"]
            ev[name] = {"true": true, "pred": pred, "accuracy": float(np.mean(pred == true)),
                        "mae_deg": float(np.mean(np.abs(pred - true)) * s.ang_step_deg)}
    mpath = path / "metrics.json"
    metrics = json.loads(mpath.read_text()) if mpath.is_file() else None
    return DDLRun(path, s, model, obj["initial_delays"].numpy(),
                  [float(r["loss"]) for r in rows], [float(r["tau_steps"]) for r in rows],
                  ev, metrics)
