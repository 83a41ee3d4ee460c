"""Training: the published loop (Adam/SGD over a fixed, reshuffled dataset), early stopping,
seeds, device choice, per-epoch checkpoints with exact resume, and the run directory.

A run directory (``spikeloc train CONFIG --out RUN_DIR``)::

    RUN_DIR/model.pt          state dict + config (torch.load(..., weights_only=True))
    RUN_DIR/metrics.json      test accuracy, both MAEs, hidden rates, epochs, wall time
    RUN_DIR/history.csv       one row per epoch
    RUN_DIR/provenance.json   git commit, package versions, config hash, seed, device
    RUN_DIR/config.yaml       the resolved config

While training, everything lives in ``RUN_DIR.partial/`` (with ``checkpoint.pt`` rewritten
atomically every epoch); the finished directory is renamed into place in one step, so a
``RUN_DIR`` that exists is always complete. ``resume=True`` continues from the checkpoint in
``RUN_DIR.partial/`` and gives the same final weights as an uninterrupted run; a checkpoint
of another config is set aside as ``RUN_DIR.stale/`` (warning) and the run starts over; an
unreadable one is refused (:class:`~spikeloc.errors.WeightsError`). ``RUN_DIR.old/`` left by
a kill between the two renames of a rerun is put back or removed by the next run, and
``--out`` naming a file or a folder that is not a run directory is refused before training.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm  # the text bar: tqdm.auto wants ipywidgets inside a kernel

from spikeloc.core import evaluation
from spikeloc.core.config import SEED_MAX, RegulariserConfig, RunConfig, config_hash
from spikeloc.core.models import SNN, SNNOutput, build_model
from spikeloc.core.recording import RECORDING_FILE, SpikeRecorder
from spikeloc.core.stimuli import SpikeDataset, make_dataset
from spikeloc.engine.runtime import configure_runtime
from spikeloc.errors import ConfigError, SpikelocError, WeightsError
from spikeloc.io import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    remove_temp_files,
    save_model,
)
from spikeloc.provenance import provenance_record

__all__ = [
    "resolve_device",
    "seeded_generator",
    "load_checkpoint",
    "check_out_dir",
    "make_datasets",
    "make_test_set",
    "regulariser_loss",
    "loss_fn",
    "TrainResult",
    "train",
    "train_run",
]

log = logging.getLogger("spikeloc.core.training")

# stream ids: every random draw comes from its own generator, so adding one never shifts another.
# The generator of (seed, stream) is seeded with seed * 1000 + id: for 0 <= id < 1000 and
# 0 <= seed <= SEED_MAX (checked here and by the config) that map is one-to-one and stays below
# 2**64, so no two (seed, purpose) pairs share a stream. fresh_data: the training sets drawn
# anew every epoch (training.data: fresh), apart from the fixed initial set of "data".
_STREAMS = {
    "model": 1,
    "data": 2,
    "shuffle": 3,
    "dropout": 4,
    "val": 5,
    "test": 6,
    "fresh_data": 7,
    # the extra test sets of training.n_test_sets: set k >= 1 has stream 100 + k
    "test_sets": 100,
}
#: The most test sets a run may have (their streams must stay below the next seed's).
MAX_TEST_SETS = 900


def seeded_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one named random stream of a run (distinct for every pair)."""
    seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(None, "seed", f"must be in [0, {SEED_MAX}], got {seed}")
    g = torch.Generator()
    g.manual_seed(seed * 1000 + _STREAMS[stream])
    return g


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint (``weights_only=True``); unreadable -> :class:`WeightsError`."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, unpickling errors of many types, OSError
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        raise WeightsError(
            path,
            "<file>",
            f"not a readable checkpoint ({type(exc).__name__}{': ' + first if first else ''}); "
            "delete it or run without --resume",
        ) from None
    if not isinstance(ck, dict) or not {"config_hash", "epoch", "model"} <= set(ck):
        raise WeightsError(
            path, "<file>", "not a spikeloc training checkpoint; delete it or run without --resume"
        )
    return ck


