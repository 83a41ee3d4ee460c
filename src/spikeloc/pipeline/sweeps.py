"""Runs and sweeps declared in module manifests: expansion, names, scales, chunks, tables.

A module's manifest (``workflow/analyses/<module>.yaml``) declares what it trains::

    runs:                                   # single runs, by name
      tutorial: {preset: tutorial, seed: 0}
    sweeps:                                 # every grid point x seed is one run
      tau:
        preset: tutorial
        overrides: {training: {epochs: 10}}
        grid: {model.tau_hidden_s: [0.002, 0.005, 0.01]}      # cartesian product
        zip: {}                                               # lists varied together
        seeds: 5                                              # seeds 0..4 (or a list)
        quick: {grid: {model.tau_hidden_s: [0.002, 0.01]}, seeds: 2}

:func:`expand_module` turns that into :class:`RunSpec` objects, one per run, each with a
deterministic, readable directory::

    results/<scale>/runs/<module>/<run>/                      a single run
    results/<scale>/runs/<module>/<sweep>/<point>/            a sweep's run, e.g.
    results/paper/runs/time_constants/tau/tau_hidden_s=0.005__seed=3/

**Task runs** name a library function and its params instead of a preset (``task:`` and
``params:``; sweep keys ``params.<key>``): see :mod:`spikeloc.pipeline.tasks`.

**Scales.** ``paper`` is the manifest as written. ``quick`` changes sizes only, never code
paths: the manifest's ``quick`` block (size overrides, fewer grid values, fewer seeds), and for
anything it leaves out the default shrink :data:`DEFAULT_QUICK` (at most 3 epochs, 1024
training, 512 validation and 512 test samples; the first and last value of every grid axis and
zip list; at most 2 seeds). Each scale has its own tree, so switching recomputes nothing.

**Chunks.** A sweep's runs (and a module's single runs) are trained in chunks of
``chunk_size`` runs per job (:func:`chunks`): one process start and one kernel compile per
chunk. Each run is still written atomically and resumes after a kill; a run whose directory
already holds the same config and code fingerprint is not retrained (:mod:`spikeloc.pipeline.
chunks`), so adding a grid point trains only that point. A chunk's result file lists one row per
run; a sweep's table (``results/<scale>/sweeps/<module>/<sweep>.csv``) is its chunks' rows.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spikeloc.core.config import config_from_dict, deep_merge
from spikeloc.errors import ConfigError

__all__ = [
    "DEFAULT_QUICK",
    "SINGLE_RUNS",
    "SIZE_KEYS",
    "Chunk",
    "RunSpec",
    "chunks",
    "expand_module",
    "fingerprint",
    "point_name",
]

#: Scales a workflow can run at.
SCALES = ("paper", "quick")
#: The chunk group of a module's single runs (a sweep may not take this name).
SINGLE_RUNS = "runs"
#: Run-config keys quick scale may change: sizes, never code paths.
SIZE_KEYS = frozenset(
    f"training.{k}"
    for k in (
        "epochs",
        "n_train",
        "n_val",
        "n_test",
        "batch_size",
        "patience",
        "min_epochs",
        "checkpoint_every",
    )
)
#: The default quick shrink of a run, for the sizes a manifest's quick block leaves out:
#: upper bounds on the paper-scale values (a smaller paper value is kept).
DEFAULT_QUICK = {
    "training.epochs": 3,
    "training.n_train": 1024,
    "training.n_val": 512,
    "training.n_test": 512,
}
#: Quick scale keeps at most this many seeds of a sweep (the first ones) by default.
DEFAULT_QUICK_SEEDS = 2


def results_dir(scale: str) -> str:
    """The results tree of a scale: ``results/<scale>``."""
    return f"results/{scale}"


def figures_dir(scale: str) -> str:
    return f"figures/{scale}"


def sweep_table_path(module: str, sweep: str, scale: str) -> str:
    return f"{results_dir(scale)}/sweeps/{module}/{sweep}.csv"


def variables_path(module: str, scale: str) -> str:
    return f"{results_dir(scale)}/variables/{module}.json"


@dataclass(frozen=True)
class RunSpec:
    """One training run: where it goes and exactly what it computes."""

    module: str
    group: str  # SINGLE_RUNS or the sweep's name
    name: str  # the run's name (single) or its point name (sweep)
    path: str  # its run directory
    config: dict[str, Any]  # the resolved run config (spikeloc.core.config), no device/threads
    seed: int
    swept: dict[str, Any] = field(default_factory=dict)  # dotted key -> value (sweeps)
    device: str | None = None  # the manifest's device for it (None: the config's)
    task: str | None = None  # a task run's function (spikeloc.pipeline.tasks); None: a network

    def code_hash(self, network_code_hash: str) -> str:
        """The hash of the code this run executes: the network training code's, or its
        task's module and imports."""
        if self.task is None:
            return network_code_hash
        from spikeloc.pipeline.tasks import task_code_hash

        return task_code_hash(self.task)

    @property
    def config_text(self) -> str:
        """The resolved config as canonical JSON (what the fingerprint hashes)."""
        return json.dumps(self.config, sort_keys=True, default=str)


