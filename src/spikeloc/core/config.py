"""Run configuration: plain nested dataclasses built from YAML/dicts, validated field by field.

A run config is a small YAML file::

    preset: basic          # optional: start from a named preset (see PRESETS)
    seed: 0
    device: auto           # auto = cuda if present else cpu; cuda = require a GPU; cpu
    stimulus: {frequency_hz: 50.0}
    model: {n_hidden: 8, tau_hidden_s: 0.002, tau_output_s: 0.002}
    training: {epochs: 100, lr: 0.001}

Every unknown key, wrong type or out-of-range value raises :class:`~spikeloc.errors.ConfigError`
naming the file and the dotted field (``run.yaml: model.tau_hidden_s: must be > 0, got -1``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from spikeloc.core.stimuli import StimulusConfig
from spikeloc.errors import ConfigError

__all__ = [
    "DaleConfig",
    "DendriteConfig",
    "ModelConfig",
    "RegulariserConfig",
    "TrainingConfig",
    "RunConfig",
    "PRESETS",
    "load_config",
    "config_from_dict",
    "config_hash",
    "config_keys",
]


@dataclass(frozen=True)
class DaleConfig:
    """Dale's law: a fixed sign per presynaptic unit, effective weight ``|W| * sign``."""

    enabled: bool = False
    inhibitory_fraction: float = 0.5
    # random: rows chosen by a random draw without replacement (Dales_law.ipynb);
    # contiguous: the first rows (IE-neuron-distribution / 4-Quick_Start: whole left ear at 0.5)
    placement: Literal["random", "contiguous"] = "random"
    # per population: "dale" applies the mask, "excitatory" forces all signs to +1 (W1+ / W2+)
    input_signs: Literal["dale", "excitatory"] = "dale"
    hidden_signs: Literal["dale", "excitatory"] = "dale"


@dataclass(frozen=True)
class DendriteConfig:
    """Filter-and-fire hidden neurons (Alt-Filter-and-Fire_Neuron_Model_SNN.ipynb).

    Each hidden neuron has ``segments`` dendritic segments, each with its own input weights
    (W1 is n_inputs x n_hidden*segments, column ``n*segments + m`` = neuron n, segment m).
    Segment m's input current is causally filtered by a double-exponential kernel
    ``exp(-t/tau_decay) - exp(-t/tau_rise)`` (t in steps, peak normalised to 1), one random
    kernel per segment index shared by all neurons: ``tau_rise ~ U[tau_rise_min_steps, tau_rise_max_steps]``,
    ``tau_decay ~ U[tau_decay_min_steps, tau_decay_max_steps]``, and ``tau_decay = 1.5 * tau_rise`` where
    ``tau_rise >= tau_decay / 1.5``; kernel length ``4 * max(tau_decay) + 1`` steps. The
    filtered currents of a neuron's segments are summed and drive its LIF.
    """

    enabled: bool = False
    segments: int = 1
    tau_rise_min_steps: float = 1.0
    tau_rise_max_steps: float = 16.0
    tau_decay_min_steps: float = 8.0
    tau_decay_max_steps: float = 30.0


@dataclass(frozen=True)
class ModelConfig:
    """Network: input -> hidden LIF -> output (leaky integrators or LIF), no biases."""

    # hidden: input -> hidden LIF -> readout; membrane_only: input -> readout directly (the
    # starting notebook's first model, one layer of leaky integrators, no spikes)
    architecture: Literal["hidden", "membrane_only"] = "hidden"
    n_inputs: int = 200
    n_hidden: int = 30
    n_classes: int = 12
    tau_hidden_s: float = 0.02
    tau_output_s: float = 0.02
    threshold: float = 1.0
    reset: Literal["zero", "subtract"] = "zero"
    update_order: Literal["published", "immediate"] = "published"
    detach_reset: bool = False
    surrogate: Literal["sigmoid", "superspike"] = "sigmoid"
    surrogate_beta: float = 5.0
    adaptive_threshold_beta: float = 0.0
    adaptive_threshold_tau_s: float | None = None
    # mean_membrane (published), max_membrane, spike_count (spiking output layer),
    # regression (one output unit, time-mean membrane = IPD estimate in rad)
    readout: Literal["mean_membrane", "max_membrane", "spike_count", "regression"] = "mean_membrane"
    # published: U(+-1/sqrt(W.size(1))) per matrix (PyTorch's fan-in on an (in, out) matrix is
    # the out dim); starting_notebook: both bounds from the membrane-only W (200 x n_classes);
    # fan_in: U(+-1/sqrt(n_in)), the textbook rule
    init: Literal["published", "starting_notebook", "fan_in"] = "published"
    dropout: float = 0.0
    dale: DaleConfig = field(default_factory=DaleConfig)
    dendrites: DendriteConfig = field(default_factory=DendriteConfig)