def resolve_device(requested: str) -> torch.device:
    """``auto``: cuda if present else cpu; ``cuda``: require a GPU (fail at once); ``cpu``."""
    if requested == "cpu":
        return torch.device("cpu")
    has_cuda = torch.cuda.is_available()
    if requested == "cuda":
        if not has_cuda:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
            raise SpikelocError(
                f"device: cuda was requested but no CUDA GPU is usable here "
                f"(torch.cuda.is_available() is False, CUDA_VISIBLE_DEVICES={visible}, "
                f"torch {torch.__version__}); use device: auto or cpu to run on the CPU"
            )
        return torch.device("cuda")
    if requested == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    raise ConfigError(None, "device", f"must be auto, cpu or cuda, got {requested!r}")


def _storage_dtype(device: torch.device) -> torch.dtype:
    # 0/1 spikes are kept as bool on the CPU (4x less memory) and converted per batch
    return torch.bool if device.type == "cpu" else torch.float32


def make_test_set(
    cfg: RunConfig, n: int | None = None, device: torch.device | str = "cpu", index: int = 0
) -> SpikeDataset:
    """The test set of a run, regenerated from its seed (``n=None``: the run's own size);
    ``index`` k >= 1: the run's k-th extra test set (``training.n_test_sets``), a fresh draw.

    The same set :func:`make_datasets` evaluates on, so an analysis can recompute a run's
    test numbers exactly. With ``training.legacy_numpy_seed`` it is the notebook's numpy
    stream, reseeded (the published quirk: its IPDs equal the first training IPDs). With
    ``training.clean_test`` it has no phase-delay noise (Noise_robustness.ipynb).
    """
    device = torch.device(device)
    n = n or cfg.training.n_test
    kw = {"device": device, "dtype": _storage_dtype(device)}
    stim = cfg.stimulus
    if cfg.training.clean_test:
        stim = dataclasses.replace(stim, phase_delay_noise_rad=0.0)
    seed = cfg.training.legacy_numpy_seed
    if seed is not None:
        return make_dataset(n, stim, legacy_numpy_seed=seed, **kw)
    if index:
        if not 0 < index < MAX_TEST_SETS:
            raise ValueError(f"test set index must be in [0, {MAX_TEST_SETS}), got {index}")
        g = torch.Generator()
        g.manual_seed(int(cfg.seed) * 1000 + _STREAMS["test_sets"] + index)
        return make_dataset(n, stim, generator=g, **kw)
    return make_dataset(n, stim, generator=seeded_generator(cfg.seed, "test"), **kw)


def make_datasets(cfg: RunConfig, device: torch.device) -> dict[str, SpikeDataset | None]:
    """Training, validation and test sets of a run (each from its own seeded stream).

    With ``training.legacy_numpy_seed`` the training and test sets reproduce the notebook's
    numpy stream (both reseeded: the test IPDs equal the first training IPDs, as published).
    """
    tr = cfg.training
    kw = {"device": device, "dtype": _storage_dtype(device)}
    if tr.legacy_numpy_seed is not None:
        train = make_dataset(tr.n_train, cfg.stimulus, legacy_numpy_seed=tr.legacy_numpy_seed, **kw)
    else:
        train = make_dataset(
            tr.n_train, cfg.stimulus, generator=seeded_generator(cfg.seed, "data"), **kw
        )
    val = None
    if tr.n_val > 0:
        val = make_dataset(
            tr.n_val, cfg.stimulus, generator=seeded_generator(cfg.seed, "val"), **kw
        )
    return {"train": train, "val": val, "test": make_test_set(cfg, device=device)}


