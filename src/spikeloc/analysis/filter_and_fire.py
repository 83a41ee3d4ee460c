"""Filter-and-fire neurons (research/Alt-Filter-and-Fire_Neuron_Model_SNN.ipynb): hidden
neurons whose M dendritic segments filter their input currents with double-exponential
kernels (``model.dendrites``, :func:`spikeloc.core.models.dendrite_kernels`), against an LIF
baseline at the same settings."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["PUBLISHED", "model_label", "results_figure"]

#: The notebook's printed results (one run each): label -> (train, test) accuracy.
PUBLISHED = {"F&F M = 1": (0.633, 0.573), "F&F M = 3": (0.656, 0.311)}


def model_label(enabled: bool, segments: int) -> str:
    """``F&F M = <segments>`` for filter-and-fire runs, ``LIF`` for the baseline."""
    return f"F&F M = {int(segments)}" if enabled else "LIF"


def results_figure(table: Any, kernels: dict[str, np.ndarray], dt_ms: float = 1.0) -> Figure:
    """(a) the PSP kernels of one network per segment count; (b) training and test accuracy per
    model: mean (bars), seeds (points) and the published single runs (red crosses)."""
    fig = Figure(figsize=(8.5, 2.8), dpi=100, layout="constrained")
    ax_k, ax = fig.subplots(1, 2, width_ratios=[1, 1.4])
    styles = ["-", "--", ":", "-."]
    for i, (label, ks) in enumerate(kernels.items()):
        for m, k in enumerate(np.atleast_2d(ks)):
            ax_k.plot(np.arange(len(k)) * dt_ms, k, styles[i % 4], lw=1,
                      label=f"{label}, segment {m + 1}")
    ax_k.set_xlabel("Time (ms)")
    ax_k.set_ylabel("Kernel (peak 1)")
    ax_k.legend(fontsize=6, frameon=False)
    labels = [model_label(e, s) for e, s in
              zip(table["model.dendrites.enabled"], table["model.dendrites.segments"], strict=False)]
    names = sorted(set(labels), key=lambda n: (n != "LIF", n))
    width = 0.38
    for j, (metric, colour, name) in enumerate(
        (("train_accuracy", "0.55", "training"), ("accuracy", "0.85", "test"))
    ):
        for i, n in enumerate(names):
            y = np.array([float(v) for v, lab in zip(table[metric], labels, strict=False) if lab == n])
            x = i + (j - 0.5) * width
            ax.bar(x, 100 * y.mean(), width=width, color=colour, edgecolor="k",
                   label=name if i == 0 else None)
            ax.plot(np.full(len(y), x), 100 * y, "o", color="k", ms=2.5)
            if n in PUBLISHED:
                ax.plot(x, 100 * PUBLISHED[n][j], "x", color="tab:red", ms=6, mew=1.5,
                        label="published" if (i, j) == (1, 0) else None)
    ax.axhline(100 / 12, color="0.4", ls=":", lw=0.8, label="chance")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("Accuracy (%)")
    ax.legend(fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for a, letter in ((ax_k, "a"), (ax, "b")):
        a.text(-0.14, 1.04, letter, transform=a.transAxes, fontweight="bold")
        a.spines["top"].set_visible(False)
        a.spines["right"].set_visible(False)
    return fig
