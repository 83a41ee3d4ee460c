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
layout of the input layer's output and of the readout's gradient, so no transposing copies).
Every option of :class:`spikeloc.engine.layers.LIFSpec` (both update orders, reset to zero or by
subtraction, ``detach_reset``, adaptive threshold). The forward kernel records what the adjoint
needs -- ``S`` (spikes), ``X`` (the surrogate's argument times its ``beta``) and, for reset to
zero with the reset in the graph, ``U`` (the pre-reset potential). For the sigmoid surrogate
torch evaluates ``sigmoid(X)`` over all steps at once (its vectorised ``exp``); the backward
kernel forms ``sigma'`` from it (or from ``X``, for SuperSpike) with the operations of the torch
surrogate, and runs the adjoint recurrence (the same equations as
:func:`spikeloc.engine.layers._backward_adaptive`, which reduce to the non-adaptive ones when
``adaptive_beta = 0``). Two forms of each kernel:

* loop kernels (any width, any strides): the units of a step in an inner loop, the state in
  small arrays;
* lane-block kernels (C-contiguous arrays, a width that is a multiple of 8 up to
  :data:`MAX_LANES`): generated source with every unit unrolled into named scalars, so the
  state stays in registers over the time loop and LLVM's SLP vectoriser packs the units into
  SIMD registers -- the adjoint 4x faster (``SPIKELOC_LANE_KERNELS=0`` turns them off). The
  generated modules are written to ``SPIKELOC_KERNEL_DIR`` (default
  ``~/.cache/spikeloc/kernels``), where numba also caches their machine code.

**Table input layer** (:func:`bit_group_bags`, :func:`bit_group_scatter`): the kernels behind
:class:`spikeloc.engine.layers.TableInput` (below).

**Threads.** The lane-block kernels and the table scatter run in parts (batch rows, groups of
table rows) on torch's own OpenMP threads (:mod:`spikeloc.engine.kernel_threads`): a second thread
pool would compete with torch's workers, which keep spinning between torch operations. Parts
never share output, so results do not depend on the number of threads. The other kernels are
single-threaded.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import cache

import numpy as np

__all__ = [
    "available",
    "lif_forward",
    "lif_backward",
    "bit_group_bags",
    "kernel_threads",
    "bit_group_scatter",
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
def _forward_kernel(published: bool, zero: bool, adaptive: bool, store_u: bool, readout: bool):
    @_jit()
    def lif_fwd(h3, S3, X3, U3, p, c, R):
        # (batch, T, N) arrays, any strides; p = (alpha, theta, beta_a, rho, 1 - rho, 1, 0, beta)
        # in the arrays' dtype. One batch row at a time (its (T, N) block is contiguous in the
        # batch-major layout); the inner loop runs over the N units of a step (vectorised).
        B, T, N = h3.shape
        alpha, theta, beta_a, rho, omr, one, nil = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        beta = p[7]
        v = np.empty(N, h3.dtype)
        s = np.empty(N, h3.dtype)
        a = np.empty(N, h3.dtype)
        for b in range(B):
            h, S, X = h3[b], S3[b], X3[b]
            U = U3[b] if store_u else U3[0]
            Rb = R[b] if readout else R[0]  # readout: R[b] = sum_t c[t] S[t], in time order
            for n in range(N):
                v[n] = nil
                s[n] = nil
                a[n] = nil
                if readout:
                    Rb[n] = nil
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
                        Xt[n] = x * beta
                        St[n] = sn
                        if store_u:
                            Ut[n] = u
                        if readout:
                            Rb[n] = Rb[n] + c[t + 1] * sn
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
                        Xt[n] = x * beta
                        St[n] = sn
                        if store_u:
                            Ut[n] = u
                        if readout:
                            Rb[n] = Rb[n] + c[t] * sn

    return lif_fwd


@cache
def _backward_kernel(published: bool, zero: bool, adaptive: bool, coupled: bool, sigmoid: bool):
    @_jit()
    def lif_bwd(G3, Y3, S3, U3, dh3, p):
        # the adjoint of lif_fwd, (batch, T, N) arrays, any strides; sigma'(X) from Y (see
        # lif_backward), in the operations of torch's sigmoid_backward / the SuperSpike chain.
        B, T, N = G3.shape
        alpha, theta, beta_a, rho, omr, one, nil = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        beta = p[7]
        kap = np.empty(N, G3.dtype)
        lam = np.empty(N, G3.dtype)
        mu = np.empty(N, G3.dtype)
        for b in range(B):  # notation of layers._backward_adaptive
            G, Y, S, dh = G3[b], Y3[b], S3[b], dh3[b]
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
                    Gt, Yt, St, dht = G[t], Y[t], S[t], dh[t]
                    Ut = U[t + 1] if zero and coupled else U[0]
                    for n in range(N):
                        y = Yt[n]
                        if sigmoid:
                            sg = beta * (one - y) * y
                        else:
                            z = abs(y) + one
                            sg = one / (z * z)
                        q = mu[n] * sg
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
                    Gt, Yt, St, dht = G[t], Y[t], S[t], dh[t]
                    Ut = U[t] if zero and coupled else U[0]
                    for n in range(N):
                        ln = alpha * nu[n]
                        m = Gt[n]
                        if coupled:
                            m = m - ln * Ut[n] if zero else m - theta * ln
                        if adaptive:
                            kap[n] = rho * kap[n] - beta_a * qq[n]
                            m = m + omr * kap[n]
                        y = Yt[n]
                        if sigmoid:
                            sg = beta * (one - y) * y
                        else:
                            z = abs(y) + one
                            sg = one / (z * z)
                        q = m * sg
                        qq[n] = q
                        nv = q + ln * (one - St[n]) if zero else q + ln
                        nu[n] = nv
                        dht[n] = nv

    return lif_bwd


# ======================================================================================
# Lane-block kernels: the same recurrences with the units of a block in registers
# ======================================================================================
#
# The loop kernels above keep the state (v, s, a / lambda, mu, kappa) in small arrays; numba
# cannot tell LLVM that those do not overlap the (batch, T, N) arrays, so the unit loop stays
# scalar and every state update goes through memory. The lane-block kernels below are generated
# source: the layer's C units are unrolled into C named scalars, so the state lives in
# registers across the whole time loop, and LLVM's SLP vectoriser (switched on for these
# kernels only, see :func:`_slp_vectorize`) packs the C lanes into SIMD registers. Each lane
# performs the loop kernel's IEEE operations in the same order (no fast-math, no FMA
# contraction), so the results are bit-identical (checked in the tests). They need
# C-contiguous arrays and a width allowed by :func:`_lane_width`; otherwise the loop kernels
# run.

#: Widest unit block the lane-block kernels unroll (the state of wider layers would not fit
#: in registers anyway, and compile time grows with the width: ~1 s at 32 units, ~10 s at 112,
#: once per machine thanks to the disk cache).
MAX_LANES = {"forward": 32, "backward": 128}


def _lane_width(n: int, kind: str) -> int | None:
    """One block of all ``n`` units when ``n`` is a multiple of 8 (a SIMD register of float32)
    and at most ``MAX_LANES[kind]``; else None (the loop kernel runs). Measured on the project's
    2-core machine (float32, batch 128): the backward block kernel is 4x faster than the loop
    kernel at both T=100, n=32 and T=1000, n=112; the forward one is 1.7x faster at n=32 and
    no faster at n=112, where the forward loop is limited by memory traffic. Several narrower
    blocks per layer were slower: each block walks the whole time axis on its own."""
    return n if n % 8 == 0 and 0 < n <= MAX_LANES[kind] else None


class _Source:
    """Lines of generated kernel source for ``C`` lanes."""

    def __init__(self, C: int):
        self.C = C
        self.out: list[str] = []

    def line(self, indent: int, text: str) -> None:
        self.out.append(" " * indent + text)

    def lanes(self, indent: int, fmt: str) -> None:
        """One line per lane, ``{k}`` in ``fmt`` replaced by the lane number."""
        for k in range(self.C):
            self.line(indent, fmt.format(k=k))

    def text(self) -> str:
        return "\n".join(self.out)


def _forward_source(
    published: bool, zero: bool, adaptive: bool, store_u: bool, readout: bool, C: int
) -> str:
    src = _Source(C)
    line, lanes = src.line, src.lanes

    thr = "(theta + beta_a * a{k})" if adaptive else "theta"
    # C-contiguous (batch, T, C) arrays: a step's units are one contiguous row, so the lanes
    # are constant indices (contiguous loads and stores). With ``readout``, also
    # R[b] = sum_t c[t] S[b, t] (the spikes' time-weighted sum, in time order).
    line(0, "def kernel(part, nparts, h3, S3, X3, U3, p, c, R):")
    line(4, "B, T = h3.shape[0], h3.shape[1]")
    line(4, "alpha, theta, beta_a, rho, omr, one, nil = p[0], p[1], p[2], p[3], p[4], p[5], p[6]")
    line(4, "beta = p[7]")
    line(4, "for b in range(B * part // nparts, B * (part + 1) // nparts):")
    line(8, "h, S, X, U = h3[b], S3[b], X3[b], U3[b if U3.shape[0] > 1 else 0]")
    lanes(8, "v{k} = nil")
    lanes(8, "s{k} = nil")
    if adaptive:
        lanes(8, "a{k} = nil")
    if readout:
        lanes(8, "r{k} = nil")
    if published:
        line(8, "S0, XT, U0 = S[0], X[T - 1], U[0]")
        lanes(8, "S0[{k}] = nil")
        lanes(8, "XT[{k}] = nil")
        if store_u:
            lanes(8, "U0[{k}] = nil")
        line(8, "for t in range(T - 1):")
        line(12, "ht, Xt, St = h[t], X[t], S[t + 1]")
        line(12, f"Ut = U[{'t + 1' if store_u else '0'}]")
        lanes(12, "hh{k} = ht[{k}]")
        for k in range(C):
            line(12, f"x{k} = v{k} - {thr.format(k=k)}")
            line(12, f"sn{k} = one if x{k} > nil else nil")
            line(12, f"u{k} = alpha * v{k} + hh{k}")
            line(12, f"v{k} = u{k} * (one - s{k})" if zero else f"v{k} = u{k} - theta * s{k}")
            if adaptive:
                line(12, f"a{k} = rho * a{k} + omr * sn{k}")
            line(12, f"s{k} = sn{k}")
        if readout:  # S[0] = 0 adds nothing
            line(12, "ct = c[t + 1]")
            lanes(12, "r{k} = r{k} + ct * sn{k}")
    else:
        line(8, "for t in range(T):")
        line(12, "ht, Xt, St = h[t], X[t], S[t]")
        line(12, f"Ut = U[{'t' if store_u else '0'}]")
        lanes(12, "hh{k} = ht[{k}]")
        for k in range(C):
            line(12, f"u{k} = alpha * v{k} + hh{k}")
            line(12, f"x{k} = u{k} - {thr.format(k=k)}")
            line(12, f"sn{k} = one if x{k} > nil else nil")
            line(12, f"v{k} = u{k} * (one - sn{k})" if zero else f"v{k} = u{k} - theta * sn{k}")
            if adaptive:
                line(12, f"a{k} = rho * a{k} + omr * sn{k}")
        if readout:
            line(12, "ct = c[t]")
            lanes(12, "r{k} = r{k} + ct * sn{k}")
    lanes(12, "Xt[{k}] = x{k} * beta")
    lanes(12, "St[{k}] = sn{k}")
    if store_u:
        lanes(12, "Ut[{k}] = u{k}")
    if readout:
        line(8, "Rb = R[b]")
        lanes(8, "Rb[{k}] = r{k}")
    return src.text()


def _backward_source(
    published: bool,
    zero: bool,
    adaptive: bool,
    coupled: bool,
    sigmoid: bool,
    grad_s: bool,
    readout: bool,
    C: int,
) -> str:
    src = _Source(C)
    line, lanes = src.line, src.lanes

    use_u = zero and coupled
    # dL/ds_t = G[t] (grad_s) + c[t] gr (readout: the gradient of R = sum_t c[t] S[t]; the
    # single product torch's broadcast multiply would form), never stored
    line(0, "def kernel(part, nparts, G3, Y3, S3, U3, dh3, p, c, gr):")
    line(4, "B, T = Y3.shape[0], Y3.shape[1]")
    line(4, "alpha, theta, beta_a, rho, omr, one, nil = p[0], p[1], p[2], p[3], p[4], p[5], p[6]")
    line(4, "beta = p[7]")
    line(4, "for b in range(B * part // nparts, B * (part + 1) // nparts):")
    line(8, "G, U = G3[b if G3.shape[0] > 1 else 0], U3[b if U3.shape[0] > 1 else 0]")
    line(8, "Y, S, dh = Y3[b], S3[b], dh3[b]")
    lanes(8, "lam{k} = nil")
    lanes(8, "mu{k} = nil")
    if adaptive:
        lanes(8, "kap{k} = nil")
    if readout:
        line(8, "grb = gr[b]")
        lanes(8, "gr{k} = grb[{k}]")

    def grad(indent: int, t: str, name: str) -> None:
        """``{name}{k}`` = dL/ds at step ``t`` (``Gt`` = G[t])."""
        if readout:
            line(indent, f"ct = c[{t}]")
        if readout and grad_s:
            lanes(indent, name + "{k} = ct * gr{k} + Gt[{k}]")
        elif readout:
            lanes(indent, name + "{k} = ct * gr{k}")
        else:
            lanes(indent, name + "{k} = Gt[{k}]")

    def loads(indent: int) -> None:
        grad(indent, "t", "g")
        lanes(indent, "y{k} = Yt[{k}]")
        if sigmoid:  # torch's sigmoid_backward(beta, y): (beta * (1 - y)) * y
            lanes(indent, "sg{k} = beta * (one - y{k}) * y{k}")
        else:  # SuperSpike on y = beta x: 1 / (|y| + 1)^2, the torch chain's operations
            lanes(indent, "z{k} = abs(y{k}) + one")
            lanes(indent, "sg{k} = one / (z{k} * z{k})")
        if zero:
            lanes(indent, "s{k} = St[{k}]")
        if use_u:
            lanes(indent, "u{k} = Ut[{k}]")

    if published:
        line(8, f"Gt, dhT = G[{'T - 1' if grad_s else '0'}], dh[T - 1]")
        grad(8, "T - 1", "mu")
        lanes(8, "dhT[{k}] = nil")
        line(8, "for t in range(T - 2, -1, -1):")
        line(12, f"Gt, Yt, St, dht = G[{'t' if grad_s else '0'}], Y[t], S[t], dh[t]")
        line(12, f"Ut = U[{'t + 1' if use_u else '0'}]")
        loads(12)
        for k in range(C):
            line(12, f"q{k} = mu{k} * sg{k}")
            if zero:
                line(12, f"e{k} = one - s{k}")
                line(12, f"lamn{k} = q{k} + alpha * e{k} * lam{k}")
                line(12, f"d{k} = lam{k} * e{k}")
            else:
                line(12, f"lamn{k} = q{k} + alpha * lam{k}")
                line(12, f"d{k} = lam{k} * one")
            line(12, f"m{k} = g{k}")
            if coupled:
                line(
                    12, f"m{k} = m{k} - lam{k} * u{k}" if zero else f"m{k} = m{k} - theta * lam{k}"
                )
            if adaptive:
                line(12, f"kap{k} = rho * kap{k} - beta_a * q{k}")
                line(12, f"m{k} = m{k} + omr * kap{k}")
            line(12, f"mu{k} = m{k}")
            line(12, f"lam{k} = lamn{k}")
    else:
        # lam holds nu_{t+1}, mu holds q_{t+1} = m_{t+1} sigma'_{t+1}
        line(8, "for t in range(T - 1, -1, -1):")
        line(12, f"Gt, Yt, St, dht = G[{'t' if grad_s else '0'}], Y[t], S[t], dh[t]")
        line(12, f"Ut = U[{'t' if use_u else '0'}]")
        loads(12)
        for k in range(C):
            line(12, f"ln{k} = alpha * lam{k}")
            line(12, f"m{k} = g{k}")
            if coupled:
                line(12, f"m{k} = m{k} - ln{k} * u{k}" if zero else f"m{k} = m{k} - theta * ln{k}")
            if adaptive:
                line(12, f"kap{k} = rho * kap{k} - beta_a * mu{k}")
                line(12, f"m{k} = m{k} + omr * kap{k}")
            line(12, f"mu{k} = m{k} * sg{k}")
            line(
                12, f"lam{k} = mu{k} + ln{k} * (one - s{k})" if zero else f"lam{k} = mu{k} + ln{k}"
            )
            line(12, f"d{k} = lam{k}")
    lanes(12, "dht[{k}] = d{k}")
    return src.text()


_fallback_dir: str | None = None


def _kernel_dir() -> str:
    """Where generated kernel modules (and numba's cache of them) live: ``SPIKELOC_KERNEL_DIR``,
    else ``$XDG_CACHE_HOME/spikeloc/kernels`` (``~/.cache/...``), else one temporary directory
    per process."""
    global _fallback_dir
    import tempfile

    candidates = [os.environ.get("SPIKELOC_KERNEL_DIR")]
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(os.path.join(cache_home, "spikeloc", "kernels"))
    for path in candidates:
        if not path:
            continue
        try:
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError:
            continue
    if _fallback_dir is None or not os.path.isdir(_fallback_dir):
        _fallback_dir = tempfile.mkdtemp(prefix="spikeloc-kernels-")
    return _fallback_dir


_HEADER = (
    "# generated by spikeloc.engine.cpu_kernels; safe to delete (it is written again when needed)\n"
    "import numba\n\n\n"
)
_JIT = "@numba.njit(cache=True, nogil=True, error_model='numpy', boundscheck=False)\n"


def _load_generated(text: str):
    """Import generated module ``text``. It is written to a file named by its hash (atomically:
    parallel jobs may write the same file) and imported from there, so numba's disk cache keeps
    the compiled code between processes."""
    import hashlib
    import importlib.util

    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    directory = _kernel_dir()
    path = os.path.join(directory, f"k_{digest}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    name = f"spikeloc_kernel_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cached code refers back to its module by name
    spec.loader.exec_module(module)
    return module


@cache
def _generated(source: str):
    """Compile-on-first-call dispatcher of generated kernel ``source`` (function ``kernel``)."""
    return _load_generated(_HEADER + _JIT + source + "\n").kernel


# --------------------------------------------------------------------------------------
# Parallel parts on torch's OpenMP threads (spikeloc.engine.kernel_threads)
# --------------------------------------------------------------------------------------
#
# A parallel kernel is ``kernel(part, nparts, *arrays)``: it does part ``part`` of ``nparts``
# of its units (a range of batch rows, or of table segments; ``kernel(0, 1, ...)`` does all),
# and no two parts write the same output, so the result does not depend on the number of
# parts. Its module also holds a ``cfunc`` ``parts``
# that rebuilds the arrays from a header of addresses and shapes and runs parts until none is
# left; ``GOMP_parallel`` runs it on torch's threads.

_PARTS_HEADER = (
    "from numba import carray, float32, float64, int32, int64\n"
    "from spikeloc.engine.kernel_threads import as_pointer, fetch_add\n\n\n"
)


def _parts_source(signature: tuple[tuple[np.dtype, int], ...]) -> str:
    """The ``parts`` cfunc for a kernel taking C-contiguous arrays of (dtype, ndim)."""
    out = [
        "@numba.cfunc('void(CPointer(int64))', cache=True, error_model='numpy', boundscheck=False)",
        "def parts(hdr):",
        f"    h = carray(hdr, {2 + 4 * len(signature)})",
    ]
    names = []
    for i, (dtype, ndim) in enumerate(signature):
        base = 2 + 4 * i
        shape = ", ".join(f"h[{base + 1 + d}]" for d in range(ndim))
        out.append(f"    a{i} = carray(as_pointer(h[{base}], {dtype.name}), ({shape},))")
        names.append(f"a{i}")
    out += [
        "    while True:",
        "        part = fetch_add(hdr, 1)",
        "        if part >= h[1]:",
        "            break",
        f"        kernel(part, h[1], {', '.join(names)})",
    ]
    return "\n".join(out)


@cache
def _parallel(source: str, signature: tuple[tuple[np.dtype, int], ...]):
    """The module of generated kernel ``source`` with its ``parts`` cfunc for ``signature``
    (compiled when the module is imported)."""
    text = _HEADER + _PARTS_HEADER + _JIT + source + "\n\n\n" + _parts_source(signature) + "\n"
    with _slp_vectorize():
        return _load_generated(text)


_forked = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


# GNU OpenMP's thread pool does not survive fork(): a forked child (a DataLoader worker, a
# fork-started multiprocessing pool) runs the kernels on its own thread
os.register_at_fork(after_in_child=_after_fork_in_child)


def kernel_threads() -> int:
    """Threads the parallel kernels use: torch's intra-op threads when its OpenMP runtime can
    run them (see :mod:`spikeloc.engine.kernel_threads`; ``SPIKELOC_KERNEL_THREADS`` caps them), else
    1 -- also in a process forked from one that imported this module."""
    if _forked or not available():
        return 1
    from spikeloc.engine import kernel_threads as _kernel_threads

    return _kernel_threads.kernel_threads()


def _run_parts(source: str, threads: int, *arrays: np.ndarray) -> None:
    """Run generated parallel kernel ``source``: ``kernel(part, threads, *arrays)`` for every
    part, one per thread on torch's OpenMP threads, when ``threads`` > 1 (C-contiguous arrays
    of at most 3 dimensions); else ``kernel(0, 1, *arrays)`` on this thread."""
    if threads <= 1 or not all(a.flags.c_contiguous and a.ndim <= 3 for a in arrays):
        with _slp_vectorize():
            _generated(source)(0, 1, *arrays)
        return
    from spikeloc.engine import kernel_threads as _kernel_threads

    module = _parallel(source, tuple((a.dtype, a.ndim) for a in arrays))
    hdr = np.zeros(2 + 4 * len(arrays), np.int64)
    hdr[1] = threads
    for i, a in enumerate(arrays):
        hdr[2 + 4 * i] = a.ctypes.data
        hdr[3 + 4 * i : 3 + 4 * i + a.ndim] = a.shape
    # the arrays stay referenced here until the call returns (it waits for every part)
    _kernel_threads.omp_parallel()(module.parts.address, hdr.ctypes.data, threads, 0)


@cache
def _lane_kernel(kind: str, flags: tuple, C: int) -> str:
    """Source of the lane-block kernel (a parallel kernel over batch rows)."""
    source = _forward_source if kind == "forward" else _backward_source
    return source(*flags, C)


class _slp_vectorize:
    """Context in which numba compiles with LLVM's SLP vectoriser on (off by default in numba;
    read per compilation, so this scopes it to the lane-block kernels)."""

    def __enter__(self):
        from numba.core import config

        self._old = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1

    def __exit__(self, *exc):
        from numba.core import config

        config.SLP_VECTORIZE = self._old


def _lane_ok(kind: str, n: int, *arrays: np.ndarray | None) -> int | None:
    """The block width for ``n`` units when every array is C-contiguous, else None.
    ``SPIKELOC_LANE_KERNELS=0`` turns the block kernels off."""
    if os.environ.get("SPIKELOC_LANE_KERNELS") == "0":
        return None
    C = _lane_width(n, kind)
    if C is None or not all(a is None or a.flags.c_contiguous for a in arrays):
        return None
    return C


def _params(spec, dtype) -> np.ndarray:
    return np.array(
        [
            spec.alpha,
            spec.threshold,
            spec.adaptive_beta,
            spec.rho,
            1.0 - spec.rho,
            1.0,
            0.0,
            spec.beta,
        ],
        dtype=dtype,
    )


def lif_forward(
    h: np.ndarray, spec, c: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """LIF recurrence over time for currents ``h`` indexed (batch, T, n), any strides,
    float32/float64.

    Returns ``(S, X, U, R)``: new C-contiguous (batch, T, n) arrays of the spikes, the
    surrogate's argument scaled by its ``beta`` (``beta * (v - theta)`` before the spike
    decision, the product torch's surrogate would form first; zero where no spike is recorded)
    and the pre-reset potential (None unless ``spec.needs_u``); with readout weights ``c``
    (T,), ``R`` (batch, n) = ``sum_t c[t] S[:, t]`` summed in time order (else None).
    """
    if not spec.beta > 0:
        raise ValueError(f"the surrogate's beta must be positive, got {spec.beta}")
    readout = c is not None
    flags = (spec.order == "published", spec.reset == "zero", spec.adaptive, spec.needs_u, readout)
    B, T, n = h.shape
    S = np.empty(h.shape, h.dtype)
    X = np.empty(h.shape, h.dtype)
    C = _lane_ok("forward", n, h)
    U = np.empty(h.shape, h.dtype) if spec.needs_u else np.empty((1, 1, n), h.dtype)
    R = np.empty((B, n) if readout else (1, n), h.dtype)
    c = np.ascontiguousarray(c, h.dtype) if readout else np.zeros(1, h.dtype)
    p = _params(spec, h.dtype)
    if C is not None:
        threads = min(kernel_threads(), B)
        _run_parts(_lane_kernel("forward", flags, C), threads, h, S, X, U, p, c, R)
    else:
        _forward_kernel(*flags)(h, S, X, U, p, c, R)
    return S, X, (U if spec.needs_u else None), (R if readout else None)


def lif_backward(
    G: np.ndarray | None,
    Y: np.ndarray,
    S: np.ndarray,
    U: np.ndarray | None,
    spec,
    c: np.ndarray | None = None,
    gr: np.ndarray | None = None,
) -> np.ndarray:
    """dL/dh, a new C-contiguous (batch, T, n) array (all arrays indexed (batch, T, n), any
    strides), from dL/dspikes: ``G``, plus, with readout weights ``c`` (T,), the gradient ``gr``
    (batch, n) of ``R = sum_t c[t] S[:, t]`` (``c[t] gr`` per step: formed inside the adjoint
    when it runs as a lane-block kernel, never stored). ``G`` may be None when ``gr`` is given.
    The surrogate derivative is formed inside the adjoint from ``Y``: for the sigmoid surrogate
    ``Y = sigmoid(X)`` of the forward's record ``X`` (computed by torch, whose ``exp`` this
    must match), for SuperSpike ``Y = X``; the operations are those of the torch surrogate, so
    the values are the same bit for bit."""
    readout = gr is not None
    if G is None and not readout:
        raise ValueError("lif_backward needs G, or c and gr")
    B, T, n = Y.shape
    if readout:
        c = np.ascontiguousarray(c, Y.dtype)
        gr = np.ascontiguousarray(gr, Y.dtype)
    grad_s = G is not None
    C = _lane_ok("backward", n, Y, S, U, G)
    if readout and C is None:  # the loop kernel takes dL/ds as an array: form it
        Gr = c[None, :, None] * gr[:, None, :]
        G, readout, grad_s = (Gr if G is None else Gr + G), False, True
    sigmoid = spec.surrogate == "sigmoid"
    dh = np.empty(Y.shape, Y.dtype)
    U = U if U is not None else np.empty((1, 1, n), Y.dtype)
    p = _params(spec, Y.dtype)
    if C is not None:
        flags = (spec.order == "published", spec.reset == "zero", spec.adaptive,
                 not spec.detach_reset, sigmoid, grad_s, readout)  # fmt: skip
        G = G if grad_s else np.empty((1, 1, n), Y.dtype)
        c = c if readout else np.zeros(1, Y.dtype)
        gr = gr if readout else np.empty((1, n), Y.dtype)
        threads = min(kernel_threads(), B)
        _run_parts(_lane_kernel("backward", flags, C), threads, G, Y, S, U, dh, p, c, gr)
    else:
        flags = (spec.order == "published", spec.reset == "zero", spec.adaptive,
                 not spec.detach_reset, sigmoid)  # fmt: skip
        _backward_kernel(*flags)(G, Y, S, U, dh, p)
    return dh


# ======================================================================================
# Input layer for 0/1 spikes: groups of 8 inputs as table rows (the "four Russians" method)
# ======================================================================================
#
# For binary input x (rows r, K inputs) and weights W (K, H), h = x @ W sums the rows of W
# whose inputs spike. Cut the inputs into groups of 8: group g of row r is one byte pattern
# c = sum_j 2^j x[r, 8g + j] (0..255), and its contribution is the table row
# tab[256 g + c] = sum_j bit_j(c) W[8g + j]. Then h[r] = sum_g tab[code(r, g)]: K/8 table rows per
# row instead of K multiply-adds (a fraction of a dense GEMM's work at these shapes, and no float
# copy of x). The gradient is the transpose: the table's gradient collects the gradient rows
# (dtab[code(r, g)] += G[r], :func:`bit_group_scatter`) and dW[8g + j] = sum_c bit_j(c)
# dtab[256 g + c] -- a small product. Only the summation order differs from the GEMM.
#
# Silent groups (code 0) are left out of both directions: their table row is zero (it sums no
# weights), and their gradient row is multiplied by bit_j(0) = 0 for every j. Spike trains that
# follow a stimulus are correlated in time, so silent groups are frequent -- 42% of the groups
# at the tutorial's T=100 stimulus, against 14% for independent inputs of the same density.
# Leaving them out halved the look-ups and cut the scatter from 1.8 to 0.7 ms: besides the work,
# the updates of the code-0 rows formed dependency chains through memory (a store to a row,
# then a load of the same row a few updates later).

#: Bytes of 0/1 flags -> bits: (8 little-endian bytes) * MAGIC >> 56 gathers byte j into bit j
#: (the partial products land on distinct bits, so nothing carries into the top byte).
_MAGIC = 0x0102040810204080


def bit_groups_supported() -> bool:
    """The byte-to-bit trick assumes little-endian words."""
    return available() and sys.byteorder == "little"


@cache
def _bags_kernel():
    @_jit()
    def bags_k(x64, bounds, idx, off, cuts):
        # x64: (R, n_groups) uint64, each word 8 bytes of 0/1. Writes the table rows of the
        # non-silent groups of row r to idx[off[r]:off[r + 1]] (off has R + 1 entries) and
        # returns their number; cuts[r, p] is where the groups bounds[p].. of row r begin
        # (cuts[r, P] = off[r + 1]). A row's table rows are computed first (a vectorised
        # loop), then compacted without branches: each is written, and the write position
        # advances past the non-silent ones only. (Single-threaded: on two threads it measured
        # barely faster -- its stores, not latency, are the limit.)
        magic = np.uint64(_MAGIC)
        shift = np.uint64(56)
        R, ng = x64.shape
        P = bounds.shape[0] - 1
        codes = np.empty(ng, np.int32)  # (uint64 + int64 would be float64 in numba)
        pos = np.empty(ng + 1, np.int64)
        j = np.int64(0)
        for r in range(R):
            off[r] = j
            xr = x64[r]
            for g in range(ng):
                codes[g] = np.int32((xr[g] * magic) >> shift) + np.int32(g * 256)
            for g in range(ng):
                idx[j] = codes[g]
                pos[g] = j
                j += np.int64((codes[g] & 255) != 0)
            pos[ng] = j
            cr = cuts[r]
            for p in range(P + 1):
                cr[p] = pos[bounds[p]]
        off[R] = j
        return j

    return bags_k


@cache
def _scatter_kernel():
    @_jit()
    def scatter_k(idx, cuts, G, dtab):
        # dtab[idx[j]] += G[r] for every row r and j in cuts[r, 0]..cuts[r, -1]
        R, H = G.shape
        P = cuts.shape[1] - 1
        for r in range(R):
            gr = G[r]
            for j in range(cuts[r, 0], cuts[r, P]):
                row = dtab[idx[j]]
                for n in range(H):
                    row[n] += gr[n]

    return scatter_k


def _as_words(x: np.ndarray) -> np.ndarray:
    """(R, K) 0/1 bytes -> (R, ceil(K / 8)) uint64 words (K padded with zeros)."""
    x = x.view(np.uint8)
    if x.shape[1] % 8:
        x = np.pad(x, ((0, 0), (0, 8 - x.shape[1] % 8)))
    return np.ascontiguousarray(x).view(np.uint64)


def bit_group_bags(x: np.ndarray, parts: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table rows that binary input ``x`` (R, K) looks up: 0/1 ``uint8`` or ``bool``.

    Returns ``(idx, off, cuts)``, int32 (int64 when the sizes need it). ``idx`` and ``off``
    have the layout of ``F.embedding_bag``'s ``input``/``offsets`` with
    ``include_last_offset=True``: row ``r`` looks up ``idx[off[r]:off[r + 1]]``, the entries
    ``256 g + sum_j 2^j x[r, 8g + j]`` of its non-silent groups ``g`` in increasing order (K is
    padded with silent inputs to a multiple of 8). ``cuts`` (R, parts + 1) cuts each row's
    entries into ``parts`` segments by group (segment ``p`` holds the groups from
    ``n_groups * p // parts`` on): the parts of :func:`bit_group_scatter`, which touch
    disjoint table rows."""
    x64 = _as_words(x)
    R, ng = x64.shape
    if ng * 256 >= 2**31:
        raise ValueError(f"too many inputs for the table layer: {x.shape[1]}")
    itype = np.int32 if R * ng < 2**31 - 1 else np.int64
    parts = max(1, min(parts, ng))
    bounds = (np.arange(parts + 1) * ng // parts).astype(np.int64)
    idx = np.empty(R * ng, itype)
    off = np.empty(R + 1, itype)
    cuts = np.empty((R, parts + 1), itype)
    n = _bags_kernel()(x64, bounds, idx, off, cuts)
    return idx[:n], off, cuts


def _scatter_source(H: int) -> str:
    """Generated scatter for rows of H units, a parallel kernel over the segments of ``cuts``
    (disjoint table rows, so parts write disjoint rows and each row's sum keeps its order):
    the gradient row is held in H registers, and each table row is loaded whole, added to and
    stored whole (SLP-vectorised; ~30% faster than the loop kernel at H = 32). Each part first
    zeroes its own table rows (``dtab`` comes uninitialised: no separate pass over it)."""
    out = [
        "def kernel(part, nparts, idx, cuts, G, dtab):",
        "    R, P = cuts.shape[0], cuts.shape[1] - 1",
        "    p0, p1 = P * part // nparts, P * (part + 1) // nparts",
        "    ng = dtab.shape[0] // 256",
        "    dtab[256 * (ng * p0 // P) : 256 * (ng * p1 // P)] = 0  # this part's table rows",
        "    for r in range(R):",
        "        j0, j1 = cuts[r, p0], cuts[r, p1]",
        "        if j0 == j1:",
        "            continue",
        "        gr = G[r]",
    ]
    out += [f"        g{k} = gr[{k}]" for k in range(H)]
    out += ["        for j in range(j0, j1):", "            row = dtab[idx[j]]"]
    out += [f"            t{k} = row[{k}]" for k in range(H)]
    out += [f"            row[{k}] = t{k} + g{k}" for k in range(H)]
    return "\n".join(out)


def bit_group_scatter(idx: np.ndarray, cuts: np.ndarray, G: np.ndarray, n_rows: int) -> np.ndarray:
    """The table's gradient: a new (n_rows, H) array (dtype of ``G``) holding, per table row
    ``i``, the sum of the gradient rows ``G[r]`` that look it up (``(idx, _, cuts)`` of
    :func:`bit_group_bags`; added in row order, whatever the number of parts). ``G`` (R, H),
    any strides. Rows that no bag looks up -- the silent groups' rows among them -- stay
    zero. The segments of ``cuts`` run in parallel on torch's threads."""
    H = G.shape[1]
    if 0 < H <= MAX_LANES["backward"] and G.flags.c_contiguous and n_rows % 256 == 0:
        dtab = np.empty((n_rows, H), G.dtype)
        threads = min(kernel_threads(), cuts.shape[1] - 1)
        _run_parts(_scatter_source(H), threads, idx, cuts, G, dtab)
    else:
        dtab = np.zeros((n_rows, H), G.dtype)
        _scatter_kernel()(idx, cuts, G, dtab)
    return dtab
