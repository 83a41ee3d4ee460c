"""Figures of the delay-layer study (figs 11-15), from finished runs
(:func:`spikeloc.analysis.delay_layer.load_run`) and the layer's own code. Kept apart from
:mod:`spikeloc.analysis.delay_layer` so that editing a figure retrains nothing."""

from __future__ import annotations

import math

import numpy as np
import torch

from spikeloc.analysis.delay_layer import DDLRun, confusion, figure_batch
from spikeloc.core import delays

__all__ = [
    "fig_delayed_inputs",
    "fig_histograms_confusion",
    "fig_layer_structure",
    "fig_loss_and_errors",
    "fig_network",
]


def fig_layer_structure(x: np.ndarray | None = None, d: float = 2.0):
    """Fig 11: the delay layer on a small worked example, from :func:`delays.shift_linear`'s
    own intermediate values: zero-padded input, target grid, translation, interpolation
    weights, output train."""
    import matplotlib.pyplot as plt

    if x is None:
        x = np.array([0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0], dtype=np.float32)
    xt = torch.as_tensor(x)[None]
    tr = delays.shift_linear(xt, torch.tensor([float(d)]), trace=True)
    T = len(x)
    t = np.arange(T)
    fig, axes = plt.subplots(5, 1, figsize=(6.5, 6.5), sharex=True)
    axes[0].stem(t, x, basefmt=" ")
    axes[0].set_title("a  zero-padded input x[t]", loc="left")
    axes[1].plot(t, tr.grid.numpy(), "o")
    axes[1].set_title("b  target grid x_t = -1 + 2t/(T-1)", loc="left")
    axes[2].plot(t, tr.grid.numpy(), "o", alpha=0.3, label="grid")
    axes[2].plot(t, tr.translated[0].numpy(), "s", label=f"translated by 2d/(T-1), d = {d:g}")
    axes[2].legend(fontsize=7, loc="upper left")
    axes[2].set_title("c  translation (affine [[1, 0, 2d/(T-1)], [0, 1, 0]])", loc="left")
    src = tr.source[0].numpy()
    axes[3].bar(t - 0.2, tr.w_left[0].numpy(), 0.4, label="weight of x[floor(t+d)]")
    axes[3].bar(t + 0.2, tr.w_right[0].numpy(), 0.4, label="weight of x[floor(t+d)+1]")
    for ti, si in zip(t, src, strict=False):
        axes[3].annotate(f"{si:g}", (ti, 1.05), ha="center", fontsize=6)
    axes[3].set_ylim(0, 1.4)
    axes[3].legend(fontsize=7, loc="upper left")
    axes[3].set_title("d  1D linear interpolation at source index t + d", loc="left")
    axes[4].stem(t, tr.output[0].numpy(), basefmt=" ")
    axes[4].set_title("e  output y[t] = x[t + d]", loc="left")
    axes[4].set_xlabel("time step t")
    fig.tight_layout()
    return fig


def fig_network(model: delays.DDLNetwork, ipd_deg: np.ndarray, n_show: int = 6):
    """Fig 12: 2 inputs per class -> DDL (one delay per class on ear 2) -> coincidence
    outputs, drawn from the model (its class count and current delays)."""
    import matplotlib.pyplot as plt

    C = model.n_classes
    d = model.ddl.integer_delays().detach().numpy()[-1]
    idx = np.unique(np.linspace(0, C - 1, n_show).round().astype(int))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, i in enumerate(idx):
        y = -k * 1.0
        ax.text(0, y + 0.18, "ear 1", fontsize=7, ha="center")
        ax.text(0, y - 0.22, "ear 2", fontsize=7, ha="center")
        ax.plot([0.3, 2.6], [y + 0.15, y + 0.15], "k-", lw=0.8)
        ax.plot([0.3, 1.2], [y - 0.15, y - 0.15], "k-", lw=0.8)
        ax.add_patch(plt.Rectangle((1.2, y - 0.3), 0.8, 0.3, fc="#9ecae1", ec="k"))
        ax.text(1.6, y - 0.15, f"d={d[i]:+.0f}", ha="center", va="center", fontsize=7)
        ax.plot([2.0, 2.6], [y - 0.15, y - 0.15], "k-", lw=0.8)
        ax.add_patch(plt.Circle((3.0, y), 0.25, fc="#fdae6b", ec="k"))
        ax.text(3.0, y, "-Σ(u2-u1)²" if model.synapse == "subtractive" else "Σu1u2",
                ha="center", va="center", fontsize=5)
        ax.text(3.4, y, f"class {i}: {ipd_deg[i]:+.0f}°", va="center", fontsize=7)
    ax.text(1.6, 0.6, f"DDL ({C} learnable delays)", ha="center", fontsize=8)
    ax.text(3.0, 0.6, f"{C} output nodes", ha="center", fontsize=8)
    ax.text(4.6, -len(idx) / 2 + 0.5, "LogSoftmax\n+ NLL", ha="center", fontsize=8)
    ax.set_xlim(-0.5, 5.2)
    ax.set_ylim(-len(idx) + 0.3, 1.0)
    ax.axis("off")
    ax.set_title(f"DDL network ({len(idx)} of {C} classes shown)", fontsize=9)
    return fig


