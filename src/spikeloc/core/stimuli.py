"""Stimuli: interaural phase differences (IPDs) and the two-ear auditory-nerve Poisson input.

Units: seconds and hertz everywhere (``dt_s``, ``duration_s``, ``frequency_hz``); angles in
radians unless a name ends in ``_deg``.

The model of the COMOB paper (catalogue §2.0). For ear ``i`` in {0 (left), 1 (right)} and fibre
``j`` of ``N`` per ear, at time ``t = n * dt`` (n = 0 .. T-1)::

    theta_ij(t) = 2*pi*(f*t + phi0) + i*ipd + psi_j,     psi_j = linspace(0, pi/2, N)[j]

and each fibre spikes in bin ``n`` with probability ``p`` (a Bernoulli draw per bin):

* ``probability="point"``:  ``p = R_max * dt * ((1 + sin theta) / 2) ** k`` (most notebooks);
* ``probability="exact"``:  ``p = integral of R_max*((1 + sin theta(s))/2)**k over the bin``
  (``time-constant-solutions``, the basic model), closed form for ``k = 2`` and Gauss-Legendre
  quadrature otherwise.

The inputs are ordered ``[ear 0 fibres 0..N-1, ear 1 fibres 0..N-1]``, so the published weight
matrix ``W_ih`` (200 x 8) lines up. ``psi_j`` is *added*: fibres are phase-advanced, not delayed
(a harmless relabelling the paper's text gets the other way round).

Quirks of the published code, each a named option:

* ``phase_offset="per_dataset"`` (published): one ``phi0`` for a whole call, so every sample of a
  dataset shares its phase offset (the cause of some large train/test gaps);
  ``"per_sample"`` draws one per sample.
* ``legacy_numpy_seed``: reproduce the numpy ``RandomState`` draw order of the notebooks
  (IPD uniforms, then ``phi0``, then the spike uniforms in C order) in float64, which lets the
  library reproduce the published test set and its numbers bit for bit.
* ``phase_delay_noise_rad``: Gaussian noise on ``psi_j``, one draw per dataset (noise-robustness
  notebook).
* ``fixed_uniforms``: keep the Bernoulli uniforms of each sample and redraw only ``phi0``
  (DCLS / ``Quick_Start_random``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = [
    "StimulusConfig",
    "SpikeDataset",
    "sample_ipds",
    "class_centres",
    "discretise",
    "continuise",
    "spike_probability",
    "generate_spikes",
    "make_dataset",
]

PhaseOffset = Literal["per_dataset", "per_sample"]
Probability = Literal["point", "exact"]
IPDDistribution = Literal["uniform", "classes", "linspace"]


@dataclass(frozen=True)
class StimulusConfig:
    """Parameters of the auditory-nerve input (defaults: the tutorial/starting notebook)."""

    frequency_hz: float = 20.0
    dt_s: float = 1e-3
    duration_s: float = 0.1
    anf_per_ear: int = 100
    rate_max_hz: float = 600.0
    envelope_power: float = 2.0
    phase_delays: bool = True
    phase_offset: PhaseOffset = "per_dataset"
    probability: Probability = "point"
    phase_delay_noise_rad: float = 0.0
    ipd_distribution: IPDDistribution = "uniform"
    n_classes: int = 12

    @property
    def n_steps(self) -> int:
        """Number of time bins ``T = round(duration / dt)``."""
        return int(round(self.duration_s / self.dt_s))

    @property
    def n_inputs(self) -> int:
        """Number of input fibres, both ears."""
        return 2 * self.anf_per_ear


# --------------------------------------------------------------------------------------
# IPDs and classes
# --------------------------------------------------------------------------------------


def class_centres(n_classes: int) -> torch.Tensor:
    """Class midpoints ``(k + 0.5) * pi / n_classes - pi/2`` (rad), float64."""
    k = torch.arange(n_classes, dtype=torch.float64)
    return (k + 0.5) * math.pi / n_classes - math.pi / 2


def discretise(ipd: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class index ``floor((ipd + pi/2) * n_classes / pi)``, clipped to ``[0, n_classes-1]``."""
    idx = torch.floor((ipd.double() + math.pi / 2) * n_classes / math.pi).long()
    return idx.clamp_(0, n_classes - 1)


