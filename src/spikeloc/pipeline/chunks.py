"""Training a chunk of runs in one process, and the tables of sweeps.

The workflow writes one *chunk spec* per chunk (:func:`spec_text`: the runs' directories and
resolved configs, and the hash of the code that trains them) and runs::

    spikeloc train-chunk results/paper/chunks/<module>/<group>.<k>.spec.json \
        --out results/paper/chunks/<module>/<group>.<k>.json --device cpu --threads 2

:func:`train_chunk` trains the chunk's runs in this one process (one start, one kernel
compile): those that share shapes and schedule together as one ensemble
(:mod:`spikeloc.core.ensemble`), the others one after the other; it skips a run whose directory
already holds the same fingerprint (config + code) and resumes one that was killed alone
(``<run>.partial/`` keeps its last epoch checkpoint).
Every run directory appears in one rename when it is complete; the chunk's result file (one row
per run: its name, swept values, seed and every metric) is written last, atomically, so a
killed chunk leaves no result and its rerun trains only the runs that had not finished.

``spikeloc sweep-table`` concatenates the result files of a sweep's chunks into
``results/<scale>/sweeps/<module>/<sweep>.csv`` (:func:`write_table`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spikeloc.core.config import RunConfig, config_from_dict
from spikeloc.core.training import train_run
from spikeloc.errors import ConfigError, SpikelocError, WeightsError
from spikeloc.io import atomic_write_json, atomic_write_text
from spikeloc.pipeline import tasks
from spikeloc.pipeline.sweeps import SINGLE_RUNS, Chunk, fingerprint
from spikeloc.pipeline.tasks import TASK_RUN_FILES, is_task_run, run_task
from spikeloc.pipeline.validation import show_path, type_name

__all__ = [
    "RUN_FILES",
    "read_result",
    "run_is_current",
    "spec_digest",
    "spec_text",
    "train_chunk",
    "write_spec",
    "write_table",
]

SPEC_FORMAT = "spikeloc-chunk/1"
RESULT_FORMAT = "spikeloc-chunk-result/1"
#: The files of a finished run directory.
RUN_FILES = ("model.pt", "metrics.json", "history.csv", "provenance.json", "config.yaml")
#: Marks a ``.partial`` directory with the fingerprint of the run it is training.
PARTIAL_MARK = tasks.PARTIAL_MARK

log = logging.getLogger("spikeloc.chunks")


def spec_text(chunk: Chunk, code_hash: str) -> str:
    """The chunk spec as canonical JSON text (the rule that writes it hashes it as a param)."""
    runs = [
        {
            "name": r.name,
            "path": r.path,
            "seed": r.seed,
            "swept": r.swept,
            "config": r.config,
            "fingerprint": fingerprint(r, code_hash),
            **({"task": r.task, "code_hash": r.code_hash(code_hash)} if r.task else {}),
        }
        for r in chunk.runs
    ]
    spec = {
        "format": SPEC_FORMAT,
        "module": chunk.module,
        "group": chunk.group,
        "index": chunk.index,
        "code_hash": code_hash,
        "runs": runs,
    }
    return json.dumps(spec, sort_keys=True, indent=1, default=str) + "\n"


def spec_digest(text: str) -> str:
    """Short hash of a chunk spec's text: the workflow's rerun trigger for it."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_spec(
    module: str,
    group: str,
    index: int,
    out: str | Path,
    *,
    scale: str,
    default_chunk_size: int,
    digest: str | None = None,
    analyses_dir: str | Path = "workflow/analyses",
) -> Path:
    """Write the spec of chunk ``<module>/<group>.<index>`` at ``scale`` from the manifest.

    ``digest``: what the workflow computed while it was parsed; a spec that differs now (the
    manifest or the library changed since) is refused rather than trained under a stale name.
    """
    from spikeloc.pipeline.codehash import code_hash
    from spikeloc.pipeline.manifests import load_manifest, module_chunks

    manifest = load_manifest(module, analyses_dir)
    found = {(c.group, c.index): c for c in module_chunks(manifest, scale, default_chunk_size)}
    if (group, index) not in found:
        raise SpikelocError(
            f"{manifest.source}: {group}: the module has no chunk {group}.{index} at {scale} scale"
        )
    text = spec_text(found[(group, index)], code_hash())
    if digest is not None and spec_digest(text) != digest:
        raise SpikelocError(
            f"{manifest.source}: (chunk {group}.{index}): the manifest or the library changed "
            "since the workflow was started; run snakemake again"
        )
    return atomic_write_text(out, text)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpikelocError(f"{show_path(path)}: (file): no such {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpikelocError(f"{show_path(path)}: (file): not a readable {what}: {exc}") from None


def _read_spec(path: Path) -> dict:
    spec = _read_json(path, "chunk spec")
    where = show_path(path)
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise SpikelocError(f"{where}: format: not a {SPEC_FORMAT} chunk spec")
    runs = spec.get("runs")
    if not isinstance(runs, list) or not runs:
        raise SpikelocError(f"{where}: runs: must be a non-empty list, got {type_name(runs)}")
    for i, run in enumerate(runs):
        for key, kind in (("name", str), ("path", str), ("config", dict), ("fingerprint", str)):
            if not isinstance(run, dict) or not isinstance(run.get(key), kind):
                raise SpikelocError(f"{where}: runs[{i}].{key}: missing or of the wrong type")
    return spec


def run_is_current(run_dir: str | Path, fp: str, files: Sequence[str] = RUN_FILES) -> bool:
    """Whether ``run_dir`` is a complete run directory (``files``: those of a network run, or
    :data:`spikeloc.pipeline.tasks.TASK_RUN_FILES`) made with fingerprint ``fp``."""
    run_dir = Path(run_dir)
    if not all((run_dir / f).is_file() for f in files):
        return False
    try:
        prov = json.loads((run_dir / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(prov, dict) and prov.get("fingerprint") == fp


def _prepare_partial(run_dir: Path, fp: str, *, task: bool = False) -> str:
    """Keep ``<run>.partial/`` only if it trains this fingerprint; mark it. Returns the state
    (``resumed``: a network run's checkpoint, or anything a task left there, is kept)."""
    partial = run_dir.with_name(run_dir.name + ".partial")
    mark = partial / PARTIAL_MARK
    state = "fresh"
    if partial.exists():
        try:
            kept = json.loads(mark.read_text(encoding="utf-8")).get("fingerprint") == fp
        except (OSError, ValueError, AttributeError):
            kept = False
        left = (
            any(p.name != PARTIAL_MARK for p in partial.iterdir())
            if task
            else (partial / "checkpoint.pt").is_file()
        )
        if kept and left:
            state = "resumed"
        elif not kept:
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_json(mark, {"fingerprint": fp})
    return state


def _row(run: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"run": run["name"], "path": run["path"]}
    row.update(run.get("swept") or {})
    row["seed"] = run.get("seed")
    row.update(metrics)
    return row


def train_chunk(
    spec_path: str | Path,
    out_path: str | Path,
    *,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    ensemble: bool = True,
    say: Callable[[str], None] = print,
) -> dict:
    """Train every run of a chunk spec that is not up to date; write the result file.

    With ``ensemble`` (the default), runs that share their shapes and schedule
    (:func:`spikeloc.core.ensemble.ensemble_key`) train together as one ensemble; a run that
    resumes its own checkpoint, or has no partner, trains alone."""
    from spikeloc.core.ensemble import group_for_ensembles, train_ensemble_runs

    spec_path, out_path = Path(spec_path), Path(out_path)
    spec = _read_spec(spec_path)
    runs = spec["runs"]
    label = f"{spec.get('module')}/{spec.get('group')}.{spec.get('index')}"
    started = time.perf_counter()

    def head(i: int) -> str:
        return f"chunk {label}: run {i + 1}/{len(runs)} {runs[i]['name']}"

    todo: list[int] = []
    cfgs: dict[int, RunConfig] = {}
    resumed: set[int] = set()
    tasks: list[int] = []
    for i, run in enumerate(runs):
        if is_task_run(run["config"]):
            if run_is_current(run["path"], run["fingerprint"], TASK_RUN_FILES):
                say(f"{head(i)}: up to date")
                continue
            if _prepare_partial(Path(run["path"]), run["fingerprint"], task=True) == "resumed":
                resumed.add(i)
            tasks.append(i)
            todo.append(i)
            continue
        if run_is_current(run["path"], run["fingerprint"]):
            say(f"{head(i)}: up to date")
            continue
        data = {**run["config"], "device": device, "threads": threads}
        try:
            cfgs[i] = config_from_dict(data, f"{show_path(spec_path)}: runs[{i}].config")
        except ConfigError as exc:
            raise SpikelocError(
                f"{show_path(spec_path)}: runs[{i}].config.{exc.field}: {exc.problem}"
            ) from None
        if _prepare_partial(Path(run["path"]), run["fingerprint"]) == "resumed":
            resumed.add(i)
        todo.append(i)
    if tasks:
        from spikeloc.core.training import resolve_device
        from spikeloc.engine.runtime import configure_runtime

        configure_runtime(threads)
        where_device = str(resolve_device(device))
    for i in tasks:
        _compute_task(runs[i], spec, head(i), i in resumed, where_device, threads, progress, say)
    nets = [i for i in todo if i not in tasks]
    fresh = [i for i in nets if i not in resumed]
    groups = group_for_ensembles([cfgs[i] for i in fresh]) if ensemble else []
    together = [[fresh[k] for k in g] for g in groups if len(g) > 1]
    alone = [i for i in nets if not any(i in g for g in together)]
    for i in alone:
        _train_alone(runs[i], cfgs[i], spec, head(i), i in resumed, progress, say)
    for group in together:
        names = ", ".join(runs[i]["name"] for i in group)
        say(f"chunk {label}: training {len(group)} runs as one ensemble: {names}")
        t0 = time.perf_counter()
        train_ensemble_runs(
            [cfgs[i] for i in group],
            [runs[i]["path"] for i in group],
            progress=progress,
            provenance=[_provenance(runs[i], spec) for i in group],
        )
        say(f"chunk {label}: ensemble of {len(group)} done in {time.perf_counter() - t0:.1f} s")
    rows = [
        _row(run, _read_json(Path(run["path"]) / "metrics.json", "metrics file")) for run in runs
    ]
    result = {
        "format": RESULT_FORMAT,
        "module": spec.get("module"),
        "group": spec.get("group"),
        "index": spec.get("index"),
        "trained": len(todo),
        "rows": rows,
    }
    atomic_write_json(out_path, result)
    say(
        f"chunk {label}: {len(todo)} trained, {len(runs) - len(todo)} up to date, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return result


def _provenance(run: Mapping[str, Any], spec: Mapping[str, Any]) -> dict:
    code = run.get("code_hash", spec.get("code_hash"))  # a task run's own, else the network's
    return {"fingerprint": run["fingerprint"], "code_hash": code}


def _manifest_field(spec: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    """The manifest entry of a chunk's run, as errors name it."""
    from spikeloc.pipeline.manifests import ANALYSES_DIR

    module, group = spec.get("module"), spec.get("group")
    entry = f"runs.{run['name']}" if group == SINGLE_RUNS else f"sweeps.{group}"
    return f"{ANALYSES_DIR}/{module}.yaml: {entry}"


def _compute_task(run, spec, head, resumed, device, threads, progress, say) -> None:
    say(
        f"{head}: computing {run['config']['task']}"
        f"{' (resuming what its last attempt left)' if resumed else ''}"
    )
    t0 = time.perf_counter()
    run_task(
        run,
        where=_manifest_field(spec, run),
        device=device,
        threads=threads,
        progress=progress,
        provenance=_provenance(run, spec),
    )
    say(f"{head}: done in {time.perf_counter() - t0:.1f} s")


def _train_alone(run, cfg, spec, head, resumed, progress, say) -> None:
    run_dir = Path(run["path"])
    tr = cfg.training
    say(
        f"{head}: training ({tr.epochs} epochs of {tr.n_train} samples"
        f"{', resuming its checkpoint' if resumed else ''})"
    )
    t0 = time.perf_counter()
    extra = _provenance(run, spec)
    try:
        train_run(cfg, run_dir, resume=True, progress=progress, provenance=extra)
    except (ConfigError, WeightsError) as exc:
        partial = run_dir.with_name(run_dir.name + ".partial")
        unreadable = isinstance(exc, WeightsError) and Path(exc.source) == partial / "checkpoint.pt"
        if exc.field != "config_hash" and not unreadable:
            raise
        # the checkpoint does not match or cannot be read: it is only a cache, start afresh
        say(f"{head}: its checkpoint cannot be used ({exc.problem}); training afresh")
        shutil.rmtree(partial, ignore_errors=True)
        _prepare_partial(run_dir, run["fingerprint"])
        train_run(cfg, run_dir, resume=True, progress=progress, provenance=extra)
    say(f"{head}: done in {time.perf_counter() - t0:.1f} s")


def read_result(path: str | Path) -> list[dict[str, Any]]:
    """The rows of one chunk result file."""
    path = Path(path)
    data = _read_json(path, "chunk result")
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        raise SpikelocError(f"{show_path(path)}: format: not a {RESULT_FORMAT} chunk result")
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise SpikelocError(f"{show_path(path)}: rows: must be a list, got {type_name(rows)}")
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def table_text(results: Sequence[str | Path]) -> str:
    """CSV text of the rows of ``results`` in order; columns run, path, the swept keys (dotted
    names), seed, then the metrics, each group in order of first appearance; lists as JSON."""
    rows = [row for path in results for row in read_result(path)]
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    # result files are written with sorted keys, so order the groups here
    swept = [c for c in seen if "." in c]
    first = [c for c in ("run", "path") if c in seen]
    rest = [c for c in seen if c not in ("run", "path", "seed") and "." not in c]
    columns = dict.fromkeys([*first, *swept, *(["seed"] if "seed" in seen else []), *rest])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def write_table(results: Sequence[str | Path], out: str | Path) -> Path:
    """Write a sweep's table (one row per run) from its chunks' result files, atomically."""
    return atomic_write_text(out, table_text(results))
