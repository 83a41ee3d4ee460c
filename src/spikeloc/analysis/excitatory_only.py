"""Excitatory-only localisation (research/Excitatory-Only-localisation.ipynb): networks whose
weights are all positive (``|W1|``, ``|W2|``: ``model.dale`` with no inhibitory unit) and the
"Jeffress-like" structure of their weights, beside an unconstrained network's.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from spikeloc.core.models import SNN

__all__ = ["jeffress_order", "diagonality", "weights_figure"]


def jeffress_order(model: SNN) -> np.ndarray:
    """Hidden units sorted by the class they drive most (argmax of their effective W2 row);
    ties by the strength of that weight. With this order a Jeffress-like W2 is a diagonal band."""
    _, w2 = model.effective_weights()
    w2 = w2.detach().cpu().numpy()
    best = w2.argmax(1)
    return np.lexsort((-w2.max(1), best))


def diagonality(w: np.ndarray) -> float:
    """Correlation between row and column index weighted by ``max(w, 0)`` (1: all weight on
    an increasing diagonal, 0: none). Used to tell a banded (Jeffress-like) matrix."""
    w = np.clip(np.asarray(w, float), 0, None)
    if w.sum() == 0:
        return 0.0
    i, j = np.indices(w.shape)
    p = w / w.sum()
    mi, mj = (p * i).sum(), (p * j).sum()
    cov = (p * (i - mi) * (j - mj)).sum()
    sd = np.sqrt((p * (i - mi) ** 2).sum() * (p * (j - mj) ** 2).sum())
    return float(cov / sd) if sd > 0 else 0.0


def _show(fig, ax, w, title, xlabel, ylabel, signed):
    lim = float(np.abs(w).max()) or 1.0
    im = ax.imshow(w, aspect="auto", origin="lower", interpolation="nearest",
                   cmap="RdBu" if signed else "viridis", vmin=-lim if signed else 0, vmax=lim)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    fig.colorbar(im, ax=ax).ax.tick_params(labelsize=6)


def weights_figure(models: dict[str, SNN]) -> Figure:
    """Effective W1 (input x hidden) and W2 (hidden x class) of each model, hidden units in
    :func:`jeffress_order`; one row per model (panel letters a, b, ...)."""
    fig = Figure(figsize=(8, 2.7 * len(models)), dpi=100, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(models), 2))
    for r, (label, model) in enumerate(models.items()):
        w1, w2 = (w.detach().cpu().numpy() for w in model.effective_weights())
        order = jeffress_order(model)
        signed = bool((w1 < 0).any() or (w2 < 0).any())
        _show(fig, axes[r, 0], w1[:, order], f"{label}: W1 (input \u2192 hidden)",
              "Hidden unit (reordered)", "Input fibre (left ear, then right)", signed)
        _show(fig, axes[r, 1], w2[order].T, f"{label}: W2 (hidden \u2192 output)",
              "Hidden unit (reordered)", "Output class (IPD)", signed)
        axes[r, 0].text(-0.15, 1.05, "ab"[r] if r < 2 else str(r), transform=axes[r, 0].transAxes,
                        fontweight="bold")
    return fig
