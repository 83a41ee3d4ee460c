"""The DCLS delay study (figs 16-17; ``research/Quick_Start_Delay_DCLS``): stimulus with fixed
Poisson uniforms and a fresh phase per epoch, training of weights and delays, evaluation.
The network is :class:`spikeloc.core.delays.DCLSNetwork`; the figures are in
:mod:`spikeloc.analysis.dcls_plots` (kept apart: this module's code decides when a run
retrains).

The pipeline trains it as a *task run* (``task: spikeloc.analysis.dcls:train_task`` in
``workflow/analyses/dcls.yaml``): :func:`train_task` trains one run into its directory,
checkpointing every epoch so that a killed run resumes where it stopped; the notebook reads
finished runs with :func:`load_run`.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc.analysis.task_params import settings_dict, settings_from_params
from spikeloc.core import delays
from spikeloc.errors import ConfigError, WeightsError
from spikeloc.io import atomic_torch_save, atomic_write_bytes, atomic_write_text

__all__ = [
    "DCLSRun",
    "DCLSSettings",
    "FixedUniformStimulus",
    "load_run",
    "settings_from",
    "stop_early",
    "train",
    "train_task",
]

MODEL_FORMAT = "spikeloc-dcls/1"
CHECKPOINT = "checkpoint.pt"
BEST_WEIGHTS = ("references", "copy")


@dataclass(frozen=True)
class DCLSSettings:
    """The notebook's settings (defaults = published)."""

    n_per_ear: int = 100
    n_hidden: int = 30
    n_classes: int = 12
    frequency_hz: float = 20.0
    envelope_power: float = 2.0
    rate_max_hz: float = 600.0
    dt_s: float = 1e-3
    duration_steps: int = 100
    tau_s: float = 5e-3
    taps: int = 31  # maximum delay + 1 ms: the notebook's 300 // 10 = 30, made odd
    n_train: int = 4096
    n_val: int = 4096
    n_test: int = 2048
    batch_size: int = 64
    epochs: int = 150
    lr: float = 1e-3
    max_lr: float = 5e-3
    position_lr_factor: float = 100.0
    sig_final: float = 0.23
    patience: int = 10
    best_weights: str = "references"  # published quirk: the final weights are kept; "copy": best
    seed: int = 0


_POSITIVE = (lambda v: v > 0, "must be > 0")
_AT_LEAST_1 = (lambda v: v >= 1, "must be >= 1")
CHECKS = {
    **{k: _AT_LEAST_1 for k in ("n_per_ear", "n_hidden", "n_train", "n_val", "n_test",
                                "batch_size", "epochs", "patience")},
    "n_classes": (lambda v: v >= 2, "must be >= 2"),
    "duration_steps": (lambda v: v >= 2, "must be >= 2"),
    "taps": (lambda v: v >= 1 and v % 2 == 1, "must be an odd integer >= 1 (the notebook's "
             "kernels have an odd size)"),
    **{k: _POSITIVE for k in ("frequency_hz", "envelope_power", "rate_max_hz", "dt_s", "tau_s",
                              "lr", "max_lr", "position_lr_factor", "sig_final")},
    "best_weights": (lambda v: v in BEST_WEIGHTS, "must be references or copy"),
}


def _check_sizes(s: DCLSSettings) -> None:
    if s.n_train < s.batch_size:
        raise ConfigError(None, "n_train", f"must be >= batch_size ({s.batch_size}: the "
                          f"notebook trains on whole batches only), got {s.n_train}")


def settings_from(params: dict | None, seed: int = 0) -> DCLSSettings:
    """Validated settings from a task run's ``params`` (:class:`ConfigError` naming the key)."""
    s = settings_from_params(DCLSSettings, params, seed=seed, checks=CHECKS)
    _check_sizes(s)
    return s


