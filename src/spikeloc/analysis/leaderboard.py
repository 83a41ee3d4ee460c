"""The leaderboard's common evaluation protocol and the localisers it ranks.

**Protocol** (the same for every entry): for each test seed, ``n_per_seed`` IPDs drawn
uniformly from (-90 deg, 90 deg) by ``numpy.random.default_rng(seed)``; the localiser builds
its own input for those IPDs from the same seed (a tone at the frequency it was made for; the
networks' generator draws one phase offset per seed's dataset, as published). Metrics:
mean absolute error in degrees (circular distance; for estimates inside (-90, 90) the plain
one), its sd over the test sets (and over the training seeds of an entry made of several
trained models, :func:`combine`), accuracy in 12 classes of 15 deg (an estimate outside the range is
clipped into it), and costs: trainable parameters, spikes per decision (the localiser's own
neurons, input fibres not counted) and training time.

**A localiser** is any object with ``localise(ipds_rad, seed) -> (estimates_rad,
spikes_per_sample)`` and the attributes ``n_parameters``, ``training_time_s`` and ``stimulus``
(one line). Manifests register entries (``leaderboard:`` in a module's manifest; see
``spikeloc.pipeline.leaderboard``), naming either ``trained_run`` (a run of that module, built
by :func:`trained_network`) or ``"package.module:factory"``, a function
``factory(options: dict, run) -> localiser`` (``run``: ``(model, run_config, metrics)`` of
a network run, the ``TaskRun`` of a task run, or None; an entry naming a sweep point gets one
call per seed, and :func:`combine` merges their rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = [
    "EvaluationProtocol",
    "Localiser",
    "PROTOCOLS",
    "combine",
    "evaluate",
    "jeffress_localiser",
    "protocol_ipds",
    "trained_network",
]


class Localiser(Protocol):
    n_parameters: int
    training_time_s: float
    stimulus: str

    def localise(self, ipds_rad: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class EvaluationProtocol:
    seeds: tuple[int, ...]
    n_per_seed: int
    n_classes: int = 12

    def describe(self) -> str:
        return (
            f"{len(self.seeds)} test sets (seeds {', '.join(map(str, self.seeds))}) of "
            f"{self.n_per_seed} IPDs uniform in (-90, 90) deg; MAE (deg), accuracy in "
            f"{self.n_classes} classes"
        )

    def spec(self) -> dict[str, Any]:
        """The protocol as data (what the paper states): seeds, sizes, IPD range, classes."""
        return {
            "seeds": list(self.seeds),
            "n_test_sets": len(self.seeds),
            "n_per_seed": self.n_per_seed,
            "n_test": len(self.seeds) * self.n_per_seed,
            "ipd_range_deg": [-90, 90],
            "n_classes": self.n_classes,
            "class_width_deg": 180 / self.n_classes,
        }


#: the protocol at each scale (quick: fewer, smaller test sets; same code path)
PROTOCOLS = {
    "paper": EvaluationProtocol(seeds=(9001, 9002, 9003, 9004), n_per_seed=512),
    "quick": EvaluationProtocol(seeds=(9001, 9002), n_per_seed=48),
}


def protocol_ipds(protocol: EvaluationProtocol, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi / 2, np.pi / 2, protocol.n_per_seed)


def _classes(ipd: np.ndarray, n: int) -> np.ndarray:
    x = np.clip(ipd, -np.pi / 2, np.pi / 2)
    return np.minimum(np.floor((x + np.pi / 2) * n / np.pi), n - 1).astype(int)


def evaluate(localiser: Localiser, protocol: EvaluationProtocol) -> dict[str, Any]:
    """One leaderboard row (without name/module) for a localiser under the protocol."""
    per_seed_mae, correct, spikes, n = [], 0, [], 0
    for seed in protocol.seeds:
        ipd = protocol_ipds(protocol, seed)
        est, spk = localiser.localise(ipd, seed)
        est = np.asarray(est, dtype=float)
        d = np.mod(est - ipd, 2 * np.pi)
        err = np.degrees(np.minimum(d, 2 * np.pi - d))
        per_seed_mae.append(float(err.mean()))
        correct += int(
            (_classes(ipd, protocol.n_classes) == _classes(est, protocol.n_classes)).sum()
        )
        spikes.append(np.asarray(spk, dtype=float))
        n += len(ipd)
    maes = np.asarray(per_seed_mae)
    return {
        "mae_deg": float(maes.mean()),
        "mae_per_test_set_deg": [float(m) for m in maes],
        "mae_sd_deg": float(maes.std(ddof=1)) if len(maes) > 1 else 0.0,
        "accuracy_pct": 100.0 * correct / n,
        "n_parameters": int(localiser.n_parameters),
        "spikes_per_decision": float(np.concatenate(spikes).mean()),
        "training_time_s": float(localiser.training_time_s),
        "stimulus": localiser.stimulus,
        "n_test": n,
        "n_models": 1,
    }


def combine(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for an entry made of several trained models (the seeds of a sweep point).

    Every model meets the same test sets; the MAE is the mean over all (model, test set)
    pairs and its sd their spread, so it includes the variation between training seeds.
    Accuracy and spikes per decision are means over the models (equal test sizes), training
    time the mean per model; the parameter count is the models' (the largest, should they differ).
    """
    if len(rows) == 1:
        return dict(rows[0])
    maes = np.asarray([m for r in rows for m in r["mae_per_test_set_deg"]])
    return {
        "mae_deg": float(maes.mean()),
        "mae_per_test_set_deg": [float(m) for m in maes],
        "mae_sd_deg": float(maes.std(ddof=1)),
        "accuracy_pct": float(np.mean([r["accuracy_pct"] for r in rows])),
        "n_parameters": max(int(r["n_parameters"]) for r in rows),
        "spikes_per_decision": float(np.mean([r["spikes_per_decision"] for r in rows])),
        "training_time_s": float(np.mean([r["training_time_s"] for r in rows])),
        "stimulus": rows[0]["stimulus"],
        "n_test": int(sum(r["n_test"] for r in rows)),
        "n_models": int(sum(r["n_models"] for r in rows)),
    }


