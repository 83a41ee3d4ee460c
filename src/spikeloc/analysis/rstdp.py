r"""Reward-modulated STDP: a local three-factor learning rule on the tutorial's task, no
backpropagation.

The tutorial names the biological rules, STDP and reward-modulated plasticity, with the verdict
"none of these work very well for hard tasks". This module trains a spiking network on the
tutorial's localisation task with such a rule and records its accuracy over training.

**Network.** The tutorial's architecture (preset ``tutorial``: 200 inputs, 20 Hz tone,
tau 20 ms, reset to zero, threshold 1), ``n_hidden`` LIF neurons and 12 *spiking* output
neurons (the core's ``readout: spike_count`` network, simulated by the fused engine). The
decision is the output neuron with the most spikes in the 100 ms sample, ties going to the
earliest first spike (then the lowest index); when no output neuron spikes, a random guess.
The stimulus has one phase offset per sample.

**Rule** (:func:`eligibility`, :func:`rstdp_update`). For a synapse from presynaptic neuron
``i`` (spike train ``s_i(t)``, t = 0 .. T-1 time steps of dt) to postsynaptic ``j``, with the
traces (each spike included at its own step)

.. math::

    x_i(t) = \sum_{t' \le t} \kappa_+^{\,t - t'} s_i(t'), \qquad
    y_j(t) = \sum_{t' \le t} \kappa_-^{\,t - t'} s_j(t'), \qquad
    \kappa_\pm = e^{-dt/\tau_\pm},

the STDP term of step ``t`` pairs each postsynaptic spike with the earlier and simultaneous
presynaptic spikes (potentiation) and each presynaptic spike with the strictly earlier
postsynaptic ones (depression), and the eligibility trace of the sample is their sum, decayed
to the end of the sample where the reward arrives:

.. math::

    e_{ij} = \sum_{t=0}^{T-1} \kappa_e^{\,T-1-t}
             \left[ A_+ \, x_i(t) \, s_j(t) - A_- \, y_j(t-1) \, s_i(t) \right],
    \qquad \kappa_e = e^{-dt/\tau_e}, \quad y_j(-1) = 0.

The third factor is a global, scalar reward from the readout's correctness,
``r = r_+`` (correct) or ``r_-`` (wrong), optionally minus a running mean of past rewards
(``baseline: running``, ``rbar <- rbar + (mean r - rbar) / baseline_samples`` after each batch; a
reward prediction error, Fremaux and Gerstner 2016). Each layer's weights change after a batch of
``B`` samples by

.. math::

    \Delta W_{ij} = \frac{\eta}{B} \sum_{b=1}^{B} (r_b - \bar r) \, e^{(b)}_{ij},

then are clipped to ``[-w_max, w_max]``. For the output layer (pre = hidden, post = output)
the postsynaptic trains are those of a winner-take-all circuit, ``post: winner``: only the
deciding neuron's spikes, the others silenced (as in Mozafari et al. 2018's R-STDP
classifier); ``post: all`` uses every output neuron's spikes. The hidden layer (pre = input
fibres, post = hidden) learns by the same rule with the same global reward when
``learn_hidden`` is true, and is a fixed random layer (the tutorial's initialisation)
otherwise. Nothing here uses autograd: the weights are plain tensors updated in place under
``torch.no_grad``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from spikeloc.analysis.task_params import check_mapping
from spikeloc.core.config import RunConfig, config_from_dict
from spikeloc.core.models import SNN, build_model
from spikeloc.core.stimuli import SpikeDataset, continuise
from spikeloc.core.training import make_datasets, seeded_generator
from spikeloc.engine.runtime import configure_runtime
from spikeloc.errors import ConfigError
from spikeloc.io import atomic_torch_save, atomic_write_text

__all__ = [
    "RSTDP_DEFAULTS",
    "trace",
    "eligibility",
    "rstdp_update",
    "decide",
    "simulate",
    "evaluate",
    "linear_bound",
    "check_params",
    "task_config",
    "train_rstdp",
    "rstdp_localiser",
]

RSTDP_DEFAULTS: dict[str, Any] = {
    "n_hidden": 30,
    "epochs": 5,
    "batch_size": 16,
    "lr_output": 0.0003,
    "lr_hidden": 0.0001,
    "learn_hidden": False,
    "post": "winner",  # winner | all
    "baseline": "running",  # running | none
    "baseline_samples": 100.0,
    "reward_correct": 1.0,
    "reward_wrong": -1.0,
    "a_plus": 1.0,
    "a_minus": 0.25,
    "tau_plus_s": 0.02,
    "tau_minus_s": 0.02,
    "tau_eligibility_s": 0.1,
    "w_max": 2.0,
    "evals_per_epoch": 2,
    "linear_bound": True,
    "n_train": 4096,
    "n_test": 2048,
    "stimulus": {"phase_offset": "per_sample"},
}

_CHOICES = {"post": ("winner", "all"), "baseline": ("running", "none")}
_POSITIVE = {
    "n_hidden",
    "epochs",
    "batch_size",
    "tau_plus_s",
    "tau_minus_s",
    "tau_eligibility_s",
    "w_max",
    "evals_per_epoch",
    "n_train",
    "n_test",
    "baseline_samples",
}
_NON_NEGATIVE = {"lr_output", "lr_hidden", "a_plus", "a_minus"}


def check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` over :data:`RSTDP_DEFAULTS`, checked: a bad key or value raises
    :class:`~spikeloc.errors.ConfigError` naming the field."""
    return check_mapping(
        params, RSTDP_DEFAULTS, choices=_CHOICES, positive=_POSITIVE, non_negative=_NON_NEGATIVE
    )