def regulariser_loss(
    hidden_spikes: torch.Tensor, reg: RegulariserConfig, n_classes: int, duration_s: float
) -> torch.Tensor:
    """Firing-rate regulariser (see :class:`~spikeloc.core.config.RegulariserConfig`)."""
    batch = hidden_spikes.shape[0]
    fr = hidden_spikes.sum((0, 1)) / (batch * duration_s)  # Hz per neuron
    c = reg.strength if reg.strength is not None else math.log(n_classes)
    per_neuron = c * (F.relu(fr - reg.rate_low_hz) / (reg.rate_high_hz - reg.rate_low_hz)) ** 2
    n_h = fr.shape[0]
    if reg.form == "code":
        return per_neuron.mean() / n_h  # time-constant-solutions.ipynb: effective c / N_h^2
    return per_neuron.sum() / n_h  # the paper's L = c * sum_m L_m / N_h


def loss_fn(
    out: SNNOutput, labels: torch.Tensor, ipd: torch.Tensor, cfg: RunConfig
) -> torch.Tensor:
    """NLL of the log-softmax readout (classification) or MSE on the IPD (regression)."""
    if cfg.model.readout == "regression":
        loss = F.mse_loss(out.readout, ipd.to(out.readout))
    else:
        loss = F.nll_loss(F.log_softmax(out.readout, dim=1), labels.to(out.readout.device))
    reg = cfg.training.regulariser
    if reg.enabled:
        loss = loss + regulariser_loss(
            out.hidden_spikes, reg, cfg.model.n_classes, cfg.stimulus.duration_s
        )
    return loss


@torch.no_grad()
def _evaluate_loss(model: SNN, data: SpikeDataset, cfg: RunConfig, device) -> tuple[float, float]:
    model.eval()
    total, correct, n = 0.0, 0, 0
    for x, y, ipd in data.batches(max(cfg.training.batch_size, 256)):
        out = model(x.to(device))  # bool spikes: the model converts them (cheaply)
        total += float(loss_fn(out, y, ipd, cfg)) * len(y)
        if cfg.model.readout != "regression":
            correct += int((out.readout.argmax(1).cpu() == y).sum())
        n += len(y)
    model.train()
    return total / n, correct / n


@dataclass
class TrainResult:
    model: SNN
    history: list[dict]
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    wall_s: float
    device: str
    recording: SpikeRecorder | None = None  # with training.record_hidden_spikes


def _early_stop(val_losses: list[float], epoch: int, tr) -> bool:
    """Whether to stop after ``epoch`` (1-based), never before ``min_epochs`` epochs and a
    window of ``patience`` validation losses: ``oldest_is_min`` (Dales_law.ipynb) when the
    oldest loss of the window is its minimum; ``mean_at_least`` (the 250 Hz notebook) when the
    window's mean is at least ``early_stopping_level``."""
    if epoch <= tr.min_epochs or len(val_losses) < tr.patience:
        return False
    window = val_losses[-tr.patience :]
    if tr.early_stopping_rule == "mean_at_least":
        return sum(window) / len(window) >= tr.early_stopping_level
    return min(window) == window[0]