def continuise(index: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class midpoint (rad) of each class index: the network's IPD estimate."""
    return (index.double() + 0.5) * math.pi / n_classes - math.pi / 2


def sample_ipds(
    n: int,
    distribution: IPDDistribution = "uniform",
    *,
    n_classes: int = 12,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` IPDs (rad, float64).

    ``uniform``: continuous U(-pi/2, pi/2) (as published); ``classes``: uniformly chosen class
    midpoints; ``linspace``: ``linspace(-pi/2, pi/2, n)`` in order (TCA evaluation).
    """
    if distribution == "uniform":
        return torch.rand(n, generator=generator, dtype=torch.float64) * math.pi - math.pi / 2
    if distribution == "classes":
        idx = torch.randint(0, n_classes, (n,), generator=generator)
        return continuise(idx, n_classes)
    if distribution == "linspace":
        return torch.linspace(-math.pi / 2, math.pi / 2, n, dtype=torch.float64)
    raise ValueError(f"unknown IPD distribution {distribution!r}")


# --------------------------------------------------------------------------------------
# Spike probability
# --------------------------------------------------------------------------------------


def _phase_grid(cfg: StimulusConfig, psi: torch.Tensor, ipd: torch.Tensor, phi0: torch.Tensor):
    """theta of shape (n, T, 2N), float64. ``phi0`` has shape (n,) or ()."""
    t = torch.arange(cfg.n_steps, dtype=torch.float64) * cfg.dt_s
    phi0 = phi0.reshape(-1, 1, 1) if phi0.ndim else phi0
    base = 2 * math.pi * (cfg.frequency_hz * t[None, :, None] + phi0)  # (n|1, T, 1)
    left = base + psi[None, None, :]
    right = base + psi[None, None, :] + ipd[:, None, None]
    left = left.expand(ipd.shape[0], -1, -1)
    return torch.cat([left, right], dim=2)


def spike_probability(theta: torch.Tensor, cfg: StimulusConfig) -> torch.Tensor:
    """Probability of a spike in the bin that starts at phase ``theta`` (float64)."""
    k, rmax, dt, f = cfg.envelope_power, cfg.rate_max_hz, cfg.dt_s, cfg.frequency_hz
    if cfg.probability == "point":
        return rmax * dt * ((1 + torch.sin(theta)) / 2) ** k
    if cfg.probability != "exact":
        raise ValueError(f"unknown probability mode {cfg.probability!r}")
    if k == 2:
        # closed form of the integral over [t, t + dt] (time-constant-solutions.ipynb)
        th2 = theta + 2 * math.pi * f * dt
        bracket = (
            -torch.sin(2 * th2)
            - 8 * torch.cos(th2)
            + torch.sin(2 * theta)
            + 8 * torch.cos(theta)
            + 12 * math.pi * f * dt
        )
        return (rmax / 4) * bracket / (8 * math.pi * f)
    # any other envelope power: 16-point Gauss-Legendre quadrature over the bin
    nodes, weights = np.polynomial.legendre.leggauss(16)
    out = torch.zeros_like(theta)
    for x, w in zip(nodes, weights, strict=True):
        ph = theta + math.pi * f * dt * (x + 1)
        out += w * ((1 + torch.sin(ph)) / 2) ** k
    return rmax * dt / 2 * out


def _probability_grid(
    cfg: StimulusConfig, psi: torch.Tensor, ipd: torch.Tensor, phi0: torch.Tensor
) -> torch.Tensor:
    """``spike_probability(_phase_grid(...))`` computed fast: (n, T, 2N) float64.

    theta = a_t + b_j splits into a time part ``a`` and a fibre part ``b``, so
    ``sin(a + b) = sin a cos b + cos a sin b`` needs transcendental functions only on the two
    small factors (agrees with the direct formula to ~1e-15).
    """
    n = ipd.shape[0]
    t = torch.arange(cfg.n_steps, dtype=torch.float64) * cfg.dt_s
    phi0 = phi0.reshape(-1, 1) if phi0.ndim else phi0
    a = 2 * math.pi * (cfg.frequency_hz * t[None, :] + phi0)  # (n|1, T)
    b = torch.cat([psi.expand(n, -1), psi[None, :] + ipd[:, None]], dim=1)  # (n, 2N)
    sa, ca = torch.sin(a)[:, :, None], torch.cos(a)[:, :, None]
    sb, cb = torch.sin(b)[:, None, :], torch.cos(b)[:, None, :]
    sin_t = sa * cb + ca * sb
    k, rmax, dt, f = cfg.envelope_power, cfg.rate_max_hz, cfg.dt_s, cfg.frequency_hz
    if cfg.probability == "point":
        env = (1 + sin_t) / 2
        return rmax * dt * (env * env if k == 2 else env**k)
    if cfg.probability == "exact" and k == 2:
        cos_t = ca * cb - sa * sb
        d = 2 * math.pi * f * dt
        sin_2 = sin_t * math.cos(d) + cos_t * math.sin(d)
        cos_2 = cos_t * math.cos(d) - sin_t * math.sin(d)
        bracket = (
            -2 * sin_2 * cos_2 - 8 * cos_2 + 2 * sin_t * cos_t + 8 * cos_t + 12 * math.pi * f * dt
        )
        return (rmax / 4) * bracket / (8 * math.pi * f)
    return spike_probability(
        _phase_grid(cfg, psi, ipd, phi0.reshape(-1) if phi0.ndim else phi0), cfg
    )


# --------------------------------------------------------------------------------------
# Spike generation
# --------------------------------------------------------------------------------------


def _phase_delays(cfg: StimulusConfig, noise: torch.Tensor | None) -> torch.Tensor:
    if cfg.phase_delays:
        psi = torch.linspace(0, math.pi / 2, cfg.anf_per_ear, dtype=torch.float64)
    else:
        psi = torch.zeros(cfg.anf_per_ear, dtype=torch.float64)
    if noise is not None:
        psi = psi + noise
    return psi


def generate_spikes(
    ipd: torch.Tensor,
    cfg: StimulusConfig,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    chunk_size: int = 1024,
    legacy_numpy_seed: int | None = None,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """Spike trains of shape ``(n, T, 2N)`` (0/1 values in ``dtype``) for the given IPDs.

    Draw order with a torch ``generator``: ``phi0`` (one, or one per sample), the phase-delay
    noise (if any), then the Bernoulli uniforms chunk by chunk (``chunk_size`` samples at a time,
    so peak memory is a few chunks of float64, not the whole dataset). With
    ``legacy_numpy_seed`` the notebooks' numpy ``RandomState`` stream is reproduced instead
    (``ipd`` must then come from :func:`make_dataset`, which draws it from the same stream).
    ``uniforms`` (n, T, 2N) replaces the Bernoulli draws (fixed-uniforms mode).
    """
    n = int(ipd.shape[0])
    ipd = ipd.to(torch.float64).cpu()
    out = torch.empty((n, cfg.n_steps, cfg.n_inputs), dtype=dtype, device=device)
    if legacy_numpy_seed is not None:
        raise ValueError("legacy_numpy_seed is only supported through make_dataset()")
    if cfg.phase_offset == "per_dataset":
        phi0 = torch.rand((), generator=generator, dtype=torch.float64)
    elif cfg.phase_offset == "per_sample":
        phi0 = torch.rand(n, generator=generator, dtype=torch.float64)
    else:
        raise ValueError(f"unknown phase_offset {cfg.phase_offset!r}")
    noise = None
    if cfg.phase_delay_noise_rad > 0:
        noise = (
            torch.randn(cfg.anf_per_ear, generator=generator, dtype=torch.float64)
            * cfg.phase_delay_noise_rad
        )
    psi = _phase_delays(cfg, noise)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        ph = phi0[start:stop] if phi0.ndim else phi0
        p = _probability_grid(cfg, psi, ipd[start:stop], ph)
        if uniforms is not None:
            u = uniforms[start:stop].to(torch.float64).cpu()
        else:
            u = torch.rand(p.shape, generator=generator, dtype=torch.float64)
        out[start:stop] = (u < p).to(device=device, dtype=dtype)
    return out


def _legacy_numpy_spikes(
    n: int,
    cfg: StimulusConfig,
    seed: int,
    *,
    device: torch.device | str,
    dtype: torch.dtype,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The notebooks' stream: ``np.random.seed(seed)``; IPDs; phi0; spike uniforms (C order)."""
    if (
        cfg.phase_offset != "per_dataset"
        or cfg.phase_delay_noise_rad
        or cfg.ipd_distribution != "uniform"
    ):
        raise ValueError(
            "legacy_numpy_seed reproduces the published stream only for phase_offset=per_dataset, "
            "ipd_distribution=uniform and no phase-delay noise"
        )
    rs = np.random.RandomState(seed)
    ipd = torch.from_numpy(rs.rand(n) * np.pi - np.pi / 2)
    phi0 = torch.tensor(rs.rand(), dtype=torch.float64)
    psi = _phase_delays(cfg, None)
    out = torch.empty((n, cfg.n_steps, cfg.n_inputs), dtype=dtype, device=device)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        p = _probability_grid(cfg, psi, ipd[start:stop], phi0)
        u = torch.from_numpy(rs.rand(stop - start, cfg.n_steps, cfg.n_inputs))
        out[start:stop] = (u < p).to(device=device, dtype=dtype)
    return ipd, out


@dataclass
class SpikeDataset:
    """A fixed, pre-generated dataset: spikes (n, T, 2N), IPDs (rad) and class labels."""

    spikes: torch.Tensor
    ipd: torch.Tensor
    labels: torch.Tensor
    config: StimulusConfig

    def __len__(self) -> int:
        return int(self.spikes.shape[0])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(spikes, labels, ipd)`` batches; ``shuffle`` uses ``randperm`` as published."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            dev_idx = idx.to(self.spikes.device)
            yield self.spikes[dev_idx], self.labels[idx], self.ipd[idx]


def make_dataset(
    n: int,
    cfg: StimulusConfig,
    *,
    generator: torch.Generator | None = None,
    legacy_numpy_seed: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    chunk_size: int = 1024,
) -> SpikeDataset:
    """Draw ``n`` IPDs and their spike trains.

    With a torch ``generator`` the draw order is: IPDs, then everything
    :func:`generate_spikes` draws. With ``legacy_numpy_seed`` the published numpy stream is
    reproduced (``ITDDataset`` of ``time-constant-solutions.ipynb``).
    """
    if n <= 0:
        raise ValueError(f"number of samples must be positive, got {n}")
    from spikeloc.engine.runtime import configure_runtime

    configure_runtime()  # malloc tuning: large float64 temporaries otherwise page-fault afresh
    if legacy_numpy_seed is not None:
        ipd, spikes = _legacy_numpy_spikes(
            n, cfg, legacy_numpy_seed, device=device, dtype=dtype, chunk_size=chunk_size
        )
    else:
        ipd = sample_ipds(n, cfg.ipd_distribution, n_classes=cfg.n_classes, generator=generator)
        spikes = generate_spikes(
            ipd, cfg, generator=generator, device=device, dtype=dtype, chunk_size=chunk_size
        )
    return SpikeDataset(spikes=spikes, ipd=ipd, labels=discretise(ipd, cfg.n_classes), config=cfg)