@dataclass(frozen=True)
class RegulariserConfig:
    """Firing-rate regulariser of the basic model (time-constant-solutions.ipynb).

    ``L_m = c * (relu(fr_m - r_low) / (r_high - r_low))**2`` per hidden neuron ``m``;
    ``form="code"`` (published): ``mean_m(L_m) / N_h`` (an extra 1/N_h); ``form="paper"``:
    ``sum_m(L_m) / N_h`` as the paper writes it. ``strength=None`` means ``c = ln(n_classes)``.
    """

    enabled: bool = False
    form: Literal["code", "paper"] = "code"
    rate_low_hz: float = 100.0
    rate_high_hz: float = 200.0
    strength: float | None = None


@dataclass(frozen=True)
class TrainingConfig:
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 0.01
    epochs: int = 10
    batch_size: int = 64
    n_train: int = 4096
    n_val: int = 0
    n_test: int = 2048
    # test sets of n_test samples each, every one a fresh draw (its own IPDs, phase offset and
    # spikes); the metrics add each set's accuracy and MAE and their mean and sd / sqrt(n)
    # (Optimizing-Membrane-Time-Constant.ipynb: 10 sets of 4096). Set 0 is the run's test set.
    n_test_sets: int = 1
    # fixed: one pre-generated training set, reshuffled each epoch (published);
    # fresh: a new training set every epoch
    data: Literal["fixed", "fresh"] = "fixed"
    early_stopping: bool = False
    # clean_test: the test set without the stimulus's phase-delay noise (Noise_robustness.ipynb:
    # training and validation sets noisy, test sigma = 0)
    clean_test: bool = False
    patience: int = 10
    min_epochs: int = 10
    # which early-stopping rule: oldest_is_min (Dales_law.ipynb and most notebooks: stop when
    # the oldest of the last `patience` validation losses is their minimum) or mean_at_least
    # (Quick_Start_250HzClassification: stop when the mean of the last `patience` losses is
    # >= early_stopping_level, 70 there -- a level a mean NLL of 12 classes practically never
    # reaches, so those runs train every epoch)
    early_stopping_rule: Literal["oldest_is_min", "mean_at_least"] = "oldest_is_min"
    early_stopping_level: float = 70.0
    # restore the best validation epoch's weights at the end (Dales_law.ipynb keeps a true
    # copy); false: keep the last weights (the 250 Hz notebook's "best" weights are
    # references to the live tensors, so it returns the last ones)
    restore_best: bool = True
    regulariser: RegulariserConfig = field(default_factory=RegulariserConfig)
    # reproduce the notebooks' numpy stream for the datasets (basic model: 32844534)
    legacy_numpy_seed: int | None = None
    checkpoint_every: int = 1
    # keep every training batch's hidden spikes (bits) in RUN_DIR/hidden_spikes.npz
    # (spikeloc.core.recording); such a run trains alone, not as an ensemble member
    record_hidden_spikes: bool = False


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    preset: str | None = None
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # reference: plain autograd time loop (the oracle); fused: hand-written BPTT; auto: fused
    backend: Literal["auto", "reference", "fused"] = "auto"
    threads: int | None = None
    stimulus: StimulusConfig = field(default_factory=StimulusConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------
# Presets (facts from the paper catalogue, §2.0 and §2.2)
# --------------------------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    # The published basic model (time-constant-solutions.ipynb, itdnet-for-paper.pt)
    "basic": {
        "stimulus": {"frequency_hz": 50.0, "probability": "exact"},
        "model": {
            "n_hidden": 8,
            "n_classes": 12,
            "tau_hidden_s": 0.002,
            "tau_output_s": 0.002,
            "init": "published",
        },
        "training": {
            "lr": 0.001,
            "epochs": 100,
            "batch_size": 128,
            "n_train": 16384,
            "n_test": 4096,
            "regulariser": {"enabled": True, "form": "code"},
        },
    },
    # The tutorial / starting notebook (3-Starting-Notebook, cosyne-tutorial-2022 part 3)
    "tutorial": {
        "stimulus": {"frequency_hz": 20.0, "probability": "point"},
        "model": {
            "n_hidden": 30,
            "n_classes": 12,
            "tau_hidden_s": 0.02,
            "tau_output_s": 0.02,
            "init": "starting_notebook",
        },
        "training": {
            "lr": 0.01,
            "epochs": 10,
            "batch_size": 64,
            "n_train": 4096,
            "n_test": 2048,
        },
    },
}


