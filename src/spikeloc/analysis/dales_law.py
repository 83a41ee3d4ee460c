"""Dale's law (research/Dales_law.ipynb, IE-neuron-distribution.ipynb): sign-constrained
networks, their accuracy against the fraction of inhibitory units, where inhibition is needed,
and the "phase separation" of contiguous inhibitory rows.

The networks themselves are :class:`spikeloc.core.models.SNN` with ``model.dale`` (effective
weight ``|W| * sign`` per presynaptic unit); this module holds what the study does with them:
the published curve it is compared with, zeroing the inhibitory rows of a trained network, and
the figures.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from spikeloc.core.models import SNN

__all__ = [
    "PUBLISHED_TEST_CURVE",
    "PUBLISHED_TRAIN_CURVE",
    "PUBLISHED_CONDITIONS",
    "CONDITION_LABELS",
    "condition_of",
    "zero_inhibitory",
    "fraction_figure",
    "condition_figure",
    "contiguous_figure",
]

#: Dales_law.ipynb, saved test curve (mean over 3 repeats, read from the plot; catalogue §2.4):
#: inhibitory fraction -> test accuracy (fraction correct).
PUBLISHED_TEST_CURVE = {
    0.0: 0.425, 0.1: 0.64, 0.2: 0.71, 0.3: 0.765, 0.4: 0.766, 0.5: 0.785,
    0.6: 0.79, 0.7: 0.80, 0.8: 0.705, 0.9: 0.67, 1.0: 0.083,
}  # fmt: skip
#: The saved training curve at the fractions the catalogue reads off it.
PUBLISHED_TRAIN_CURVE = {0.0: 0.43, 0.1: 0.68, 0.3: 0.84, 0.6: 0.87, 0.9: 0.80, 1.0: 0.087}
#: Sweep 2 of Dales_law.ipynb: the printed test accuracies of its three repeats.
PUBLISHED_CONDITIONS = {
    "balanced": (0.6528, 0.7368, 0.7451),
    "inputs_excitatory": (0.4453, 0.5425, 0.4971),
    "hidden_excitatory": (0.6304, 0.7280, 0.7026),
}
CONDITION_LABELS = {
    "balanced": "balanced (+/\u2212)",
    "inputs_excitatory": "W1+ (inputs excitatory)",
    "hidden_excitatory": "W2+ (hidden excitatory)",
}


def condition_of(input_signs: str, hidden_signs: str) -> str:
    """The sweep-2 condition of a run from its ``model.dale.input_signs`` / ``hidden_signs``."""
    key = (input_signs, hidden_signs)
    names = {
        ("dale", "dale"): "balanced",
        ("excitatory", "dale"): "inputs_excitatory",
        ("dale", "excitatory"): "hidden_excitatory",
    }
    if key not in names:
        raise ValueError(f"no sweep-2 condition has input_signs={key[0]!r}, hidden_signs={key[1]!r}")
    return names[key]


def zero_inhibitory(model: SNN) -> SNN:
    """A copy of a trained Dale network with every inhibitory presynaptic row of W1 and W2 set
    to zero (IE-neuron-distribution: "zeroing the inhibitory rows after training")."""
    if model.sign1 is None:
        raise ValueError("zero_inhibitory: the model has no Dale signs (model.dale.enabled)")
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.W1[out.sign1 < 0] = 0.0
        out.W2[out.sign2 < 0] = 0.0
    return out


def _clean(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def fraction_figure(table: Any, *, key: str = "model.dale.inhibitory_fraction") -> Figure:
    """(a) training and (b) test accuracy against the inhibitory fraction: every run (grey), the
    mean and sd over seeds (black), and the published curve (red, dashed)."""
    fig = Figure(figsize=(8.5, 2.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    x = table[key].to_numpy(float)
    for ax, metric, published, letter in (
        (axes[0], "train_accuracy", PUBLISHED_TRAIN_CURVE, "a"),
        (axes[1], "accuracy", PUBLISHED_TEST_CURVE, "b"),
    ):
        y = table[metric].to_numpy(float)
        ax.plot(100 * x, 100 * y, "o", color="0.6", ms=3, mew=0, label="single runs")
        xs = np.unique(x)
        mean = np.array([y[x == v].mean() for v in xs])
        sd = np.array([y[x == v].std(ddof=1) if (x == v).sum() > 1 else 0.0 for v in xs])
        ax.errorbar(100 * xs, 100 * mean, yerr=100 * sd, fmt="-o", color="k", ms=4, capsize=2.5,
                    label="mean \u00b1 sd over seeds")
        px = np.array(sorted(published))
        ax.plot(100 * px, [100 * published[v] for v in px], "--s", color="tab:red", ms=3,
                label="published (Dales_law.ipynb)")
        ax.axhline(100 / 12, color="0.4", lw=0.8, ls=":", label="chance")
        ax.set_xlabel("Inhibitory units (%)")
        ax.set_title(("Training" if metric == "train_accuracy" else "Test") + " set", fontsize=9)
        ax.text(-0.12, 1.04, letter, transform=ax.transAxes, fontweight="bold")
        _clean(ax)
    axes[0].set_ylabel("Accuracy (%)")
    axes[1].legend(fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def condition_figure(table: Any) -> Figure:
    """Sweep 2: test accuracy per condition, mean (bar) and every seed (points), with the
    published repeats (red crosses)."""
    cond = [
        condition_of(a, b)
        for a, b in zip(table["model.dale.input_signs"], table["model.dale.hidden_signs"], strict=False)
    ]
    acc = table["accuracy"].to_numpy(float)
    names = list(CONDITION_LABELS)
    fig = Figure(figsize=(5.4, 2.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        y = np.array([a for a, c in zip(acc, cond, strict=False) if c == name])
        if len(y):
            ax.bar(i, 100 * y.mean(), color="0.8", width=0.6)
            ax.plot(np.full(len(y), i) + np.linspace(-0.12, 0.12, len(y)), 100 * y, "o",
                    color="k", ms=3.5, label="seeds" if i == 0 else None)
        pub = PUBLISHED_CONDITIONS[name]
        ax.plot(np.full(len(pub), i + 0.22), 100 * np.array(pub), "x", color="tab:red", ms=4,
                label="published repeats" if i == 0 else None)
    ax.axhline(100 / 12, color="0.4", lw=0.8, ls=":", label="chance")
    ax.set_xticks(range(len(names)), [CONDITION_LABELS[n] for n in names], fontsize=7)
    ax.set_ylabel("Test accuracy (%)")
    ax.legend(fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _clean(ax)
    return fig


def contiguous_figure(accuracies: dict[str, tuple[float, float]]) -> Figure:
    """IE-neuron-distribution: test accuracy of contiguous-block Dale networks, intact and with
    the inhibitory rows zeroed; ``accuracies``: label -> (intact, zeroed)."""
    fig = Figure(figsize=(4.2, 2.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    labels = list(accuracies)
    x = np.arange(len(labels))
    intact = [100 * accuracies[k][0] for k in labels]
    zeroed = [100 * accuracies[k][1] for k in labels]
    ax.bar(x - 0.2, intact, width=0.4, color="0.35", label="trained")
    ax.bar(x + 0.2, zeroed, width=0.4, color="0.8", label="inhibitory rows zeroed")
    ax.axhline(100 / 12, color="0.4", lw=0.8, ls=":", label="chance")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("Test accuracy (%)")
    ax.legend(fontsize=6.5, frameon=False)
    _clean(ax)
    return fig
