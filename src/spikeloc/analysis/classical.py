"""The tutorial's classical single neurons: LIF, the 2D LIF with a dynamic threshold, and
Hodgkin-Huxley (cosyne-tutorial-2022, notebook ``1-lif``, ``figures/1-classical`` and the slides).

Units: every time is in seconds (``tau_s``, ``dt_s``, ``t_s``); the LIF and 2D LIF potentials
are dimensionless (threshold 1); Hodgkin-Huxley's potential is in mV **relative to rest** and its
current in uA/cm^2 (the rate functions below are written per millisecond, as the slides and
Hodgkin & Huxley 1952 write them, and converted to per second).

**LIF** (exact integration on a grid of step ``dt``)::

    tau dV/dt = -V          V <- V + w on an input spike          V > V_th:  spike, V <- V_r

**2D LIF** (slides: "slightly more complicated model")::

    tau dV/dt = -V,   tau_t dV_t/dt = V_t0 - V_t   (V_t0 = 1)
    V > V_t:  spike, V <- V_r, V_t <- V_t + delta

Per step ``k`` (``update_order="brian"``, the order Brian2's default schedule uses, which made
the tutorial's figures): the state is recorded (Brian's ``StateMonitor`` runs at ``start``),
then both variables decay exactly (``V <- V e^{-dt/tau}``, ``V_t <- V_t0 + (V_t - V_t0)
e^{-dt/tau_t}``), the threshold is tested, the step's input spikes add their weights, and a
neuron that fired is reset (so input arriving in its spike step is lost, as in Brian2).
``update_order="notebook"`` is the pure-Python ``1-lif`` notebook's order: decay, add input,
test the threshold and reset, all in the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HHParams",
    "NeuronTrace",
    "exercise_threshold_solution",
    "hh_fi_curve",
    "hh_rates",
    "hh_rheobase",
    "hh_simulate",
    "interspike_intervals",
    "lif2d_trace",
    "lif_trace",
]


@dataclass(frozen=True)
class NeuronTrace:
    """A simulated trace: times (s), potential, threshold (None for a fixed one), spike times."""

    t_s: np.ndarray
    v: np.ndarray
    v_threshold: np.ndarray | None
    spike_times_s: np.ndarray


def _input_steps(times_s: Sequence[float], dt_s: float, n: int) -> np.ndarray:
    """Input spike counts per step (times rounded to the grid, as Brian2 does)."""
    counts = np.zeros(n, dtype=np.int64)
    for t in times_s:
        k = int(round(float(t) / dt_s))
        if 0 <= k < n:
            counts[k] += 1
    return counts


def lif2d_trace(
    input_times_s: Sequence[float],
    *,
    w: float,
    tau_s: float,
    tau_t_s: float | None,
    delta: float = 0.0,
    v0: float = 0.0,
    v_threshold0: float = 1.0,
    v_reset: float = 0.0,
    duration_s: float,
    dt_s: float = 1e-4,
    update_order: str = "brian",
) -> NeuronTrace:
    """The 2D LIF (``tau_t_s=None``: a fixed threshold, i.e. the plain LIF)."""
    if update_order not in ("brian", "notebook"):
        raise ValueError(f"update_order: {update_order!r}: expected 'brian' or 'notebook'")
    n = int(round(duration_s / dt_s))
    inputs = _input_steps(input_times_s, dt_s, n)
    a = np.exp(-dt_s / tau_s)
    at = np.exp(-dt_s / tau_t_s) if tau_t_s is not None else 1.0
    v, vt = float(v0), float(v_threshold0)
    vs, vts, spikes = np.empty(n), np.empty(n), []
    for k in range(n):
        vs[k], vts[k] = v, vt
        v = v * a
        if tau_t_s is not None:
            vt = v_threshold0 + (vt - v_threshold0) * at
        if update_order == "notebook":
            v += w * inputs[k]
        fired = v > vt
        if update_order == "brian":
            v += w * inputs[k]
        if fired:
            spikes.append(k * dt_s)
            v = v_reset
            if tau_t_s is not None:
                vt += delta
    t = np.arange(n) * dt_s
    return NeuronTrace(t, vs, vts if tau_t_s is not None else None, np.asarray(spikes))


def lif_trace(
    input_times_s: Sequence[float],
    *,
    w: float,
    tau_s: float,
    v0: float = 0.0,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    duration_s: float,
    dt_s: float = 1e-4,
    update_order: str = "brian",
) -> NeuronTrace:
    """The LIF neuron: exact decay, ``V <- V + w`` per input spike, reset above threshold."""
    return lif2d_trace(
        input_times_s,
        w=w,
        tau_s=tau_s,
        tau_t_s=None,
        v0=v0,
        v_threshold0=v_threshold,
        v_reset=v_reset,
        duration_s=duration_s,
        dt_s=dt_s,
        update_order=update_order,
    )


def interspike_intervals(spike_times_s: np.ndarray) -> np.ndarray:
    """Intervals between successive spikes (s)."""
    return np.diff(np.asarray(spike_times_s, dtype=float))


def exercise_threshold_solution(
    *,
    separation_s: float = 0.02,
    w: float = 1.2,
    tau_s: float = 0.05,
    tau_t_s: float = 0.1,
    delta: float = 0.5,
    first_s: float = 0.02,
    duration_s: float = 0.1,
    dt_s: float = 1e-4,
) -> tuple[NeuronTrace, NeuronTrace]:
    """The ``1-lif`` exercise: fire for the first of two identical inputs but not the second.

    A 2D LIF (widget defaults tau 50 ms, tau_t 100 ms, delta 0.5) with an input weight above
    the resting threshold but below the raised one: the first input fires the neuron, which
    lifts the threshold by ``delta``; the second, ``separation_s`` later, finds the threshold
    still above ``w`` and does not. Returns (2D LIF, plain LIF with the same inputs), the
    latter firing for both, for comparison.
    """
    times = [first_s, first_s + separation_s]
    two_d = lif2d_trace(
        times, w=w, tau_s=tau_s, tau_t_s=tau_t_s, delta=delta, duration_s=duration_s, dt_s=dt_s
    )
    plain = lif_trace(times, w=w, tau_s=tau_s, duration_s=duration_s, dt_s=dt_s)
    return two_d, plain


# --------------------------------------------------------------------------- Hodgkin-Huxley


@dataclass(frozen=True)
class HHParams:
    """Hodgkin & Huxley (1952), squid axon at 6.3 C; V in mV relative to rest, depolarisation
    positive (the convention of the modern textbooks the slides follow)."""

    c_uF_cm2: float = 1.0
    g_na_mS_cm2: float = 120.0
    g_k_mS_cm2: float = 36.0
    g_l_mS_cm2: float = 0.3
    e_na_mV: float = 115.0
    e_k_mV: float = -12.0
    e_l_mV: float = 10.6


def _vtrap(x: np.ndarray | float, y: float) -> np.ndarray | float:
    """x / (exp(x / y) - 1), continuous at x = 0 (value y)."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x / y) < 1e-6
    safe = np.where(small, 1.0, x)
    return np.where(small, y * (1 - x / y / 2), safe / np.expm1(safe / y))


