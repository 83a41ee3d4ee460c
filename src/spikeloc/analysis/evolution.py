r"""Evolutionary optimisation of the tutorial network's weights (CMA-ES), beside surrogate
gradients on the same data.

The tutorial lists evolution strategies among the ways to train a spiking network on a hard
task, with the verdict "computationally expensive". This module measures that on the
tutorial's task: the 200 -> ``n_hidden`` LIF -> 12 network of preset ``tutorial`` (20 Hz tone,
tau 20 ms, mean-membrane readout), its stimulus with one phase offset per *sample*
(``stimulus.phase_offset: per_sample``) so that test accuracy measures localisation.

**CMA-ES** (:func:`train_cmaes`, a task run). The search space is every weight of the network,
``theta = (vec W1, vec W2)`` (``n = 200 H + 12 H`` numbers: 2120 for 10 hidden neurons, 6360
for the tutorial's 30), started at the tutorial's initial weights of the run's seed with step
size ``sigma0``. Each generation ``g`` the strategy (``cma`` 4.5.0) samples ``lambda`` (the
population size) candidates ``theta_k ~ m_g + sigma_g N(0, C_g)``; all ``lambda`` networks are
simulated on one minibatch of ``batch_size`` training samples *as one batched ensemble* (their
input weights side by side in one input-layer call, their rows stacked in one call of the fused
LIF kernel, their readouts one batched product: :func:`population_readout`, the layout of
:mod:`spikeloc.core.ensemble`), and their fitness is the minibatch's mean cross-entropy of the
softmax readout (``fitness: cross_entropy``) or its error rate (``fitness: error``); ``tell``
then updates ``m``, ``sigma`` and ``C``. ``method: sep`` restricts ``C`` to its diagonal
(sep-CMA-ES, Ros and Hansen 2008; O(n) per sample), ``full`` keeps the full covariance
(O(n^2) memory and an O(n^3) eigendecomposition: measured too slow at n = 2120 on the
project's 2-core CPU, less than 50 generations in 200 s, so the paper runs use ``sep``). The
network a generation reports is the distribution mean ``m_g``.

**Surrogate gradients** (:func:`train_surrogate`, a task run): the same network, data and
seed trained by :func:`spikeloc.core.training.train` (Adam, sigmoid surrogate), the
project's ordinary training; its test accuracy after each epoch comes from retraining the same
run for 1, 2, ... epochs (the training is deterministic, and the code checks that the
shorter runs' losses equal the full run's), and its wall time from the full run's per-epoch
training time.

Both record a learning curve against *wall time* (training only: the ask/tell and forward
passes, or the epochs' batches; data generation and the periodic test evaluations are not
counted) and against *sample evaluations* (one network simulated on one sample: ``lambda x
batch_size`` per generation; ``n_train`` per epoch, each also with its backward pass).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import pickle
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc import engine
from spikeloc.analysis.task_params import check_mapping
from spikeloc.core.config import RunConfig, config_from_dict
from spikeloc.core.models import SNN, build_model
from spikeloc.core.stimuli import SpikeDataset, continuise
from spikeloc.core.training import make_datasets, seeded_generator, train
from spikeloc.engine.layers import LIFWithReadout, TimeWeightedSum, backend_for, li_mean_weights
from spikeloc.engine.runtime import configure_runtime
from spikeloc.errors import ConfigError
from spikeloc.io import atomic_torch_save, atomic_write_bytes, atomic_write_text

__all__ = [
    "CMAES_DEFAULTS",
    "SURROGATE_DEFAULTS",
    "check_params",
    "task_config",
    "population_readout",
    "network_readout",
    "test_metrics",
    "train_cmaes",
    "train_surrogate",
    "read_curve",
    "network_from_run",
    "evolved_localiser",
]

#: the stimulus of these modules: the tutorial's, one phase offset per sample
TASK_STIMULUS: dict[str, Any] = {"phase_offset": "per_sample"}

CMAES_DEFAULTS: dict[str, Any] = {
    "n_hidden": 10,
    "method": "sep",  # sep (diagonal covariance) | full
    "popsize": 32,
    "sigma0": 0.1,
    "generations": 300,
    "batch_size": 128,
    "fitness": "cross_entropy",  # cross_entropy | error
    "eval_every": 25,
    "n_train": 4096,
    "n_test": 2048,
    "stimulus": TASK_STIMULUS,
}

SURROGATE_DEFAULTS: dict[str, Any] = {
    "n_hidden": 30,
    "epochs": 10,
    "lr": 0.01,
    "batch_size": 64,
    # epochs after which the test accuracy is measured (besides 0 and the last): each is a
    # retraining of the run for that many epochs
    "curve_epochs": [1, 2, 3, 5],
    "n_train": 4096,
    "n_test": 2048,
    "stimulus": TASK_STIMULUS,
}

_CHOICES = {"method": ("sep", "full"), "fitness": ("cross_entropy", "error")}
_POSITIVE_INT = {
    "n_hidden",
    "popsize",
    "generations",
    "batch_size",
    "eval_every",
    "n_train",
    "n_test",
    "epochs",
}
_POSITIVE_NUM = {"sigma0", "lr"}


def check_params(params: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` over ``defaults``, every key and value checked: an unknown key, a wrong type
    or an out-of-range value raises :class:`~spikeloc.errors.ConfigError` naming the field
    (relative to the run's ``params``)."""
    return check_mapping(
        params, defaults, choices=_CHOICES, positive=_POSITIVE_INT | _POSITIVE_NUM
    )


