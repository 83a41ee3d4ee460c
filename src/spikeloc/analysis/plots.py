"""Figures of the basic-model appendix (figs 03-08) and generic SNN plots (matplotlib only).

Every function builds and returns a :class:`matplotlib.figure.Figure` (no pyplot state, no
saving: :func:`spikeloc.pipeline.figures.save_figure` writes a figure with its provenance). The output
depends only on the arguments; sizes follow the published figures (catalogue §1.1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from spikeloc.analysis.basic_model import BasicModelAnalysis
from spikeloc.core.stimuli import SpikeDataset

__all__ = [
    "input_examples",
    "confusion",
    "hidden_rates",
    "hidden_tuning",
    "output_tuning",
    "weights",
    "raster",
    "weight_matrix",
    "training_curve",
    "sweep_curve",
]

# Colours of the published figs 06/07: SNN black, approximations blue/orange/green.
SNN_COLOUR = "k"
R_COLOUR = "tab:blue"
RW_COLOUR = "tab:orange"
RWH_COLOUR = "tab:green"
GAUSS_COLOUR = "tab:orange"


def _clean(ax: Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=8)


def _arr(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _minmax(y: np.ndarray) -> np.ndarray:
    """Min-max normalise each column of ``y`` to [0, 1] (constant columns -> 0)."""
    lo = np.nanmin(y, axis=0)
    span = np.nanmax(y, axis=0) - lo
    return (y - lo) / np.where(span > 0, span, 1.0)


# --------------------------------------------------------------------------------------
# Figures 03-08
# --------------------------------------------------------------------------------------


def input_examples(dataset: SpikeDataset, n: int = 8, ncols: int = 4) -> Figure:
    """Fig03: spike rasters of the first ``n`` samples, titled with the true IPD (``int(deg)``,
    as published, with its name and unit: "IPD 77°").

    Time steps on x, input index on y (ear 0 fibres, then ear 1), ``gray_r``.
    """
    n = min(n, len(dataset))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(10, 2 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    spikes = _arr(dataset.spikes[:n].float())
    ipd = _arr(dataset.ipd[:n]).astype(np.float64)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        ax.imshow(
            spikes[k].T, aspect="auto", interpolation="nearest", origin="lower", cmap="gray_r"
        )
        ax.set_title(f"IPD {int(ipd[k] * 180 / np.pi)}°", fontsize=9)
        if k % ncols == 0:
            ax.set_ylabel("Input neuron", fontsize=8)
        if k >= n - ncols:
            ax.set_xlabel("Time step", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def confusion(conf: np.ndarray, n_classes: int, *, colorbar: bool = True) -> Figure:
    """Fig04: confusion matrix ``conf[est, true]`` (column-normalised), extent -90..90 deg,
    with a colour bar of the fraction of each true class (``colorbar=False``: as published)."""
    c = _arr(conf).astype(np.float64)
    if c.shape != (n_classes, n_classes):
        raise ValueError(
            f"confusion matrix has shape {c.shape}, expected ({n_classes}, {n_classes})"
        )
    fig = Figure(figsize=(6, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(
        c,
        interpolation="nearest",
        aspect="auto",
        origin="lower",
        extent=(-90, 90, -90, 90),
        cmap="viridis",
    )
    ax.set_xlabel("True IPD (deg)")
    ax.set_ylabel("Estimated IPD (deg)")
    if colorbar:
        fig.colorbar(im, ax=ax, label="Fraction of true class")
    return fig


def hidden_rates(rates_hz: np.ndarray | Sequence[float]) -> Figure:
    """Fig05: mean firing rate (Hz) of each hidden neuron, in its original index order."""
    r = _arr(rates_hz).astype(np.float64)
    fig = Figure(figsize=(8, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(len(r)), r, color="0.3")
    ax.set_xticks(np.arange(len(r)))
    ax.set_xlabel("Hidden neuron")
    ax.set_ylabel("Firing rate (sp/s)")
    _clean(ax)
    return fig


def _grid_rows(n_units: int, ncols: int = 4) -> int:
    """Rows of the tuning-curve grid: as many as the units fill (the published figure's empty
    third row is left out; the legend goes above the grid)."""
    return max(1, math.ceil(n_units / ncols))


def _tuning_grid(fig: Figure, n_units: int, ncols: int = 4) -> list[Axes]:
    gs = fig.add_gridspec(_grid_rows(n_units, ncols), ncols)
    return [fig.add_subplot(gs[k // ncols, k % ncols]) for k in range(n_units)]


def hidden_tuning(analysis: BasicModelAnalysis, *, published_placement: bool = True) -> Figure:
    """Fig06: hidden tuning curves, neurons in the reordered order (3 x 4 grid, 2 rows used).

    Black: SNN mean firing rate per true class +- 1.96 sd at the class midpoints, normalised
    by the population min/max. Orange: the shared Gaussian fit on the grid it was fitted on
    (``linspace(-90, 90, N_c)``), divided by its max. Blue: the rate approximation, min-max
    normalised per neuron. As published (checked against the notebook's EPS), the
    approximation computed at ``linspace(-90, 90, 12)`` is drawn at the class midpoints;
    ``published_placement=False`` draws it at the IPDs it was computed for.
    """
    a = analysis
    order = a.order
    x = a.class_midpoints * 180 / np.pi
    mean, sd, _, _ = a.hidden_tuning.normalised("population")
    fit_ipds = np.linspace(-math.pi / 2, math.pi / 2, a.n_classes)
    if a.gaussian.ipd_grid == "midpoints":
        fit_ipds = a.class_midpoints
    gauss = a.gaussian.curves(fit_ipds)  # reordered columns
    gauss = gauss / np.max(gauss, axis=0, keepdims=True)
    approx = _minmax(a.rates.hidden)
    approx_x = x if published_placement else a.rates.ipds * 180 / np.pi
    rows = _grid_rows(len(order))
    fig = Figure(figsize=(10, 2 * rows), dpi=100, layout="constrained")
    axes = _tuning_grid(fig, len(order))
    for i, (ax, h) in enumerate(zip(axes, order, strict=True)):
        m, s = mean[:, h], sd[:, h]
        ax.fill_between(x, m - 1.96 * s, m + 1.96 * s, color=SNN_COLOUR, alpha=0.15, lw=0)
        ax.plot(x, m, "-", color=SNN_COLOUR, lw=1.5, label="SNN")
        ax.plot(
            fit_ipds * 180 / np.pi,
            gauss[:, i],
            "-",
            color=GAUSS_COLOUR,
            lw=1.2,
            label="Gaussian fit",
        )
        ax.plot(approx_x, approx[:, h], "-", color=R_COLOUR, lw=1.2, label="Rate approx.")
        ax.set_title(f"Hidden neuron {h}", fontsize=9)
        ax.set_xlim(-90, 90)
        ax.set_xticks([-90, -45, 0, 45, 90])
        if i % 4 == 0:
            ax.set_ylabel("Normalised rate", fontsize=8)
        if i >= len(order) - 4:
            ax.set_xlabel("IPD (deg)", fontsize=8)
        _clean(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
    return fig


def output_tuning(
    analysis: BasicModelAnalysis,
    *,
    n_dots: int = 1024,
    dot_seed: int = 0,
    published_placement: bool = True,
) -> Figure:
    """Fig07: output tuning curves (mean output potential, no softmax), 12 panels in 3 x 4.

    Black: SNN mean per true class +- 1.96 sd, population-normalised, with ``n_dots``
    single samples (a fixed random subset drawn with ``dot_seed``) as light-grey dots at their
    true IPD. Blue/orange/green: the rate approximations R/RW/RWH, each min-max normalised per
    neuron, drawn at the class midpoints like fig06 (``published_placement=False``: at the
    IPDs they were computed for). Red dashed: the class midpoint the neuron stands for.
    """
    a = analysis
    x = a.class_midpoints * 180 / np.pi
    approx_x = x if published_placement else a.rates.ipds * 180 / np.pi
    mean, sd, lo, scale = a.output_tuning.normalised("population")
    n = len(a.output_vbar)
    idx = np.sort(np.random.default_rng(dot_seed).permutation(n)[: min(n_dots, n)])
    dots_x = a.predictions.ipd.numpy()[idx] * 180 / np.pi
    dots_y = (a.output_vbar[idx] - lo) / scale
    curves = [
        (a.rates.output_R, R_COLOUR, "R"),
        (a.rates.output_RW, RW_COLOUR, "RW"),
        (a.rates.output_RWH, RWH_COLOUR, "RWH"),
    ]
    fig = Figure(figsize=(12, 2 * _grid_rows(a.n_classes)), dpi=100, layout="constrained")
    axes = _tuning_grid(fig, a.n_classes)
    for k, ax in enumerate(axes):
        ax.plot(dots_x, dots_y[:, k], ".", color="0.8", ms=1.5, rasterized=True)
        m, s = mean[:, k], sd[:, k]
        ax.fill_between(x, m - 1.96 * s, m + 1.96 * s, color=SNN_COLOUR, alpha=0.15, lw=0)
        ax.plot(x, m, "-", color=SNN_COLOUR, lw=1.5, label="SNN")
        for y, colour, label in curves:
            if y is not None:
                ax.plot(approx_x, _minmax(y)[:, k], "-", color=colour, lw=1.2, label=label)
        ax.axvline(x[k], color="tab:red", ls="--", lw=1)
        ax.set_xlim(-90, 90)
        ax.set_xticks([-90, -45, 0, 45, 90])
        ax.set_title(f"Output neuron {k}", fontsize=9)
        if k % 4 == 0:
            ax.set_ylabel("Normalised $\\bar v$", fontsize=8)
        if k >= a.n_classes - 4:
            ax.set_xlabel("IPD (deg)", fontsize=8)
        _clean(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=4, fontsize=8, frameon=False)
    return fig


def _imshow_weights(fig: Figure, ax: Axes, w: np.ndarray, xlabel: str, ylabel: str, title: str):
    lim = float(np.max(np.abs(w))) or 1.0
    im = ax.imshow(
        w,
        interpolation="nearest",
        aspect="auto",
        origin="lower",
        cmap="RdBu",
        vmin=-lim,
        vmax=lim,
    )
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("Weight", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return im


def weights(W_ih: np.ndarray, W_ho: np.ndarray, order: np.ndarray | None = None) -> Figure:
    """Fig08: ``W_ih``, ``W_ho`` and ``W_io = W_ih W_ho``, hidden neurons reordered by ``order``.

    RdBu with symmetric colour limits per matrix, a "Weight" colourbar each (6 axes).
    """
    w_ih, w_ho = _arr(W_ih).astype(np.float64), _arr(W_ho).astype(np.float64)
    hidden = "Hidden neuron"
    if order is not None:
        w_ih, w_ho = w_ih[:, order], w_ho[order]
        hidden = "Hidden neuron (reordered)"
    fig = Figure(figsize=(10, 3), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    _imshow_weights(fig, axes[0], w_ih, hidden, "Input neuron", "$W_{ih}$")
    _imshow_weights(fig, axes[1], w_ho, "Output neuron", hidden, "$W_{ho}$")
    _imshow_weights(fig, axes[2], w_ih @ w_ho, "Output neuron", "Input neuron", "$W_{io} = W_{ih} W_{ho}$")
    return fig


# --------------------------------------------------------------------------------------
# Generic plots
# --------------------------------------------------------------------------------------


def raster(
    spikes: np.ndarray | torch.Tensor,
    *,
    dt_s: float | None = None,
    title: str | None = None,
    ylabel: str = "Neuron",
    figsize: tuple[float, float] = (6, 3),
) -> Figure:
    """Spike raster of one spike train array (T, N): a dot per spike.

    Time on x (steps, or ms when ``dt_s`` is given), neuron index on y.
    """
    s = _arr(spikes)
    if s.ndim != 2:
        raise ValueError(f"raster expects a (T, N) array, got shape {s.shape}")
    t, nrn = np.nonzero(s)
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    tx = t * dt_s * 1e3 if dt_s is not None else t
    ax.plot(tx, nrn, "|", color="k", ms=3, mew=0.8)
    ax.set_xlim(0, s.shape[0] * (dt_s * 1e3 if dt_s is not None else 1))
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("Time (ms)" if dt_s is not None else "Time step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    _clean(ax)
    return fig


def weight_matrix(
    W: np.ndarray | torch.Tensor,
    *,
    xlabel: str = "Postsynaptic neuron",
    ylabel: str = "Presynaptic neuron",
    title: str | None = None,
    figsize: tuple[float, float] = (4, 3),
) -> Figure:
    """One weight matrix (pre x post), RdBu with symmetric limits and a "Weight" colourbar."""
    w = _arr(W).astype(np.float64)
    if w.ndim != 2:
        raise ValueError(f"weight_matrix expects a 2-D array, got shape {w.shape}")
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    _imshow_weights(fig, ax, w, xlabel, ylabel, title or "")
    return fig


def _history_rows(history: Any) -> list[Mapping[str, Any]]:
    if hasattr(history, "to_dict"):  # a pandas DataFrame read from history.csv
        return list(history.to_dict("records"))
    return list(history)


def _column(rows: list[Mapping[str, Any]], key: str) -> np.ndarray:
    out = []
    for r in rows:
        v = r.get(key)
        out.append(np.nan if v is None or v == "" else float(v))
    return np.asarray(out, dtype=np.float64)


def training_curve(history: Sequence[Mapping[str, Any]] | Any) -> Figure:
    """Loss (and accuracy, when recorded) per epoch of a training run.

    ``history``: the rows of ``TrainResult.history`` / ``history.csv`` (a list of dicts or a
    DataFrame) with ``epoch``, ``train_loss`` and optionally ``val_loss``,
    ``train_accuracy``, ``val_accuracy``. One panel, or two when accuracies are present.
    """
    rows = _history_rows(history)
    if not rows:
        raise ValueError("training_curve: empty history")
    epoch = _column(rows, "epoch")
    if np.all(np.isnan(epoch)):
        epoch = np.arange(1, len(rows) + 1, dtype=np.float64)
    has_acc = any(np.isfinite(_column(rows, k)).any() for k in ("train_accuracy", "val_accuracy"))
    fig = Figure(figsize=(8 if has_acc else 4, 3), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    panels = [("loss", "Loss")] + ([("accuracy", "Accuracy")] if has_acc else [])
    for ax, (what, label) in zip(axes, panels, strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            y = _column(rows, f"{split}_{what}")
            if np.isfinite(y).any():
                ax.plot(epoch, y, style, color="k", label=split)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize=7, frameon=False)
        _clean(ax)
    return fig


def sweep_curve(
    summary: Any,
    x: str,
    *,
    runs: Any = None,
    metric: str | None = None,
    xlabel: str | None = None,
    ylabel: str = "",
    x_scale: float = 1.0,
    y_scale: float = 1.0,
    log_x: bool = False,
    figsize: tuple[float, float] = (3.5, 2.6),
) -> Figure:
    """A metric against one swept value: mean over seeds (line and dots) and one standard
    deviation either side (error bars), optionally every run as a small grey dot.

    ``summary``: rows with columns ``x``, ``mean`` and ``sd`` (what
    :func:`spikeloc.analysis.sweep_stats.mean_sd` returns; a DataFrame or a list of dicts).
    ``runs`` and ``metric``: the sweep table and the metric's column, for the single runs.
    Values are multiplied by ``x_scale`` / ``y_scale`` for display (1e3: seconds to ms).
    """
    rows = _history_rows(summary)
    if not rows:
        raise ValueError("sweep_curve: empty summary")
    order = np.argsort([float(r[x]) for r in rows], kind="stable")
    xs = np.asarray([float(rows[i][x]) for i in order]) * x_scale
    mean = _column([rows[i] for i in order], "mean") * y_scale
    sd = _column([rows[i] for i in order], "sd") * y_scale
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if runs is not None:
        if metric is None:
            raise ValueError("sweep_curve: `runs` needs `metric`, the column to show")
        single = _history_rows(runs)
        ax.plot(
            _column(single, x) * x_scale,
            _column(single, metric) * y_scale,
            "o",
            color="0.55",
            ms=3,
            mew=0,
            label="single runs",
            zorder=3,
        )
    ax.errorbar(
        xs,
        mean,
        yerr=np.where(np.isfinite(sd), sd, 0.0),
        fmt="-o",
        color="k",
        ms=4,
        capsize=2.5,
        elinewidth=0.8,
        label="mean \u00b1 sd over seeds",
        zorder=2,
    )
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=7, frameon=False)
    _clean(ax)
    return fig
