"""Task runs: the pipeline's runs of anything that is not one of the core's networks.

A core network run names a ``preset`` and ``overrides`` (:mod:`spikeloc.core.config`). Other
studies compute other things -- a NEST simulation, a reservoir with a ridge readout, an
evolution strategy, a network with learned delays -- and declare them as *task runs*: a
library function and the parameters it is called with::

    runs:
      reservoir_500:
        task: spikeloc.analysis.reservoir:train      # module : function
        seed: 0
        params: {n_reservoir: 500, spectral_radius: 0.9}
        quick: {params: {n_train: 256}}               # deep-merged over params at quick scale
    sweeps:
      size:
        task: spikeloc.analysis.reservoir:train
        params: {spectral_radius: 0.9}
        grid: {params.n_reservoir: [50, 100, 200, 500]}   # keys into the run: params.<key>
        seeds: 5

Everything else is as for network runs: the runs are trained in chunk jobs (threads, memory,
a GPU, SLURM), each run lands in ``results/<scale>/runs/<module>/...`` in one rename, a sweep's
rows make its table, and a run is recomputed exactly when its task, params, seed or code change.

**The function** is called once per run::

    metrics = function(params, seed=seed, out_dir=partial_dir, device="cpu", threads=2,
                       progress=False)

It checks ``params`` first and raises :class:`spikeloc.errors.ConfigError` (``field``
relative to params) for a bad one: the chunk job then stops with one line naming the manifest
field (``workflow/analyses/m.yaml: runs.r.params.n_hidden: must be > 0``), exit code 2. It may
write any files into ``out_dir`` (the run's ``<run>.partial/`` directory, which survives a kill
and is handed back to a rerun with the same fingerprint, so the function may checkpoint there
and resume), and returns the run's metrics: a flat mapping of JSON values, which become
``metrics.json`` and the run's row in its sweep table. The pipeline then writes
``config.json`` (task, params, seed), ``metrics.json`` and ``provenance.json`` and renames the
directory into place.

**Code hash.** A task run depends on the code of its function's module and of every
``spikeloc`` module that one imports (:mod:`spikeloc.pipeline.codehash`), so keep plotting code
out of a task's module: an edit of a plot then retrains nothing.

Notebooks read a finished task run with :func:`load_task_run` (or the module's own loader for
the files its function wrote); a leaderboard factory of an entry whose ``run`` is a task run
receives the :class:`TaskRun`.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from spikeloc.errors import ConfigError, SpikelocError
from spikeloc.io import atomic_write_json, remove_temp_files
from spikeloc.pipeline import codehash
from spikeloc.provenance import provenance_record

__all__ = [
    "TASK_RUN_FILES",
    "TaskRun",
    "check_task",
    "is_task_run",
    "load_task_run",
    "run_task",
    "task_code_hash",
]

#: The files of a finished task run directory (besides whatever its function wrote).
TASK_RUN_FILES = ("metrics.json", "config.json", "provenance.json")
#: Marks a ``.partial`` directory with the fingerprint of the run it computes (chunk jobs).
PARTIAL_MARK = "fingerprint.json"


@dataclass(frozen=True)
class TaskRun:
    """A finished task run: its directory, what computed it and what it measured."""

    path: Path
    task: str
    params: dict[str, Any]
    seed: int
    metrics: dict[str, Any]

    def file(self, name: str) -> Path:
        """A file the task's function wrote into the run (named error if it did not)."""
        path = self.path / name
        if not path.is_file():
            raise SpikelocError(f"{path}: (file): the task run {self.task} wrote no such file")
        return path


def is_task_run(config: Mapping[str, Any]) -> bool:
    """Whether a run's resolved config (:class:`spikeloc.pipeline.sweeps.RunSpec.config`) is a
    task run's (``{"task", "params", "seed"}``) rather than a network run config."""
    return "task" in config and "params" in config


def _split(task: str) -> tuple[str, str]:
    module, _, function = task.partition(":")
    return module, function