# --------------------------------------------------------------------------------------
# Building and validating
# --------------------------------------------------------------------------------------

_POSITIVE = {
    "frequency_hz",
    "dt_s",
    "duration_s",
    "anf_per_ear",
    "rate_max_hz",
    "n_inputs",
    "n_hidden",
    "n_classes",
    "tau_hidden_s",
    "tau_output_s",
    "threshold",
    "surrogate_beta",
    "lr",
    "epochs",
    "batch_size",
    "n_train",
    "n_test",
    "n_test_sets",
    "patience",
    "adaptive_threshold_tau_s",
    "rate_high_hz",
    "checkpoint_every",
    "threads",
    "segments",
    "tau_rise_min_steps",
    "tau_rise_max_steps",
    "tau_decay_min_steps",
    "tau_decay_max_steps",
}
_NON_NEGATIVE = {
    "envelope_power",
    "phase_delay_noise_rad",
    "adaptive_threshold_beta",
    "dropout",
    "n_val",
    "min_epochs",
    "rate_low_hz",
    "strength",
}
_UNIT_INTERVAL = {"dropout", "inhibitory_fraction"}
#: seeds: non-negative and small enough that every (seed, stream) generator seed
#: ``seed * 1000 + stream`` (spikeloc.core.training.seeded_generator) fits torch's 64 bits
#: exactly, so no two (seed, stream) pairs share a generator; numpy's legacy seeds are 32-bit
SEED_MAX = 2**53 - 1
LEGACY_SEED_MAX = 2**32 - 1
_SEED_RANGE = {"seed": SEED_MAX, "legacy_numpy_seed": LEGACY_SEED_MAX}


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged into it, mappings key by key."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_value(value: Any, tp: Any, path: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(source, path, f"must be one of {list(allowed)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(value, inner[0], path, source)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(source, path, f"must be a mapping, got {type(value).__name__}")
        return _build(tp, value, path + ".", source)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, path, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, path, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, path, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(source, path, f"must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(source, path, f"must be a string, got {value!r}")
        return value
    return value


class _Problems(list):
    """The config problems found so far (all of a file's problems are reported at once)."""

    def raise_if_any(self) -> None:
        if len(self) == 1:
            raise self[0]
        if self:
            raise ConfigError.combine(self)


def _build(cls: type, data: dict, prefix: str, source: str, problems: _Problems | None = None):
    """``cls(**data)`` with every key and value checked; with ``problems`` given, every problem
    is collected there (and a field with a problem is left at its default) instead of raised."""
    collect = problems is not None
    problems = _Problems() if problems is None else problems
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # in field order: a stable hint
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            close = close or [n for n in names if n.startswith(str(key)[:3])]
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(names)})"
            problems.append(ConfigError(source, prefix + str(key), f"unknown key{hint}"))
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        path = prefix + f.name
        tp = hints[f.name]
        try:
            if dataclasses.is_dataclass(tp) and isinstance(data[f.name], dict):
                value = _build(tp, data[f.name], path + ".", source, problems)
            else:
                value = _check_value(data[f.name], tp, path, source)
            if isinstance(value, int | float) and not isinstance(value, bool):
                if f.name in _POSITIVE and value <= 0:
                    raise ConfigError(source, path, f"must be > 0, got {value!r}")
                if f.name in _NON_NEGATIVE and value < 0:
                    raise ConfigError(source, path, f"must be >= 0, got {value!r}")
                if f.name in _UNIT_INTERVAL and not 0 <= value <= 1:
                    raise ConfigError(source, path, f"must be in [0, 1], got {value!r}")
                if f.name == "dropout" and value >= 1:
                    # a keep probability of 0 divides by zero in the inverted-dropout mask
                    raise ConfigError(source, path, f"must be in [0, 1), got {value!r}")
                if f.name in _SEED_RANGE and not 0 <= value <= _SEED_RANGE[f.name]:
                    raise ConfigError(
                        source, path, f"must be in [0, {_SEED_RANGE[f.name]}], got {value!r}"
                    )
        except ConfigError as exc:
            problems.append(exc)
            continue
        kwargs[f.name] = value
    if not collect:
        problems.raise_if_any()
    return cls(**kwargs)