def hh_rates(v_mV: np.ndarray | float) -> dict[str, np.ndarray]:
    """The rate functions per millisecond (V relative to rest, mV)::

    alpha_n = 0.01 (10 - V) / (exp((10 - V)/10) - 1)     beta_n = 0.125 exp(-V/80)
    alpha_m = 0.1 (25 - V) / (exp((25 - V)/10) - 1)      beta_m = 4 exp(-V/18)
    alpha_h = 0.07 exp(-V/20)                            beta_h = 1 / (exp((30 - V)/10) + 1)
    """
    v = np.asarray(v_mV, dtype=float)
    return {
        "alpha_n": 0.01 * _vtrap(10.0 - v, 10.0),
        "beta_n": 0.125 * np.exp(-v / 80.0),
        "alpha_m": 0.1 * _vtrap(25.0 - v, 10.0),
        "beta_m": 4.0 * np.exp(-v / 18.0),
        "alpha_h": 0.07 * np.exp(-v / 20.0),
        "beta_h": 1.0 / (np.exp((30.0 - v) / 10.0) + 1.0),
    }


def _steady(v_mV: float) -> tuple[float, float, float]:
    r = hh_rates(v_mV)
    return tuple(
        float(r[f"alpha_{g}"] / (r[f"alpha_{g}"] + r[f"beta_{g}"])) for g in ("n", "m", "h")
    )


