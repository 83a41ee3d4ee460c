"""The DCLS delay study (figs 16-17; ``research/Quick_Start_Delay_DCLS``): stimulus with fixed
Poisson uniforms and a fresh phase per epoch, training of weights and delays, evaluation and
figures. The network is :class:`spikeloc.core.delays.DCLSNetwork`."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc.core import delays


@dataclass(frozen=True)
class DCLSSettings:
    n_per_ear: int = 100
    n_hidden: int = 30
    n_classes: int = 12
    frequency_hz: float = 20.0
    envelope_power: float = 2.0
    rate_max_hz: float = 600.0
    dt_s: float = 1e-3
    duration_steps: int = 100
    tau_s: float = 5e-3
    max_delay_ms: int = 30  # 300 // 10, made odd: 31 taps (0-30 ms)
    n_train: int = 4096
    n_val: int = 4096
    n_test: int = 2048
    batch_size: int = 64
    epochs: int = 150
    lr: float = 1e-3
    max_lr: float = 5e-3
    position_lr_factor: float = 100.0
    sig_final: float = 0.23
    patience: int = 10
    best_weights: str = "references"  # published quirk: the final weights are kept; "copy": best
    seed: int = 0

    @property
    def taps(self) -> int:
        k = int(self.max_delay_ms)
        return k + 1 if k % 2 == 0 else k


class FixedUniformStimulus:
    """IPDs and the Poisson uniforms drawn once; :meth:`spikes` thresholds them against the
    tone's probability for a phase ``phi0`` (one per call, as in the notebook)."""

    def __init__(self, s: DCLSSettings, n: int, gen: torch.Generator):
        self.s = s
        self.ipd = (torch.rand(n, generator=gen) * math.pi - math.pi / 2)
        self.u = torch.rand(n, 2 * s.n_per_ear, s.duration_steps, generator=gen)
        self.labels = torch.floor((self.ipd + math.pi / 2) * s.n_classes / math.pi).long()
        self.labels = self.labels.clamp(0, s.n_classes - 1)

    def spikes(self, phi0: float) -> torch.Tensor:
        s = self.s
        t = torch.arange(s.duration_steps, dtype=torch.float32) * s.dt_s
        ear = torch.repeat_interleave(torch.tensor([0.0, 1.0]), s.n_per_ear)
        theta = (2 * math.pi * (s.frequency_hz * t[None, None, :] + phi0)
                 + ear[None, :, None] * self.ipd[:, None, None])  # no phase delays
        p = s.rate_max_hz * s.dt_s * ((1 + torch.sin(theta)) / 2) ** s.envelope_power
        return (self.u < p).float()  # (n, 200, T)


@dataclass
class DCLSResult:
    settings: DCLSSettings
    model: delays.DCLSNetwork
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    wall_s: float = 0.0


def _loss_acc(model, x, y, batch=512):
    losses, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(x[i : i + batch])
            losses += float(F.cross_entropy(out, y[i : i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return losses / len(y), correct / len(y)


def train(s: DCLSSettings, *, log=None) -> DCLSResult:
    if s.best_weights not in ("references", "copy"):
        raise ValueError(f"best_weights must be references or copy, not {s.best_weights!r}")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(s.seed)
    torch.manual_seed(s.seed)
    model = delays.DCLSNetwork(2 * s.n_per_ear, s.n_hidden, s.n_classes, s.taps,
                               tau_s=s.tau_s, dt_s=s.dt_s, n_steps=s.duration_steps - 1)
    train_set = FixedUniformStimulus(s, s.n_train, gen)
    val_set = FixedUniformStimulus(s, s.n_val, gen)
    xv = val_set.spikes(float(torch.rand(1, generator=gen)))
    weights = [m.weight for m in model.synapses()]
    positions = [m.P for m in model.synapses()]
    opt_w = torch.optim.Adam(weights, lr=s.lr)
    opt_p = torch.optim.Adam(positions, lr=s.position_lr_factor * s.lr)
    sch_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=s.max_lr, total_steps=s.epochs)
    sch_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=s.epochs)
    sig0 = s.taps // 2
    anneal_epochs = max(1, s.epochs // 4)
    factor = (s.sig_final / sig0) ** (1.0 / anneal_epochs)
    res = DCLSResult(s, model)
    best_state, best_val = None, math.inf
    for e in range(s.epochs):
        model.set_mode("gauss")
        x = train_set.spikes(float(torch.rand(1, generator=gen)))  # a new phase per epoch
        perm = torch.randperm(s.n_train, generator=gen)
        tot, correct = 0.0, 0
        for i in range(0, s.n_train, s.batch_size):
            idx = perm[i : i + s.batch_size]
            out = model(x[idx])
            loss = F.nll_loss(F.log_softmax(out, 1), train_set.labels[idx])
            opt_w.zero_grad()
            opt_p.zero_grad()
            loss.backward()
            opt_w.step()
            opt_p.step()
            for m in model.synapses():
                m.clamp_parameters()
            tot += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == train_set.labels[idx]).sum())
        sch_w.step()
        sch_p.step()
        if e < anneal_epochs:
            for m in model.synapses():
                if m.sig > s.sig_final:
                    m.set_sig(m.sig * factor)
        model.set_mode("max")
        vl, va = _loss_acc(model, xv, val_set.labels)
        res.history.append({"epoch": e, "train_loss": tot / s.n_train,
                            "train_accuracy": correct / s.n_train, "val_loss": vl,
                            "val_accuracy": va, "sig": model.w1.sig})
        if log:
            log(res.history[-1])
        if vl < best_val:
            best_val, res.best_epoch = vl, e
            best_state = copy.deepcopy(model.state_dict())
        losses = [h["val_loss"] for h in res.history[-s.patience :]]
        if e > s.patience and len(losses) == s.patience and losses[0] == min(losses):
            res.stopped_early = True
            break
    if s.best_weights == "copy" and best_state is not None:
        model.load_state_dict(best_state)
    model.set_mode("max")
    res.wall_s = time.perf_counter() - t0
    return res