def check_task(task: str) -> str | None:
    """Why ``task`` (``spikeloc.x.y:function``) cannot be a run's task, or None. Reads the
    source only (nothing is imported while the workflow is parsed)."""
    module, function = _split(task)
    if not function or not module.startswith(codehash.PACKAGE + "."):
        return f"{task!r} is not of the form spikeloc.<module>:<function>"
    path = codehash._module_file(module, codehash._package_dir())
    if path is None:
        return f"{task!r}: there is no module {module} in the library"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defined = {
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    if function not in defined:
        return f"{task!r}: {module} defines no function {function}"
    return None


@cache
def task_code_hash(task: str) -> str:
    """Hash of the code a task run executes: its module and the library modules it imports."""
    return codehash.code_hash((_split(task)[0],))


def _function(task: str, where: str) -> Callable[..., Mapping[str, Any]]:
    module, function = _split(task)
    try:
        fn = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise SpikelocError(f"{where}.task: {task!r} cannot be loaded: {exc}") from None
    if not callable(fn):
        raise SpikelocError(f"{where}.task: {task!r} is not a function")
    return fn


def _json_ready(metrics: Any, task: str) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        raise SpikelocError(f"{task}: returned {type(metrics).__name__}, not a mapping of metrics")
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise SpikelocError(f"{task}: metric name {key!r} is not a string")
        if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
            value = value.tolist()
        if isinstance(value, float) and not math.isfinite(value):
            value = None if math.isnan(value) else value
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError):
            raise SpikelocError(
                f"{task}: metric {key!r} is a {type(value).__name__}, not a JSON value"
            ) from None
        out[key] = value
    return out


def _install(partial: Path, run_dir: Path) -> None:
    """Rename the finished ``partial`` into ``run_dir`` (replacing an older run)."""
    old = run_dir.with_name(run_dir.name + ".old")
    if run_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(run_dir, old)
        os.replace(partial, run_dir)
    else:
        os.replace(partial, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_install(run_dir: Path) -> None:
    """A kill between the two renames of :func:`_install` leaves ``RUN.old``: put it back where
    ``RUN`` is missing, else drop it."""
    old = run_dir.with_name(run_dir.name + ".old")
    if old.is_dir():
        if run_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, run_dir)


def run_task(
    run: Mapping[str, Any],
    *,
    where: str,
    device: str,
    threads: int | None,
    progress: bool,
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """Compute one task run of a chunk spec (``run``: name, path, config, fingerprint) in its
    ``<run>.partial/`` directory, write its files and rename it into place; returns metrics.

    ``where`` names the run's manifest entry in errors (``workflow/analyses/m.yaml:
    runs.r``)."""
    cfg = run["config"]
    task, params, seed = cfg["task"], cfg["params"], int(cfg["seed"])
    run_dir = Path(run["path"])
    partial = run_dir.with_name(run_dir.name + ".partial")
    recover_interrupted_install(run_dir)
    partial.mkdir(parents=True, exist_ok=True)
    remove_temp_files(partial)
    fn = _function(task, where)
    started = time.time()
    t0 = time.perf_counter()
    try:
        metrics = fn(
            json.loads(json.dumps(params)),  # the function's own copy
            seed=seed,
            out_dir=partial,
            device=device,
            threads=threads,
            progress=progress,
        )
    except ConfigError as exc:
        raise SpikelocError(f"{where}.params.{exc.field}: {exc.problem}") from None
    wall = time.perf_counter() - t0
    metrics = _json_ready(metrics, task)
    metrics.setdefault("train_wall_s", wall)
    remove_temp_files(partial)
    (partial / PARTIAL_MARK).unlink(missing_ok=True)
    atomic_write_json(partial / "config.json", {"task": task, "params": params, "seed": seed})
    atomic_write_json(partial / "metrics.json", metrics)
    atomic_write_json(
        partial / "provenance.json",
        provenance_record(
            task=task,
            seed=seed,
            device=device,
            threads=threads,
            started_unix=started,
            finished_unix=time.time(),
            wall_s=wall,
            **provenance,
        ),
    )
    _install(partial, run_dir)
    return metrics


def load_task_run(path: str | Path) -> TaskRun:
    """A finished task run directory (a missing one names the chunk that computes it)."""
    path = Path(path)
    parts = path.parts
    module = parts[parts.index("runs") + 1] if "runs" in parts[:-1] else "<module>"
    for name in ("config.json", "metrics.json"):
        if not (path / name).is_file():
            raise SpikelocError(
                f"{path}: (run): not a finished task run (no {name}); compute it first: "
                f"`snakemake analyse_{module}` (add `--configfile config/quick.yaml` for a "
                "quick one)"
            )
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpikelocError(f"{path}: (run): unreadable task run: {exc}") from None
    return TaskRun(path, cfg["task"], dict(cfg["params"]), int(cfg["seed"]), metrics)
