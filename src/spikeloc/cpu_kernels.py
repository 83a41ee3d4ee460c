r"""Compiled CPU kernels (numba) for the fused core: the LIF recurrence over time, forward and
adjoint.

The fused layer's per-step loops, run as torch or numpy calls, pay a microsecond or more of
interpreter and dispatch cost per operation -- at T=100, H=30 that is most of a training step.
Here the same recurrences are compiled once (numba, cached on disk) and run over all time steps
in one call, so the cost is the arithmetic.

**Arithmetic.** Every kernel computes in the dtype of its arrays (float32 or float64): the
scalars (``alpha``, ``theta``, ...) are passed in an array of that dtype, so no operation is
promoted to double, and numba's default (no fast-math) keeps each IEEE operation as written --
no reassociation and no fused multiply-add. The LIF forward pass therefore performs exactly the
reference step's operations (``(alpha * v + h) * (1 - s)``, the spike ``H(v - theta)``) and its
spikes are bit-identical to the reference loop's for the same input currents.

**LIF kernels** (:func:`lif_forward`, :func:`lif_backward`). Arrays indexed (batch, T, units)
with any strides; results are batch-major (each batch row's (T, units) block contiguous: the
layout of the input layer's GEMM output and of the readout's gradient, so no transposing
copies). The inner loop runs over the units of one step (vectorised). Every
option of :class:`spikeloc.layers.LIFSpec` (both update orders, reset to zero or by subtraction, ``detach_reset``, adaptive threshold). The forward kernel
records what the adjoint needs -- ``S`` (spikes), ``X`` (the surrogate's argument) and, for
reset to zero with the reset in the graph, ``U`` (the pre-reset potential). The surrogate
derivative ``sigma'(X)`` is evaluated by torch over all steps at once (vectorised ``exp``), and
the backward kernel runs the adjoint recurrence (the same equations as
:func:`spikeloc.layers._backward_adaptive`, which reduce to the non-adaptive ones when
``adaptive_beta = 0``).
"""

from __future__ import annotations

import os
from functools import cache

import numpy as np

__all__ = [
    "available",
    "lif_forward",
    "lif_backward",
]


@cache
def _nb():
    """numba, or None when it is not installed or ``SPIKELOC_NO_NUMBA=1``."""
    if os.environ.get("SPIKELOC_NO_NUMBA") == "1":
        return None
    try:
        import numba
    except Exception:  # pragma: no cover - numba is a dependency; this is the escape hatch
        return None
    return numba


def available() -> bool:
    """Whether the compiled kernels can be used (numba importable, not disabled)."""
    return _nb() is not None


def _jit():
    return _nb().njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)


# The flags are closure constants of the compiled functions: numba folds the branches away and
# compiles (and caches on disk) one specialised kernel per combination -- 3x faster than one
# kernel testing the flags inside its loops. Each kernel is one function: a kernel calling
# another jitted closure is recompiled in every process instead of being loaded from the cache.


@cache
def _forward_kernel(published: bool, zero: bool, adaptive: bool, store_u: bool):
    @_jit()
    def lif_fwd(h3, S3, X3, U3, p):
        # (batch, T, N) arrays, any strides; p = (alpha, theta, beta_a, rho, 1 - rho, 1, 0) in
        # the arrays' dtype. One batch row at a time (its (T, N) block is contiguous in the
        # batch-major layout); the inner loop runs over the N units of a step (vectorised).
        B, T, N = h3.shape
        alpha, theta, beta_a, rho, omr, one, nil = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        v = np.empty(N, h3.dtype)
        s = np.empty(N, h3.dtype)
        a = np.empty(N, h3.dtype)
        for b in range(B):
            h, S, X = h3[b], S3[b], X3[b]
            U = U3[b] if store_u else U3[0]
            for n in range(N):
                v[n] = nil
                s[n] = nil
                a[n] = nil
            if published:
                # s_{t+1} = H(v_t - theta_t); v_{t+1} = (alpha v_t + h_t)(1 - s_t) | ... - theta s_t
                for n in range(N):
                    S[0, n] = nil
                    X[T - 1, n] = nil  # s_T is not recorded
                    if store_u:
                        U[0, n] = nil
                for t in range(T - 1):
                    ht, Xt, St = h[t], X[t], S[t + 1]
                    Ut = U[t + 1] if store_u else U[0]
                    for n in range(N):
                        vn = v[n]
                        thr = theta + beta_a * a[n] if adaptive else theta
                        x = vn - thr
                        sn = one if x > nil else nil
                        u = alpha * vn + ht[n]
                        v[n] = u * (one - s[n]) if zero else u - theta * s[n]
                        if adaptive:
                            a[n] = rho * a[n] + omr * sn
                        s[n] = sn
                        Xt[n] = x
                        St[n] = sn
                        if store_u:
                            Ut[n] = u
            else:
                # u_t = alpha v_{t-1} + h_t; s_t = H(u_t - theta_t); v_t = u_t (1 - s_t) | ...
                for t in range(T):
                    ht, Xt, St = h[t], X[t], S[t]
                    Ut = U[t] if store_u else U[0]
                    for n in range(N):
                        u = alpha * v[n] + ht[n]
                        thr = theta + beta_a * a[n] if adaptive else theta
                        x = u - thr
                        sn = one if x > nil else nil
                        v[n] = u * (one - sn) if zero else u - theta * sn
                        if adaptive:
                            a[n] = rho * a[n] + omr * sn
                        Xt[n] = x
                        St[n] = sn
                        if store_u:
                            Ut[n] = u

    return lif_fwd