def task_config(p: Mapping[str, Any], seed: int) -> RunConfig:
    """Preset ``tutorial`` with a spiking output layer (``readout: spike_count``), the
    ``stimulus`` overrides of ``p`` and its sizes; a bad value names its field of ``params``."""
    data = {
        "preset": "tutorial",
        "seed": int(seed),
        "device": "cpu",
        "stimulus": dict(p["stimulus"]),
        "model": {"n_hidden": p["n_hidden"], "readout": "spike_count"},
        "training": {
            "n_train": p["n_train"],
            "n_test": p["n_test"],
            "epochs": p["epochs"],
            "batch_size": p["batch_size"],
        },
    }
    try:
        return config_from_dict(data, "<params>")
    except ConfigError as exc:
        field = exc.field
        for block in ("model.", "training."):
            if field.startswith(block):
                field = field[len(block) :]
        raise ConfigError(None, field, exc.problem) from None


# ------------------------------------------------------------------ the rule


def _decay_matrix(T: int, kappa: float, dtype=torch.float64) -> torch.Tensor:
    """``K[t, t'] = kappa^(t - t')`` for ``t' <= t``, else 0: ``x = K @ s`` is the trace."""
    lag = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    return torch.where(
        lag >= 0, torch.tensor(kappa, dtype=dtype) ** lag.clamp(min=0).to(dtype), 0.0
    )


def trace(spikes: torch.Tensor, tau_s: float, dt_s: float) -> torch.Tensor:
    """``x(t) = sum_{t' <= t} exp(-(t - t') dt / tau) s(t')`` for spikes (B, T, n), float64."""
    T = spikes.shape[1]
    K = _decay_matrix(T, math.exp(-dt_s / tau_s))
    return torch.einsum("ts,bsn->btn", K, spikes.double())


