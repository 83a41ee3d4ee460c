r"""A spiking reservoir with a trained linear readout (liquid-state / echo-state machine).

The tutorial's second part lists reservoir computing among the alternatives to surrogate
gradients ("performance limited in practice?"). Here the hidden layer is a *fixed* random
recurrent network of the core's LIF neurons, and only a linear readout of its activity is
trained, in closed form by ridge regression.

**Reservoir** (``N`` LIF neurons, :func:`spikeloc.core.neurons.lif_step`: ``dt`` = 1 ms, the
published update order, reset to zero, threshold ``theta`` = 1). With input spikes ``x_t``
(200 fibres), ``alpha = exp(-dt/tau)``, ``v_0 = 0``, ``s_0 = 0``:

.. math::

    h_t &= x_t W_{in} + s_t W_{rec} \\
    s_{t+1} &= H(v_t - \theta) \\
    v_{t+1} &= (\alpha v_t + h_t)\,(1 - s_t)

* ``W_in`` (200 x N): ``input_scaling * U(-b, b)`` with ``b = 1/sqrt(12)``, the bound of the
  tutorial network's initial input weights (model.init = starting_notebook), so a reservoir
  with ``input_scaling = 1`` and no recurrence is the tutorial's untrained hidden layer.
* ``W_rec`` (N x N): each connection present with probability ``connectivity`` (no
  self-connections), weights ``N(0, 1)``, the matrix then scaled so that its spectral radius
  (largest ``|eigenvalue|``) is ``spectral_radius`` (0: no recurrence).

Both are drawn once from the run's seed (stream ``model``) and never trained.

**Readout**: features ``z`` per sample, either the spike count of every neuron over the
stimulus (``features: counts``; the tutorial's readout, the time-mean of a leaky integrator
of the hidden spikes, is also a linear function of nearly these counts) or the counts in
``n_bins`` equal time windows (``binned``); standardised on the training set, then a one-vs-all
ridge classifier (:class:`sklearn.linear_model.RidgeClassifierCV`: targets +-1 per class,
``min ||Z w - Y||^2 + a ||w||^2`` solved in closed form, the penalty ``a`` chosen from
``alphas`` by efficient leave-one-out cross-validation on the training set); the class
estimate is the argmax of the 12 outputs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeloc.core.config import RunConfig, config_from_dict
from spikeloc.core.models import init_bounds
from spikeloc.core.neurons import LIFParameters, lif_initial_state, lif_step
from spikeloc.core.stimuli import SpikeDataset, continuise, generate_spikes
from spikeloc.core.training import make_datasets, seeded_generator
from spikeloc.errors import ConfigError, SpikelocError
from spikeloc.io import atomic_write_bytes

__all__ = [
    "DEFAULTS",
    "Reservoir",
    "make_reservoir",
    "simulate",
    "features",
    "run_config",
    "train_reservoir",
    "load_reservoir",
    "leaderboard_localiser",
]

DEFAULTS: dict[str, Any] = {
    "n_reservoir": 100,
    "spectral_radius": 0.9,
    "input_scaling": 1.0,
    "connectivity": 0.1,
    "tau_ms": 20.0,
    "features": "counts",
    "n_bins": 5,
    # ridge penalties tried (leave-one-out); with thousands of correlated counts the best
    # penalty is large, so the grid reaches 1e6
    "alphas": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0],
    "n_train": 4096,
    "n_test": 2048,
    "batch_size": 512,
    "phase_offset": "per_sample",
}
_FEATURES = ("counts", "binned")


def _number(
    p: dict,
    key: str,
    *,
    positive: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> float:
    v = p[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ConfigError("params", key, f"must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise ConfigError("params", key, f"must be > 0, got {v!r}")
    if low is not None and v < low:
        raise ConfigError("params", key, f"must be >= {low:g}, got {v!r}")
    if high is not None and v > high:
        raise ConfigError("params", key, f"must be <= {high:g}, got {v!r}")
    return float(v)


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
    for key in ("n_reservoir", "n_train", "n_test", "batch_size", "n_bins"):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError("params", key, f"must be a positive integer, got {v!r}")
    _number(p, "spectral_radius", low=0)
    _number(p, "input_scaling", low=0)
    _number(p, "connectivity", low=0, high=1)
    _number(p, "tau_ms", positive=True)
    if p["features"] not in _FEATURES:
        raise ConfigError(
            "params", "features", f"must be one of {list(_FEATURES)}, got {p['features']!r}"
        )
    alphas = p["alphas"]
    if not isinstance(alphas, list) or not alphas:
        raise ConfigError(
            "params", "alphas", f"must be a non-empty list of numbers > 0, got {alphas!r}"
        )
    for i, a in enumerate(alphas):
        if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a) or a <= 0:
            raise ConfigError("params", f"alphas[{i}]", f"must be a number > 0, got {a!r}")
    return p


def run_config(params: dict, seed: int) -> RunConfig:
    """The core run config whose stimulus and datasets the task uses: preset ``tutorial``
    with the task's phase offset and sizes (the same samples as an SNN run of that preset,
    overrides and seed)."""
    p = _check_params(params)
    data = {
        "preset": "tutorial",
        "seed": int(seed),
        "stimulus": {"phase_offset": p["phase_offset"]},
        "training": {"n_train": p["n_train"], "n_test": p["n_test"], "n_val": 0},
    }
    try:
        return config_from_dict(data, "<params>")
    except ConfigError as exc:
        raise ConfigError("params", exc.field.rsplit(".", 1)[-1], exc.problem) from None


# ------------------------------------------------------------------------- the reservoir


@dataclasses.dataclass
class Reservoir:
    """Fixed weights and LIF parameters of a reservoir."""

    W_in: torch.Tensor  # (n_inputs, N)
    W_rec: torch.Tensor  # (N, N)
    lif: LIFParameters

    @property
    def size(self) -> int:
        return int(self.W_rec.shape[0])


def make_reservoir(p: dict, cfg: RunConfig, generator: torch.Generator) -> Reservoir:
    """Draw ``W_in`` and ``W_rec`` (module docstring) from ``generator``; ``p``: checked params."""
    n, n_in = p["n_reservoir"], cfg.model.n_inputs
    b, _ = init_bounds(cfg.model)
    w_in = (torch.rand(n_in, n, generator=generator, dtype=torch.float64) * 2 - 1) * b
    w_in = w_in * p["input_scaling"]
    mask = torch.rand(n, n, generator=generator, dtype=torch.float64) < p["connectivity"]
    mask.fill_diagonal_(False)
    w_rec = torch.randn(n, n, generator=generator, dtype=torch.float64) * mask
    radius = float(torch.linalg.eigvals(w_rec).abs().max()) if n > 1 else 0.0
    if radius > 0 and p["spectral_radius"] > 0:
        w_rec = w_rec * (p["spectral_radius"] / radius)
    else:
        w_rec = torch.zeros_like(w_rec)
    lif = LIFParameters(
        tau_s=p["tau_ms"] * 1e-3,
        dt_s=cfg.stimulus.dt_s,
        threshold=cfg.model.threshold,
        reset=cfg.model.reset,
        update_order=cfg.model.update_order,
    )
    return Reservoir(w_in.float(), w_rec.float(), lif)


@torch.no_grad()
def simulate(res: Reservoir, x: torch.Tensor) -> torch.Tensor:
    """Reservoir spikes (batch, T, N) for input spikes ``x`` (batch, T, n_inputs): the core's
    LIF step with the recurrent current of the previous step's spikes."""
    x = x.to(res.W_in.dtype)
    batch, T, _ = x.shape
    h_in = x @ res.W_in
    state = lif_initial_state((batch, res.size), res.lif, dtype=h_in.dtype)
    if res.lif.update_order == "published":
        rec = [state.s]
        for t in range(T - 1):
            s, state = lif_step(h_in[:, t] + state.s @ res.W_rec, state, res.lif)
            rec.append(s)
    else:
        rec = []
        for t in range(T):
            s, state = lif_step(h_in[:, t] + state.s @ res.W_rec, state, res.lif)
            rec.append(s)
    return torch.stack(rec, dim=1)