def train(
    cfg: RunConfig,
    *,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    datasets: dict[str, SpikeDataset | None] | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    on_batch_end: Callable[[int, SNNOutput, torch.Tensor, torch.Tensor], None] | None = None,
) -> TrainResult:
    """Train the model of ``cfg``; checkpoints to ``checkpoint_path`` after every epoch.

    ``on_batch_end(epoch, out, labels, ipd)`` is called after every optimiser step (epoch
    1-based, ``out`` the batch's forward pass). ``training.record_hidden_spikes`` records the
    hidden spikes of every batch (:class:`~spikeloc.core.recording.SpikeRecorder`, returned as
    ``TrainResult.recording`` and kept across a resume)."""
    configure_runtime(cfg.threads)
    device = resolve_device(cfg.device)
    log.info("device: %s (requested %s)", device, cfg.device)
    tr = cfg.training
    model = build_model(cfg, generator=seeded_generator(cfg.seed, "model")).to(device)
    params = [p for p in (model.W1, model.W2) if p is not None]
    if tr.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=tr.lr)
    else:
        opt = torch.optim.SGD(params, lr=tr.lr)
    g_shuffle = seeded_generator(cfg.seed, "shuffle")
    g_drop = seeded_generator(cfg.seed, "dropout")
    g_data = seeded_generator(cfg.seed, "data")
    data = datasets or make_datasets(cfg, device)
    train_set, val_set = data["train"], data["val"]
    if tr.data == "fresh":
        # the epochs' training sets come from their own stream, apart from the initial set
        g_data = seeded_generator(cfg.seed, "fresh_data")

    history: list[dict] = []
    start_epoch = 0
    best_state, best_epoch, best_val = None, None, math.inf
    chash = config_hash(cfg)
    recorder = SpikeRecorder() if tr.record_hidden_spikes else None
    if resume and checkpoint_path and not Path(checkpoint_path).exists():
        log.info("no checkpoint at %s: starting from epoch 0", checkpoint_path)
    if resume and checkpoint_path and Path(checkpoint_path).exists():
        ck = load_checkpoint(checkpoint_path)
        if ck.get("config_hash") != chash:
            raise ConfigError(
                checkpoint_path,
                "config_hash",
                f"checkpoint was made with config {ck.get('config_hash')}, this run is {chash}; "
                "delete the .partial directory or run without --resume",
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        g_shuffle.set_state(ck["g_shuffle"])
        g_drop.set_state(ck["g_drop"])
        g_data.set_state(ck["g_data"])
        history = list(ck["history"])
        start_epoch = int(ck["epoch"])
        best_epoch, best_val = ck["best_epoch"], ck["best_val"]
        best_state = ck["best_state"]
        if recorder is not None:
            recorder.load_state(ck["recording"])
        log.info("resumed from %s at epoch %d", checkpoint_path, start_epoch)
        if tr.data == "fresh" and start_epoch > 0:
            train_set = None  # regenerated below from the restored stream

    t0 = time.perf_counter()
    stopped = False
    bar = tqdm(
        range(start_epoch, tr.epochs),
        initial=start_epoch,
        total=tr.epochs,
        desc=f"train {cfg.name}",
        unit="epoch",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 10,
    )
    val_losses = [h["val_loss"] for h in history if h.get("val_loss") is not None]
    stopped = bool(history and history[-1].get("stopped_early"))
    for epoch in bar:
        if stopped:
            break
        te = time.perf_counter()
        if tr.data == "fresh":
            train_set = make_dataset(
                tr.n_train,
                cfg.stimulus,
                generator=g_data,
                device=device,
                dtype=_storage_dtype(device),
            )
        model.train()
        loss_sum, correct, n = 0.0, 0, 0
        for x, y, ipd in train_set.batches(tr.batch_size, shuffle=True, generator=g_shuffle):
            # bool spikes go to the model as they are: its input layer converts them in the
            # copy it needs anyway (bool.to(float32) here took 7 ms of a ~12 ms step)
            out = model(x.to(device), dropout_generator=g_drop)
            loss = loss_fn(out, y, ipd, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            if cfg.model.readout != "regression":
                correct += int((out.readout.detach().argmax(1).cpu() == y).sum())
            n += len(y)
            if recorder is not None:
                recorder(epoch + 1, out.hidden_spikes, y, ipd)
            if on_batch_end is not None:
                on_batch_end(epoch + 1, out, y, ipd)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / n,
            "train_accuracy": correct / n if cfg.model.readout != "regression" else None,
            "val_loss": None,
            "val_accuracy": None,
            "seconds": time.perf_counter() - te,
        }
        if val_set is not None:
            vl, va = _evaluate_loss(model, val_set, cfg, device)
            row["val_loss"], row["val_accuracy"] = vl, va
            val_losses.append(vl)
            if vl < best_val:
                best_val, best_epoch = vl, epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if tr.early_stopping and _early_stop(val_losses, epoch + 1, tr):
                stopped = True
        row["stopped_early"] = stopped
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{(row['train_accuracy'] or 0):.3f}")
        if not progress or not sys.stderr.isatty():
            log.info("epoch %d/%d %s", epoch + 1, tr.epochs, _fmt_row(row))
        last = epoch + 1 == tr.epochs or stopped
        if checkpoint_path and ((epoch + 1) % tr.checkpoint_every == 0 or last):
            atomic_torch_save(
                checkpoint_path,
                {
                    "config_hash": chash,
                    "epoch": epoch + 1,
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": opt.state_dict(),
                    "g_shuffle": g_shuffle.get_state(),
                    "g_drop": g_drop.get_state(),
                    "g_data": g_data.get_state(),
                    "history": history,
                    "best_epoch": best_epoch,
                    "best_val": best_val,
                    "best_state": best_state,
                    **({"recording": recorder.state()} if recorder is not None else {}),
                },
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    bar.close()
    if tr.early_stopping and tr.restore_best and best_state is not None:
        # Dales_law.ipynb returns the weights of the best validation epoch (a true copy)
        model.load_state_dict(best_state)
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        epochs_run=len(history),
        stopped_early=stopped,
        wall_s=time.perf_counter() - t0,
        device=str(device),
        recording=recorder,
    )


def check_out_dir(out_dir: str | Path) -> None:
    """Refuse an output path that cannot be a run directory, or that holds what the user owns.

    A run directory is replaced by its rerun; anything else there (a file, a folder that is
    not a run directory, ``.``) is the user's and is refused before training starts."""
    out_dir = Path(out_dir)
    shown = str(out_dir)
    if out_dir.name in ("", ".", "..") or out_dir.resolve() == Path.cwd().resolve():
        raise SpikelocError(f"{shown}: --out: must name a new or run directory, not {shown!r}")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise SpikelocError(f"{shown}: --out: {parent} is not a directory")
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir():
            raise SpikelocError(
                f"{shown}: --out: exists and is not a directory; refusing to replace it"
            )
        entries = {p.name for p in out_dir.iterdir()}
        if entries and "provenance.json" not in entries and "model.pt" not in entries:
            raise SpikelocError(
                f"{shown}: --out: exists and is not a spikeloc run directory "
                "(no model.pt or provenance.json); refusing to replace it"
            )


def _recover_interrupted_rename(out_dir: Path) -> None:
    """A kill between the two renames of :func:`write_run` leaves ``RUN.old`` (the previous
    run): put it back where ``RUN`` is missing, else drop it."""
    old = out_dir.with_name(out_dir.name + ".old")
    if not old.is_dir():
        return
    if out_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        log.info("removed %s, left by an interrupted replace", old)
    else:
        os.replace(old, out_dir)
        log.info("restored %s from %s, left by an interrupted replace", out_dir, old)


def _fmt_row(row: dict) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in row.items()
        if v is not None and k != "epoch"
    )


