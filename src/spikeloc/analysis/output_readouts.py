"""Output readouts and dynamic threshold studies (catalogue §2.10): conditions of a sweep table,
their per-run accuracies (sample sets for the relational claims) and the box plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["condition_samples", "condition_boxplot"]


def condition_samples(
    table: pd.DataFrame, conditions: Mapping[str, Mapping[str, object]], metric: str = "accuracy"
) -> dict[str, np.ndarray]:
    """The metric of every run of each named condition, in seed order.

    ``conditions``: label -> {column: value} (e.g. ``{"oc_2ms": {"model.readout":
    "mean_membrane", "model.tau_hidden_s": 0.002}}``); a condition with no run is an error.
    """
    out = {}
    for label, where in conditions.items():
        sel = np.ones(len(table), bool)
        for col, value in where.items():
            if col not in table:
                raise KeyError(f"condition {label}: the sweep table has no column {col!r}")
            col_values = table[col].to_numpy()
            if isinstance(value, float):
                sel &= np.isclose(col_values.astype(float), value)
            else:
                sel &= col_values == value
        rows = table[sel].sort_values("seed", kind="stable")
        if rows.empty:
            raise ValueError(f"condition {label}: no run matches {dict(where)}")
        out[label] = rows[metric].to_numpy(dtype=float)
    return out


def condition_boxplot(
    train: Mapping[str, Sequence[float]],
    test: Mapping[str, Sequence[float]],
    *,
    ylabel: str = "Accuracy (%)",
    scale: float = 100.0,
    chance: float | None = 100 / 12,
    figsize: tuple[float, float] = (6.0, 2.8),
) -> Figure:
    """Box plot of train and test accuracy per condition (over runs), runs as dots."""
    labels = list(test)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(len(labels))
    for offset, data, colour, name in (
        (-0.18, train, "tab:blue", "train"),
        (0.18, test, "tab:orange", "test"),
    ):
        values = [scale * np.asarray(data[k], float) for k in labels]
        bp = ax.boxplot(
            values, positions=pos + offset, widths=0.3, patch_artist=True, showfliers=False
        )
        for box in bp["boxes"]:
            box.set(facecolor=colour, alpha=0.35, edgecolor=colour)
        for med in bp["medians"]:
            med.set(color=colour)
        for i, v in enumerate(values):
            ax.plot(np.full(len(v), pos[i] + offset), v, ".", color=colour, ms=3)
        ax.plot([], [], "s", color=colour, alpha=0.5, label=name)
    if chance is not None:
        ax.axhline(chance, color="0.6", lw=0.8, ls=":", label="chance")
    ax.set_xticks(pos, labels, rotation=20)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, frameon=False, ncols=3)
    return fig
