"""Figures of the DCLS study (figs 16-17) from finished runs
(:func:`spikeloc.analysis.dcls.load_run`). Kept apart from :mod:`spikeloc.analysis.dcls` so
that editing a figure retrains nothing."""

from __future__ import annotations

import numpy as np

from spikeloc.analysis.dcls import DCLSRun

__all__ = ["fig_histograms_confusion", "fig_receptive_fields", "fig_training"]


def fig_histograms_confusion(run: DCLSRun):
    """Fig 16: true vs estimated class histograms and confusion matrices, train and test."""
    import matplotlib.pyplot as plt

    n = run.settings.n_classes
    edges = np.linspace(-90, 90, n + 1)
    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
    for row, name in enumerate(("train", "test")):
        e = run.evaluation[name]
        ax = axes[row, 0]
        ax.hist(e["true_ipd_deg"], bins=edges, histtype="step", label="true")
        ax.hist(-90 + (e["pred"] + 0.5) * 180 / n, bins=edges, histtype="step", label="estimated")
        ax.set_xlabel("IPD (deg)")
        ax.set_ylabel("samples")
        ax.legend(fontsize=7)
        ax.set_title(f"{'ac'[row]}  {name} ({len(e['true'])}): {100 * e['accuracy']:.1f}% "
                     f"correct, MAE {e['mae_deg']:.1f}°", loc="left", fontsize=9)
        m = np.zeros((n, n))
        np.add.at(m, (e["pred"], e["true"]), 1)
        m = m / np.maximum(m.sum(0, keepdims=True), 1)
        im = axes[row, 1].imshow(m, origin="lower", extent=(-90, 90, -90, 90), cmap="viridis")
        fig.colorbar(im, ax=axes[row, 1], label="fraction of true class")
        axes[row, 1].set_xlabel("true IPD (deg)")
        axes[row, 1].set_ylabel("estimated IPD (deg)")
        axes[row, 1].set_title(f"{'bd'[row]}  {name} confusion", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def fig_receptive_fields(run: DCLSRun, neurons=(0, 1, 2, 3, 4)):
    """Fig 17: per hidden neuron, presynaptic index against learned delay (ms, the time by
    which the input is delayed: ``K - 1 - (round(P) + K//2)``), colour = sign of the weight,
    alpha ~ |w| (blue positive, red negative, as the catalogue describes the published
    figure)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    w = run.model.w1.weight.detach()[:, :, 0].numpy()
    d = run.model.w1.delays().numpy()
    fig, axes = plt.subplots(1, len(neurons), figsize=(2.4 * len(neurons), 3.2), sharey=True,
                             squeeze=False)
    amax = np.abs(w).max()
    for ax, i in zip(axes[0], neurons, strict=True):
        rgba = np.array([to_rgba("C0" if v > 0 else "C3") for v in w[i]])
        rgba[:, 3] = np.abs(w[i]) / amax
        ax.scatter(d[i], np.arange(w.shape[1]), c=rgba, s=12)
        ax.axhline(run.settings.n_per_ear - 0.5, color="k", lw=0.5)
        ax.set_xlim(-0.5, run.settings.taps - 0.5)
        ax.set_xlabel("learned delay (ms)")
        ax.set_title(f"{chr(ord('a') + list(neurons).index(i))}  hidden {i}", loc="left",
                     fontsize=9)
    axes[0, 0].set_ylabel("presynaptic index (left ear < 100 ≤ right ear)")
    fig.suptitle("blue: positive (excitatory), red: negative (inhibitory) weight; opacity ~ |w|",
                 fontsize=8)
    fig.tight_layout()
    return fig


def fig_training(runs: list[DCLSRun]):
    """Training curves (not a published figure): validation accuracy ('max' mode) and SIG
    per epoch of each run."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, run in enumerate(runs):
        ep = [h["epoch"] for h in run.history]
        lab = f"{run.settings.taps} taps, seed {run.settings.seed}"
        a.plot(ep, [100 * h["val_accuracy"] for h in run.history], color=f"C{k}", label=lab)
        b.plot(ep, [h["sig"] for h in run.history], color=f"C{k}", label=lab)
    a.set_xlabel("epoch")
    a.set_ylabel("validation accuracy (%)")
    a.set_title("a  validation, rounded delays", loc="left", fontsize=9)
    a.legend(fontsize=6)
    b.set_xlabel("epoch")
    b.set_ylabel("SIG (steps)")
    b.set_yscale("log")
    b.set_title("b  Gaussian width", loc="left", fontsize=9)
    fig.tight_layout()
    return fig
