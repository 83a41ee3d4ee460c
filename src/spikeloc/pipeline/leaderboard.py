"""The leaderboard's registry: every module manifest's ``leaderboard:`` entries, evaluated on
the common protocol (:mod:`spikeloc.analysis.leaderboard`) and printed by ``spikeloc leaderboard``.

A newcomer enters a localiser with a few lines in *their own* manifest, e.g.::

    leaderboard:
      - name: my_net                      # unique within the module
        title: "My network (30 LIF, learned delays)"
        localiser: trained_run            # a run of this module, built by spikeloc.core
        run: my_run
      - name: my_model
        title: "My hand-built model"
        localiser: spikeloc.analysis.my_module:leaderboard_localiser   # factory(options, run)
        options: {n_neurons: 50}
      - name: my_sweep_point              # one point of a sweep: every seed of it is evaluated
        title: "My network, 3 dendritic segments"
        localiser: trained_run
        sweep: my_sweep
        point: {model.dendrites.segments: 3}   # swept key -> value; must pick one point

A factory's ``run`` is ``(model, run_config, metrics)`` for a network run, the
:class:`spikeloc.pipeline.tasks.TaskRun` for a task run, and None without ``run``.

Nothing shared is edited; the schema (``workflow/schemas/manifest.schema.json``) checks the
fields and :func:`entries` checks that the run (or sweep point) exists and the factory
imports. ``python -m spikeloc.pipeline.leaderboard figure`` draws the paper's figure from the
table the command wrote (rule ``leaderboard_figure``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeloc.analysis import leaderboard as lb
from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_json
from spikeloc.pipeline.manifests import ANALYSES_DIR, load_manifests
from spikeloc.pipeline.tasks import TASK_RUN_FILES, load_task_run

__all__ = [
    "Entry",
    "configure_parser",
    "entries",
    "evaluate_entry",
    "format_table",
    "main",
    "members",
    "rank",
]

BUILTIN = {"trained_run": lb.trained_network}


@dataclass(frozen=True)
class Entry:
    module: str
    name: str
    title: str
    localiser: str
    run: str | None
    options: dict
    source: str
    sweep: str | None = None
    point: dict | None = None

    @property
    def id(self) -> str:
        return f"{self.module}.{self.name}"


def _factory(entry: Entry):
    if entry.localiser in BUILTIN:
        return BUILTIN[entry.localiser]
    mod, _, fn = entry.localiser.partition(":")
    try:
        return getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        raise SpikelocError(f"{entry.source}: leaderboard.{entry.name}.localiser: {exc}") from None


def entries(analyses_dir: str | Path = ANALYSES_DIR, *, root: str | Path = ".") -> list[Entry]:
    """Every registered entry, checked (unique names, runs that exist, importable factories)."""
    out = []
    for name, m in sorted(load_manifests(analyses_dir, root=root).items()):
        seen = set()
        for i, e in enumerate(m.get("leaderboard", [])):
            where = f"{m.source}: leaderboard[{i}]"
            if e["name"] in seen:
                raise SpikelocError(f"{where}.name: {e['name']!r} is used twice in this module")
            seen.add(e["name"])
            run, sweep, point = e.get("run"), e.get("sweep"), e.get("point")
            if run is not None and sweep is not None:
                raise SpikelocError(f"{where}: give run or sweep, not both")
            if run is not None and run not in m.runs["paper"]:
                known = ", ".join(sorted(m.runs["paper"])) or "none"
                raise SpikelocError(
                    f"{where}.run: {run!r} is not a run of this module (runs: {known})"
                )
            if sweep is not None:
                _check_point(m, where, sweep, point or {})
            elif point is not None:
                raise SpikelocError(f"{where}.point: only with sweep")
            if e["localiser"] == "trained_run" and run is None and sweep is None:
                raise SpikelocError(
                    f"{where}.run: trained_run needs one of this module's runs (or a sweep)"
                )
            entry = Entry(
                name,
                e["name"],
                e["title"],
                e["localiser"],
                run,
                dict(e.get("options", {})),
                m.source,
                sweep,
                dict(point) if point is not None else None,
            )
            _factory(entry)
            out.append(entry)
    return out


def _matches(swept: dict, point: dict) -> bool:
    return all(k in swept and swept[k] == v for k, v in point.items())


def _check_point(m, where: str, sweep: str, point: dict) -> None:
    """The sweep exists and ``point`` names exactly one of its points (at paper scale)."""
    if sweep not in m.sweeps["paper"]:
        known = ", ".join(sorted(m.sweeps["paper"])) or "none"
        raise SpikelocError(f"{where}.sweep: {sweep!r} is not a sweep of this module ({known})")
    runs = m.sweeps["paper"][sweep]
    keys = sorted({k for r in runs for k in r.swept})
    for k in point:
        if k not in keys:
            raise SpikelocError(
                f"{where}.point.{k}: not a swept key of {sweep} (swept: {', '.join(keys)})"
            )
    points = {json.dumps(r.swept, sort_keys=True) for r in runs if _matches(r.swept, point)}
    if len(points) != 1:
        raise SpikelocError(
            f"{where}.point: {point} matches {len(points)} points of sweep {sweep}, must match "
            f"one (give a value for each of: {', '.join(keys)})"
        )


def members(entry: Entry, scale: str, *, root: str | Path = "."):
    """The run specs an entry evaluates at ``scale`` (several: the seeds of a sweep point)."""
    from spikeloc.pipeline.manifests import load_manifest

    if entry.run is None and entry.sweep is None:
        return []
    m = load_manifest(entry.module, root=root)
    if entry.run is not None:
        return [m.runs[scale][entry.run]]
    return [r for r in m.sweeps[scale][entry.sweep] if _matches(r.swept, entry.point or {})]


def _missing(entry: Entry, spec, root: Path) -> str | None:
    """Why a run cannot be evaluated yet (None: it is finished)."""
    path = root / spec.path
    if spec.task is not None:
        if not all((path / f).is_file() for f in TASK_RUN_FILES):
            return f"not computed: snakemake analyse_{entry.module}"
        return None
    return None if (path / "model.pt").is_file() else f"not trained: snakemake {path}/model.pt"


def _load(spec, root: Path):
    """What a factory receives for one run: ``(model, run_config, metrics)`` of a network
    run, the :class:`~spikeloc.pipeline.tasks.TaskRun` of a task run."""
    from spikeloc.pipeline.results import load_run

    path = root / spec.path
    return load_task_run(path) if spec.task is not None else load_run(path)[:3]


def evaluate_entry(entry: Entry, scale: str, *, root: str | Path = ".") -> dict[str, Any]:
    """One row: the entry's metrics under the scale's protocol (or why it has none yet)."""
    row = {"entry": entry.id, "module": entry.module, "title": entry.title}
    root = Path(root)
    specs = members(entry, scale, root=root)
    if (entry.run is not None or entry.sweep is not None) and not specs:
        return {**row, "status": f"not at {scale} scale: the point is not in sweep {entry.sweep}"}
    for spec in specs:
        why = _missing(entry, spec, root)
        if why is not None:
            return {**row, "status": why}
    protocol = lb.PROTOCOLS[scale]
    t0 = time.perf_counter()
    results = []
    for run in [_load(spec, root) for spec in specs] or [None]:
        results.append(lb.evaluate(_factory(entry)(entry.options, run), protocol))
    result = _finite(lb.combine(results))
    if result["mae_deg"] is None:
        return {**row, "status": "evaluated, but its estimates give no finite error"}
    return {**row, "status": "ok", **result, "evaluation_wall_s": time.perf_counter() - t0}


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinity replaced by None (strict JSON, which Typst reads)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def rank(rows: list[dict]) -> list[dict]:
    """The rows, evaluated ones first by MAE with their ``rank`` (1 = best), then the rest."""
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["mae_deg"])
    return [{**r, "rank": i} for i, r in enumerate(ok, 1)] + [
        {**r, "rank": None} for r in rows if r["status"] != "ok"
    ]


def _num(x: float | None, width: int = 8) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}.1f}"


def format_table(rows: list[dict], protocol: str) -> str:
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["mae_deg"])
    head = f"{'#':>2}  {'entry':<38} {'MAE (deg)':>12} {'acc (%)':>8} {'params':>7} {'spikes':>8} {'train (s)':>9}  stimulus"
    lines = [f"protocol: {protocol}", head, "-" * len(head)]
    for i, r in enumerate(ok, 1):
        lines.append(
            f"{i:>2}  {r['entry']:<38} {r['mae_deg']:>6.1f} ± {r['mae_sd_deg']:<4.1f}"
            f"{r['accuracy_pct']:>8.1f} {r['n_parameters']:>7d} {_num(r['spikes_per_decision'])}"
            f" {_num(r['training_time_s'], 9)}  {r['stimulus']}"
        )
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"--  {r['entry']:<38} {r['status']}")
    return "\n".join(lines)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scale", choices=["paper", "quick"], default="paper", help="which runs and protocol"
    )
    p.add_argument("--entry", action="append", help="only this entry (module.name); repeatable")
    p.add_argument("--out", help="also write the rows as JSON here")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    todo = entries()
    if args.entry:
        known = {e.id for e in todo}
        for want in args.entry:
            if want not in known:
                raise SpikelocError(
                    f"--entry: {want!r} is not registered (known: {', '.join(sorted(known))})"
                )
        todo = [e for e in todo if e.id in args.entry]
    rows = [evaluate_entry(e, args.scale) for e in todo]
    protocol = lb.PROTOCOLS[args.scale].describe()
    if args.out:
        atomic_write_json(
            args.out,
            {
                "format": "spikeloc-leaderboard/1",
                "scale": args.scale,
                "protocol": protocol,
                "protocol_spec": lb.PROTOCOLS[args.scale].spec(),
                "n_entries": len(rows),
                "n_evaluated": sum(r["status"] == "ok" for r in rows),
                "rows": rank(rows),
            },
        )
    print(json.dumps(rows, indent=1) if args.json else format_table(rows, protocol))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m spikeloc.pipeline.leaderboard figure --table T --out-dir D``: the figure."""
    import sys

    p = argparse.ArgumentParser(prog="python -m spikeloc.pipeline.leaderboard")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("figure", help="draw figures/<scale>/leaderboard.* from the table")
    f.add_argument(
        "--table", type=Path, required=True, help="leaderboard.json (spikeloc leaderboard --out)"
    )
    f.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        try:
            data = json.loads(args.table.read_text(encoding="utf-8"))
            rows = data["rows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpikelocError(f"{args.table}: not a leaderboard table ({exc})") from None
        from spikeloc.analysis.leaderboard_plots import error_vs_cost
        from spikeloc.pipeline.figures import save_figure

        save_figure(error_vs_cost(rows), "leaderboard", module="leaderboard", out_dir=args.out_dir)
    except SpikelocError as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir}/leaderboard.pdf")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