@cache
def _backward_kernel(published: bool, zero: bool, adaptive: bool, coupled: bool):
    @_jit()
    def lif_bwd(G3, SG3, S3, U3, dh3, p):
        # the adjoint of lif_fwd, (batch, T, N) arrays, any strides; SG = sigma'(X).
        B, T, N = G3.shape
        alpha, theta, beta_a, rho, omr, one, nil = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        kap = np.empty(N, G3.dtype)
        lam = np.empty(N, G3.dtype)
        mu = np.empty(N, G3.dtype)
        for b in range(B):  # notation of layers._backward_adaptive
            G, SG, S, dh = G3[b], SG3[b], S3[b], dh3[b]
            U = U3[b] if zero and coupled else U3[0]
            for n in range(N):
                kap[n] = nil
                lam[n] = nil
                mu[n] = nil
            if published:
                # lam = lam_{t+1}, mu = mu_{t+1}
                for n in range(N):
                    mu[n] = G[T - 1, n]
                    dh[T - 1, n] = nil  # v_{T-1} reaches no recorded spike
                for t in range(T - 2, -1, -1):
                    Gt, SGt, St, dht = G[t], SG[t], S[t], dh[t]
                    Ut = U[t + 1] if zero and coupled else U[0]
                    for n in range(N):
                        q = mu[n] * SGt[n]
                        ln = lam[n]
                        if zero:
                            e = one - St[n]
                            lam_new = q + alpha * e * ln
                        else:
                            e = one
                            lam_new = q + alpha * ln
                        dht[n] = ln * e  # dL/dh_t = lam_{t+1} E_t
                        m = Gt[n]
                        if coupled:
                            m = m - ln * Ut[n] if zero else m - theta * ln
                        if adaptive:
                            kap[n] = rho * kap[n] - beta_a * q
                            m = m + omr * kap[n]
                        mu[n] = m
                        lam[n] = lam_new
            else:
                nu, qq = lam, mu  # nu_{t+1}, mu_{t+1} sigma'_{t+1}
                for t in range(T - 1, -1, -1):
                    Gt, SGt, St, dht = G[t], SG[t], S[t], dh[t]
                    Ut = U[t] if zero and coupled else U[0]
                    for n in range(N):
                        ln = alpha * nu[n]
                        m = Gt[n]
                        if coupled:
                            m = m - ln * Ut[n] if zero else m - theta * ln
                        if adaptive:
                            kap[n] = rho * kap[n] - beta_a * qq[n]
                            m = m + omr * kap[n]
                        q = m * SGt[n]
                        qq[n] = q
                        nv = q + ln * (one - St[n]) if zero else q + ln
                        nu[n] = nv
                        dht[n] = nv

    return lif_bwd


def _params(spec, dtype) -> np.ndarray:
    return np.array(
        [spec.alpha, spec.threshold, spec.adaptive_beta, spec.rho, 1.0 - spec.rho, 1.0, 0.0],
        dtype=dtype,
    )


def lif_forward(h: np.ndarray, spec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """LIF recurrence over time for currents ``h`` indexed (batch, T, n), any strides,
    float32/float64.

    Returns ``(S, X, U)``, each a new C-contiguous (batch, T, n) array: spikes, the surrogate's
    argument (``v - theta`` before the spike decision; zero where no spike is recorded) and the
    pre-reset potential (None unless ``spec.needs_u``).
    """
    kernel = _forward_kernel(
        spec.order == "published", spec.reset == "zero", spec.adaptive, spec.needs_u
    )
    S = np.empty(h.shape, h.dtype)
    X = np.empty(h.shape, h.dtype)
    U = np.empty(h.shape, h.dtype) if spec.needs_u else np.empty((1, 1, 1), h.dtype)
    kernel(h, S, X, U, _params(spec, h.dtype))
    return S, X, (U if spec.needs_u else None)


def lif_backward(
    G: np.ndarray, SG: np.ndarray, S: np.ndarray, U: np.ndarray | None, spec
) -> np.ndarray:
    """dL/dh, a new C-contiguous (batch, T, n) array, from dL/dspikes ``G`` and the surrogate
    derivative ``SG = sigma'(X)`` (all indexed (batch, T, n), any strides)."""
    kernel = _backward_kernel(
        spec.order == "published", spec.reset == "zero", spec.adaptive, not spec.detach_reset
    )
    dh = np.empty(G.shape, G.dtype)
    U = U if U is not None else np.empty((1, 1, 1), G.dtype)
    kernel(G, SG, S, U, dh, _params(spec, G.dtype))
    return dh