def fig_delayed_inputs(run: DDLRun, delays_per_class: np.ndarray | None, title: str):
    """Fig 13, as the notebook draws it: one panel per IPD class (one sample of that IPD), an
    image of 2 x C rows over the padded time steps: the C ear-1 trains (red), then the C
    ear-2 trains (blue) shifted by each class's delay (``None``: not shifted, the notebook's
    "before training" panel shows the raw inputs)."""
    import matplotlib.pyplot as plt

    s = run.settings
    x, y = figure_batch(s, 12 * s.n_classes)
    C, T = s.n_classes, s.n_steps
    d = torch.zeros(C) if delays_per_class is None else torch.as_tensor(
        np.asarray(delays_per_class, dtype=np.float32))
    n = int(math.ceil(math.sqrt(C)))
    fig, axes = plt.subplots(n, n, figsize=(11, 8), sharex=True, sharey=True)
    red, blue = np.array([0.75, 0.0, 0.0]), np.array([0.0, 0.0, 0.8])
    for i, ax in enumerate(axes.flat):
        if i >= C:
            ax.axis("off")
            continue
        hits = np.flatnonzero(y.numpy() == i)
        if hits.size == 0:  # (12 samples per class on average: practically never)
            ax.set_title(f"IPD {s.ipd_deg()[i]:.0f}° (no sample)", fontsize=7)
            continue
        j = int(hits[0])
        ear1 = x[j, 0].numpy() > 0.5  # (C, T)
        ear2 = delays.shift_linear(x[j, 1], d).numpy() > 0.5
        img = np.ones((2 * C, T, 3))
        img[:C][ear1] = red
        img[C:][ear2] = blue
        ax.imshow(img, aspect="auto", interpolation="nearest")
        ax.set_title(f"IPD {s.ipd_deg()[i]:.0f}°", fontsize=7, pad=2)
        ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("time (steps)", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("input index", fontsize=7)
    ear2 = ("as they enter the delay layer" if delays_per_class is None
            else "after the delay of each class's node")
    fig.suptitle(f"{title}: rows 0-{C - 1} ear 1 (red), rows {C}-{2 * C - 1} ear 2 {ear2} "
                 "(blue)", fontsize=9)
    fig.tight_layout()
    return fig


def fig_loss_and_errors(runs: list[DDLRun], abs_err: np.ndarray, long: DDLRun | None = None):
    """Fig 14: (a) loss per epoch of every seed (and of the longer run, as the published curve
    is); (b) histogram of the absolute errors over the test samples of measure 1."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.3))
    if long is not None:
        a.plot(long.losses, color="0.6", lw=0.8,
               label=f"{len(long.losses)} epochs (seed {long.settings.seed})")
    for k, run in enumerate(runs):
        a.plot(run.losses, color=f"C{k}", lw=1, label=f"seed {run.settings.seed}")
    a.legend(fontsize=7)
    a.set_xlabel(f"epoch (one batch of {runs[0].settings.batch_size})")
    a.set_ylabel("NLL loss")
    a.set_title("a  training loss", loc="left")
    step = runs[0].settings.ang_step_deg
    bins = np.arange(0, abs_err.max() + 2 * step, step) - step / 2
    b.hist(abs_err, bins=bins)
    b.set_xlabel("absolute error (deg)")
    b.set_ylabel("test samples")
    b.set_title(f"b  errors over {len(abs_err)} test samples", loc="left")
    fig.tight_layout()
    return fig


def fig_histograms_confusion(run: DDLRun):
    """Fig 15: true vs estimated histograms and confusion, train and test."""
    import matplotlib.pyplot as plt

    s = run.settings
    ev = run.evaluation
    ipd = s.ipd_deg()
    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
    for row, name in enumerate(("train", "test")):
        e = ev[name]
        ax = axes[row, 0]
        bins = np.arange(s.n_classes + 1) - 0.5
        ax.hist(e["true"], bins=bins, histtype="step", label="true")
        ax.hist(e["pred"], bins=bins, histtype="step", label="estimated")
        ticks = np.arange(0, s.n_classes, 6)
        ax.set_xticks(ticks, [f"{ipd[t]:.0f}" for t in ticks])
        ax.set_xlabel("IPD (deg)")
        ax.set_ylabel("samples")
        ax.legend(fontsize=7)
        ax.set_title(f"{'ac'[row]}  {name}: {100 * e['accuracy']:.1f}% correct, "
                     f"MAE {e['mae_deg']:.1f}°", loc="left", fontsize=9)
        ax = axes[row, 1]
        m = confusion(e["true"], e["pred"], s.n_classes)
        ext = (ipd[0] - 2.5, ipd[-1] + 2.5, ipd[0] - 2.5, ipd[-1] + 2.5)
        im = ax.imshow(m, origin="lower", extent=ext, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, label="fraction of true class")
        ax.set_xlabel("true IPD (deg)")
        ax.set_ylabel("estimated IPD (deg)")
        ax.set_title(f"{'bd'[row]}  {name} confusion", loc="left", fontsize=9)
    fig.tight_layout()
    return fig