@dataclass(frozen=True)
class Chunk:
    """Runs of one group trained by one job."""

    module: str
    group: str
    index: int
    runs: tuple[RunSpec, ...]

    @property
    def id(self) -> str:
        return f"{self.module}/{self.group}.{self.index}"


def fingerprint(run: RunSpec, code_hash: str) -> str:
    """What a finished run directory must match to count as up to date (``code_hash``: that of
    the network training code; a task run uses its task's own, :meth:`RunSpec.code_hash`)."""
    blob = f"{run.config_text}\n{run.code_hash(code_hash)}".encode()
    return hashlib.sha256(blob).hexdigest()[:20]


# --------------------------------------------------------------------------- names


def _value_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    text = str(value)
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text)


def _key_labels(keys: Sequence[str]) -> dict[str, str]:
    """The last component of each dotted key, or the whole key where that is ambiguous."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {
        k: (tail if last.count(tail) == 1 and tail != "seed" else k.replace(".", "-"))
        for k, tail in zip(keys, last, strict=True)
    }


def point_name(swept: Mapping[str, Any], seed: int, labels: Mapping[str, str]) -> str:
    """``tau_hidden_s=0.005__seed=3``: the readable, deterministic name of a sweep's run."""
    parts = [f"{labels[k]}={_value_text(v)}" for k, v in swept.items()]
    return "__".join([*parts, f"seed={seed}"])


# --------------------------------------------------------------------------- expansion


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{dotted}: {part} is not a block")
    node[leaf] = copy.deepcopy(value)