def hh_simulate(
    current,
    *,
    duration_s: float,
    params: HHParams = HHParams(),
    dt_record_s: float = 1e-5,
    spike_threshold_mV: float = 50.0,
) -> dict[str, np.ndarray]:
    """Integrate HH from rest with ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-8).

    ``current``: a function ``I(t_s) -> uA/cm^2``, or a number (a constant step from t = 0).
    Returns t_s, v_mV, n, m, h and spike_times_s (upward crossings of ``spike_threshold_mV``).
    """
    from scipy.integrate import solve_ivp

    p = params
    i_of = current if callable(current) else (lambda t, c=float(current): c)

    def rhs(t_s, y):
        v, n, m, h = y
        r = hh_rates(v)
        i_ion = (
            p.g_na_mS_cm2 * m**3 * h * (v - p.e_na_mV)
            + p.g_k_mS_cm2 * n**4 * (v - p.e_k_mV)
            + p.g_l_mS_cm2 * (v - p.e_l_mV)
        )
        per_ms = [
            (i_of(t_s) - i_ion) / p.c_uF_cm2,
            r["alpha_n"] * (1 - n) - r["beta_n"] * n,
            r["alpha_m"] * (1 - m) - r["beta_m"] * m,
            r["alpha_h"] * (1 - h) - r["beta_h"] * h,
        ]
        return [1e3 * float(x) for x in per_ms]

    # rest: the potential where the total current vanishes with the gates at steady state
    from scipy.optimize import brentq

    def i_rest(v):
        n, m, h = _steady(v)
        return (
            p.g_na_mS_cm2 * m**3 * h * (v - p.e_na_mV)
            + p.g_k_mS_cm2 * n**4 * (v - p.e_k_mV)
            + p.g_l_mS_cm2 * (v - p.e_l_mV)
        )

    v0 = brentq(i_rest, -5.0, 5.0)
    t_eval = np.arange(0.0, duration_s, dt_record_s)
    sol = solve_ivp(
        rhs,
        (0.0, duration_s),
        [v0, *_steady(v0)],
        method="LSODA",
        t_eval=t_eval,
        rtol=1e-8,
        atol=1e-10,
        max_step=5e-5,
    )
    v = sol.y[0]
    up = np.flatnonzero((v[1:] >= spike_threshold_mV) & (v[:-1] < spike_threshold_mV)) + 1
    return {
        "t_s": sol.t,
        "v_mV": v,
        "n": sol.y[1],
        "m": sol.y[2],
        "h": sol.y[3],
        "spike_times_s": sol.t[up],
        "v_rest_mV": np.float64(v0),
    }


def hh_fi_curve(
    currents_uA_cm2: Sequence[float],
    *,
    duration_s: float = 0.5,
    transient_s: float = 0.1,
    params: HHParams = HHParams(),
) -> np.ndarray:
    """Steady firing rate (Hz) for constant currents: spikes after ``transient_s`` per second."""
    rates = []
    for i in currents_uA_cm2:
        out = hh_simulate(float(i), duration_s=duration_s, params=params, dt_record_s=2e-5)
        late = out["spike_times_s"][out["spike_times_s"] >= transient_s]
        rates.append(len(late) / (duration_s - transient_s))
    return np.asarray(rates)


def hh_rheobase(
    *,
    pulse_s: float = 0.05,
    duration_s: float = 0.06,
    lo: float = 0.0,
    hi: float = 20.0,
    tol: float = 0.01,
    params: HHParams = HHParams(),
) -> float:
    """Smallest current step (uA/cm^2, lasting ``pulse_s``) that fires one spike, by bisection."""

    def fires(i):
        def step(t, i=i):
            return i if t < pulse_s else 0.0

        out = hh_simulate(step, duration_s=duration_s, params=params, dt_record_s=2e-5)
        return len(out["spike_times_s"]) > 0

    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fires(mid) else (mid, hi)
    return 0.5 * (lo + hi)