@torch.no_grad()
def evaluate(res: DCLSResult, seed: int = 1) -> dict:
    """Train (a fresh phase on the training uniforms) and a fresh test set, 'max' mode. MAE:
    continuous true IPD against the estimated class midpoint."""
    s = res.settings
    gen = torch.Generator().manual_seed(s.seed)
    train_set = FixedUniformStimulus(s, s.n_train, gen)
    tgen = torch.Generator().manual_seed(50_000 + seed)
    test_set = FixedUniformStimulus(s, s.n_test, tgen)
    res.model.set_mode("max")
    out = {}
    for name, st, g in (("train", train_set, gen), ("test", test_set, tgen)):
        x = st.spikes(float(torch.rand(1, generator=g)))
        pred = torch.cat([res.model(x[i : i + 512]).argmax(1) for i in range(0, len(x), 512)])
        mid = (pred.double() + 0.5) * math.pi / s.n_classes - math.pi / 2
        out[name] = {"true": st.labels.numpy(), "pred": pred.numpy(),
                     "true_ipd_deg": np.rad2deg(st.ipd.numpy()),
                     "accuracy": float((pred == st.labels).double().mean()),
                     "mae_deg": float(np.rad2deg((mid - st.ipd.double()).abs().mean()))}
    return out


def delay_stats(res: DCLSResult) -> dict:
    """Rounded positions P of both layers (the notebook's statistics are over P)."""
    out = {}
    for name, m in (("w1", res.model.w1), ("w2", res.model.w2)):
        p = torch.round(m.P.detach()).numpy().ravel()
        out[name] = {"min": float(p.min()), "max": float(p.max()), "mean": float(p.mean()),
                     "sd": float(p.std())}
    return out


# ------------------------------------------------------------------------------ figures


def fig_histograms_confusion(res: DCLSResult, ev: dict):
    """Fig 16: true vs estimated class histograms and confusion matrices, train and test."""
    import matplotlib.pyplot as plt

    n = res.settings.n_classes
    edges = np.linspace(-90, 90, n + 1)
    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
    for row, name in enumerate(("train", "test")):
        e = ev[name]
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


def fig_receptive_fields(res: DCLSResult, neurons=(0, 1, 2, 3, 4)):
    """Fig 17: per hidden neuron, presynaptic index against learned delay (ms, the time by
    which the input is delayed: ``K - 1 - (round(P) + K//2)``), colour = sign of the weight,
    alpha ~ |w|."""
    import matplotlib.pyplot as plt

    w = res.model.w1.weight.detach()[:, :, 0].numpy()
    d = res.model.w1.delays().numpy()
    fig, axes = plt.subplots(1, len(neurons), figsize=(2.4 * len(neurons), 3.2), sharey=True)
    amax = np.abs(w).max()
    for ax, i in zip(np.atleast_1d(axes), neurons, strict=False):
        col = np.where(w[i] > 0, "C3", "C0")
        rgba = np.array([matplotlib_rgba(c) for c in col])
        rgba[:, 3] = np.abs(w[i]) / amax
        ax.scatter(d[i], np.arange(w.shape[1]), c=rgba, s=12)
        ax.axhline(res.settings.n_per_ear - 0.5, color="k", lw=0.5)
        ax.set_xlabel("learned delay (ms)")
        ax.set_title(f"hidden {i}", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("presynaptic index (left ear < 100 ≤ right ear)")
    fig.suptitle("red: excitatory, blue: inhibitory; opacity ~ |w|", fontsize=8)
    fig.tight_layout()
    return fig


def matplotlib_rgba(c):
    from matplotlib.colors import to_rgba

    return to_rgba(c)