def task_config(p: Mapping[str, Any], seed: int, **training: Any) -> RunConfig:
    """The run config of these tasks: preset ``tutorial``, the ``stimulus`` overrides of
    ``p`` (default ``phase_offset: per_sample``), ``n_hidden``, ``n_train``/``n_test`` and any
    further ``training`` fields; a bad value names its field of ``params``."""
    data = {
        "preset": "tutorial",
        "seed": int(seed),
        "device": "cpu",
        "stimulus": dict(p.get("stimulus", TASK_STIMULUS)),
        "model": {"n_hidden": p["n_hidden"]},
        "training": {"n_train": p["n_train"], "n_test": p["n_test"], **training},
    }
    try:
        return config_from_dict(data, "<params>")
    except ConfigError as exc:
        field = exc.field
        for block in ("model.", "training."):
            if field.startswith(block):
                field = field[len(block) :]
        raise ConfigError(None, field, exc.problem) from None


# ------------------------------------------------------------------ the batched population


def _hidden_spec(cfg: RunConfig) -> tuple[engine.LIFSpec, torch.Tensor]:
    probe = SNN(cfg.model, cfg.stimulus.dt_s)
    spec = engine.LIFSpec.from_params(probe.hidden_params)
    alpha = math.exp(-cfg.stimulus.dt_s / cfg.model.tau_output_s)
    c = li_mean_weights(cfg.stimulus.n_steps, alpha, cfg.model.update_order)
    return spec, c


@torch.no_grad()
def population_readout(
    spikes: torch.Tensor, W1: torch.Tensor, W2: torch.Tensor, cfg: RunConfig
) -> torch.Tensor:
    """Mean-membrane readouts ``(P, B, n_classes)`` of ``P`` networks of ``cfg``'s architecture
    with weights ``W1`` (P, n_in, H) and ``W2`` (P, H, n_out), all on the same input ``spikes``
    (B, T, n_in), in one pass: one input-layer call for ``x @ [W1_1 | ... | W1_P]``, one fused
    LIF call with the members' rows stacked (``P * B`` rows, independent), one batched product
    for the readouts. Member ``k``'s values are those of ``SNN`` with its weights (to float
    rounding of the input layer's summation order)."""
    P, n_in, H = W1.shape
    B, T = spikes.shape[0], spikes.shape[1]
    spec, c = _hidden_spec(cfg)
    w = W1.permute(1, 0, 2).reshape(n_in, P * H)
    h = engine.SpikeInput(spikes, w).currents(pad=False)  # (T, B, P * H)
    h = h.reshape(T, B, P, H).permute(0, 2, 1, 3).reshape(T, P * B, H)  # member-major rows
    c = c.to(dtype=h.dtype, device=h.device)
    if backend_for(h.device, h.dtype) == "numba":
        _, r = LIFWithReadout.apply(h, c, spec, None)  # r = sum_t c_t s_t, (P * B, H)
    else:
        s = engine.lif_sequence(h, spec)
        r = TimeWeightedSum.apply(c, s.transpose(0, 1))
    return torch.bmm(r.reshape(P, B, H), W2.to(r.dtype))