def _history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    cols = [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
        "stopped_early",
    ]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in cols})
    return buf.getvalue()


def train_run(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    provenance: dict | None = None,
) -> dict:
    """Train, evaluate on the test set and write the run directory atomically; returns metrics.

    ``provenance``: extra entries for the run's ``provenance.json`` (the workflow records the
    fingerprint it checks to decide whether a run is up to date)."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    ckpt = partial / "checkpoint.pt"
    _recover_interrupted_rename(out_dir)
    if partial.exists() and not resume:
        shutil.rmtree(partial)
    if resume and ckpt.exists():
        ck = load_checkpoint(ckpt)  # unreadable: one line naming it, nothing touched
        if ck.get("config_hash") != config_hash(cfg):
            # the checkpoint is only a cache: keep it aside for inspection and start over
            stale = out_dir.with_name(out_dir.name + ".stale")
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(partial, stale)
            log.warning(
                "%s was made with config %s, this run is %s: set aside as %s; "
                "training from epoch 0",
                ckpt,
                ck.get("config_hash"),
                config_hash(cfg),
                stale,
            )
    try:
        partial.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpikelocError(f"{partial}: (directory): cannot create: {exc.strerror}") from None
    remove_temp_files(partial)  # leftovers of writes interrupted by a kill
    started = time.time()
    device = resolve_device(cfg.device)
    configure_runtime(cfg.threads)
    tg = time.perf_counter()
    datasets = make_datasets(cfg, device)
    data_s = time.perf_counter() - tg
    result = train(cfg, checkpoint_path=ckpt, resume=resume, progress=progress, datasets=datasets)
    return write_run(
        cfg,
        result,
        datasets,
        out_dir,
        started_unix=started,
        data_wall_s=data_s,
        provenance=provenance,
    )


def _test_sets_metrics(model, cfg: RunConfig, first, device) -> dict:
    """Accuracy and MAE on each of the run's ``n_test_sets`` test sets (set 0: ``first``'s),
    with their mean and standard error sd / sqrt(n) (numpy's sd, ddof 0, as published)."""
    import numpy as np

    preds = [first] + [
        evaluation.predict(model, make_test_set(cfg, device=device, index=k))
        for k in range(1, cfg.training.n_test_sets)
    ]
    acc = np.array([evaluation.accuracy(p) for p in preds])
    mae = np.array([evaluation.mae_continuous_deg(p) for p in preds])
    n = len(preds)
    return {
        "test_sets_accuracy": acc.tolist(),
        "test_sets_mae_continuous_deg": mae.tolist(),
        "test_sets_accuracy_mean": float(acc.mean()),
        "test_sets_accuracy_sem": float(acc.std() / np.sqrt(n)),
        "test_sets_mae_mean_deg": float(mae.mean()),
        "test_sets_mae_sem_deg": float(mae.std() / np.sqrt(n)),
    }


def write_run(
    cfg: RunConfig,
    result: TrainResult,
    datasets: dict[str, SpikeDataset | None],
    out_dir: str | Path,
    *,
    started_unix: float,
    data_wall_s: float,
    provenance: dict | None = None,
) -> dict:
    """Evaluate a trained model on its test and training sets and write its run directory:
    files into ``<out_dir>.partial/`` (atomically each), then one rename into place. Shared by
    runs trained alone (:func:`train_run`) and as members of an ensemble
    (:mod:`spikeloc.core.ensemble`), so both leave the same files. Returns the metrics."""
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    pred = evaluation.predict(result.model, datasets["test"])
    metrics = evaluation.summarise(pred)
    if cfg.training.n_test_sets > 1:
        metrics.update(_test_sets_metrics(result.model, cfg, pred, datasets["test"].spikes.device))
    train_pred = evaluation.predict(result.model, datasets["train"])
    metrics.update(
        {
            "train_accuracy": evaluation.accuracy(train_pred),
            "train_mae_continuous_deg": evaluation.mae_continuous_deg(train_pred),
            "final_train_loss": result.history[-1]["train_loss"] if result.history else None,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "train_wall_s": result.wall_s,
            "data_wall_s": data_wall_s,
            "device": result.device,
        }
    )
    cfg_dict = cfg.to_dict()
    save_model(partial / "model.pt", result.model, cfg_dict)
    atomic_write_json(partial / "metrics.json", metrics)
    atomic_write_text(partial / "history.csv", _history_csv(result.history))
    atomic_write_text(partial / "config.yaml", yaml.safe_dump(cfg_dict, sort_keys=False))
    atomic_write_json(
        partial / "provenance.json",
        provenance_record(
            config_hash=config_hash(cfg),
            seed=cfg.seed,
            device=result.device,
            started_unix=started_unix,
            finished_unix=time.time(),
            threads=torch.get_num_threads(),
            **(provenance or {}),
        ),
    )
    if result.recording is not None:
        result.recording.save(partial / RECORDING_FILE)
    (partial / "checkpoint.pt").unlink(missing_ok=True)
    remove_temp_files(partial)
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
        os.replace(partial, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, out_dir)
        # RUN.old of an earlier replace killed between its renames (ensemble members too)
        shutil.rmtree(out_dir.with_name(out_dir.name + ".old"), ignore_errors=True)
    return metrics
