"""The smooth-threshold module's figure (kept apart from the task's module, so that a plot
edit retrains nothing)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from spikeloc.analysis.plots import _clean

__all__ = ["learning_figure"]

SURROGATE_COLOUR = "tab:orange"


def _curves(table: Any, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd over runs of a per-epoch list column (epochs x runs)."""
    y = np.asarray([np.asarray(v, dtype=float) for v in table[column]])
    return y.mean(0), y.std(0, ddof=1) if len(y) > 1 else np.zeros(y.shape[1])


def learning_figure(smooth: Any, surrogate: Any, *, kappa_key: str = "params.kappa_end") -> Figure:
    """Three panels: (a) validation accuracy per epoch, smooth (solid) and hard (dashed)
    forward pass, per final slope; (b) mean |s - round(s)| per epoch; (c) test accuracy
    against training time of every run, surrogate gradients beside the smooth threshold.

    ``smooth``: the smooth sweep's table (``curve_*`` list columns, ``accuracy_smooth``,
    ``accuracy_hard``, ``train_wall_s``); ``surrogate``: the surrogate sweep's table.
    """
    fig = Figure(figsize=(10.5, 3.2), dpi=100, layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    kappas = sorted(smooth[kappa_key].unique(), reverse=True)
    colours = {
        k: c for k, c in zip(kappas, ["k", "tab:blue", "tab:purple", "tab:green"], strict=False)
    }
    for k in kappas:
        sel = smooth[smooth[kappa_key] == k]
        col = colours.get(k, "0.4")
        epochs = np.arange(1, len(sel["curve_kappa"].iloc[0]) + 1)
        label = "no annealing (\u03ba = 1)" if k == 1 else f"\u03ba 1 \u2192 {k:g}"
        if "curve_val_accuracy_smooth" in sel:
            m, s = _curves(sel, "curve_val_accuracy_smooth")
            ax_a.plot(epochs, 100 * m, "-", color=col, label=f"{label}, smooth")
            ax_a.fill_between(epochs, 100 * (m - s), 100 * (m + s), color=col, alpha=0.12, lw=0)
            m, _ = _curves(sel, "curve_val_accuracy_hard")
            ax_a.plot(epochs, 100 * m, "--", color=col, label=f"{label}, spiking")
            m, s = _curves(sel, "curve_val_distance")
            ax_b.plot(epochs, m, "-o", color=col, ms=3, label=label)
        ax_c.plot(
            sel["train_wall_s"],
            100 * sel["accuracy_smooth"],
            "o",
            color=col,
            ms=5,
            label=f"{label}, smooth",
        )
        ax_c.plot(
            sel["train_wall_s"],
            100 * sel["accuracy_hard"],
            "o",
            mfc="none",
            color=col,
            ms=5,
            label=f"{label}, spiking",
        )
    ax_c.plot(
        surrogate["train_wall_s"],
        100 * surrogate["accuracy"],
        "s",
        color=SURROGATE_COLOUR,
        ms=5,
        label="surrogate gradients",
    )
    chance = 100 * float(smooth["chance"].iloc[0])
    for ax in (ax_a, ax_c):
        ax.axhline(chance, color="0.7", lw=0.8, ls=":")
    ax_a.set_xlabel("Epoch")
    ax_a.set_ylabel("Validation accuracy (%)")
    ax_a.set_title("a  learning curves", loc="left", fontsize=9)
    ax_b.set_xlabel("Epoch")
    ax_b.set_ylabel("mean |s \u2212 round(s)| (validation)")
    ax_b.set_yscale("log")
    ax_b.set_title("b  distance from spiking", loc="left", fontsize=9)
    ax_c.set_xlabel("Training wall time (s)")
    ax_c.set_xscale("log")
    ax_c.set_ylabel("Test accuracy (%)")
    ax_c.set_title("c  test accuracy and cost, one point per run", loc="left", fontsize=9)
    for ax in (ax_a, ax_b, ax_c):
        ax.legend(loc="best", fontsize=6, frameon=False)
        _clean(ax)
    return fig