def _generator(seed: int, *stream: int) -> torch.Generator:
    """An independent generator per (seed, purpose, index): the training set, the validation
    set, the test set and every epoch draw from their own, so that a resumed run draws exactly
    what an uninterrupted one does."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


_TRAIN, _VAL, _TEST, _EPOCH, _EVAL = range(5)


class FixedUniformStimulus:
    """IPDs and the Poisson uniforms drawn once; :meth:`spikes` thresholds them against the
    tone's probability for a phase ``phi0`` (one per call, as in the notebook)."""

    def __init__(self, s: DCLSSettings, n: int, gen: torch.Generator):
        self.s = s
        self.ipd = torch.rand(n, generator=gen) * math.pi - math.pi / 2
        self.u = torch.rand(n, 2 * s.n_per_ear, s.duration_steps, generator=gen)
        labels = torch.floor((self.ipd + math.pi / 2) * s.n_classes / math.pi).long()
        self.labels = labels.clamp(0, s.n_classes - 1)

    def spikes(self, phi0: float) -> torch.Tensor:
        s = self.s
        t = torch.arange(s.duration_steps, dtype=torch.float32) * s.dt_s
        ear = torch.repeat_interleave(torch.tensor([0.0, 1.0]), s.n_per_ear)
        theta = (2 * math.pi * (s.frequency_hz * t[None, None, :] + phi0)
                 + ear[None, :, None] * self.ipd[:, None, None])  # no phase delays
        p = s.rate_max_hz * s.dt_s * ((1 + torch.sin(theta)) / 2) ** s.envelope_power
        return (self.u < p).float()  # (n, 200, T)