def features(spikes: torch.Tensor, kind: str = "counts", n_bins: int = 5) -> np.ndarray:
    """Readout features of reservoir spikes (batch, T, N): counts (batch, N), or counts in
    ``n_bins`` windows (batch, N * n_bins; window k is steps ``floor(k T / n_bins)`` to
    ``floor((k + 1) T / n_bins) - 1``)."""
    if kind == "counts":
        return spikes.sum(1).double().numpy()
    if kind == "binned":
        T = spikes.shape[1]
        edges = [int(k * T // n_bins) for k in range(n_bins + 1)]
        parts = [spikes[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        return torch.cat(parts, dim=1).double().numpy()
    raise ValueError(f"unknown features {kind!r}")


def _dataset_features(res: Reservoir, data: SpikeDataset, p: dict) -> tuple[np.ndarray, float]:
    """Features of every sample of ``data`` and the mean reservoir spikes per sample."""
    out, spikes = [], 0.0
    for x, _, _ in data.batches(p["batch_size"]):
        s = simulate(res, x)
        spikes += float(s.sum())
        out.append(features(s, p["features"], p["n_bins"]))
    return np.concatenate(out), spikes / len(data)


# ------------------------------------------------------------------------- the task


def train_reservoir(
    params: dict,
    *,
    seed: int,
    out_dir: Path,
    device: str | None = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Build one reservoir, fit its ridge readout, test it (the task of this module's runs).

    Runs on the CPU (``device`` is accepted and recorded; the simulation is small matrix
    products). Writes ``out_dir/reservoir.npz`` (weights, LIF parameters and the fitted
    readout: everything :func:`load_reservoir` needs). Returns the run's metrics: test and
    training accuracy, MAE, the chosen ridge penalty, firing statistics, wall times.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    p = _check_params(params)
    cfg = run_config(p, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    data = make_datasets(cfg, torch.device("cpu"))
    data_wall = time.perf_counter() - t0
    res = make_reservoir(p, cfg, seeded_generator(seed, "model"))
    t0 = time.perf_counter()
    z_train, spk_train = _dataset_features(res, data["train"], p)
    sim_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(z_train)
    clf = RidgeClassifierCV(alphas=[float(a) for a in p["alphas"]])
    clf.fit(scaler.transform(z_train), data["train"].labels.numpy())
    fit_wall = time.perf_counter() - t0
    if progress:
        print(
            f"reservoir N={res.size} seed {seed}: simulated {len(data['train'])} samples in "
            f"{sim_wall:.1f} s, ridge fit {fit_wall:.2f} s (alpha {clf.alpha_:g})",
            flush=True,
        )
    t0 = time.perf_counter()
    z_test, spk_test = _dataset_features(res, data["test"], p)
    test_wall = time.perf_counter() - t0
    test, train = data["test"], data["train"]
    pred = clf.predict(scaler.transform(z_test))
    pred_train = clf.predict(scaler.transform(z_train))
    est = continuise(torch.as_tensor(pred), cfg.stimulus.n_classes)
    mae = math.degrees(float((est - test.ipd.double()).abs().mean()))
    counts_test = z_test if p["features"] == "counts" else None
    silent = float((counts_test.sum(0) == 0).mean()) if counts_test is not None else float("nan")
    save_reservoir(out_dir / "reservoir.npz", res, scaler, clf, p)
    n_features = int(z_train.shape[1])
    return {
        "accuracy": float((pred == test.labels.numpy()).mean()),
        "train_accuracy": float((pred_train == train.labels.numpy()).mean()),
        "mae_deg": mae,
        "chance": 1.0 / cfg.model.n_classes,
        "ridge_alpha": float(clf.alpha_),
        "n_features": n_features,
        "n_parameters": int(n_features * len(clf.classes_) + len(clf.classes_)),
        "spikes_per_sample": spk_test,
        "rate_hz": spk_test / (res.size * cfg.stimulus.duration_s),
        "silent_fraction": silent,
        "train_spikes_per_sample": spk_train,
        "data_wall_s": data_wall,
        "simulate_train_wall_s": sim_wall,
        "fit_wall_s": fit_wall,
        "test_wall_s": test_wall,
        "train_wall_s": sim_wall + fit_wall,
        "device": "cpu",
    }


def save_reservoir(path: Path, res: Reservoir, scaler: Any, clf: Any, p: dict) -> None:
    """Everything :func:`load_reservoir` needs, as one ``.npz`` (written atomically)."""
    import io

    buf = io.BytesIO()
    np.savez(
        buf,
        W_in=res.W_in.numpy(),
        W_rec=res.W_rec.numpy(),
        lif=np.array([res.lif.tau_s, res.lif.dt_s, res.lif.threshold]),
        reset=np.array(res.lif.reset),
        update_order=np.array(res.lif.update_order),
        scaler_mean=scaler.mean_,
        scaler_scale=scaler.scale_,
        coef=clf.coef_,
        intercept=clf.intercept_,
        classes=clf.classes_,
        features=np.array(p["features"]),
        n_bins=np.array(p["n_bins"]),
    )
    atomic_write_bytes(path, buf.getvalue())


@dataclasses.dataclass
class TrainedReservoir:
    """A reservoir with its fitted readout, loaded from ``reservoir.npz``."""

    reservoir: Reservoir
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    features: str
    n_bins: int

    def predict(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(class per sample, reservoir spikes per sample)`` for input spikes ``x``."""
        s = simulate(self.reservoir, x)
        z = (features(s, self.features, self.n_bins) - self.mean) / self.scale
        scores = z @ self.coef.T + self.intercept
        return self.classes[scores.argmax(1)], s.sum((1, 2)).double().numpy()


def load_reservoir(path: str | Path) -> TrainedReservoir:
    path = Path(path)
    if not path.is_file():
        raise SpikelocError(f"{path}: no such file; train the reservoir run first")
    with np.load(path) as f:
        tau, dt, thr = (float(v) for v in f["lif"])
        lif = LIFParameters(
            tau_s=tau,
            dt_s=dt,
            threshold=thr,
            reset=str(f["reset"]),
            update_order=str(f["update_order"]),
        )
        res = Reservoir(torch.from_numpy(f["W_in"]), torch.from_numpy(f["W_rec"]), lif)
        return TrainedReservoir(
            res,
            f["scaler_mean"],
            f["scaler_scale"],
            f["coef"],
            f["intercept"],
            f["classes"],
            str(f["features"]),
            int(f["n_bins"]),
        )


# ------------------------------------------------------------------------- leaderboard


@dataclasses.dataclass
class _ReservoirLocaliser:
    trained: TrainedReservoir
    cfg: RunConfig
    n_parameters: int
    training_time_s: float

    @property
    def stimulus(self) -> str:
        s = self.cfg.stimulus
        return (
            f"2 x {s.anf_per_ear} Poisson fibres, {s.frequency_hz:g} Hz, {s.duration_s:g} s, "
            f"phase {s.phase_offset.replace('_', ' ')}"
        )

    def localise(self, ipds_rad, seed):
        gen = torch.Generator().manual_seed(int(seed))
        x = generate_spikes(
            torch.as_tensor(ipds_rad, dtype=torch.float64), self.cfg.stimulus, generator=gen
        )
        cls, spikes = self.trained.predict(x)
        est = continuise(torch.as_tensor(cls), self.cfg.stimulus.n_classes)
        return est.numpy(), spikes


def leaderboard_localiser(options: dict, run: Any) -> _ReservoirLocaliser:
    """Leaderboard factory (no options): the reservoir and readout of the entry's task run."""
    if run is None:
        raise SpikelocError("reservoir leaderboard entry: needs a run of its module")
    cfg = run_config(dict(run.params), int(run.seed))
    trained = load_reservoir(Path(run.path) / "reservoir.npz")
    metrics = dict(getattr(run, "metrics", {}) or {})
    n_par = int(trained.coef.size + trained.intercept.size)
    return _ReservoirLocaliser(trained, cfg, n_par, float(metrics.get("train_wall_s", math.nan)))
