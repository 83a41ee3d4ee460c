"""Membrane time constant study (catalogue §2.3): the published figure's values and per-tau summaries."""

from __future__ import annotations

import pandas as pd

__all__ = ["PUBLISHED_ACCURACY_PCT", "extremes"]

#: Test accuracy (%) per shared time constant (ms) of the published figure (one run each,
#: values read off the plot; catalogue §2.3).
PUBLISHED_ACCURACY_PCT: dict[float, float] = {
    2: 83,
    5: 81,
    8: 76,
    11: 71,
    14: 75,
    17: 51,
    20: 60,
    23: 47,
    26: 45,
    29: 30,
}


def extremes(table: pd.DataFrame, key: str = "model.tau_hidden_s", metric: str = "accuracy"):
    """``(tau_min, runs at tau_min, tau_max, runs at tau_max)``: the metric of every run at the
    shortest and at the longest time constant of a sweep table, in seed order."""
    if table.empty:
        raise ValueError("extremes: the sweep table has no runs")
    lo, hi = table[key].min(), table[key].max()
    by_seed = table.sort_values("seed", kind="stable")
    return (
        float(lo),
        by_seed.loc[by_seed[key] == lo, metric].to_numpy(),
        float(hi),
        by_seed.loc[by_seed[key] == hi, metric].to_numpy(),
    )
