"""The reservoir module's figure (kept apart from the task's module, so that a plot edit
retrains nothing)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from spikeloc.analysis.plots import _clean
from spikeloc.analysis.sweep_stats import mean_sd

__all__ = ["size_figure"]

SURROGATE_COLOUR = "tab:orange"


def _panel(ax: Axes, table: Any, key: str, *, train: bool) -> None:
    ax.plot(
        table[key],
        100 * table["accuracy"],
        "o",
        color="0.55",
        ms=3,
        mew=0,
        label="single runs",
        zorder=3,
    )
    s = mean_sd(table, "accuracy", by=key).sort_values(key)
    sd = np.nan_to_num(np.asarray(s["sd"], dtype=float))
    ax.errorbar(
        s[key],
        100 * s["mean"],
        yerr=100 * sd,
        fmt="-o",
        color="k",
        ms=4,
        capsize=2.5,
        elinewidth=0.8,
        label="test, mean \u00b1 sd",
        zorder=2,
    )
    if train:
        t = mean_sd(table, "train_accuracy", by=key).sort_values(key)
        ax.plot(t[key], 100 * t["mean"], "--", color="k", lw=1, label="training, mean")


def _surrogate_band(ax: Axes, surrogate: Any) -> None:
    acc = 100 * np.asarray(surrogate["accuracy"], dtype=float)
    m, s = acc.mean(), (acc.std(ddof=1) if len(acc) > 1 else 0.0)
    ax.axhspan(m - s, m + s, color=SURROGATE_COLOUR, alpha=0.25, lw=0)
    ax.axhline(m, color=SURROGATE_COLOUR, lw=1.2, label="surrogate gradients, 30 LIF (test)")


def size_figure(
    size: Any, radius: Any, surrogate: Any, *, radius_size: int | None = None
) -> Figure:
    """(a) Test (and training) accuracy against reservoir size, with the surrogate-gradient
    network's band; (b) test accuracy against the spectral radius. Tables: the sweeps
    ``size`` (``params.n_reservoir``), ``radius`` (``params.spectral_radius``), ``surrogate``;
    ``radius_size``: the number of neurons of the radius sweep (for the panel title)."""
    fig = Figure(figsize=(8.5, 3.2), dpi=100, layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1]})
    _panel(ax_a, size, "params.n_reservoir", train=True)
    _surrogate_band(ax_a, surrogate)
    ax_a.set_xscale("log")
    ax_a.set_xlabel("Reservoir neurons")
    ax_a.set_title("a  accuracy against reservoir size", loc="left", fontsize=9)
    _panel(ax_b, radius, "params.spectral_radius", train=False)
    _surrogate_band(ax_b, surrogate)
    n = radius_size
    ax_b.set_xlabel("Spectral radius of the recurrent weights")
    ax_b.set_title(f"b  recurrence ({n} neurons)" if n else "b  recurrence", loc="left", fontsize=9)
    chance = 100 * float(size["chance"].iloc[0])
    for ax in (ax_a, ax_b):
        ax.axhline(chance, color="0.7", lw=0.8, ls=":", label="chance")
        ax.set_ylabel("Accuracy (%)")
        # the free band between the reservoirs' points and the surrogate-gradient band
        ax.legend(loc="center left", bbox_to_anchor=(0.0, 0.66), fontsize=6, frameon=False)
        _clean(ax)
    return fig