def build_model(s: DCLSSettings) -> delays.DCLSNetwork:
    """The network with the seed's initial weights and positions (kaiming / N(0, 0.5) from
    torch's global generator inside ``Dcls1d``, drawn in a fork so nothing else moves)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        return delays.DCLSNetwork(2 * s.n_per_ear, s.n_hidden, s.n_classes, s.taps,
                                  tau_s=s.tau_s, dt_s=s.dt_s, n_steps=s.duration_steps - 1)


def _device(requested: str | None) -> torch.device:
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda"):
        raise ConfigError(None, "device", f"must be auto, cpu or cuda, got {requested!r}")
    return torch.device(requested)


def _loss_acc(model, x, y, batch=512):
    losses, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(x[i : i + batch])
            losses += float(F.cross_entropy(out, y[i : i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return losses / len(y), correct / len(y)


def stop_early(val_losses: list[float], epoch: int, patience: int) -> bool:
    """The notebook's rule (catalogue 2.4): stop after epoch ``epoch`` (0-based) when it is
    past ``patience`` and the oldest of the last ``patience`` validation losses is their
    minimum (no improvement since)."""
    last = val_losses[-patience:]
    return epoch > patience and len(last) == patience and last[0] == min(last)


def _phase(gen: torch.Generator) -> float:
    return float(torch.rand(1, generator=gen))


@dataclass
class _State:
    """Everything a run needs to continue after epoch ``epoch`` (the checkpoint)."""

    epoch: int = 0  # epochs done
    history: list[dict] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    best_state: dict | None = None
    stopped_early: bool = False
    wall_s: float = 0.0


def train(
    s: DCLSSettings,
    *,
    device: str | None = "cpu",
    checkpoint: Path | None = None,
    log=None,
) -> tuple[delays.DCLSNetwork, _State]:
    """Train weights (Adam, OneCycle) and positions (Adam at ``position_lr_factor`` x lr,
    cosine) with 'gauss' kernels, SIG annealed from ``taps // 2`` to ``sig_final`` over the
    first quarter of the epochs, ``clamp_parameters`` after every step; validate in 'max'
    mode after every epoch; stop early when the oldest of the last ``patience`` validation
    losses is their minimum (after epoch ``patience``). With ``checkpoint``, the state after
    every epoch is saved there and a run that finds one continues from it."""
    dev = _device(device)
    model = build_model(s).to(dev)
    train_set = FixedUniformStimulus(s, s.n_train, _generator(s.seed, _TRAIN))
    val_set = FixedUniformStimulus(s, s.n_val, _generator(s.seed, _VAL))
    yv, ytrain = val_set.labels.to(dev), train_set.labels.to(dev)
    weights = [m.weight for m in model.synapses()]
    positions = [m.P for m in model.synapses()]
    opt_w = torch.optim.Adam(weights, lr=s.lr)
    opt_p = torch.optim.Adam(positions, lr=s.position_lr_factor * s.lr)
    sch_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=s.max_lr, total_steps=s.epochs)
    sch_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=s.epochs)
    sig0 = s.taps // 2
    anneal_epochs = s.epochs // 4  # (none below 4 epochs, as in the notebook)
    factor = (s.sig_final / sig0) ** (1.0 / anneal_epochs) if sig0 > 0 and anneal_epochs else 1.0
    n_used = s.n_train - s.n_train % s.batch_size  # the notebook drops an incomplete batch
    st = _State()
    if checkpoint is not None and checkpoint.is_file():
        ck = _load_checkpoint(checkpoint, s)
        model.load_state_dict(ck["model"])
        opt_w.load_state_dict(ck["opt_w"])
        opt_p.load_state_dict(ck["opt_p"])
        sch_w.load_state_dict(ck["sch_w"])
        sch_p.load_state_dict(ck["sch_p"])
        st = _State(**ck["state"])
    done = st.stopped_early
    t0 = time.perf_counter() - st.wall_s
    for e in range(st.epoch, s.epochs):
        if done:
            break
        model.set_mode("gauss")
        gen = _generator(s.seed, _EPOCH, e)
        x = train_set.spikes(_phase(gen)).to(dev)  # a new phase per epoch
        perm = torch.randperm(s.n_train, generator=gen).to(dev)
        tot, correct = 0.0, 0
        for i in range(0, n_used, s.batch_size):
            idx = perm[i : i + s.batch_size]
            out = model(x[idx])
            loss = F.nll_loss(F.log_softmax(out, 1), ytrain[idx])
            opt_w.zero_grad()
            opt_p.zero_grad()
            loss.backward()
            opt_w.step()
            opt_p.step()
            for m in model.synapses():
                m.clamp_parameters()
            tot += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == ytrain[idx]).sum())
        # the validation spikes too are drawn again every epoch with a new phase
        sch_w.step()
        sch_p.step()
        if e < anneal_epochs:
            for m in model.synapses():
                if m.sig > s.sig_final:
                    m.set_sig(m.sig * factor)
        model.set_mode("max")
        xv = val_set.spikes(_phase(gen)).to(dev)
        vl, va = _loss_acc(model, xv, yv)
        del xv
        st.history.append({"epoch": e, "train_loss": tot / n_used,
                           "train_accuracy": correct / n_used, "val_loss": vl,
                           "val_accuracy": va, "sig": model.w1.sig})
        if log:
            log(st.history[-1])
        if vl < st.best_val:
            st.best_val, st.best_epoch = vl, e
            st.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        st.epoch = e + 1
        if stop_early([h["val_loss"] for h in st.history], e, s.patience):
            st.stopped_early = done = True
        st.wall_s = time.perf_counter() - t0
        if checkpoint is not None:
            _save_checkpoint(checkpoint, s, model, opt_w, opt_p, sch_w, sch_p, st)
    if s.best_weights == "copy" and st.best_state is not None:
        model.load_state_dict(st.best_state)
    model.set_mode("max")
    return model, st


def _save_checkpoint(path, s, model, opt_w, opt_p, sch_w, sch_p, st: _State) -> None:
    atomic_torch_save(path, {
        "format": MODEL_FORMAT + "-checkpoint",
        "settings": settings_dict(s),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "opt_w": opt_w.state_dict(),
        "opt_p": opt_p.state_dict(),
        "sch_w": sch_w.state_dict(),
        "sch_p": sch_p.state_dict(),
        "state": copy.copy(vars(st)),
    })


def _load_checkpoint(path: Path, s: DCLSSettings) -> dict:
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
def evaluate(model: delays.DCLSNetwork, s: DCLSSettings, *, device: str | None = "cpu") -> dict:
    """'max' mode on the training uniforms with a fresh phase (``n_train``) and on a fresh test
    set (``n_test``). MAE: the continuous true IPD against the estimated class midpoint."""
    dev = _device(device)
    train_set = FixedUniformStimulus(s, s.n_train, _generator(s.seed, _TRAIN))
    test_set = FixedUniformStimulus(s, s.n_test, _generator(s.seed, _TEST))
    model.set_mode("max")
    out = {}
    for k, (name, st) in enumerate((("train", train_set), ("test", test_set))):
        x = st.spikes(_phase(_generator(s.seed, _EVAL, k)))
        pred = torch.cat([model(x[i : i + 512].to(dev)).argmax(1).cpu()
                          for i in range(0, len(x), 512)])
        mid = (pred.double() + 0.5) * math.pi / s.n_classes - math.pi / 2
        out[name] = {"true": st.labels.numpy(), "pred": pred.numpy(),
                     "true_ipd_deg": np.rad2deg(st.ipd.numpy()),
                     "accuracy": float((pred == st.labels).double().mean()),
                     "mae_deg": math.degrees(float((mid - st.ipd.double()).abs().mean()))}
    return out


def delay_stats(model: delays.DCLSNetwork) -> dict:
    """Rounded positions P of both layers (the notebook's statistics are over P)."""
    out = {}
    for name, m in (("w1", model.w1), ("w2", model.w2)):
        p = torch.round(m.P.detach()).cpu().numpy().ravel()
        out[name] = {"min": float(p.min()), "max": float(p.max()), "mean": float(p.mean()),
                     "sd": float(p.std())}
    return out


HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "sig")


def _history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def train_task(params: dict, *, seed: int, out_dir: Path, device: str = "cpu",
               threads: int | None = None, progress: bool = False) -> dict:
    """One DCLS run (a task run): validate ``params`` (the :class:`DCLSSettings` fields but
    ``seed``), train with a checkpoint per epoch in ``out_dir`` (a killed run resumes from
    it), evaluate, and write ``model.pt`` (state dict + settings), ``history.csv`` (one row
    per epoch) and ``evaluation.npz`` (true/estimated classes of the train and test sets).
    Returns the metrics."""
    s = settings_from(params, seed)
    from spikeloc.engine.runtime import configure_runtime

    configure_runtime(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = None
    if progress:
        def log(h):
            print(f"epoch {h['epoch']}: train {h['train_loss']:.3f} / "
                  f"{100 * h['train_accuracy']:.1f}%, val {h['val_loss']:.3f} / "
                  f"{100 * h['val_accuracy']:.1f}%, sig {h['sig']:.2f}", flush=True)
    model, st = train(s, device=device, checkpoint=out_dir / CHECKPOINT, log=log)
    t0 = time.perf_counter()
    ev = evaluate(model, s, device=device)
    stats = delay_stats(model)
    atomic_torch_save(out_dir / "model.pt", {
        "format": MODEL_FORMAT, "settings": settings_dict(s),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    })
    atomic_write_text(out_dir / "history.csv", _history_csv(st.history))
    buf = io.BytesIO()
    np.savez(buf, **{f"{n}_{k}": ev[n][k] for n in ("train", "test")
                     for k in ("true", "pred", "true_ipd_deg")})
    atomic_write_bytes(out_dir / "evaluation.npz", buf.getvalue())
    last = st.history[-1]
    metrics = {
        "taps": s.taps,
        "epochs_run": st.epoch,
        "best_epoch": st.best_epoch,
        "stopped_early": st.stopped_early,
        "best_val_loss": st.best_val,
        "final_val_loss": last["val_loss"],
        "final_val_accuracy": last["val_accuracy"],
        "final_sig": last["sig"],
        "train_accuracy": ev["train"]["accuracy"],
        "train_mae_deg": ev["train"]["mae_deg"],
        "test_accuracy": ev["test"]["accuracy"],
        "test_mae_deg": ev["test"]["mae_deg"],
        **{f"{layer}_delay_{k}": v for layer, d in stats.items() for k, v in d.items()},
        "train_wall_s": st.wall_s,
        "eval_wall_s": time.perf_counter() - t0,
    }
    return metrics


@dataclass
class DCLSRun:
    """A finished run, as :func:`load_run` reads it."""

    path: Path
    settings: DCLSSettings
    model: delays.DCLSNetwork
    history: list[dict]
    evaluation: dict
    metrics: dict | None


def load_run(path: str | Path) -> DCLSRun:
    """A run directory written by :func:`train_task` (the model in 'max' mode)."""
    import json

    path = Path(path)
    f = path / "model.pt"
    if not f.is_file():
        raise WeightsError(f, "<file>", "no such file; train the run first (snakemake "
                           "analyse_dcls, or the run's chunk)")
    obj = torch.load(f, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise WeightsError(f, "format", f"not a {MODEL_FORMAT} model file")
    s = DCLSSettings(**obj["settings"])
    model = build_model(s)
    model.load_state_dict(obj["state_dict"])
    model.set_mode("max")
    with open(path / "history.csv", newline="") as fh:
        history = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                   for row in csv.DictReader(fh)]
    with np.load(path / "evaluation.npz") as z:
        ev: dict = {"train": {}, "test": {}}
        for key in z.files:
            name, k = key.split("_", 1)
            ev[name][k] = z[key]
    for name, e in ev.items():  # noqa: B007  (kept: the code hash follows the AST)
        e["accuracy"] = float(np.mean(e["pred"] == e["true"]))
        mid = -90 + (e["pred"] + 0.5) * 180 / s.n_classes
        e["mae_deg"] = float(np.mean(np.abs(mid - e["true_ipd_deg"])))
    mpath = path / "metrics.json"
    metrics = json.loads(mpath.read_text()) if mpath.is_file() else None
    return DCLSRun(path, s, model, history, ev, metrics)