def _cross_checks(cfg: RunConfig, source: str) -> None:
    st, m, tr = cfg.stimulus, cfg.model, cfg.training
    if m.n_inputs != st.n_inputs:
        raise ConfigError(
            source,
            "model.n_inputs",
            f"must equal 2 * stimulus.anf_per_ear = {st.n_inputs}, got {m.n_inputs}",
        )
    if m.readout != "regression" and st.n_classes != m.n_classes:
        raise ConfigError(
            source,
            "stimulus.n_classes",
            f"must equal model.n_classes = {m.n_classes}, got {st.n_classes}",
        )
    if m.architecture == "membrane_only" and (m.readout == "spike_count" or m.dale.enabled):
        raise ConfigError(
            source,
            "model.architecture",
            "membrane_only has no hidden layer: spike_count readout and Dale's law need one",
        )
    d = m.dendrites
    if d.enabled and m.architecture == "membrane_only":
        raise ConfigError(source, "model.dendrites.enabled", "membrane_only has no hidden layer")
    if d.tau_rise_max_steps < d.tau_rise_min_steps:
        raise ConfigError(
            source, "model.dendrites.tau_rise_max_steps", "must be >= tau_rise_min_steps"
        )
    if d.tau_decay_max_steps < d.tau_decay_min_steps:
        raise ConfigError(
            source, "model.dendrites.tau_decay_max_steps", "must be >= tau_decay_min_steps"
        )
    if st.n_steps < 2:
        raise ConfigError(source, "stimulus.duration_s", "must span at least 2 time steps of dt_s")
    if tr.regulariser.enabled and tr.regulariser.rate_high_hz <= tr.regulariser.rate_low_hz:
        raise ConfigError(source, "training.regulariser.rate_high_hz", "must exceed rate_low_hz")
    if tr.n_test_sets >= 900:  # spikeloc.core.training.MAX_TEST_SETS: streams per seed
        raise ConfigError(source, "training.n_test_sets", f"must be < 900, got {tr.n_test_sets}")
    if tr.n_test_sets > 1 and tr.legacy_numpy_seed is not None:
        raise ConfigError(
            source,
            "training.n_test_sets",
            "must be 1 with legacy_numpy_seed (the notebook's reseeded stream draws one set)",
        )
    if tr.early_stopping and tr.n_val <= 0:
        raise ConfigError(
            source, "training.n_val", "early_stopping needs a validation set (n_val > 0)"
        )
    if st.rate_max_hz * st.dt_s > 1:
        # both modes give p up to rate_max_hz * dt_s per bin (exact: its bin integral), and a
        # Bernoulli draw per bin cannot represent more: it would be clipped silently
        raise ConfigError(
            source,
            "stimulus.rate_max_hz",
            f"rate_max_hz * dt_s must be <= 1 (one spike per bin at most) with probability "
            f"{st.probability}, got {st.rate_max_hz * st.dt_s:g}",
        )


def config_from_dict(data: dict[str, Any] | None, source: str | Path = "<config>") -> RunConfig:
    """Validate a plain dict (optionally naming a ``preset``) into a :class:`RunConfig`."""
    source = str(source)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(source, "<top>", "a run config must be a YAML mapping")
    preset = data.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(
                source, "preset", f"unknown preset {preset!r}; known: {sorted(PRESETS)}"
            )
        data = deep_merge(PRESETS[preset], data)
    problems = _Problems()
    cfg = _build(RunConfig, data, "", source, problems)
    problems.raise_if_any()
    _cross_checks(cfg, source)
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML run config; ``overrides`` are deep-merged on top."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(path, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "<yaml>"
        raise ConfigError(path, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None or data == {}:
        raise ConfigError(
            path,
            "<top>",
            "empty run config: name a preset (preset: basic) or set the fields to train "
            "(refusing to train the all-defaults model unasked)",
        )
    if not isinstance(data, dict):
        raise ConfigError(
            path, "<top>", f"a run config must be a YAML mapping, got a {type(data).__name__}"
        )
    if overrides:
        data = deep_merge(data, overrides)
    return config_from_dict(data, path)


def config_hash(cfg: RunConfig) -> str:
    """Short stable hash of everything that determines a run's results."""
    d = cfg.to_dict()
    d.pop("name", None)
    d.pop("threads", None)
    if not d["training"].get("record_hidden_spikes"):
        d["training"].pop("record_hidden_spikes", None)  # off: the hashes runs had before
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _type_words(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else a for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_words(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return {bool: "bool", int: "int", float: "number", str: "string"}.get(tp, str(tp))


def config_keys(preset: str | None = None) -> list[tuple[str, str, Any]]:
    """Every run-config key as ``(dotted key, allowed values, value)``, in field order.

    The values are the defaults, or those of ``preset`` (``spikeloc config-keys --preset
    basic`` prints them).
    """
    base = config_from_dict({"preset": preset} if preset else {}, "<preset>")
    rows: list[tuple[str, str, Any]] = []

    def walk(obj: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                rows.append((prefix + f.name, _type_words(hints[f.name]), value))

    walk(base, "")
    return rows