# --------------------------------------------------------------------------- localisers


@dataclass
class _Jeffress:
    cfg: Any
    method: str
    n_parameters: int = 0
    training_time_s: float = 0.0

    @property
    def stimulus(self) -> str:
        c = self.cfg
        return f"2 Poisson ears, {c.frequency_hz:g} Hz, {c.r_max_hz:g} Hz max, {c.duration_s:g} s"

    def localise(self, ipds_rad, seed):
        from spikeloc.analysis import jeffress

        counts = jeffress.simulate_counts(ipds_rad, self.cfg, np.random.default_rng(seed))
        est = jeffress.estimate_ipd(counts, self.cfg, self.method)
        est = np.mod(est + np.pi, 2 * np.pi) - np.pi  # (-pi, pi]
        return est, counts.sum(1)


def jeffress_localiser(options: dict, run: tuple | None = None) -> Localiser:
    """Factory of the Jeffress entries: ``options`` = JeffressConfig fields + ``method``."""
    from spikeloc.analysis.jeffress import JeffressConfig

    opts = dict(options)
    method = opts.pop("method", "max")
    return _Jeffress(JeffressConfig(**opts), method)


@dataclass
class _Network:
    model: Any
    cfg: Any
    n_parameters: int
    training_time_s: float

    @property
    def stimulus(self) -> str:
        s = self.cfg.stimulus
        return f"2 x {s.anf_per_ear} Poisson fibres, {s.frequency_hz:g} Hz, {s.duration_s:g} s"

    def localise(self, ipds_rad, seed):
        import torch

        from spikeloc.core.stimuli import continuise, generate_spikes

        gen = torch.Generator().manual_seed(int(seed))
        x = generate_spikes(
            torch.as_tensor(ipds_rad, dtype=torch.float64), self.cfg.stimulus, generator=gen
        )
        self.model.eval()
        with torch.no_grad():
            out = self.model(x)
        readout = out.readout.double()
        if self.model.cfg.readout == "regression":
            est = readout.reshape(-1)
        else:
            est = continuise(readout.argmax(1), self.cfg.stimulus.n_classes)
        spikes = out.hidden_spikes.sum(dim=tuple(range(1, out.hidden_spikes.dim())))
        if self.model.cfg.readout == "spike_count" and out.output_v is not None:
            spikes = spikes + out.output_v.sum(dim=(1, 2))  # a spiking output layer's spikes
        return est.numpy(), spikes.double().numpy()


def trained_network(options: dict, run: tuple | None) -> Localiser:
    """A trained run of the core's networks: ``run`` = ``(model, run_config, metrics)``."""
    if run is None:
        raise ValueError("trained_run needs a run of its module")
    model, cfg, metrics = run
    n_par = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return _Network(model, cfg, int(n_par), float(metrics.get("train_wall_s", math.nan)))