@torch.no_grad()
def eligibility(
    pre: torch.Tensor,
    post: torch.Tensor,
    *,
    dt_s: float,
    tau_plus_s: float,
    tau_minus_s: float,
    tau_eligibility_s: float,
    a_plus: float = 1.0,
    a_minus: float = 1.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The eligibility traces ``e_ij`` of the module docstring at the end of each sample, for
    presynaptic spikes ``pre`` (B, T, n_pre) and postsynaptic ``post`` (B, T, n_post):
    (B, n_pre, n_post) float64; with ``weights`` (B,) their weighted sum over the batch,
    ``sum_b weights_b e^(b)`` (n_pre, n_post), without the per-sample tensor."""
    B, T, _ = pre.shape
    pre, post = pre.double(), post.double()
    d = torch.exp(-(T - 1 - torch.arange(T, dtype=torch.float64)) * dt_s / tau_eligibility_s)
    x = trace(pre, tau_plus_s, dt_s)  # (B, T, n_pre)
    y = trace(post, tau_minus_s, dt_s)
    y_prev = torch.nn.functional.pad(y, (0, 0, 1, 0))[:, :T]  # y(t - 1), y(-1) = 0
    post_d = post * d[None, :, None]
    pre_d = pre * d[None, :, None]
    if weights is None:
        ltp = torch.einsum("bti,btj->bij", x, post_d)
        ltd = torch.einsum("bti,btj->bij", pre_d, y_prev)
    else:
        w = weights.double().view(B, 1, 1)
        ltp = torch.einsum("bti,btj->ij", x * w, post_d)
        ltd = torch.einsum("bti,btj->ij", pre_d * w, y_prev)
    return a_plus * ltp - a_minus * ltd


@torch.no_grad()
def rstdp_update(
    W: torch.Tensor,
    pre: torch.Tensor,
    post: torch.Tensor,
    modulator: torch.Tensor,
    *,
    lr: float,
    w_max: float,
    dt_s: float,
    tau_plus_s: float,
    tau_minus_s: float,
    tau_eligibility_s: float,
    a_plus: float = 1.0,
    a_minus: float = 1.0,
) -> torch.Tensor:
    """Apply ``W += lr / B * sum_b modulator_b e^(b)`` and clip to ``[-w_max, w_max]``, in
    place; returns the change (before clipping). ``modulator``: ``r_b - rbar`` per sample."""
    B = pre.shape[0]
    e = eligibility(
        pre,
        post,
        dt_s=dt_s,
        tau_plus_s=tau_plus_s,
        tau_minus_s=tau_minus_s,
        tau_eligibility_s=tau_eligibility_s,
        a_plus=a_plus,
        a_minus=a_minus,
        weights=modulator,
    )
    dW = (lr / B) * e
    W.add_(dW.to(W.dtype)).clamp_(-w_max, w_max)
    return dW


# ------------------------------------------------------------------ the network


def decide(out_spikes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The decision per sample from output spikes (B, T, C): most spikes, ties to the earliest
    first spike, then the lowest index; a random class where no output neuron spiked."""
    B, T, C = out_spikes.shape
    counts = out_spikes.sum(1).double()
    t = torch.arange(T, dtype=torch.float64)[None, :, None]
    first = torch.where(out_spikes > 0, t, float(T)).amin(1)  # (B, C), T = never
    score = counts + (T - first) / (T + 1)  # an earlier first spike breaks a tie in counts
    choice = score.argmax(1)
    silent = counts.sum(1) == 0
    if silent.any():
        guess = torch.randint(0, C, (int(silent.sum()),), generator=generator)
        choice[silent] = guess
    return choice


@torch.no_grad()
def simulate(model: SNN, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden spikes (B, T, H) and output spikes (B, T, C) of the spiking network on ``x``."""
    out = model(x)
    return out.hidden_spikes, out.output_v  # spike_count readout: output_v = output spikes


@torch.no_grad()
def evaluate(model: SNN, data: SpikeDataset, seed: int, batch: int = 512) -> dict[str, float]:
    """Test accuracy, continuous MAE (deg) and spikes per sample of the network's decisions
    (random guesses for silent samples from a generator seeded with ``seed``)."""
    g = torch.Generator().manual_seed(int(seed))
    preds, spikes, silent = [], 0.0, 0
    for i in range(0, len(data), batch):
        hid, out = simulate(model, data.spikes[i : i + batch])
        preds.append(decide(out, g))
        spikes += float(hid.sum() + out.sum())
        silent += int((out.sum((1, 2)) == 0).sum())
    pred = torch.cat(preds)
    est = continuise(pred, data.config.n_classes)
    return {
        "accuracy": float((pred == data.labels).double().mean()),
        "mae_deg": float((data.ipd.double() - est).abs().mean() * 180 / math.pi),
        "spikes_per_sample": spikes / len(data),
        "silent_fraction": silent / len(data),
    }


@torch.no_grad()
def linear_bound(model: SNN, train_set: SpikeDataset, test_set: SpikeDataset) -> float:
    """Test accuracy of the best linear readout of the (initial) hidden layer's spike counts:
    multinomial logistic regression (scikit-learn, L2, C = 1, on standardised counts) fitted
    on the training set. What a readout rule could reach at most with this hidden layer fixed,
    up to the readout's spiking nonlinearity."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def counts(data: SpikeDataset):
        return (
            torch.cat(
                [
                    simulate(model, data.spikes[i : i + 512])[0].sum(1)
                    for i in range(0, len(data), 512)
                ]
            )
            .double()
            .numpy()
        )

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf.fit(counts(train_set), train_set.labels.numpy())
    return float(clf.score(counts(test_set), test_set.labels.numpy()))


def _curve_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def train_rstdp(
    params: dict,
    *,
    seed: int,
    out_dir: Path,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Train the network with reward-modulated STDP (module docstring); one task run.

    Each epoch the training set is presented once in shuffled batches: the network decides,
    the reward of each sample follows from its decision, and both layers' eligibility traces
    (the hidden layer's only with ``learn_hidden``) are turned into weight changes. Writes
    ``curve.csv`` (``evals_per_epoch`` rows per epoch: samples seen, training wall time, test
    accuracy and MAE, the training decisions' accuracy since the last row, the mean reward
    baseline, output spikes per sample) and ``weights.pt``; returns the metrics.
    """
    p = check_params(params)
    cfg = task_config(p, seed)
    if device not in ("cpu", "auto", None):
        raise ConfigError(None, "device", "the R-STDP task runs on the CPU")
    configure_runtime(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make_datasets(cfg, torch.device("cpu"))
    train_set, test_set = data["train"], data["test"]
    model = build_model(cfg, generator=seeded_generator(seed, "model"))
    for w in (model.W1, model.W2):
        w.requires_grad_(False)
    g_shuffle = seeded_generator(seed, "shuffle")
    g_guess = seeded_generator(seed, "dropout")  # the random guesses of silent samples
    dt = cfg.stimulus.dt_s
    rule = {
        k: p[k]
        for k in ("tau_plus_s", "tau_minus_s", "tau_eligibility_s", "a_plus", "a_minus", "w_max")
    }
    n_batches = -(-len(train_set) // p["batch_size"])
    marks = sorted(
        {round(n_batches * (k + 1) / p["evals_per_epoch"]) for k in range(p["evals_per_epoch"])}
    )
    simulate(model, train_set.spikes[:2])  # warm-up (kernel compilation) outside the clock
    bound = linear_bound(model, train_set, test_set) if p["linear_bound"] else None
    rbar, elapsed, seen = 0.0, 0.0, 0
    rows: list[dict] = []
    window = [0, 0]  # correct, decided since the last row

    def record(epoch: float) -> None:
        m = evaluate(model, test_set, seed)
        rows.append(
            {
                "epoch": epoch,
                "samples": seen,
                "wall_s": elapsed,
                "test_accuracy": m["accuracy"],
                "test_mae_deg": m["mae_deg"],
                "train_accuracy": window[0] / window[1] if window[1] else None,
                "reward_baseline": rbar,
                "spikes_per_sample": m["spikes_per_sample"],
                "test_silent_fraction": m["silent_fraction"],
            }
        )
        window[0] = window[1] = 0

    record(0.0)
    for epoch in range(p["epochs"]):
        for k, (x, y, _) in enumerate(
            train_set.batches(p["batch_size"], shuffle=True, generator=g_shuffle), start=1
        ):
            t0 = time.perf_counter()
            hid, out = simulate(model, x)
            choice = decide(out, g_guess)
            correct = choice == y
            r = torch.where(correct, p["reward_correct"], p["reward_wrong"]).double()
            modulator = r - rbar if p["baseline"] == "running" else r
            post = out
            if p["post"] == "winner":
                post = (
                    out
                    * torch.nn.functional.one_hot(choice, out.shape[2]).to(out.dtype)[:, None, :]
                )
            rstdp_update(model.W2, hid, post, modulator, lr=p["lr_output"], dt_s=dt, **rule)
            if p["learn_hidden"]:
                rstdp_update(model.W1, x, hid, modulator, lr=p["lr_hidden"], dt_s=dt, **rule)
            if p["baseline"] == "running":
                rbar += (float(r.mean()) - rbar) * min(1.0, len(y) / p["baseline_samples"])
            elapsed += time.perf_counter() - t0
            seen += len(y)
            window[0] += int(correct.sum())
            window[1] += len(y)
            if k in marks:
                record(epoch + k / n_batches)
                if progress:
                    print(
                        f"epoch {epoch + k / n_batches:.2f}: test accuracy "
                        f"{rows[-1]['test_accuracy']:.3f}, {elapsed:.1f} s",
                        flush=True,
                    )
    atomic_torch_save(out_dir / "weights.pt", {"W1": model.W1.clone(), "W2": model.W2.clone()})
    atomic_write_text(out_dir / "curve.csv", _curve_csv(rows))
    last = rows[-1]
    best = max(rows, key=lambda r: r["test_accuracy"])
    return {
        "accuracy": last["test_accuracy"],
        "mae_continuous_deg": last["test_mae_deg"],
        "best_accuracy": best["test_accuracy"],
        "initial_accuracy": rows[0]["test_accuracy"],
        "chance": 1 / cfg.model.n_classes,
        "train_wall_s": elapsed,
        "n_parameters": int(model.W2.numel() + (model.W1.numel() if p["learn_hidden"] else 0)),
        "samples": seen,
        "spikes_per_sample": last["spikes_per_sample"],
        "linear_bound_accuracy": bound,
        **{f"curve_{k}": [r[k] for r in rows] for k in rows[0]},
    }


# ------------------------------------------------------------------ leaderboard


class _RSTDPLocaliser:
    def __init__(self, model: SNN, cfg: RunConfig, n_parameters: int, training_time_s: float):
        self.model, self.cfg = model, cfg
        self.n_parameters, self.training_time_s = n_parameters, training_time_s

    @property
    def stimulus(self) -> str:
        s = self.cfg.stimulus
        return f"2 x {s.anf_per_ear} Poisson fibres, {s.frequency_hz:g} Hz, {s.duration_s:g} s"

    def localise(self, ipds_rad, seed):
        from spikeloc.core.stimuli import generate_spikes

        gen = torch.Generator().manual_seed(int(seed))
        x = generate_spikes(
            torch.as_tensor(ipds_rad, dtype=torch.float64), self.cfg.stimulus, generator=gen
        )
        hid, out = simulate(self.model, x)
        choice = decide(out, gen)
        est = continuise(choice, self.cfg.stimulus.n_classes)
        spikes = hid.sum((1, 2)) + out.sum((1, 2))
        return est.numpy(), spikes.double().numpy()


def rstdp_localiser(options: dict, run: Any) -> _RSTDPLocaliser:
    """Leaderboard factory for a run of :func:`train_rstdp` (``run``: its ``TaskRun``)."""
    if run is None:
        raise ValueError("rstdp_localiser needs a task run of its module")
    p = check_params(run.params)
    cfg = task_config(p, run.seed)
    model = build_model(cfg)
    w = torch.load(Path(run.path) / "weights.pt", map_location="cpu", weights_only=True)
    with torch.no_grad():
        model.W1.copy_(w["W1"])
        model.W2.copy_(w["W2"])
    model.eval()
    metrics = dict(run.metrics)
    return _RSTDPLocaliser(
        model,
        cfg,
        int(metrics.get("n_parameters", 0)),
        float(metrics.get("train_wall_s", math.nan)),
    )
