"""Learning curves of the other-ways-to-train modules (``evolution``, ``rstdp``): budget
look-ups and the figure (matplotlib only; no training code, so a plot edit retrains nothing).

A curve is a run's ``curve_<column>`` lists (its metrics, or its sweep-table row): one point
per evaluation, with at least ``curve_wall_s`` (training wall time so far) and
``curve_test_accuracy``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

__all__ = [
    "accuracy_at_budget",
    "curve_panels",
    "curve_points",
    "runs_by_seed",
    "time_to_accuracy",
]


def runs_by_seed(task_runs, *, group=None, params=None):
    """The rows ``{"params": ..., **metrics}`` of finished task runs
    (:class:`spikeloc.pipeline.tasks.TaskRun`), one per seed in seed order; ``params(p)``
    normalises each run's params (e.g. fills in the task's defaults). With ``group(params)``
    -> key: a dict key -> such rows, keys sorted (e.g. runs by hidden size). A seed twice in
    one group is refused (two runs of one setting and seed mean a mislabelled sweep)."""
    by: dict[Any, dict[int, dict]] = {}
    for run in task_runs:
        p = params(run.params) if params is not None else run.params
        key = group(p) if group is not None else None
        rows = by.setdefault(key, {})
        if run.seed in rows:
            raise ValueError(f"seed {run.seed} twice{'' if key is None else f' in group {key!r}'}")
        rows[run.seed] = {"params": p, **run.metrics}
    out = {k: [rows[s] for s in sorted(rows)] for k, rows in by.items()}
    if group is None:
        return out.get(None, [])
    return {k: out[k] for k in sorted(out)}


def accuracy_at_budget(x: Sequence[float], accuracy: Sequence[float], budget: float) -> float:
    """The accuracy of the last curve point whose ``x`` (wall time, evaluations) is within
    ``budget``: what the run had reached when the budget ran out (its last point if it
    finished earlier; its first point, the untrained network, if no later one fits)."""
    x, a = np.asarray(x, dtype=float), np.asarray(accuracy, dtype=float)
    if x.size == 0 or x.size != a.size:
        raise ValueError("a curve needs as many accuracies as x values (and at least one)")
    inside = np.flatnonzero(x <= budget)
    return float(a[inside[-1]] if inside.size else a[0])


def time_to_accuracy(x: Sequence[float], accuracy: Sequence[float], target: float) -> float:
    """The first ``x`` at which the curve reaches ``target`` (nan if it never does)."""
    x, a = np.asarray(x, dtype=float), np.asarray(accuracy, dtype=float)
    hit = np.flatnonzero(a >= target)
    return float(x[hit[0]]) if hit.size else math.nan


def curve_points(rows: Sequence[Mapping[str, Any]], x: str, y: str = "test_accuracy"):
    """All points of several runs' curves, as (x, y) lists (for a trend claim)."""
    xs, ys = [], []
    for r in rows:
        xs += list(r[f"curve_{x}"])
        ys += list(r[f"curve_{y}"])
    return xs, ys


def curve_panels(
    groups: Sequence[Mapping[str, Any]],
    panels: Sequence[tuple[str, str]],
    *,
    chance: float | None = None,
    references: Sequence[tuple[float, str, str]] = (),
    ylabel: str = "Test accuracy (%)",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One panel per ``(x column, x label)`` of ``panels`` (log x), test accuracy (%) on y.

    ``groups``: ``{"label", "colour", "runs": [run rows with curve_* lists], "marker",
    "columns"}`` (``columns``: this group's name of a panel's column, where it differs); each
    run is a thin line, the mean over runs (point by point: the runs of a group share their
    evaluation schedule) a thick one with markers. A group whose runs lack a panel's column is
    left out of that panel. ``chance`` (fraction) draws a dotted line, each ``references``
    entry ``(fraction, label, colour)`` a dashed one."""
    fig = Figure(figsize=figsize or (4.2 * len(panels), 4.0), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for k, (ax, (col, xlabel)) in enumerate(zip(axes, panels, strict=True)):
        for g in groups:
            gcol = g.get("columns", {}).get(col, col)
            runs = [r for r in g["runs"] if r.get(f"curve_{gcol}") is not None]
            if not runs:
                continue
            xs = [np.asarray(r[f"curve_{gcol}"], dtype=float) for r in runs]
            ys = [100 * np.asarray(r["curve_test_accuracy"], dtype=float) for r in runs]
            for x, y in zip(xs, ys, strict=True):
                ok = x > 0
                ax.plot(x[ok], y[ok], color=g["colour"], lw=0.6, alpha=0.35)
            n = min(len(x) for x in xs)
            mx = np.mean([x[:n] for x in xs], axis=0)
            my = np.mean([y[:n] for y in ys], axis=0)
            ok = mx > 0
            ax.plot(
                mx[ok],
                my[ok],
                color=g["colour"],
                lw=1.8,
                marker=g.get("marker", "o"),
                ms=3,
                label=f"{g['label']} (n = {len(runs)})",
            )
        for value, label, colour in references:
            ax.axhline(100 * value, color=colour, ls="--", lw=1, label=label)
        if chance is not None:
            ax.axhline(100 * chance, color="0.5", ls=":", lw=1, label="chance")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        ax.set_title(f"({chr(ord('a') + k)})", loc="left", fontsize=10, fontweight="bold")
        ax.tick_params(labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)),
               fontsize=8, frameon=False)
    return fig
