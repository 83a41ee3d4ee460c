"""The leaderboard's figure: error against cost, one point per ranked entry.

Kept apart from :mod:`spikeloc.analysis.leaderboard` (the protocol), so that a plot edit
changes no evaluation code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

__all__ = ["ranked", "error_vs_cost"]

#: the costs the figure's panels put on the horizontal axis: (row key, axis label)
COSTS = (
    ("spikes_per_decision", "spikes per decision (localiser's neurons)"),
    ("n_parameters", "trainable parameters"),
)


def ranked(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluated rows, best (lowest MAE) first; rows without metrics are left out."""
    return sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: r["mae_deg"])


def _symlog_x(ax: Axes, values: np.ndarray) -> None:
    """Log-like axis that still shows 0 (a model with no spikes or no trained parameters)."""
    positive = values[values > 0]
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    top = max(10.0, float(positive.max()) * 3 if positive.size else 10.0)
    ax.set_xlim(-0.3, top)
    decades = [0.0] + [10.0**k for k in range(0, int(np.log10(top)) + 1)]
    ax.xaxis.set_major_locator(FixedLocator(decades))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{d:g}" if d < 1e4 else f"$10^{{{int(np.log10(d))}}}$" for d in decades])


def error_vs_cost(rows: Sequence[dict[str, Any]], *, chance_deg: float | None = 45.0) -> Figure:
    """Panels: MAE (± sd) against each cost of :data:`COSTS`; points numbered by rank.

    The numbers are the ranks of the leaderboard table, so any number of entries stays
    readable; a legend maps the ranks of up to 12 entries to their names; colours are the
    modules. ``chance_deg`` (default 45 deg, the MAE of always answering 0 deg on IPDs uniform
    in (-90, 90) deg) is drawn as a dashed reference line unless None.
    """
    top = ranked(rows)
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    axes = fig.subplots(1, len(COSTS), sharey=True)
    if not top:
        for ax in axes:
            ax.text(
                0.5, 0.5, "no entry evaluated", ha="center", va="center", transform=ax.transAxes
            )
            ax.set_axis_off()
        return fig
    mae = np.array([r["mae_deg"] for r in top])
    sd = np.array([r["mae_sd_deg"] for r in top])
    modules = sorted({r.get("module", r["entry"].split(".")[0]) for r in top})
    palette = [f"C{i % 10}" for i in range(len(modules))]
    colour = {m: palette[i] for i, m in enumerate(modules)}
    for letter, ax, (key, label) in zip("ab", axes, COSTS, strict=True):
        x = np.array([float(r[key]) for r in top])
        seen: dict[float, int] = {}
        for i, r in enumerate(top):
            c = colour[r.get("module", r["entry"].split(".")[0])]
            ax.errorbar(x[i], mae[i], yerr=sd[i], fmt="o", color=c, ms=5, capsize=2, lw=1)
            # entries at the same cost: labels alternate above and below right of their points
            k = seen[x[i]] = seen.get(x[i], -1) + 1
            ax.annotate(
                str(i + 1),
                (x[i], mae[i]),
                xytext=(4, 3 if k % 2 == 0 else -9),
                textcoords="offset points",
                fontsize=8,
            )
        _symlog_x(ax, x)
        ax.set_xlabel(label)
        if chance_deg is not None:
            ax.axhline(chance_deg, color="0.5", ls="--", lw=0.8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(letter, loc="left", fontweight="bold")
    axes[0].set_ylabel("mean absolute error (deg)")
    axes[0].set_ylim(0, max(float((mae + sd).max()) * 1.1, (chance_deg or 0) * 1.1))
    handles = [
        Line2D(
            [], [], ls="", marker="o", ms=5, color=colour[r.get("module", r["entry"].split(".")[0])]
        )
        for r in top
    ]
    names = [f"{i + 1} {r['entry']}" for i, r in enumerate(top)]
    if len(top) > 12:  # the ranks then refer to the table alone
        handles, names = [], []
    if chance_deg is not None:
        handles.append(Line2D([], [], color="0.5", ls="--", lw=0.8))
        names.append(f"always answering 0 deg ({chance_deg:g} deg)")
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig
