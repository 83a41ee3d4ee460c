"""Tensor component analysis of hidden spikes (the paper's TCA appendix, figs 9 and 10).

Everything follows ``research/TCA-analysis.ipynb`` (code as of ``8d53bd5``; catalogue §2.6)
on the PyPI ``tensortools`` 0.4 (which includes ``tensortools.cpwarp``):

* tensors are trials x neurons x time, smoothed along time with
  ``scipy.ndimage.gaussian_filter1d`` (sigma 2 bins) in one vectorised call;
* figure 9: every 500th trial the network saw while training (its recording,
  :mod:`spikeloc.core.recording`), shifted CP rank 1; figure 10: every 10th of 4096
  ordered-IPD test trials of the trained network, shifted CP rank 6 with unconstrained trial
  factors; rank diagnostics with ``tt.Ensemble(fit_method="ncp_hals")``;
* the published restarts quirk as an option: ``fit_shifted_cp(n_restarts > 1)`` never updates
  its ``best_loss`` and returns the *last* restart (``restarts="last"``, as published);
  ``restarts="best"`` keeps the restart of the lowest final loss;
* the fifty-network comparison: z-scored, sorted rank-1 neuron factors clustered with Ward
  linkage (``scipy.cluster.hierarchy``), ``fcluster`` at t = 5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from spikeloc.core.stimuli import continuise, discretise, generate_spikes

__all__ = [
    "smooth_tensor",
    "training_tensor",
    "ordered_ipd_tensor",
    "ShiftedFit",
    "fit_shifted",
    "rank_ensemble",
    "ipd_correlations",
    "sorted_zscores",
    "cluster_neuron_factors",
    "cluster_summary",
]


def smooth_tensor(spikes_btn: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """(trials, T, neurons) spikes -> (trials, neurons, T) float64, Gaussian-smoothed along
    time. One ``gaussian_filter1d(axis=-1)`` call gives exactly what the notebook's per-trial,
    per-neuron calls give (same reflect boundary and truncation)."""
    x = np.ascontiguousarray(np.transpose(np.asarray(spikes_btn, dtype=np.float64), (0, 2, 1)))
    return gaussian_filter1d(x, sigma=sigma, axis=-1)


def training_tensor(recording, every: int = 500, sigma: float = 2.0, n_classes: int = 12):
    """Figure 9's tensor: every ``every``-th recorded training trial (0, every, 2*every, ...),
    smoothed; returns ``(X, ipd_colour)`` with the class-midpoint IPD (rad) of each trial.
    Smoothing is along time within a trial, so selecting first gives the same numbers."""
    idx = np.arange(0, len(recording), every)
    X = smooth_tensor(recording.spikes(idx), sigma)
    colour = continuise(torch.as_tensor(recording.labels[idx]).long(), n_classes).numpy()
    return X, colour


@torch.no_grad()
def ordered_ipd_tensor(model, cfg, n: int = 4096, every: int = 10, sigma: float = 2.0,
                       seed: int = 0, batch: int = 512):
    """Figure 10's tensor: the trained network's hidden spikes to ``n`` IPDs
    ``linspace(-pi/2, pi/2, n)`` in order (one phase offset, as ``random_step_ipd_input_signal``),
    smoothed, every ``every``-th trial kept. Returns ``(X, ipd_colour, ipd, labels)``."""
    g = torch.Generator().manual_seed(int(seed))
    ipd = torch.linspace(-math.pi / 2, math.pi / 2, n, dtype=torch.float64)
    x = generate_spikes(ipd, cfg.stimulus, generator=g, dtype=torch.float32)
    model.eval()
    hidden = torch.cat([model(x[i : i + batch]).hidden_spikes for i in range(0, n, batch)])
    labels = discretise(ipd, cfg.model.n_classes)
    keep = np.arange(0, n, every)
    X = smooth_tensor(hidden.numpy()[keep], sigma)
    colour = continuise(labels, cfg.model.n_classes).numpy()[keep]
    return X, colour, ipd.numpy()[keep], labels.numpy()[keep]


@dataclass
class ShiftedFit:
    """A shifted CP model: factors ``u`` (rank, trials), ``v`` (rank, neurons), ``w`` (rank, T),
    trial shifts ``u_s``; ``losses``: the final loss of every restart; ``chosen``: its index."""

    model: object
    losses: list[float]
    chosen: int

    @property
    def factors(self):
        return self.model.factors

    def normalised(self):
        """Each factor row divided by its L2 norm (as plotted)."""
        return [f / np.linalg.norm(f, axis=1, keepdims=True) for f in self.model.factors]

    @property
    def loss(self) -> float:
        return self.losses[self.chosen]


def fit_shifted(
    X: np.ndarray,
    rank: int,
    *,
    n_restarts: int = 10,
    restarts: Literal["last", "best"] = "last",
    max_shift: float = 0.15,
    max_iter: int = 100,
    trial_nonneg: bool = True,
    neuron_nonneg: bool = True,
    boundary: Literal["wrap", "edge"] = "wrap",
    seed: int = 0,
) -> ShiftedFit:
    """``tensortools.cpwarp.fit_shifted_cp`` with per-trial time shifts (axis 0), restarted
    ``n_restarts`` times from the numpy stream seeded with ``seed``.

    ``restarts="last"`` returns the last restart, which is what the library's own
    ``n_restarts`` loop returns (published; its ``best_loss`` is never updated), and is
    numerically the same model; ``"best"`` the restart of the lowest final loss."""
    from tensortools.cpwarp import fit_shifted_cp

    if restarts not in ("last", "best"):
        raise ValueError(f"restarts must be 'last' or 'best', got {restarts!r}")
    _seed_all(int(seed))
    models, losses = [], []
    for _ in range(int(n_restarts)):
        m = fit_shifted_cp(
            X, rank, n_restarts=1, boundary=boundary, max_shift_axis0=max_shift,
            max_shift_axis1=None, max_iter=max_iter, u_nonneg=trial_nonneg,
            v_nonneg=neuron_nonneg,
        )
        models.append(m)
        losses.append(float(m.loss_hist[-1]))
    k = len(models) - 1 if restarts == "last" else int(np.argmin(losses))
    return ShiftedFit(model=models[k], losses=losses, chosen=k)


def _seed_all(seed: int) -> None:
    """Seed numpy's global stream (the initialisation) and numba's own one (the random
    parameter order inside the compiled updates, which ``np.random.seed`` does not reach)."""
    global _numba_seed
    np.random.seed(seed)
    if _numba_seed is None:
        import numba

        @numba.njit(cache=False)
        def _numba_seed_fn(s):
            np.random.seed(s)

        _numba_seed = _numba_seed_fn
    _numba_seed(seed)


_numba_seed = None


def rank_ensemble(X: np.ndarray, ranks: Sequence[int], replicates: int = 5, seed: int = 0):
    """``tt.Ensemble(fit_method="ncp_hals")`` fitted over ``ranks`` (nonnegative CP by HALS)."""
    import tensortools as tt

    np.random.seed(int(seed))
    ens = tt.Ensemble(fit_method="ncp_hals")
    ens.fit(X, ranks=list(ranks), replicates=int(replicates), verbose=False)
    return ens


def ipd_correlations(trial_factors: np.ndarray, ipd: np.ndarray) -> np.ndarray:
    """Pearson correlation of each component's trial factor (rank, trials) with the IPD."""
    u = np.asarray(trial_factors, dtype=np.float64)
    ipd = np.asarray(ipd, dtype=np.float64)
    uc = u - u.mean(1, keepdims=True)
    ic = ipd - ipd.mean()
    den = np.linalg.norm(uc, axis=1) * np.linalg.norm(ic)
    return np.where(den > 0, uc @ ic / np.where(den > 0, den, 1.0), 0.0)


def sorted_zscores(neuron_factors: np.ndarray) -> np.ndarray:
    """Each network's neuron factor (networks, neurons) z-scored and sorted descending.
    A constant factor (a silent network) gives zeros."""
    v = np.asarray(neuron_factors, dtype=np.float64)
    sd = v.std(1, keepdims=True)
    z = (v - v.mean(1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    return -np.sort(-z, axis=1)


def cluster_neuron_factors(
    neuron_factors: np.ndarray, t: float = 5.0, criterion: str = "distance"
):
    """Ward linkage of the sorted z-scores, cut with ``fcluster(t)``: ``(Z, labels, zs)``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    zs = sorted_zscores(neuron_factors)
    Z = linkage(zs, method="ward")
    return Z, fcluster(Z, t=t, criterion=criterion), zs


def cluster_summary(labels, zs, train_acc, test_acc, active_z: float = 0.5) -> list[dict]:
    """Per cluster: its size, the mean count of highly active units (z > ``active_z``) and the
    mean and sd of the train and test accuracies of its networks."""
    labels = np.asarray(labels)
    train_acc, test_acc = np.asarray(train_acc, float), np.asarray(test_acc, float)
    rows = []
    for c in np.unique(labels):
        m = labels == c
        rows.append({
            "cluster": int(c),
            "n_networks": int(m.sum()),
            "active_units": float((zs[m] > active_z).sum(1).mean()),
            "train_accuracy": float(train_acc[m].mean()),
            "train_accuracy_sd": float(train_acc[m].std()),
            "test_accuracy": float(test_acc[m].mean()),
            "test_accuracy_sd": float(test_acc[m].std()),
        })
    return rows


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def plot_factors(fit: ShiftedFit, colour: np.ndarray, *, trial_label: str = "trial",
                 dt_ms: float = 1.0):
    """One row per component: trial factor (scatter coloured by IPD in rad, viridis), neuron
    factor (bars) and time factor (line), each divided by its L2 norm (figs 9 and 10)."""
    import matplotlib.pyplot as plt

    u, v, w = fit.normalised()
    rank = u.shape[0]
    fig, axes = plt.subplots(rank, 3, figsize=(10, 1.7 * rank + 1.0), squeeze=False)
    for r in range(rank):
        a0, a1, a2 = axes[r]
        sc = a0.scatter(np.arange(u.shape[1]), u[r], c=colour, cmap="viridis", s=8,
                        vmin=-math.pi / 2, vmax=math.pi / 2)
        a1.bar(np.arange(v.shape[1]), v[r], color="0.3")
        a2.plot(np.arange(w.shape[1]) * dt_ms, w[r], color="k")
        a0.set_ylabel(f"component {r + 1}" if rank > 1 else "factor (a.u.)")
        for a in (a0, a1, a2):
            a.axhline(0, color="0.8", lw=0.5, zorder=0)
    axes[0, 0].set_title("A  trial factor", loc="left")
    axes[0, 1].set_title("B  neuron factor", loc="left")
    axes[0, 2].set_title("C  time factor", loc="left")
    axes[-1, 0].set_xlabel(trial_label)
    axes[-1, 1].set_xlabel("hidden unit")
    axes[-1, 2].set_xlabel("time (ms)")
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.92, 0.15, 0.015, 0.7))
    fig.colorbar(sc, cax=cax, label="class-midpoint IPD (rad)")
    return fig


def plot_rank_diagnostics(ensembles: dict):
    """Objective and similarity against rank for each named ``ncp_hals`` ensemble."""
    import matplotlib.pyplot as plt
    import tensortools as tt

    fig, axes = plt.subplots(len(ensembles), 2, figsize=(9, 3.0 * len(ensembles)), squeeze=False)
    for row, (name, ens) in zip(axes, ensembles.items(), strict=False):
        tt.plot_objective(ens, ax=row[0])
        tt.plot_similarity(ens, ax=row[1])
        row[0].set_title(f"{name}: reconstruction error", loc="left")
        row[1].set_title(f"{name}: replicate similarity", loc="left")
        row[0].set_ylabel("normalised error")
        row[1].set_ylabel("similarity to best")
        for a in row:
            a.set_xlabel("rank")
    fig.tight_layout()
    return fig


def plot_clusters(results: dict, t: float = 5.0):
    """For each named ``(Z, labels, summary)``: the Ward dendrogram and per-cluster accuracies."""
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram

    fig, axes = plt.subplots(len(results), 2, figsize=(11, 3.4 * len(results)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    for row, (name, (Z, _labels, summary)) in zip(axes, results.items(), strict=False):
        dendrogram(Z, ax=row[0], color_threshold=t, no_labels=True)
        row[0].axhline(t, color="r", ls="--", lw=0.8)
        row[0].set_title(f"{name}: Ward linkage of sorted z-scored neuron factors", loc="left")
        row[0].set_ylabel("Ward distance")
        row[0].set_xlabel("network")
        x = np.arange(len(summary))
        for off, key, col in ((-0.2, "train_accuracy", "C0"), (0.2, "test_accuracy", "C1")):
            row[1].bar(x + off, [100 * s[key] for s in summary], 0.4,
                       yerr=[100 * s[key + "_sd"] for s in summary], color=col,
                       label=key.split("_")[0])
        for i, s in enumerate(summary):
            top = 100 * max(s["train_accuracy"] + s["train_accuracy_sd"],
                            s["test_accuracy"] + s["test_accuracy_sd"])
            row[1].text(i, top + 1, f"n={s['n_networks']}\n{s['active_units']:.1f} active",
                        ha="center", va="bottom", fontsize=7)
        row[1].set_xticks(x, [str(s["cluster"]) for s in summary])
        row[1].set_xlabel("cluster")
        row[1].set_ylabel("accuracy (%)")
        row[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