@torch.no_grad()
def network_readout(
    spikes: torch.Tensor, W1: torch.Tensor, W2: torch.Tensor, cfg: RunConfig, batch: int = 1024
) -> torch.Tensor:
    """Readout (n, n_classes) of one network over many samples, in batches."""
    outs = [
        population_readout(spikes[i : i + batch], W1[None], W2[None], cfg)[0]
        for i in range(0, spikes.shape[0], batch)
    ]
    return torch.cat(outs)


def test_metrics(readout: torch.Tensor, data: SpikeDataset) -> dict[str, float]:
    """Accuracy and continuous MAE (deg, true IPD to the estimated class's midpoint)."""
    pred = readout.argmax(1).cpu()
    est = continuise(pred, data.config.n_classes)
    return {
        "accuracy": float((pred == data.labels).double().mean()),
        "mae_deg": float((data.ipd.double() - est).abs().mean() * 180 / math.pi),
    }


# ------------------------------------------------------------------ CMA-ES


def _flat_init(cfg: RunConfig, seed: int) -> np.ndarray:
    model = build_model(cfg, generator=seeded_generator(seed, "model"))
    return (
        torch.cat([model.W1.detach().reshape(-1), model.W2.detach().reshape(-1)]).double().numpy()
    )


def _unpack(X: np.ndarray, cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    m = cfg.model
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32).reshape(
        -1, (m.n_inputs + m.n_classes) * m.n_hidden
    )
    k = m.n_inputs * m.n_hidden
    return (
        X[:, :k].reshape(-1, m.n_inputs, m.n_hidden),
        X[:, k:].reshape(-1, m.n_hidden, m.n_classes),
    )


