"""Noise robustness and dropout (research/Noise_robustness.ipynb): test accuracy and error of
networks trained on inputs with Gaussian noise on the per-fibre phase delays (one draw per
dataset; the test set clean, ``training.clean_test``) and with dropout on the hidden spikes."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from spikeloc.analysis.sweep_stats import mean_sd

__all__ = ["SIGMA", "DROPOUT", "noise_figure"]

SIGMA = "stimulus.phase_delay_noise_rad"
DROPOUT = "model.dropout"


def noise_figure(table: Any) -> Figure:
    """(a) test accuracy and (b) test MAE against the noise sd, one line per dropout
    probability (mean and sd over seeds), every run as a small dot."""
    fig = Figure(figsize=(7, 2.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    colours = ["k", "tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ax, metric, scale, ylabel, letter in (
        (axes[0], "accuracy", 100, "Test accuracy (%)", "a"),
        (axes[1], "mae_continuous_deg", 1, "Test MAE (deg)", "b"),
    ):
        summary = mean_sd(table, metric, by=[DROPOUT, SIGMA])
        for k, (p, rows) in enumerate(summary.groupby(DROPOUT, sort=True)):
            c = colours[k % len(colours)]
            runs = table[table[DROPOUT] == p]
            ax.plot(runs[SIGMA], scale * runs[metric].astype(float), "o", color=c, ms=2.5,
                    mew=0, alpha=0.5)
            ax.errorbar(rows[SIGMA], scale * rows["mean"],
                        yerr=scale * np.nan_to_num(rows["sd"].to_numpy(float)), fmt="-o",
                        color=c, ms=3.5, capsize=2, label=f"dropout p = {p:g}")
        ax.set_xlabel("Phase-delay noise sd (rad)")
        ax.set_ylabel(ylabel)
        ax.text(-0.14, 1.04, letter, transform=ax.transAxes, fontweight="bold")
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
    axes[0].axhline(100 / 12, color="0.4", ls=":", lw=0.8, label="chance")
    axes[0].legend(fontsize=6.5, frameon=False)
    return fig
