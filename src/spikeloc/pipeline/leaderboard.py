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

A factory's ``run`` is ``(model, run_config, metrics)`` for a network run, the
:class:`spikeloc.pipeline.tasks.TaskRun` for a task run, and None without ``run``.

Nothing shared is edited; the schema (``workflow/schemas/manifest.schema.json``) checks the
fields and :func:`entries` checks that the run exists and the factory imports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeloc.analysis import leaderboard as lb
from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_json
from spikeloc.pipeline.manifests import ANALYSES_DIR, load_manifests
from spikeloc.pipeline.tasks import TASK_RUN_FILES, load_task_run

__all__ = ["Entry", "configure_parser", "entries", "evaluate_entry", "format_table"]

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
            run = e.get("run")
            if run is not None and run not in m.runs["paper"]:
                known = ", ".join(sorted(m.runs["paper"])) or "none"
                raise SpikelocError(
                    f"{where}.run: {run!r} is not a run of this module (runs: {known})"
                )
            if e["localiser"] == "trained_run" and run is None:
                raise SpikelocError(f"{where}.run: trained_run needs one of this module's runs")
            entry = Entry(
                name,
                e["name"],
                e["title"],
                e["localiser"],
                run,
                dict(e.get("options", {})),
                m.source,
            )
            _factory(entry)
            out.append(entry)
    return out


def evaluate_entry(entry: Entry, scale: str, *, root: str | Path = ".") -> dict[str, Any]:
    """One row: the entry's metrics under the scale's protocol (or why it has none yet)."""
    from spikeloc.pipeline.manifests import load_manifest
    from spikeloc.pipeline.results import load_run

    row = {"entry": entry.id, "module": entry.module, "title": entry.title}
    run = None
    if entry.run is not None:
        spec = load_manifest(entry.module, root=root).runs[scale][entry.run]
        path = Path(root) / spec.path
        if spec.task is not None:  # a task run: the factory gets the TaskRun
            if not all((path / f).is_file() for f in TASK_RUN_FILES):
                return {**row, "status": f"not computed: snakemake analyse_{entry.module}"}
            run = load_task_run(path)
        elif not (path / "model.pt").is_file():
            return {**row, "status": f"not trained: snakemake {path}/model.pt"}
        else:
            model, cfg, metrics, _ = load_run(path)
            run = (model, cfg, metrics)
    t0 = time.perf_counter()
    loc = _factory(entry)(entry.options, run)
    result = lb.evaluate(loc, lb.PROTOCOLS[scale])
    return {**row, "status": "ok", **result, "evaluation_wall_s": time.perf_counter() - t0}


def format_table(rows: list[dict], protocol: str) -> str:
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["mae_deg"])
    head = f"{'#':>2}  {'entry':<38} {'MAE (deg)':>12} {'acc (%)':>8} {'params':>7} {'spikes':>8} {'train (s)':>9}  stimulus"
    lines = [f"protocol: {protocol}", head, "-" * len(head)]
    for i, r in enumerate(ok, 1):
        lines.append(
            f"{i:>2}  {r['entry']:<38} {r['mae_deg']:>6.1f} ± {r['mae_sd_deg']:<4.1f}"
            f"{r['accuracy_pct']:>8.1f} {r['n_parameters']:>7d} {r['spikes_per_decision']:>8.1f}"
            f" {r['training_time_s']:>9.1f}  {r['stimulus']}"
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
        atomic_write_json(args.out, {"scale": args.scale, "protocol": protocol, "rows": rows})
    print(json.dumps(rows, indent=1) if args.json else format_table(rows, protocol))
    return 0