def _get_dotted(tree: Mapping, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _seeds(value: int | Sequence[int]) -> list[int]:
    return list(range(value)) if isinstance(value, int) else list(value)


def _ends(values: Sequence[Any]) -> list[Any]:
    return list(values) if len(values) <= 2 else [values[0], values[-1]]


class ExpansionError(ValueError):
    """A problem with one field of a manifest's runs or sweeps: ``field`` and ``problem``."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


def _quick_overrides(resolved: Mapping[str, Any], given: Mapping | None) -> dict:
    """The size overrides quick scale applies to a run resolved at paper scale."""
    flat = _flatten(given or {})
    for dotted, bound in DEFAULT_QUICK.items():
        if dotted not in flat:
            flat[dotted] = min(_get_dotted(resolved, dotted), bound)
    out: dict = {}
    for dotted, value in flat.items():
        _set_dotted(out, dotted, value)
    return out


def _resolve(data: dict, where: str, field_prefix: str) -> dict:
    """The validated, resolved run config of ``data`` (raises :class:`ExpansionError`)."""
    try:
        cfg = config_from_dict(data, where)
    except ConfigError as exc:
        name = exc.field
        if name not in ("name", "preset", "seed", "<top>"):
            name = f"{field_prefix}.{name}"
        raise ExpansionError(name, exc.problem) from None
    resolved = cfg.to_dict()
    # where a run computes is not part of what it computes: moving a run between CPU and GPU
    # (or changing its thread count) never retrains it
    for key in ("device", "threads"):
        resolved.pop(key, None)
    return resolved


def _kind(spec: Mapping, prefix: str) -> str:
    """``"task"`` or ``"network"``: what a run or sweep entry computes (checked)."""
    from spikeloc.pipeline.tasks import check_task

    quick = spec.get("quick") or {}
    if "task" in spec:
        if "preset" in spec:
            raise ExpansionError(
                f"{prefix}.preset",
                "a run is a network (preset + overrides) or a task (task + params), not both",
            )
        for key, block in (("overrides", spec), ("overrides", quick)):
            if block.get(key):
                at = f"{prefix}.quick.{key}" if block is quick else f"{prefix}.{key}"
                raise ExpansionError(at, "a task run takes params, not overrides")
        problem = check_task(spec["task"])
        if problem:
            raise ExpansionError(f"{prefix}.task", problem)
        return "task"
    if "preset" not in spec:
        raise ExpansionError(
            prefix, "needs a preset (a core network) or a task (a library function)"
        )
    for key, block in (("params", spec), ("params", quick)):
        if key in block:
            at = f"{prefix}.quick.{key}" if block is quick else f"{prefix}.{key}"
            raise ExpansionError(at, "a network run takes overrides, not params (or name a task)")
    return "network"


def _task_config(task: str, params: Mapping, seed: int) -> dict[str, Any]:
    return {"task": task, "params": copy.deepcopy(dict(params)), "seed": seed}


def _single_run(module: str, name: str, spec: Mapping, scale: str, where: str, root: str):
    prefix = f"runs.{name}"
    if _kind(spec, prefix) == "task":
        params = dict(spec.get("params") or {})
        if scale == "quick":
            params = deep_merge(params, (spec.get("quick") or {}).get("params") or {})
        seed = int(spec.get("seed", 0))
        return RunSpec(
            module=module,
            group=SINGLE_RUNS,
            name=name,
            path=f"{root}/runs/{module}/{name}",
            config=_task_config(spec["task"], params, seed),
            seed=seed,
            device=spec.get("device"),
            task=spec["task"],
        )
    base = {"name": f"{module}.{name}", "preset": spec["preset"], "seed": spec.get("seed", 0)}
    data = deep_merge(base, spec.get("overrides") or {})
    resolved = _resolve(data, where, f"{prefix}.overrides")
    if scale == "quick":
        quick = (spec.get("quick") or {}).get("overrides")
        data = deep_merge(data, _quick_overrides(resolved, quick))
        resolved = _resolve(data, where, f"{prefix}.quick.overrides")
    return RunSpec(
        module=module,
        group=SINGLE_RUNS,
        name=name,
        path=f"{root}/runs/{module}/{name}",
        config=resolved,
        seed=int(base["seed"]),
        device=spec.get("device"),
    )


def _sweep_points(spec: Mapping, scale: str, prefix: str) -> list[dict[str, Any]]:
    grid = dict(spec.get("grid") or {})
    zipped = dict(spec.get("zip") or {})
    both = sorted(set(grid) & set(zipped))
    if both:
        raise ExpansionError(f"{prefix}.zip.{both[0]}", "is also a grid key; sweep it once")
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        bad = next(k for k in lengths if lengths[k] != lengths[first])
        raise ExpansionError(
            f"{prefix}.zip.{bad}",
            f"has {lengths[bad]} values, {first} has {lengths[first]}: zipped lists must be "
            "of one length",
        )
    if scale == "quick":
        quick = spec.get("quick") or {}
        for block, keys in (("grid", grid), ("zip", zipped)):
            for key in quick.get(block) or {}:
                if key not in keys:
                    raise ExpansionError(
                        f"{prefix}.quick.{block}.{key}",
                        f"is not a {block} key of the sweep (quick scale may only take fewer "
                        "values of the swept keys)",
                    )
        if quick.get("zip"):
            if set(quick["zip"]) != set(zipped):
                missing = sorted(set(zipped) - set(quick["zip"]))[0]
                raise ExpansionError(
                    f"{prefix}.quick.zip.{missing}",
                    "missing: quick zip lists replace all zipped lists together",
                )
            zipped = dict(quick["zip"])
            if len({len(v) for v in zipped.values()}) > 1:
                raise ExpansionError(f"{prefix}.quick.zip", "zipped lists must be of one length")
        else:
            zipped = {k: _ends(v) for k, v in zipped.items()}
        grid = {k: list((quick.get("grid") or {}).get(k, _ends(v))) for k, v in grid.items()}
    axes = [[(k, v) for v in values] for k, values in grid.items()]
    rows = [list(zip(zipped, vals, strict=True)) for vals in zip(*zipped.values(), strict=True)]
    points = []
    for combo in itertools.product(*axes):
        for row in rows or [[]]:
            points.append(dict([*combo, *row]))
    return points


def _sweep_runs(module: str, name: str, spec: Mapping, scale: str, where: str, root: str):
    prefix = f"sweeps.{name}"
    if name == SINGLE_RUNS:
        raise ExpansionError(prefix, f"{SINGLE_RUNS!r} names the module's single runs; rename it")
    # (the schema admits only stimulus/model/training keys in overrides, grids and zips: the
    # run-level keys name, preset, seed, device and threads are set by the runs block)
    keys = [*(spec.get("grid") or {}), *(spec.get("zip") or {})]
    labels = _key_labels(keys)
    seeds = _seeds(spec.get("seeds", 1))
    if scale == "quick":
        quick = spec.get("quick") or {}
        seeds = _seeds(quick["seeds"]) if "seeds" in quick else seeds[:DEFAULT_QUICK_SEEDS]
    if _kind(spec, prefix) == "task":
        return _task_sweep_runs(module, name, spec, scale, root, labels, seeds)
    for key in keys:
        if key.startswith("params."):
            block = "grid" if key in (spec.get("grid") or {}) else "zip"
            raise ExpansionError(
                f"{prefix}.{block}.{key}",
                "params.<key> sweeps a task's params; this sweep "
                "trains a network (sweep stimulus., model. or training. keys)",
            )
    base = {"preset": spec["preset"]}
    base = deep_merge(base, spec.get("overrides") or {})
    runs = []
    for point in _sweep_points(spec, scale, prefix):
        for seed in seeds:
            pname = point_name(point, seed, labels)
            data = copy.deepcopy(base)
            for key, value in point.items():
                try:
                    _set_dotted(data, key, value)
                except ValueError as exc:
                    block = "grid" if key in (spec.get("grid") or {}) else "zip"
                    raise ExpansionError(f"{prefix}.{block}.{key}", str(exc)) from None
            data.update(name=f"{module}.{name}.{pname}", seed=seed)
            try:
                resolved = _resolve(data, where, f"{prefix}.overrides")
            except ExpansionError as exc:
                swept = next((k for k in point if exc.field.endswith("." + k)), None)
                if swept is not None:
                    where_in = "grid" if swept in (spec.get("grid") or {}) else "zip"
                    raise ExpansionError(
                        f"{prefix}.{where_in}.{swept}",
                        f"{_value_text(point[swept])}: {exc.problem}",
                    ) from None
                raise
            if scale == "quick":
                quick_over = (spec.get("quick") or {}).get("overrides")
                data = deep_merge(data, _quick_overrides(resolved, quick_over))
                resolved = _resolve(data, where, f"{prefix}.quick.overrides")
            runs.append(
                RunSpec(
                    module=module,
                    group=name,
                    name=pname,
                    path=f"{root}/runs/{module}/{name}/{pname}",
                    config=resolved,
                    seed=seed,
                    swept=dict(point),
                    device=spec.get("device"),
                )
            )
    return runs


def _task_sweep_runs(module, name, spec, scale, root, labels, seeds) -> list[RunSpec]:
    prefix = f"sweeps.{name}"
    for block in ("grid", "zip"):
        for key in spec.get(block) or {}:
            if not key.startswith("params."):
                raise ExpansionError(
                    f"{prefix}.{block}.{key}",
                    "a task sweep varies its params: name the key params.<key>",
                )
    params = dict(spec.get("params") or {})
    if scale == "quick":
        params = deep_merge(params, (spec.get("quick") or {}).get("params") or {})
    runs = []
    for point in _sweep_points(spec, scale, prefix):
        for seed in seeds:
            tree = {"params": copy.deepcopy(params)}
            for key, value in point.items():
                try:
                    _set_dotted(tree, key, value)
                except ValueError as exc:
                    block = "grid" if key in (spec.get("grid") or {}) else "zip"
                    raise ExpansionError(f"{prefix}.{block}.{key}", str(exc)) from None
            pname = point_name(point, seed, labels)
            runs.append(
                RunSpec(
                    module=module,
                    group=name,
                    name=pname,
                    path=f"{root}/runs/{module}/{name}/{pname}",
                    config=_task_config(spec["task"], tree["params"], seed),
                    seed=seed,
                    swept=dict(point),
                    device=spec.get("device"),
                    task=spec["task"],
                )
            )
    return runs


def expand_module(
    module: str, manifest: Mapping[str, Any], scale: str, *, where: str = "", root: str = ""
) -> tuple[dict[str, RunSpec], dict[str, list[RunSpec]]]:
    """``(runs, sweeps)`` of one manifest at one scale: run name -> spec, sweep -> its runs.

    ``root`` is the scale's results directory (default ``results/<scale>``); ``where`` names
    the manifest in errors. Raises :class:`ExpansionError` naming the manifest field.
    """
    if scale not in SCALES:
        raise ExpansionError("scale", f"{scale!r} is not one of {', '.join(SCALES)}")
    root = root or results_dir(scale)
    runs = {
        name: _single_run(module, name, spec, scale, where, root)
        for name, spec in (manifest.get("runs") or {}).items()
    }
    sweeps = {}
    for name, spec in (manifest.get("sweeps") or {}).items():
        if name in runs:
            raise ExpansionError(f"sweeps.{name}", "a run of this module has the same name")
        sweeps[name] = _sweep_runs(module, name, spec, scale, where, root)
    return runs, sweeps


def chunks(module: str, group: str, runs: Sequence[RunSpec], size: int) -> list[Chunk]:
    """Consecutive chunks of ``size`` runs (the last may be shorter); runs of one device each."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    out = []
    n = math.ceil(len(runs) / size)
    for i in range(n):
        out.append(Chunk(module, group, i, tuple(runs[i * size : (i + 1) * size])))
    return out
