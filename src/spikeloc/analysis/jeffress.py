"""The tutorial's Jeffress coincidence-detection localiser (cosyne-tutorial-2022, notebook
``2-coincidence-detection`` and its solution), simulated on a time grid exactly as Brian2 does.

* Ears: two Poisson neurons, ear ``i`` (0 left, 1 right) firing at
  ``R_max (1 + sin(2 pi f t + i alpha)) / 2`` (probability rate x dt per step).
* ``n_detectors`` coincidence detectors, LIF ``tau dv/dt = -v``, threshold 1, reset 0, exact
  integration; detector ``j`` has best IPD ``2 pi j / n`` (the solution; the exercise used
  ``n - 1``: ``best_ipd_divisor="n_minus_1"``) and receives the left ear directly and the right
  ear delayed by its best ITD ``best_ipd / (2 pi f)`` (rounded to the grid, as Brian2 does),
  both with weight 0.5. Per step: decay, threshold, synaptic input, reset (Brian2's schedule).
* Estimate (``"max"``): mean best IPD of the detectors with the largest spike count;
  ``"savgol"``: argmax of the counts smoothed by a Savitzky-Golay filter (window 51, order 2,
  ``mode='wrap'``; the tutorial's improved solution).
* Error: circular absolute difference in degrees.

Quirk: the tutorial's ears multiply the tone by an edge-padding switch ``s`` so that the sound
is on only where both ears have it; on an unpadded 1 s tone it is 1 throughout, which is what
is simulated here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["JeffressConfig", "circular_error_deg", "estimate_ipd", "simulate_counts"]


@dataclass(frozen=True)
class JeffressConfig:
    r_max_hz: float = 400.0
    frequency_hz: float = 50.0
    n_detectors: int = 100
    tau_s: float = 1e-3
    w: float = 0.5
    duration_s: float = 1.0
    dt_s: float = 1e-4
    best_ipd_divisor: str = "n"  # "n" (solution) | "n_minus_1" (exercise)

    def best_ipds(self) -> np.ndarray:
        div = self.n_detectors if self.best_ipd_divisor == "n" else self.n_detectors - 1
        if self.best_ipd_divisor not in ("n", "n_minus_1"):
            raise ValueError(f"best_ipd_divisor: {self.best_ipd_divisor!r}: 'n' or 'n_minus_1'")
        return 2 * np.pi * np.arange(self.n_detectors) / div

    def delay_steps(self) -> np.ndarray:
        itd = self.best_ipds() / (2 * np.pi * self.frequency_hz)
        return np.rint(itd / self.dt_s).astype(np.int64)


def simulate_counts(
    ipds_rad: np.ndarray, cfg: JeffressConfig, rng: np.random.Generator, batch: int = 256
) -> np.ndarray:
    """Spike counts ``(n_ipds, n_detectors)`` of the detectors for each IPD."""
    ipds = np.atleast_1d(np.asarray(ipds_rad, dtype=float))
    n_t = int(round(cfg.duration_s / cfg.dt_s))
    delays = cfg.delay_steps()
    dmax = int(delays.max())
    a = np.exp(-cfg.dt_s / cfg.tau_s)
    t = np.arange(n_t) * cfg.dt_s
    out = np.zeros((len(ipds), cfg.n_detectors), dtype=np.int64)
    for start in range(0, len(ipds), batch):
        ipd = ipds[start : start + batch, None]
        b = ipd.shape[0]
        phase = 2 * np.pi * cfg.frequency_hz * t[None, :]
        p_left = cfg.r_max_hz * cfg.dt_s * 0.5 * (1 + np.sin(phase))
        p_right = cfg.r_max_hz * cfg.dt_s * 0.5 * (1 + np.sin(phase + ipd))
        left = (rng.random((b, n_t)) < p_left).astype(np.float64)
        right = np.zeros((b, n_t + dmax))
        right[:, dmax:] = rng.random((b, n_t)) < p_right
        v = np.zeros((b, cfg.n_detectors))
        counts = np.zeros((b, cfg.n_detectors), dtype=np.int64)
        cols = dmax - delays  # right[:, k - d] lives at column k - d + dmax
        for k in range(n_t):
            v *= a
            fired = v > 1.0
            v += cfg.w * (left[:, k : k + 1] + right[:, k + cols])
            if fired.any():
                counts += fired
                v[fired] = 0.0
        out[start : start + b] = counts
    return out


def smooth_counts(counts: np.ndarray) -> np.ndarray:
    """Detector counts ``(..., n_detectors)`` smoothed along the detectors by the exercise's
    Savitzky-Golay filter (window 51, order 2, wrapping round the circle of best IPDs)."""
    from scipy.signal import savgol_filter

    return savgol_filter(np.asarray(counts, dtype=float), 51, 2, mode="wrap", axis=-1)


def estimate_ipd(counts: np.ndarray, cfg: JeffressConfig, method: str = "max") -> np.ndarray:
    """IPD estimates (rad, in [0, 2 pi)) from detector counts ``(n, n_detectors)``."""
    counts = np.atleast_2d(counts)
    best = cfg.best_ipds()
    if method == "max":
        top = counts == counts.max(axis=1, keepdims=True)
        return (top * best).sum(1) / top.sum(1)
    if method == "savgol":
        return best[np.argmax(smooth_counts(counts), axis=1)]
    raise ValueError(f"method: {method!r}: expected 'max' or 'savgol'")


def circular_error_deg(true_rad: np.ndarray, estimate_rad: np.ndarray) -> np.ndarray:
    """|true - estimate| on the circle, degrees in [0, 180]."""
    d = np.mod(np.asarray(estimate_rad) - np.asarray(true_rad), 2 * np.pi)
    return np.degrees(np.minimum(d, 2 * np.pi - d))
