"""250 Hz study (catalogue §2.10, Quick_Start_250HzClassification): the published points and the
tau_hidden x tau_output heat map of mean test accuracy over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["PUBLISHED_POINTS", "grid_means", "heatmap"]

#: (tau_hidden ms, tau_output ms) -> published test accuracies (%) of single runs (catalogue §2.10).
PUBLISHED_POINTS: dict[tuple[float, float], tuple[float, ...]] = {
    (5.0, 5.0): (28.1,),
    (0.5, 0.5): (81.5,),
    (0.5, 5.0): (75.0, 80.6),
}


def grid_means(
    table: pd.DataFrame,
    metric: str = "accuracy",
    rows: str = "model.tau_hidden_s",
    cols: str = "model.tau_output_s",
) -> pd.DataFrame:
    """Mean of ``metric`` over runs (seeds, learning rates) per (rows, cols) point: a pivot
    table indexed by ``rows`` values (ascending) with ``cols`` values as columns."""
    if table.empty:
        raise ValueError("grid_means: the sweep table has no runs")
    return (
        table.pivot_table(index=rows, columns=cols, values=metric, aggfunc="mean")
        .sort_index(axis=0)
        .sort_index(axis=1)
    )


def heatmap(
    means: pd.DataFrame,
    *,
    scale: float = 100.0,
    axis_scale: float = 1e3,
    published: dict[tuple[float, float], tuple[float, ...]] | None = None,
    figsize: tuple[float, float] = (3.8, 3.1),
) -> Figure:
    """Heat map of ``means`` (rows: tau_hidden, columns: tau_output), each cell labelled with its
    value; published points circled with their values."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    values = scale * means.to_numpy(dtype=float)
    im = ax.imshow(values, origin="lower", cmap="viridis", vmin=100 / 12, vmax=100, aspect="auto")
    rows = [axis_scale * float(v) for v in means.index]
    cols = [axis_scale * float(v) for v in means.columns]
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if values[i, j] < 60 else "k",
                )
    for (th, to), accs in (published or {}).items():
        if th in rows and to in cols:
            i, j = rows.index(th), cols.index(to)
            ax.plot(j, i, "o", ms=16, mfc="none", mec="tab:red", mew=1.2)
            ax.text(
                j,
                i - 0.3,
                "published " + "/".join(f"{a:g}" for a in accs),
                ha="center",
                va="center",
                fontsize=6,
                color="tab:red",
            )
    ax.set_xticks(range(len(cols)), [f"{c:g}" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{r:g}" for r in rows])
    ax.set_xlabel("Output time constant (ms)")
    ax.set_ylabel("Hidden time constant (ms)")
    fig.colorbar(im, ax=ax, label="Test accuracy (%)")
    return fig