def _fitness(values: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    P, B, C = values.shape
    if kind == "error":
        return (values.argmax(2) != labels[None]).double().mean(1)
    nll = F.cross_entropy(values.reshape(P * B, C), labels.repeat(P), reduction="none")
    return nll.view(P, B).double().mean(1)


def _curve_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def read_curve(run_dir: str | Path) -> list[dict[str, float]]:
    """The learning curve ``curve.csv`` a task run of these modules wrote (numbers)."""
    with open(Path(run_dir) / "curve.csv", newline="") as f:
        return [
            {k: (float(v) if v != "" else math.nan) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def _curve_metrics(rows: list[dict]) -> dict[str, list]:
    return {f"curve_{k}": [r[k] for r in rows] for k in rows[0]}


def train_cmaes(
    params: dict,
    *,
    seed: int,
    out_dir: Path,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Evolve the network's weights with CMA-ES (see the module docstring); one task run.

    Writes ``curve.csv`` (one row per evaluation point: generation, fitness evaluations, sample
    evaluations, training wall time, test accuracy and MAE of the distribution mean, the
    generation's best and mean fitness, sigma), ``weights.pt`` (``W1``, ``W2`` of the final mean)
    and, every ``eval_every`` generations, ``checkpoint.pkl`` (the strategy, the minibatch
    generator and the curve: a killed run resumes there). Returns the metrics.
    """
    import cma

    p = check_params(params, CMAES_DEFAULTS)
    cfg = task_config(p, seed)
    if device not in ("cpu", "auto", None):
        raise ConfigError(None, "device", "the CMA-ES task runs on the CPU")
    configure_runtime(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make_datasets(cfg, torch.device("cpu"))
    train_set, test_set = data["train"], data["test"]
    P, B, G = p["popsize"], p["batch_size"], p["generations"]
    ck_path = out_dir / "checkpoint.pkl"
    if ck_path.exists():
        ck = pickle.loads(ck_path.read_bytes())
        es, rows, elapsed, gen0 = ck["es"], ck["rows"], ck["elapsed"], ck["generation"]
        g_batch = torch.Generator()
        g_batch.set_state(ck["g_batch"])
    else:
        x0 = _flat_init(cfg, seed)
        opts = {
            "popsize": P,
            "CMA_diagonal": p["method"] == "sep",
            "seed": int(seed) + 1,  # cma: seed 0 would mean "from the clock"
            "verbose": -9,
            "maxiter": G,
            "tolfun": 0,
            "tolflatfitness": 10**9,
            "tolstagnation": 10**9,
        }
        es = cma.CMAEvolutionStrategy(x0, p["sigma0"], opts)
        rows, elapsed, gen0 = [], 0.0, 0
        g_batch = seeded_generator(seed, "shuffle")
        # warm-up (kernel compilation, caches) outside the clock
        population_readout(train_set.spikes[:2], *_unpack(np.stack([x0, x0]), cfg), cfg)

    def evaluate(gen: int, best: float | None, mean: float | None) -> None:
        W1, W2 = _unpack(es.mean, cfg)
        m = test_metrics(network_readout(test_set.spikes, W1[0], W2[0], cfg), test_set)
        rows.append(
            {
                "generation": gen,
                "evaluations": gen * P,
                "sample_evaluations": gen * P * B,
                "wall_s": elapsed,
                "test_accuracy": m["accuracy"],
                "test_mae_deg": m["mae_deg"],
                "best_fitness": best,
                "mean_fitness": mean,
                "sigma": float(es.sigma),
            }
        )

    if gen0 == 0 and not rows:
        evaluate(0, None, None)
    n = len(train_set)
    for gen in range(gen0 + 1, G + 1):
        t0 = time.perf_counter()
        idx = torch.randint(0, n, (B,), generator=g_batch)
        X = es.ask()
        W1, W2 = _unpack(np.stack(X), cfg)
        values = population_readout(train_set.spikes[idx], W1, W2, cfg)
        fit = _fitness(values, train_set.labels[idx], p["fitness"])
        es.tell(X, fit.tolist())
        elapsed += time.perf_counter() - t0
        if gen % p["eval_every"] == 0 or gen == G:
            evaluate(gen, float(fit.min()), float(fit.mean()))
            if gen < G:
                atomic_write_bytes(
                    ck_path,
                    pickle.dumps(
                        {
                            "es": es,
                            "rows": rows,
                            "elapsed": elapsed,
                            "generation": gen,
                            "g_batch": g_batch.get_state(),
                        }
                    ),
                )
            if progress:
                r = rows[-1]
                print(
                    f"generation {gen}/{G}: {r['wall_s']:.1f} s, test accuracy "
                    f"{r['test_accuracy']:.3f}, best fitness {r['best_fitness']:.3f}",
                    flush=True,
                )
    W1, W2 = _unpack(es.mean, cfg)
    atomic_torch_save(out_dir / "weights.pt", {"W1": W1[0].clone(), "W2": W2[0].clone()})
    atomic_write_text(out_dir / "curve.csv", _curve_csv(rows))
    ck_path.unlink(missing_ok=True)
    last = rows[-1]
    return {
        "accuracy": last["test_accuracy"],
        "mae_continuous_deg": last["test_mae_deg"],
        "chance": 1 / cfg.model.n_classes,
        "train_wall_s": last["wall_s"],
        "n_parameters": int(es.N),
        "generations": G,
        "popsize": P,
        "evaluations": G * P,
        "sample_evaluations": G * P * B,
        "method": p["method"],
        "final_sigma": float(es.sigma),
        **_curve_metrics(rows),
    }


# ------------------------------------------------------------------ surrogate gradients


def train_surrogate(
    params: dict,
    *,
    seed: int,
    out_dir: Path,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Surrogate-gradient training of the same network on the same data and seed (the
    project's :func:`spikeloc.core.training.train`), with its test accuracy after every epoch;
    one task run. Writes ``curve.csv`` (epoch, sample evaluations, wall time, test accuracy and
    MAE) and ``weights.pt``; returns the metrics."""
    p = check_params(params, SURROGATE_DEFAULTS)
    cfg = task_config(p, seed, epochs=p["epochs"], lr=p["lr"], batch_size=p["batch_size"])
    configure_runtime(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make_datasets(cfg, torch.device("cpu"))
    test_set = data["test"]
    # warm-up (kernel compilation) outside the clock: one batch forward and backward
    warm = build_model(cfg)
    warm(data["train"].spikes[:8]).readout.sum().backward()
    full = train(cfg, progress=progress, datasets=data)
    wall = np.cumsum([0.0] + [h["seconds"] for h in full.history])
    rows = []
    E = cfg.training.epochs
    for epoch in sorted({0, E} | {e for e in p["curve_epochs"] if e < E}):
        if epoch == E:
            model = full.model
        else:
            # the same run for fewer epochs: deterministic, so its weights are the full run's
            # after `epoch` epochs (its losses are checked against the full run's)
            short_cfg = dataclasses.replace(
                cfg, training=dataclasses.replace(cfg.training, epochs=max(epoch, 1))
            )
            if epoch == 0:
                model = build_model(cfg, generator=seeded_generator(seed, "model"))
            else:
                short = train(short_cfg, progress=False, datasets=data)
                for a, b in zip(short.history, full.history, strict=False):
                    if a["train_loss"] != b["train_loss"]:
                        raise RuntimeError(
                            f"surrogate-gradient training is not deterministic: epoch "
                            f"{a['epoch']} loss {a['train_loss']} != {b['train_loss']}"
                        )
                model = short.model
        W1, W2 = model.effective_weights()
        m = test_metrics(network_readout(test_set.spikes, W1.detach(), W2.detach(), cfg), test_set)
        rows.append(
            {
                "epoch": epoch,
                "sample_evaluations": epoch * cfg.training.n_train,
                "wall_s": float(wall[epoch]),
                "test_accuracy": m["accuracy"],
                "test_mae_deg": m["mae_deg"],
                "train_loss": full.history[epoch - 1]["train_loss"] if epoch else None,
            }
        )
    W1, W2 = full.model.effective_weights()
    atomic_torch_save(
        out_dir / "weights.pt", {"W1": W1.detach().clone(), "W2": W2.detach().clone()}
    )
    atomic_write_text(out_dir / "curve.csv", _curve_csv(rows))
    last = rows[-1]
    return {
        "accuracy": last["test_accuracy"],
        "mae_continuous_deg": last["test_mae_deg"],
        "chance": 1 / cfg.model.n_classes,
        "train_wall_s": last["wall_s"],
        "n_parameters": int(W1.numel() + W2.numel()),
        "epochs": cfg.training.epochs,
        "sample_evaluations": last["sample_evaluations"],
        **_curve_metrics(rows),
    }


# ------------------------------------------------------------------ leaderboard


def network_from_run(
    run: Any, defaults: Mapping[str, Any] = CMAES_DEFAULTS
) -> tuple[SNN, RunConfig]:
    """The trained network of a task run of this module (``run``: a ``TaskRun`` with ``path``,
    ``params`` and ``seed``): an :class:`SNN` of the run's config with its ``weights.pt``."""
    p = check_params(run.params, defaults)
    cfg = task_config(p, run.seed)
    model = build_model(cfg)
    w = torch.load(Path(run.path) / "weights.pt", map_location="cpu", weights_only=True)
    with torch.no_grad():
        model.W1.copy_(w["W1"])
        model.W2.copy_(w["W2"])
    model.eval()
    return model, cfg


def evolved_localiser(options: dict, run: Any):
    """Leaderboard factory for a run of :func:`train_cmaes` (``options: {kind: surrogate}``
    for one of :func:`train_surrogate`): the trained network, evaluated as the core's networks
    are (:func:`spikeloc.analysis.leaderboard.trained_network`)."""
    from spikeloc.analysis.leaderboard import trained_network

    if run is None:
        raise ValueError("evolved_localiser needs a task run of its module")
    kind = (options or {}).get("kind", "cmaes")
    defaults = SURROGATE_DEFAULTS if kind == "surrogate" else CMAES_DEFAULTS
    model, cfg = network_from_run(run, defaults)
    return trained_network({}, (model, cfg, dict(run.metrics)))
