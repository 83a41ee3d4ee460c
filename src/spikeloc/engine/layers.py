r"""Fused layers: hand-written BPTT for the hidden LIF layer, a closed-form leaky-integrator
readout and a sparse input layer -- the fast path behind ``SNN(backend="fused"|"auto")``.

The numbers are those of the reference time loop (:meth:`spikeloc.core.models.SNN._reference_forward`,
the equations in :mod:`spikeloc.core.neurons`); only the way they are computed differs:

* **One autograd node for the whole recurrence** (:class:`LIFSequence`). The forward loop runs
  without autograd and writes, per time step, the few tensors the backward pass needs into
  time-major ``(T, batch, n)`` buffers; the backward pass is a hand-written adjoint loop. For the
  non-adaptive neuron the adjoint is a linear recurrence whose coefficients are computed a block
  of steps at a time, leaving two multiply-adds per step (:func:`_backward_published_zero`
  derives it). The forward loop reproduces the reference rounding step for step
  (``(alpha * v + h) * (1 - s)``: multiply, add, exact 0/1 mask), so hidden spikes are
  bit-identical to the reference whenever the input currents are.
* **CPU engines.** ``numba`` (the default when numba is installed): the forward loop and the
  adjoint run as compiled kernels over all time steps (:mod:`spikeloc.engine.cpu_kernels`, one
  specialised kernel per option combination, cached on disk; for layers of up to 128 units, a
  multiple of 8, the adjoint -- and the forward pass up to 32 units -- runs as a generated
  kernel that keeps every unit's state in SIMD registers, with the same results bit for bit),
  with the sigmoid's ``exp`` evaluated by torch over all steps at once and the surrogate
  derivative formed inside the adjoint. The kernels that run in parts (the block kernels, the
  table scatter) use torch's own OpenMP threads. ``eager``
  (``SPIKELOC_CPU_ENGINE=eager``): the per-step loops below, as torch ops or, for the published
  neuron, numpy ufuncs on views of the same buffers (same IEEE arithmetic, a third of torch's
  per-call cost).
* **Closed-form readout.** For ``mean_membrane``/``regression`` the time-mean of the leaky
  integrator is a fixed weighted sum over time, ``mean_t out_t = sum_k c_k I_k`` with
  ``I = spikes @ W2`` (:func:`li_mean_weights`), so the readout is ``(c @ spikes) @ W2`` -- no
  output time loop. On the compiled CPU path (no dropout) ``c @ spikes`` is summed inside the
  LIF forward kernel and its gradient ``c_t dL/dr`` formed inside the adjoint
  (:class:`LIFReadout`); elsewhere it is one batched product (:class:`TimeWeightedSum`). The
  membrane trace ``output_v`` is computed when first read (:class:`FusedSNNOutput`), in blocks
  by :func:`li_trace` (block-Toeplitz, no per-step loop).
* **Input layer.** Three implementations of ``h = x @ W1``, chosen per call by
  :func:`choose_input_mode` (``set_input_mode`` or ``SPIKELOC_INPUT_MODE`` force one):

  - *dense* (:class:`DenseInput`): the reference's batch-major GEMM, with W1 zero-padded to a
    GEMM-friendly width (same in-order sums for 0/1 inputs, so bit-identical ``h``); the padded
    units get zero current, never spike and are sliced off after the recurrence. ``h``, the
    recurrence's records and its gradient all stay batch-major (the recurrence reads them
    through time-major views), so ``dW1 = (G^T X)^T`` needs no transposing copy. Used for float
    or integer input, which may hold values other than 0/1, and off the CPU.
  - *table* (:class:`TableInput`), for bool spikes on the CPU (the training loop's format):
    the inputs in groups of 8, each group's spike pattern a row of a 256-row table of partial
    sums of W1 -- ``n_in / 8`` look-ups per (batch, t) row instead of ``n_in`` multiply-adds,
    and no float copy of the input; groups without a spike are skipped (their row is zero).
    Used at every density: measured faster than the sparse layer from 0.25% to 22% of bins
    spiking. The sums are the GEMM's in another order, so float32 results differ from the
    reference in the last bits.
  - *sparse* (:class:`InputProjection`), for float or integer input when few inputs spike:
    ``F.embedding_bag`` over the spike indices and ``dW1`` a second ``embedding_bag`` over the
    gradient rows, used up to :data:`SPARSE_MAX_DENSITY`; again float rounding only.
* **GPU.** On CUDA the same recurrence runs as one Triton kernel over time when ``triton`` is
  importable (float32; checked once against the eager loop), else the per-step torch loop is
  captured once per shape into a CUDA graph (:class:`StaticLoop`) and replayed. Nothing here
  imports triton on the CPU path.

All options are covered -- both update orders, reset zero/subtract, ``detach_reset``, adaptive
threshold, separate time constants, sigmoid/SuperSpike surrogates with any beta, dropout (the
mask drawn by ``SNN.dropout_mask`` as in the reference), Dale weights (passed in as effective
weights), every readout -- so ``supports(model)`` is True for every hidden-layer model.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc.engine import cpu_kernels
from spikeloc.engine.outputs import SNNOutput, as_float_spikes
from spikeloc.engine.runtime import configure_runtime

if TYPE_CHECKING:
    from spikeloc.core.neurons import LIFParameters

__all__ = [
    "LIFSpec",
    "SPARSE_MAX_DENSITY",
    "ensure_runtime",
    "supports",
    "fused_forward",
    "lif_sequence",
    "input_projection",
    "TableInput",
    "table_input_available",
    "choose_input_mode",
    "set_input_mode",
    "li_mean_weights",
    "li_trace",
    "StaticLoop",
]

#: The sparse input layer is used for float or integer input (bool spikes take the table layer)
#: when at most this fraction of input bins hold a spike, for 32 or more hidden units (scaled
#: down in proportion below that). Measured crossover against the dense layer on the project's
#: 2-core CPU (input layer forward + backward, 200 inputs, batch 128): between 5% and 10%
#: density for 30 and 100 hidden units, between 2% and 5% for 8.
SPARSE_MAX_DENSITY = 0.06

_READOUTS = ("mean_membrane", "max_membrane", "spike_count", "regression")
_input_mode = os.environ.get("SPIKELOC_INPUT_MODE", "auto")
_runtime_ready = False


def ensure_runtime() -> None:
    """Apply :func:`spikeloc.engine.runtime.configure_runtime` once per process (denormal flushing,
    malloc thresholds); cheap to call on every forward pass."""
    global _runtime_ready
    if not _runtime_ready:
        configure_runtime()
        _runtime_ready = True


# ======================================================================================
# The recurrence: static description
# ======================================================================================


@dataclass(frozen=True)
class LIFSpec:
    """Everything the fused recurrence needs to know about a LIF layer (hashable)."""

    alpha: float
    threshold: float
    reset: str = "zero"
    order: str = "published"
    detach_reset: bool = False
    surrogate: str = "sigmoid"
    beta: float = 5.0
    adaptive_beta: float = 0.0
    rho: float = 0.0

    @classmethod
    def from_params(cls, p: LIFParameters) -> LIFSpec:
        if p.reset not in ("zero", "subtract"):
            raise ValueError(f"unknown reset {p.reset!r}")
        if p.update_order not in ("published", "immediate"):
            raise ValueError(f"unknown update_order {p.update_order!r}")
        if p.surrogate not in ("sigmoid", "superspike"):
            raise ValueError(f"unknown surrogate {p.surrogate!r}")
        adaptive = float(p.adaptive_beta)
        return cls(
            alpha=p.alpha,
            threshold=float(p.threshold),
            reset=p.reset,
            order=p.update_order,
            detach_reset=bool(p.detach_reset),
            surrogate=p.surrogate,
            beta=float(p.beta),
            adaptive_beta=adaptive,
            rho=p.rho if adaptive else 0.0,
        )

    @property
    def adaptive(self) -> bool:
        return self.adaptive_beta != 0.0

    @property
    def needs_u(self) -> bool:
        """Whether backward needs the pre-reset potential (reset-to-zero gradient ``-u``)."""
        return self.reset == "zero" and not self.detach_reset


class _Consts:
    """Scalars as the per-step ops like them: 0-dim tensors on the CPU (a Python float costs a
    scalar-to-tensor wrap per op, ~2 us), plain floats elsewhere (capture-safe on CUDA)."""

    def __init__(self, spec: LIFSpec, like: torch.Tensor):
        cpu = like.device.type == "cpu"

        def c(value: float):
            return torch.tensor(value, dtype=like.dtype) if cpu else value

        self.theta = c(spec.threshold)
        self.alpha = c(spec.alpha)
        self.zero = c(0.0)
        # an operand that must be a tensor (fill kernel on CUDA: safe inside graph capture)
        self.neg_theta = torch.full((), -spec.threshold, dtype=like.dtype, device=like.device)
        self.neg_beta_theta = torch.full(
            (), -spec.beta * spec.threshold, dtype=like.dtype, device=like.device
        )


def _surrogate_grad_(x: torch.Tensor, spec: LIFSpec, *, scaled: bool = False) -> torch.Tensor:
    """The surrogate derivative at ``x``, computed in place in ``x`` (returns ``x``).
    ``scaled``: ``x`` already holds ``beta * x`` (sigmoid surrogate only)."""
    if spec.surrogate == "sigmoid":
        # beta * sig(beta x) * (1 - sig(beta x))
        if not scaled:
            x.mul_(spec.beta)
        x.sigmoid_()
        beta = x.new_full((), spec.beta)
        return torch.ops.aten.sigmoid_backward.grad_input(beta, x, grad_input=x)
    # SuperSpike: 1 / (beta |x| + 1)^2
    return x.abs_().mul_(spec.beta).add_(1.0).square_().reciprocal_()


_BLOCK_BYTES = 2 << 20


_torch_loops = contextvars.ContextVar("spikeloc_torch_loops", default=False)


def _use_numpy(t: torch.Tensor) -> bool:
    """Run a per-step loop as numpy ufuncs on views of ``t``'s buffers (CPU float32/float64;
    not inside :class:`StaticLoop`, whose loops must be torch ops)."""
    return (
        t.device.type == "cpu"
        and t.dtype in (torch.float32, torch.float64)
        and not _torch_loops.get()
    )


def _block_steps(x: torch.Tensor) -> int:
    """Time steps per block for the vectorised parts of the backward pass: ~2 MB per buffer,
    so a block's coefficients are still in cache when the loop reads them (T=1000, H=100:
    57 ms instead of 67 ms for the whole adjoint on one core)."""
    per_step = max(1, x[0].numel() * x.element_size())
    return max(8, _BLOCK_BYTES // per_step)


def _new(like: torch.Tensor) -> torch.Tensor:
    """An uninitialised contiguous buffer shaped like ``like`` (whatever its strides)."""
    return torch.empty(like.shape, dtype=like.dtype, device=like.device)


# ======================================================================================
# Forward loops (time-major buffers, no autograd). Each writes into preallocated buffers so
# the same function can be captured into a CUDA graph. Rounding follows the reference step.
# ======================================================================================


def _forward_published_zero(h: torch.Tensor, spec: LIFSpec):
    """``s_{t+1} = H(v_t - theta)``, ``u_{t+1} = alpha v_t + h_t``, ``v_{t+1} = u_{t+1}(1 - s_t)``.

    Stores ``U[t] = u_t`` (pre-reset potential, ``u_0 = 0``) and ``M[t] = 1 - s_t``; then
    ``v_t = U[t] * M[t-1]`` exactly (``M`` is 0/1), and ``U[t+1] = alpha * v_t + h_t`` with the
    reference's two roundings (multiply, then add). On the CPU the loop runs numpy ufuncs on
    views of the same buffers (identical IEEE arithmetic, a third of torch's per-call cost);
    elsewhere torch ops (capturable in a CUDA graph).
    """
    T = h.shape[0]
    U = _new(h)
    M = _new(h)
    U[0].zero_()
    M[0].fill_(1.0)
    if T > 1:
        torch.le(U[0], spec.threshold, out=M[1])  # s_1 = H(v_0 - theta), v_0 = 0
        U[1].copy_(h[0])  # u_1 = alpha * 0 + h_0
    if T <= 2:
        return M, (U, M)
    if _use_numpy(h):
        # a contiguous copy of strided currents (the dense layer's padded GEMM output) is
        # cheaper than numpy iterating short rows every step
        hn, Un, Mn = h.detach().contiguous().numpy(), U.numpy(), M.numpy()
        v = np.empty_like(Un[0])
        alpha, theta = Un.dtype.type(spec.alpha), Un.dtype.type(spec.threshold)
        hs, Us, Ms = list(hn), list(Un), list(Mn)
        mul, le, add = np.multiply, np.less_equal, np.add
        for t in range(1, T - 1):
            mul(Us[t], Ms[t - 1], out=v)  # v_t
            le(v, theta, out=Ms[t + 1])  # 1 - s_{t+1}
            mul(v, alpha, out=Us[t + 1])
            add(Us[t + 1], hs[t], out=Us[t + 1])  # u_{t+1}
        return M, (U, M)
    k = _Consts(spec, h)
    v = torch.empty_like(U[0])
    hs, Us, Ms = h.unbind(0), U.unbind(0), M.unbind(0)
    le, mul, addcmul, alpha, theta = torch.le, torch.mul, torch.addcmul, spec.alpha, k.theta
    for t in range(1, T - 1):
        mul(Us[t], Ms[t - 1], out=v)  # v_t
        le(v, theta, out=Ms[t + 1])  # 1 - s_{t+1}
        # u_{t+1} = h_t + alpha * (u_t * m_{t-1}): the product with 0/1 is exact, so this is
        # alpha * v_t + h_t with the same two roundings
        addcmul(hs[t], Us[t], Ms[t - 1], value=alpha, out=Us[t + 1])
    return M, (U, M)


def _forward_published_subtract(h: torch.Tensor, spec: LIFSpec):
    """``s_{t+1} = H(v_t - theta)``, ``v_{t+1} = alpha v_t + h_t - theta s_t``; stores V, S."""
    T = h.shape[0]
    k = _Consts(spec, h)
    V = _new(h)
    S = _new(h)
    hs, Vs, Ss = h.unbind(0), V.unbind(0), S.unbind(0)
    Vs[0].zero_()
    Ss[0].zero_()
    theta_f = spec.threshold
    for t in range(T - 1):
        torch.gt(Vs[t], k.theta, out=Ss[t + 1])
        torch.mul(Vs[t], k.alpha, out=Vs[t + 1])
        Vs[t + 1].add_(hs[t])
        Vs[t + 1].sub_(Ss[t], alpha=theta_f)  # theta * s is exact (s is 0/1): one rounding
    return S, (V, S)


def _forward_immediate_zero(h: torch.Tensor, spec: LIFSpec):
    """``u_t = alpha v_{t-1} + h_t``, ``s_t = H(u_t - theta)``, ``v_t = u_t (1 - s_t)``; U, M."""
    T = h.shape[0]
    k = _Consts(spec, h)
    U = _new(h)
    M = _new(h)
    hs, Us, Ms = h.unbind(0), U.unbind(0), M.unbind(0)
    Us[0].copy_(hs[0])
    torch.le(Us[0], k.theta, out=Ms[0])
    le, addcmul, alpha, theta = torch.le, torch.addcmul, spec.alpha, k.theta
    for t in range(1, T):
        addcmul(hs[t], Us[t - 1], Ms[t - 1], value=alpha, out=Us[t])
        le(Us[t], theta, out=Ms[t])
    return M, (U, M)


def _forward_immediate_subtract(h: torch.Tensor, spec: LIFSpec):
    """``u_t = alpha v_{t-1} + h_t``, ``s_t = H(u_t - theta)``, ``v_t = u_t - theta s_t``; U, S."""
    T = h.shape[0]
    k = _Consts(spec, h)
    U = _new(h)
    S = _new(h)
    v = _new(h[0]).zero_()
    hs, Us, Ss = h.unbind(0), U.unbind(0), S.unbind(0)
    theta_f = spec.threshold
    for t in range(T):
        torch.mul(v, k.alpha, out=Us[t])
        Us[t].add_(hs[t])
        torch.gt(Us[t], k.theta, out=Ss[t])
        torch.sub(Us[t], Ss[t], alpha=theta_f, out=v)
    return S, (U, S)


def _forward_adaptive(h: torch.Tensor, spec: LIFSpec):
    """Adaptive threshold ``theta_t = theta + beta_a a``, ``a <- rho a + (1 - rho) s`` (either
    order, either reset). Stores X (the surrogate argument), S and, when backward needs it, U."""
    T = h.shape[0]
    k = _Consts(spec, h)
    X = _new(h)
    S = _new(h)
    U = _new(h) if spec.needs_u else None
    v = _new(h[0]).zero_()
    a = _new(h[0]).zero_()
    thr = _new(h[0])
    u_scratch = _new(h[0])
    hs, Xs, Ss = h.unbind(0), X.unbind(0), S.unbind(0)
    Us = U.unbind(0) if U is not None else None
    theta_f, beta_a, rho = spec.threshold, spec.adaptive_beta, spec.rho
    zero = spec.reset == "zero"
    if spec.order == "published":
        Ss[0].zero_()
        Xs[T - 1].zero_()  # unused: s_T is not recorded
        if Us is not None:
            Us[0].zero_()
        for t in range(T - 1):
            torch.mul(a, beta_a, out=thr)
            thr.add_(theta_f)  # theta + beta_a * a_t
            torch.sub(v, thr, out=Xs[t])
            torch.gt(Xs[t], k.zero, out=Ss[t + 1])  # s_{t+1} = H(v_t - theta_t)
            u = Us[t + 1] if Us is not None else u_scratch
            torch.mul(v, k.alpha, out=u)
            u.add_(hs[t])
            if zero:
                torch.addcmul(u, u, Ss[t], value=-1.0, out=v)  # u (1 - s_t), exact
            else:
                torch.sub(u, Ss[t], alpha=theta_f, out=v)
            a.mul_(rho).add_(Ss[t + 1], alpha=1.0 - rho)
    else:
        for t in range(T):
            u = Us[t] if Us is not None else u_scratch
            torch.mul(v, k.alpha, out=u)
            u.add_(hs[t])
            torch.mul(a, beta_a, out=thr)
            thr.add_(theta_f)  # theta + beta_a * a_{t-1}
            torch.sub(u, thr, out=Xs[t])
            torch.gt(Xs[t], k.zero, out=Ss[t])
            if zero:
                torch.addcmul(u, u, Ss[t], value=-1.0, out=v)
            else:
                torch.sub(u, Ss[t], alpha=theta_f, out=v)
            a.mul_(rho).add_(Ss[t], alpha=1.0 - rho)
    saved = (X, S, U) if U is not None else (X, S)
    return S, saved


def _forward_loop(spec: LIFSpec) -> Callable:
    if spec.adaptive:
        return _forward_adaptive
    if spec.order == "published":
        return _forward_published_zero if spec.reset == "zero" else _forward_published_subtract
    return _forward_immediate_zero if spec.reset == "zero" else _forward_immediate_subtract


def _spikes_are_complement(spec: LIFSpec) -> bool:
    """Whether the forward loop records ``1 - s`` (reset-to-zero, non-adaptive) instead of ``s``."""
    return spec.reset == "zero" and not spec.adaptive


# ======================================================================================
# Backward loops. ``G`` is dL/d(spikes) time-major (T, batch, n), any strides; each returns
# dL/dh time-major. Notation: sigma'_t = surrogate derivative at the spike's argument.
# ======================================================================================


def _backward_published_zero(G: torch.Tensor, saved, spec: LIFSpec) -> torch.Tensor:
    r"""Adjoint of the published order with reset to zero (no adaptation).

    With ``lam_t = dL/dv_t``, ``mu_t = dL/ds_t`` (total), ``D_t = alpha (1 - s_t)``,
    ``R_t = dv_{t+1}/ds_t = -u_{t+1}`` (0 when ``detach_reset``)::

        lam_t = mu_{t+1} sigma'_t + lam_{t+1} D_t,      mu_t = g_t + lam_{t+1} R_t
        => lam_t = g_{t+1} sigma'_t + D_t lam_{t+1} - u_{t+2} sigma'_t lam_{t+2}

    a linear recurrence whose coefficients are known after the forward pass; then
    ``dL/dh_t = lam_{t+1} (1 - s_t)``, with ``lam_{T-1} = 0`` (``v_{T-1}`` reaches no recorded
    spike) and ``dL/dh_{T-1} = 0``. The coefficients are computed a block of time steps at a
    time, just before the loop needs them (cache-resident), and ``lam`` turns into ``dL/dh`` in
    place once a block no longer needs it.
    """
    U, M = saved
    T = U.shape[0]
    lam = torch.empty((T + 1,) + U.shape[1:], dtype=U.dtype, device=U.device)
    if T < 3:
        lam.zero_()
        return lam[1:]
    lam[T - 1 :].zero_()
    k = _Consts(spec, U)
    coupled = not spec.detach_reset
    alpha = spec.alpha
    block = _block_steps(U)
    P = torch.empty((min(block, T - 2),) + U.shape[1:], dtype=U.dtype, device=U.device)
    cpu = _use_numpy(U)
    if cpu:
        Ln = lam.numpy()
        tmp = np.empty_like(Ln[0])
    else:
        Ls, Ms = lam.unbind(0), M.unbind(0)
    done = T + 1  # lam[done:] already holds dL/dh
    hi = T - 2
    while hi >= 1:
        lo = max(1, hi - block + 1)
        n = hi - lo + 1
        p = P[:n]
        # sigma'_t at v_t = u_t (1 - s_{t-1}), t = lo..hi
        if spec.surrogate == "sigmoid":  # beta (v_t - theta) in one pass
            torch.addcmul(k.neg_beta_theta, U[lo : hi + 1], M[lo - 1 : hi], value=spec.beta, out=p)
            _surrogate_grad_(p, spec, scaled=True)
        else:
            torch.addcmul(k.neg_theta, U[lo : hi + 1], M[lo - 1 : hi], out=p)
            _surrogate_grad_(p, spec)
        torch.mul(G[lo + 1 : hi + 2], p, out=lam[lo : hi + 1])  # g_{t+1} sigma'_t
        n2 = min(hi, T - 3) - lo + 1  # u_{t+2} exists for t <= T-3
        if coupled and n2 > 0:
            p[:n2].mul_(U[lo + 2 : lo + 2 + n2])
        top = min(hi, T - 3)
        if cpu:  # numpy ufuncs on the same buffers: a third of torch's per-call cost
            Pn = p.numpy()
            Dn = torch.mul(M[lo : top + 1], alpha).numpy()  # D_t = alpha (1 - s_t)
            mul, add, sub = np.multiply, np.add, np.subtract
            for t in range(top, lo - 1, -1):
                mul(Dn[t - lo], Ln[t + 1], out=tmp)
                add(Ln[t], tmp, out=Ln[t])
                if coupled:
                    mul(Pn[t - lo], Ln[t + 2], out=tmp)
                    sub(Ln[t], tmp, out=Ln[t])
        else:
            Ps = p.unbind(0)
            for t in range(top, lo - 1, -1):
                Ls[t].addcmul_(Ms[t], Ls[t + 1], value=alpha)
                if coupled:
                    Ls[t].addcmul_(Ps[t - lo], Ls[t + 2], value=-1.0)
        # lam_s for s >= lo + 2 is final and no longer read: turn it into dL/dh_{s-1}
        lam[lo + 2 : done].mul_(M[lo + 1 : done - 1])
        done = lo + 2
        hi = lo - 1
    lam[1:done].mul_(M[0 : done - 1])
    return lam[1:]


def _backward_published_subtract(G: torch.Tensor, saved, spec: LIFSpec) -> torch.Tensor:
    """As :func:`_backward_published_zero` with ``D_t = alpha``, ``R_t = -theta``, ``E_t = 1``."""
    V, _S = saved
    T = V.shape[0]
    lam = torch.zeros((T + 1,) + V.shape[1:], dtype=V.dtype, device=V.device)
    if T < 3:
        return lam[1:]
    k = _Consts(spec, V)
    P = V[1 : T - 1] - k.theta
    _surrogate_grad_(P, spec)
    torch.mul(G[2:T], P, out=lam[1 : T - 1])
    coupled = not spec.detach_reset
    if coupled:
        P.mul_(spec.threshold)
    Ls, Ps = lam.unbind(0), P.unbind(0)
    alpha = spec.alpha
    for t in range(T - 3, 0, -1):
        Ls[t].add_(Ls[t + 1], alpha=alpha)
        if coupled:
            Ls[t].addcmul_(Ps[t - 1], Ls[t + 2], value=-1.0)
    return lam[1:]  # dL/dh_t = lam_{t+1}


def _backward_immediate(G: torch.Tensor, saved, spec: LIFSpec) -> torch.Tensor:
    r"""Adjoint of the immediate order (no adaptation). With ``nu_t = dL/du_t``::

        nu_t = g_t sigma'_t + alpha (R_t sigma'_t + E_t) nu_{t+1},   dL/dh_t = nu_t

    ``R_t = -u_t`` (zero) or ``-theta`` (subtract), 0 when detached; ``E_t = 1 - s_t`` or 1.
    """
    U, SM = saved  # SM = 1 - s (zero reset) or s (subtract)
    T = U.shape[0]
    k = _Consts(spec, U)
    sig = U - k.theta
    _surrogate_grad_(sig, spec)
    nu = torch.mul(G, sig)
    zero = spec.reset == "zero"
    # Q_t = alpha (R_t sigma'_t + E_t), in place in sig
    if spec.detach_reset:
        if zero:
            torch.mul(SM, spec.alpha, out=sig)
        else:
            sig.fill_(spec.alpha)
    elif zero:
        sig.mul_(U).neg_().add_(SM).mul_(spec.alpha)
    else:
        sig.mul_(-spec.threshold).add_(1.0).mul_(spec.alpha)
    Ns, Qs = nu.unbind(0), sig.unbind(0)
    for t in range(T - 2, -1, -1):
        Ns[t].addcmul_(Qs[t], Ns[t + 1])
    return nu


def _backward_adaptive(G: torch.Tensor, saved, spec: LIFSpec) -> torch.Tensor:
    r"""General adjoint with the adaptive threshold (``kap_t = dL/da_t``).

    Published order (``q = mu_{t+1} sigma'_t``)::

        lam_t = q + lam_{t+1} D_t;  kap_t = rho kap_{t+1} - beta_a q
        mu_t  = g_t + lam_{t+1} R_t + (1 - rho) kap_t;  dL/dh_t = lam_{t+1} E_t

    Immediate order (``lam_t = alpha nu_{t+1}``)::

        kap_t = rho kap_{t+1} - beta_a mu_{t+1} sigma'_{t+1}
        mu_t  = g_t + (1 - rho) kap_t + lam_t R_t;  nu_t = mu_t sigma'_t + lam_t E_t = dL/dh_t
    """
    X, S = saved[0], saved[1]
    U = saved[2] if len(saved) > 2 else None
    T = X.shape[0]
    sig = _surrogate_grad_(X.clone(), spec)
    zero = spec.reset == "zero"
    M = torch.sub(1.0, S) if zero else None
    alpha, rho, beta_a, theta = spec.alpha, spec.rho, spec.adaptive_beta, spec.threshold
    detach = spec.detach_reset
    mu = torch.empty_like(X[0])
    q = torch.empty_like(X[0])
    kap = torch.zeros_like(X[0])
    Gs, sigs = G.unbind(0), sig.unbind(0)
    Ms = M.unbind(0) if M is not None else None
    Us = U.unbind(0) if U is not None else None
    if spec.order == "published":
        lam = torch.zeros_like(X)
        Ls = lam.unbind(0)
        mu.copy_(Gs[T - 1])
        for t in range(T - 2, -1, -1):
            torch.mul(mu, sigs[t], out=q)
            if zero:
                torch.addcmul(q, Ms[t], Ls[t + 1], value=alpha, out=Ls[t])
            else:
                torch.add(q, Ls[t + 1], alpha=alpha, out=Ls[t])
            kap.mul_(rho).sub_(q, alpha=beta_a)
            if t == 0:
                break
            if detach:
                mu.copy_(Gs[t])
            elif zero:
                torch.addcmul(Gs[t], Ls[t + 1], Us[t + 1], value=-1.0, out=mu)
            else:
                torch.sub(Gs[t], Ls[t + 1], alpha=theta, out=mu)
            mu.add_(kap, alpha=1.0 - rho)
        dh = torch.zeros_like(X)
        if zero:
            torch.mul(lam[1:T], M[: T - 1], out=dh[: T - 1])
        else:
            dh[: T - 1] = lam[1:T]
        return dh
    nu = torch.empty_like(X)
    Ns = nu.unbind(0)
    lam = torch.empty_like(X[0])
    torch.mul(Gs[T - 1], sigs[T - 1], out=q)  # lam_{T-1} = kap_{T-1} = 0
    Ns[T - 1].copy_(q)
    for t in range(T - 2, -1, -1):
        torch.mul(Ns[t + 1], alpha, out=lam)
        kap.mul_(rho).sub_(q, alpha=beta_a)
        if detach:
            mu.copy_(Gs[t])
        elif zero:
            torch.addcmul(Gs[t], lam, Us[t], value=-1.0, out=mu)
        else:
            torch.sub(Gs[t], lam, alpha=theta, out=mu)
        mu.add_(kap, alpha=1.0 - rho)
        torch.mul(mu, sigs[t], out=q)
        if zero:
            torch.addcmul(q, lam, Ms[t], out=Ns[t])
        else:
            torch.add(q, lam, out=Ns[t])
    return nu


def _backward_loop(spec: LIFSpec) -> Callable:
    if spec.adaptive:
        return _backward_adaptive
    if spec.order == "published":
        return _backward_published_zero if spec.reset == "zero" else _backward_published_subtract
    return _backward_immediate


def _spikes_from_record(rec: torch.Tensor, complemented: bool) -> torch.Tensor:
    """Time-major float spikes from the record (``1 - record`` when it holds ``1 - s``)."""
    return torch.sub(1.0, rec) if complemented else rec


# ======================================================================================
# Execution back ends for the loops: eager (CPU), CUDA graph, Triton
# ======================================================================================


class StaticLoop:
    """``fn(*inputs) -> tuple of tensors`` run on static buffers, captured into a CUDA graph.

    The inputs are copied into buffers owned by this object; with ``capture=True`` (CUDA) the
    call is recorded once into a :class:`torch.cuda.CUDAGraph` and replayed, so a T-step loop
    costs one graph launch instead of several kernel launches per step. With ``capture=False``
    the same function runs eagerly on the same static buffers -- the identical code path
    without the graph, which is how the CPU test-suite checks this wrapper.
    Outputs are cloned, so results of earlier calls are never overwritten.
    """

    def __init__(self, fn: Callable, example_inputs: Sequence[torch.Tensor], *, capture: bool):
        self.fn = fn
        self.static_inputs = [t.detach().clone() for t in example_inputs]
        self.graph = None
        self.static_outputs: tuple = ()
        if capture:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside the graph (allocator, lazy init)
                    fn(*self.static_inputs)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.static_outputs = tuple(fn(*self.static_inputs))

    def __call__(self, *inputs: torch.Tensor) -> tuple:
        for buf, t in zip(self.static_inputs, inputs, strict=True):
            buf.copy_(t)
        if self.graph is None:
            out = tuple(self.fn(*self.static_inputs))
        else:
            self.graph.replay()
            out = self.static_outputs
        return tuple(o.clone() for o in out)


_graph_cache: OrderedDict = OrderedDict()
_graph_lock = threading.Lock()
_GRAPH_CACHE_SIZE = 16
_triton_state: dict[str, Any] = {}


def _cuda_engine(h: torch.Tensor, spec: LIFSpec) -> str:
    """``triton`` | ``graph`` | ``eager`` on CUDA (``SPIKELOC_CUDA_ENGINE`` overrides)."""
    forced = os.environ.get("SPIKELOC_CUDA_ENGINE")
    if forced in ("triton", "graph", "eager"):
        return forced
    if h.dtype == torch.float32 and _triton_ok(spec, h.device):
        return "triton"
    return "graph"


def _cpu_engine(h: torch.Tensor) -> str:
    """``numba`` | ``eager`` on the CPU (``SPIKELOC_CPU_ENGINE`` overrides)."""
    forced = os.environ.get("SPIKELOC_CPU_ENGINE")
    if forced in ("numba", "eager"):
        return forced
    if h.dtype in (torch.float32, torch.float64) and cpu_kernels.available():
        return "numba"
    return "eager"


def _static_loop(kind: str, spec: LIFSpec, fn: Callable, inputs: Sequence[torch.Tensor]):
    """The cached :class:`StaticLoop` for this loop, spec and input shapes."""
    key = (kind, spec, tuple((t.shape, t.dtype, t.stride()) for t in inputs), inputs[0].device)
    with _graph_lock:
        loop = _graph_cache.get(key)
        if loop is None:
            loop = StaticLoop(fn, inputs, capture=inputs[0].device.type == "cuda")
            _graph_cache[key] = loop
            while len(_graph_cache) > _GRAPH_CACHE_SIZE:
                _graph_cache.popitem(last=False)
        else:
            _graph_cache.move_to_end(key)
    return loop


def _numba_forward(h: torch.Tensor, spec: LIFSpec, c: torch.Tensor | None = None):
    """The compiled CPU kernel (:func:`spikeloc.engine.cpu_kernels.lif_forward`) on time-major ``h``
    (T, batch, n), any strides (read in place). The records are batch-major in memory and
    returned as time-major views: the layout in which the dense input layer produced ``h`` and
    in which the readout's gradient comes back. With readout weights ``c`` (T,), also returns
    ``sum_t c_t s_t`` (batch, n), else None."""
    cn = c.numpy() if c is not None else None
    S, X, U, R = cpu_kernels.lif_forward(h.detach().transpose(0, 1).numpy(), spec, cn)
    recs = (X, S) if U is None else (X, S, U)
    saved = tuple(torch.from_numpy(a).transpose(0, 1) for a in recs)
    return saved[1], saved, (torch.from_numpy(R) if R is not None else None)


def _numba_backward(
    G: torch.Tensor | None,
    saved: tuple,
    spec: LIFSpec,
    c: torch.Tensor | None = None,
    gr: torch.Tensor | None = None,
) -> torch.Tensor:
    """dL/dh from dL/dspikes ``G`` (time-major, or None) and, with readout weights ``c``, the
    gradient ``gr`` (batch, n) of ``sum_t c_t s_t``."""
    X, S = saved[0], saved[1]  # X: beta * (v - theta), see cpu_kernels.lif_forward
    U = saved[2] if len(saved) > 2 else None
    # the sigmoid's exp, vectorised over all steps by torch; the kernel forms sigma' from it
    Y = torch.sigmoid(X) if spec.surrogate == "sigmoid" else X

    def bt(t: torch.Tensor | None) -> np.ndarray | None:  # (batch, T, n) numpy view
        return t.transpose(0, 1).numpy() if t is not None else None

    dh = cpu_kernels.lif_backward(
        bt(G),
        bt(Y),
        bt(S),
        bt(U),
        spec,
        c.numpy() if c is not None else None,
        gr.numpy() if gr is not None else None,
    )
    return torch.from_numpy(dh).transpose(0, 1)


def _run_forward(h: torch.Tensor, spec: LIFSpec, engine: str):
    """``(record, complemented, saved)``: the time-major spike record (``1 - s`` when
    ``complemented``) and the tensors backward needs."""
    if engine == "numba":
        rec, saved, _ = _numba_forward(h, spec)
        return rec, False, saved
    if engine == "triton":
        rec, saved = _triton_forward(h.contiguous(), spec)
        return rec, False, saved
    fn = _forward_loop(spec)
    if engine == "graph":
        h = h.contiguous()
        token = _torch_loops.set(True)
        try:
            out = _static_loop("fwd", spec, lambda x: _flat(fn(x, spec)), [h])(h)
        finally:
            _torch_loops.reset(token)
        rec, saved = out[0], tuple(out[1:])
    else:
        rec, saved = fn(h, spec)
    return rec, _spikes_are_complement(spec), saved


def _flat(result) -> tuple:
    rec, saved = result
    return (rec, *saved)


def _run_backward(G: torch.Tensor, saved: tuple, spec: LIFSpec, engine: str) -> torch.Tensor:
    if engine == "numba":
        return _numba_backward(G, saved, spec)
    if engine == "triton":
        return _triton_backward(G, saved, spec)
    fn = _backward_loop(spec)
    if engine == "graph":
        G = G.contiguous()
        token = _torch_loops.set(True)
        try:
            loop = _static_loop("bwd", spec, lambda g, *s: (fn(g, s, spec),), [G, *saved])
            return loop(G, *saved)[0]
        finally:
            _torch_loops.reset(token)
    return fn(G, saved, spec)


# ======================================================================================
# The autograd node
# ======================================================================================


class LIFSequence(torch.autograd.Function):
    """A LIF layer over all time steps: time-major input currents ``h`` (T, batch, n), any
    strides -> time-major spikes (T, batch, n); backward is the hand-written adjoint."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, spec: LIFSpec, engine: str):  # type: ignore[override]
        rec, complemented, saved = _run_forward(h, spec, engine)
        spikes = _spikes_from_record(rec, complemented)
        ctx.spec = spec
        ctx.engine = engine
        ctx.save_for_backward(*saved)
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        dh = _run_backward(grad_spikes, ctx.saved_tensors, ctx.spec, ctx.engine)
        return dh, None, None


def lif_sequence(h_tm: torch.Tensor, spec: LIFSpec, *, engine: str | None = None) -> torch.Tensor:
    """Time-major spikes (T, batch, n) of a LIF layer driven by currents ``h_tm`` (T, batch, n).

    ``engine``: ``None`` picks ``numba`` (compiled kernels) on the CPU when numba is available,
    else ``eager``, and ``triton``/``graph`` on CUDA. ``SPIKELOC_CPU_ENGINE=eager`` forces the
    torch/numpy loops on the CPU.
    """
    if engine is None:
        engine = _cuda_engine(h_tm, spec) if h_tm.device.type == "cuda" else _cpu_engine(h_tm)
    return LIFSequence.apply(h_tm, spec, engine)


class LIFReadout(torch.autograd.Function):
    """:class:`LIFSequence` on the compiled CPU kernels, with the readout's time-weighted sum
    ``r = sum_t c_t s_t`` (batch, n) formed in the forward kernel and its gradient
    ``c_t dL/dr`` formed inside the adjoint: neither the readout's batched product nor its
    (batch, T, n) gradient is materialised. Returns ``(spikes, r)``; ``spikes`` time-major as
    :class:`LIFSequence`'s. ``r`` is summed in time order (the batched product sums in another
    order: float rounding only)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, c: torch.Tensor, spec: LIFSpec):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        rec, saved, r = _numba_forward(h, spec, c)
        ctx.spec = spec
        ctx.save_for_backward(c, *saved)
        return rec, r

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_r):  # type: ignore[override]
        if grad_spikes is None and grad_r is None:
            return None, None, None
        c, *saved = ctx.saved_tensors
        gr = grad_r.contiguous() if grad_r is not None else None
        dh = _numba_backward(grad_spikes, tuple(saved), ctx.spec, c if gr is not None else None, gr)
        return dh, None, None


# ======================================================================================
# Input layer: dense GEMM, table look-ups or sparse embedding_bag, gradient for W1 (and x)
# ======================================================================================


@dataclass
class SparsePlan:
    """Where the input spikes are: one entry per spike, grouped in batch-major (batch, t) bags
    with ascending inputs inside a bag -- the order in which the spikes are found, so no
    regrouping. The index arithmetic runs in numpy int32 (division by a constant is ~10x
    faster there than in torch)."""

    inputs: torch.Tensor  # input index of each spike (int64, for embedding_bag)
    offsets: torch.Tensor  # start of each (b, t) bag in ``inputs``, length batch*T
    values: torch.Tensor | None  # spike values when they are not all 1 (same order)
    shape: tuple[int, int, int]  # (batch, T, n_in)
    rows_np: np.ndarray  # bag b * T + t of each spike
    inputs_np: np.ndarray  # input of each spike


_INPUT_MODES = ("auto", "dense", "sparse", "table")


def set_input_mode(mode: str) -> None:
    """Choose the input layer: ``auto``, ``dense``, ``sparse`` or ``table`` (see
    :func:`choose_input_mode`)."""
    global _input_mode
    if mode not in _INPUT_MODES:
        raise ValueError(f"input mode must be one of {', '.join(_INPUT_MODES)}, got {mode!r}")
    _input_mode = mode


def table_input_available(x: torch.Tensor) -> bool:
    """Whether :class:`TableInput` can take ``x``: bool spikes on the CPU, compiled kernels."""
    return x.dtype == torch.bool and x.device.type == "cpu" and cpu_kernels.bit_groups_supported()


def choose_input_mode(x: torch.Tensor, n_hidden: int, mode: str | None = None) -> str:
    """``dense``, ``sparse`` or ``table`` for input ``x`` (batch, T, n_in).

    ``auto``, on the CPU: ``table`` for bool spikes (the library's spike format, always 0/1)
    at any density -- it skips the groups of 8 inputs that do not spike, and measured faster
    than the sparse layer down to 0.25% density (benchmarks/README.md). Float or integer input
    may hold values other than 0/1: ``sparse`` when its spike density, estimated on a few
    samples, is at most :data:`SPARSE_MAX_DENSITY`, else ``dense``. Off the CPU always
    ``dense``. A forced ``table`` falls back to ``dense`` where it cannot run (see
    :func:`table_input_available`).
    """
    mode = mode or _input_mode
    if mode == "table":
        return "table" if table_input_available(x) else "dense"
    if mode != "auto":
        return mode
    if x.device.type != "cpu" or x.dim() != 3:
        return "dense"
    if table_input_available(x):
        return "table"
    probe = x[: min(2, x.shape[0])]
    if probe.numel() == 0:
        return "dense"
    density = np.count_nonzero(probe.detach().numpy()) / probe.numel()
    if density <= SPARSE_MAX_DENSITY * min(1.0, n_hidden / 32):
        return "sparse"
    return "dense"


def _nonzero_flat(x: torch.Tensor) -> np.ndarray:
    """Flat indices of the non-zero entries of a CPU tensor ``x``, ascending (numpy int64)."""
    xb = x.reshape(-1).bool().numpy()
    if xb.size < 4096:
        return np.flatnonzero(xb)
    # pack 8 flags per byte (SIMD), keep the non-zero bytes, unpack only those: about half
    # the time of a nonzero scan over every element
    packed = np.packbits(xb, bitorder="little")
    hit = np.flatnonzero(packed != 0)
    pos = np.flatnonzero(np.unpackbits(packed[hit], bitorder="little").view(np.bool_))
    return (hit[pos >> 3] << 3) + (pos & 7)


def sparse_plan(x: torch.Tensor) -> SparsePlan:
    """Index structure of ``x`` (batch, T, n_in) for :class:`InputProjection`."""
    B, T, n_in = x.shape
    device = x.device
    x = x.detach().to("cpu").contiguous()
    flat = _nonzero_flat(x)  # ascending (b, t, input)
    values = x.reshape(-1).index_select(0, torch.from_numpy(flat))
    if bool((values == 1).all()):
        values = None
    idx = flat.astype(np.int32) if x.numel() < 2**31 else flat
    rows = idx // n_in  # bag b * T + t
    inputs = idx - rows * n_in
    counts = np.bincount(rows, minlength=B * T)
    offsets = torch.from_numpy((np.cumsum(counts) - counts).astype(np.int64)).to(device)
    inputs_t = torch.from_numpy(inputs.astype(np.int64)).to(device)
    values_t = values.to(device) if values is not None else None
    return SparsePlan(inputs_t, offsets, values_t, (B, T, n_in), rows, inputs)


def _dw1_plan(plan: SparsePlan, row_bytes: int):
    """Index lists for ``dW1 = X^T G`` as one ``embedding_bag`` over the batch-major gradient
    rows (``b * T + t``): one bag per (block of rows, input), so that every block of G rows
    (~256 KB) is read from memory once while the few spikes per row hit cache; the partial
    sums per block are added afterwards. Returns (rows, offsets, values, n_blocks)."""
    B, T, n_in = plan.shape
    per_block = max(1, (256 << 10) // max(1, row_bytes))
    n_blocks = -(-(B * T) // per_block)
    rows = plan.rows_np
    key = (rows // per_block) * n_in + plan.inputs_np
    key_t = torch.from_numpy(key.astype(np.int16 if n_blocks * n_in < 2**15 else np.int32))
    order = torch.argsort(key_t, stable=True)
    counts = np.bincount(key, minlength=n_blocks * n_in)
    offsets = torch.from_numpy((np.cumsum(counts) - counts).astype(np.int64))
    rows_sorted = torch.from_numpy(rows.astype(np.int64)).index_select(0, order)
    values = None
    if plan.values is not None:
        values = plan.values.cpu().index_select(0, order).to(plan.inputs.device)
    dev = plan.inputs.device
    return rows_sorted.to(dev), offsets.to(dev), values, n_blocks


def _padded_width(n: int) -> int:
    """GEMM output width for the dense input layer: MKL's kernels on this project's machines run
    a 12800x200 @ 200xN product ~2x faster for N a multiple of 16 (N = 8: 3.7 -> 1.7 ms,
    N = 30: 4.6 -> 2.8 ms; benchmarks/README.md)."""
    return n if n % 16 == 0 else n + 16 - n % 16


class InputProjection(torch.autograd.Function):
    """The sparse input layer: ``h = x @ W1`` for input spikes ``x`` (batch, T, n_in), returned
    as a time-major (T, batch, n_hidden) view of batch-major rows, like :class:`DenseInput`.

    ``F.embedding_bag`` over the spike indices, one bag per (batch, t) row; ``dW1 = X^T G`` as
    an ``embedding_bag`` of gradient rows (see :func:`_dw1_plan`), no dense GEMM.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, plan: SparsePlan):  # type: ignore[override]
        B, T, n_in = x.shape
        H = w.shape[1]
        h = F.embedding_bag(
            plan.inputs, w, plan.offsets, mode="sum", per_sample_weights=plan.values
        ).view(B, T, H)
        ctx.plan = plan
        ctx.save_for_backward(w)  # x itself is not needed: the plan says where it spikes
        return h.transpose(0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (w,) = ctx.saved_tensors
        plan = ctx.plan
        B, T, n_in = plan.shape
        H = w.shape[1]
        dx = dw = None
        if ctx.needs_input_grad[1]:
            g_rows = g.transpose(0, 1).reshape(B * T, H)  # batch-major rows b * T + t
            rows, offsets, values, n_blocks = _dw1_plan(plan, H * g.element_size())
            partial = F.embedding_bag(rows, g_rows, offsets, mode="sum", per_sample_weights=values)
            dw = partial.view(n_blocks, n_in, H).sum(0)
        if ctx.needs_input_grad[0]:
            dx = torch.matmul(g.transpose(0, 1), w.t())
        return dx, dw, None


class DenseInput(torch.autograd.Function):
    """The dense input layer: ``x`` (batch, T, n_in) of any dtype (bool, uint8 or float) ->
    ``h`` as a time-major (T, batch, Hp) view of a batch-major GEMM output, where ``Hp`` is
    ``n_hidden`` or, with ``pad``, :func:`_padded_width` (the extra columns are exact zeros).

    The GEMM is the reference's ``x @ W1`` over the batch-major rows (for 0/1 inputs every output
    is the same in-order sum of weights, checked bit for bit in the tests); bool or uint8 input
    is converted in one copy (through a uint8 view: ~9x cheaper than from bool), float input of
    the weights' dtype is used in place. The recurrence reads ``h`` through its strides and
    returns its gradient batch-major, which is the layout ``dW1 = (G^T X)^T`` reads: no
    transposing copies in either direction.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, pad: bool):  # type: ignore[override]
        B, T, n_in = x.shape
        H = w.shape[1]
        Hp = _padded_width(H) if pad else H
        x2d = as_float_spikes(x, w.dtype).reshape(B * T, n_in)
        wp = F.pad(w, (0, Hp - H)) if Hp != H else w
        h = torch.mm(x2d, wp).view(B, T, Hp).transpose(0, 1)
        ctx.save_for_backward(x2d, w)
        ctx.shape = (B, T, n_in)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        x2d, w = ctx.saved_tensors
        B, T, n_in = ctx.shape
        H = w.shape[1]
        dx = dw = None
        g2 = g.transpose(0, 1).reshape(B * T, g.shape[2])[:, :H]  # a view when batch-major
        if ctx.needs_input_grad[1]:  # dW1 = (G^T X)^T: the fastest orientation measured
            dw = torch.mm(g2.t(), x2d).t().contiguous()
        if ctx.needs_input_grad[0]:
            dx = torch.mm(g2, w.t()).view(B, T, n_in)
        return dx, dw, None


@functools.cache
def _bit_patterns(dtype: torch.dtype) -> torch.Tensor:
    """(256, 8): row ``c`` holds the bits of ``c``, least significant first."""
    c = torch.arange(256)
    return ((c[:, None] >> torch.arange(8)) & 1).to(dtype)


class TableInput(torch.autograd.Function):
    """The input layer for bool spikes on the CPU: ``h = x @ W1`` as table look-ups.

    The inputs are cut into groups of 8; each group's spike pattern in a (batch, t) row is a
    byte ``c``, and its contribution to ``h`` is the row ``c`` of a 256-row table of partial
    sums of that group's weights (built per call by a small product; the "four Russians"
    method). ``h`` is then a sum of at most ``n_in / 8`` table rows per (batch, t) row --
    ``F.embedding_bag`` over the rows of the groups that spike
    (:func:`spikeloc.engine.cpu_kernels.bit_group_bags`; a silent group's row is zero) -- instead of
    ``n_in`` multiply-adds, and ``x`` is never copied to float. Backward collects the gradient
    rows per table row (:func:`spikeloc.engine.cpu_kernels.bit_group_scatter`) and maps the table's
    gradient back to ``dW1`` with the transposed small product. The sums are those of the GEMM
    in another order: equal up to float rounding. Output layout and ``pad`` as
    :class:`DenseInput`.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, pad: bool):  # type: ignore[override]
        B, T, n_in = x.shape
        H = w.shape[1]
        Hp = _padded_width(H) if pad else H
        idx, off, cuts = cpu_kernels.bit_group_bags(
            x.reshape(B * T, n_in).contiguous().numpy(), cpu_kernels.kernel_threads()
        )
        ng = -(-n_in // 8)
        wp = F.pad(w.detach(), (0, Hp - H, 0, ng * 8 - n_in))  # zero units, silent inputs
        table = torch.matmul(_bit_patterns(w.dtype), wp.view(ng, 8, Hp)).view(ng * 256, Hp)
        idx_t, off_t = torch.from_numpy(idx), torch.from_numpy(off)
        # the sums run on torch's threads
        h = F.embedding_bag(idx_t, table, off_t, mode="sum", include_last_offset=True)
        h = h.view(B, T, Hp).transpose(0, 1)
        ctx.save_for_backward(idx_t, torch.from_numpy(cuts), w)
        ctx.shape = (B, T, n_in)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        idx_t, cuts_t, w = ctx.saved_tensors
        B, T, n_in = ctx.shape
        H = w.shape[1]
        dw = None
        if ctx.needs_input_grad[1]:
            # whole (padded) rows: contiguous, so the compiled loop is vectorised
            Hp = g.shape[2]
            g2 = g.transpose(0, 1).reshape(B * T, Hp)  # a view when batch-major
            ng = -(-n_in // 8)
            dtab = cpu_kernels.bit_group_scatter(
                idx_t.numpy(), cuts_t.numpy(), g2.numpy(), ng * 256
            )
            dtab_t = torch.from_numpy(dtab).view(ng, 256, Hp)
            dw = torch.matmul(_bit_patterns(w.dtype).t(), dtab_t).view(ng * 8, Hp)[:n_in, :H]
        return None, dw, None  # bool input: no gradient


def input_projection(
    x: torch.Tensor, w: torch.Tensor, *, mode: str | None = None, pad: bool = False
) -> torch.Tensor:
    """``x @ w`` for input spikes ``x`` (batch, T, n_in), time-major: (T, batch, n_hidden).

    ``x`` may be bool, uint8 or float; the layer is chosen by :func:`choose_input_mode`. With
    ``pad`` the dense and table layers return :func:`_padded_width` columns on the CPU (the
    extra ones exact zeros); the sparse layer never pads.
    """
    chosen = choose_input_mode(x, w.shape[1], mode)
    if chosen == "sparse":
        # bool spikes are all 1: the plan needs no values, so no float copy of the input
        xs = x if x.dtype == torch.bool else as_float_spikes(x, w.dtype)
        return InputProjection.apply(xs, w, sparse_plan(xs.detach()))
    if chosen == "table":
        return TableInput.apply(x.detach(), w, pad)
    return DenseInput.apply(x, w, pad and x.device.type == "cpu")


# ======================================================================================
# Leaky-integrator readout in closed form
# ======================================================================================


def li_mean_weights(
    T: int, alpha: float, order: str, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """``c`` (T,) with ``mean_t out_t = sum_k c_k I_k`` for the leaky integrator driven by ``I``.

    Published order ``out_t = sum_{k<t} alpha^{t-1-k} I_k`` (``out_0 = 0``):
    ``c_k = (1 - alpha^{T-1-k}) / ((1 - alpha) T)``; immediate ``out_t = sum_{k<=t} ...``:
    ``c_k = (1 - alpha^{T-k}) / ((1 - alpha) T)``. Computed in float64, cached (read-only).
    """
    return _li_mean_weights(T, alpha, order, dtype, str(torch.device(device or "cpu")))


@functools.lru_cache(maxsize=32)
def _li_mean_weights(T: int, alpha: float, order: str, dtype, device: str) -> torch.Tensor:
    k = torch.arange(T, dtype=torch.float64)
    n = (T - 1 - k) if order == "published" else (T - k)
    la = math.log(alpha)
    c = torch.expm1(n * la) / math.expm1(la) / T
    return c.to(dtype=dtype, device=device)


class TimeWeightedSum(torch.autograd.Function):
    """``sum_t c_t s[:, t, :]`` for fixed weights ``c`` (T,) and ``s`` (batch, T, n), any
    strides. Backward writes the gradient ``c_t g[b, n]`` with one broadcast multiply, batch-major
    (the layout the recurrence's kernels read): autograd's outer-product ``bmm`` took 4x longer
    at T=100. The values are the same single products either way."""

    @staticmethod
    def forward(ctx, c: torch.Tensor, s: torch.Tensor):  # type: ignore[override]
        ctx.save_for_backward(c)
        return torch.matmul(c, s)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (c,) = ctx.saved_tensors
        return None, torch.mul(c.view(1, -1, 1), g.unsqueeze(1))


def li_trace(i_tm: torch.Tensor, alpha: float, order: str, *, block: int = 32) -> torch.Tensor:
    """Time-major membrane trace (T, ...) of the leaky-integrator readout driven by ``i_tm``
    (T, ...), as the reference ``_li_loop`` records it, without a time loop: a Toeplitz product
    within blocks of ``block`` steps and one small matrix of decays across blocks.
    Differentiable; rounding differs from the recurrence at the 1e-7 (float32) level."""
    T = i_tm.shape[0]
    rest = i_tm.shape[1:]
    x = i_tm.reshape(T, -1)
    if order == "published":  # out_t = sum_{k<t}: the drive shifted by one step
        x = F.pad(x[: T - 1], (0, 0, 1, 0))
    L = max(1, min(block, T))
    nb = -(-T // L)
    if nb * L != T:
        x = F.pad(x, (0, 0, 0, nb * L - T))
    xb = x.reshape(nb, L, -1)
    la = math.log(alpha)
    idx = torch.arange(L, dtype=torch.float64)
    diff = idx[:, None] - idx[None, :]
    toe = torch.where(diff >= 0, torch.exp(diff.clamp(min=0) * la), 0.0)
    toe = toe.to(dtype=i_tm.dtype, device=i_tm.device)
    local = torch.matmul(toe, xb)  # (nb, L, n)
    if nb == 1:
        y = local
    else:
        jb = torch.arange(nb, dtype=torch.float64)
        dj = jb[:, None] - 1 - jb[None, :]
        carry_m = torch.where(dj >= 0, torch.exp(dj.clamp(min=0) * (L * la)), 0.0)
        carry = torch.matmul(carry_m.to(dtype=i_tm.dtype, device=i_tm.device), local[:, L - 1])
        decay = torch.exp((idx + 1) * la).to(dtype=i_tm.dtype, device=i_tm.device)
        y = local + decay[:, None] * carry[:, None, :]
    return y.reshape(nb * L, -1)[:T].reshape((T,) + rest)


# ======================================================================================
# The model-level entry points used by spikeloc.core.models.SNN
# ======================================================================================


def supports(model) -> bool:
    """Whether :func:`fused_forward` covers ``model``'s configuration (all current options)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or getattr(model, "membrane_only", False):
        return False
    try:
        LIFSpec.from_params(model.hidden_params)
    except ValueError:
        return False
    return cfg.readout in _READOUTS


class _Deferred:
    """A value computed on first use and then kept (the membrane trace of the readout)."""

    __slots__ = ("fn", "value")

    def __init__(self, fn: Callable[[], torch.Tensor]):
        self.fn: Callable[[], torch.Tensor] | None = fn
        self.value: torch.Tensor | None = None

    def get(self) -> torch.Tensor:
        if self.fn is not None:
            self.value = self.fn()
            self.fn = None
        return self.value  # type: ignore[return-value]


def _resolve(v):
    return v.get() if isinstance(v, _Deferred) else v


class FusedSNNOutput(SNNOutput):
    """:class:`~spikeloc.core.models.SNNOutput` whose ``output_v`` is computed when first read.

    Training with the mean-membrane readout never needs the membrane trace, so it is not
    computed unless asked for; attribute access, indexing, unpacking, ``_asdict`` and pickling
    all see the same tensor the eager path would return.
    """

    __slots__ = ()

    @property
    def output_v(self) -> torch.Tensor:  # type: ignore[override]
        return _resolve(tuple.__getitem__(self, 2))

    def __getitem__(self, i):
        v = tuple.__getitem__(self, i)
        if isinstance(i, slice):
            return tuple(_resolve(e) for e in v)
        return _resolve(v)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __reduce__(self):
        return (SNNOutput, tuple(self))

    def __repr__(self) -> str:
        return repr(SNNOutput(*self))


def fused_forward(
    model, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, *, dropout_generator=None
):
    """Same outputs as ``SNN._reference_forward`` (see the module docstring for how).

    ``x`` may be bool, uint8 or float (the input layer converts it). ``hidden_spikes`` and
    ``output_v`` have the reference's values and shapes (batch, T, n) but may be strided views
    (of padded or time-major buffers; call ``.contiguous()`` before ``.view``). For the
    mean-membrane and regression readouts ``output_v`` is computed when first read.
    """
    ensure_runtime()
    cfg = model.cfg
    B, T, _ = x.shape
    hp = model.hidden_params
    spec = LIFSpec.from_params(hp)
    H = w1.shape[1]
    # padded GEMM width (CPU dense layer): the extra units get zero current and, with a
    # positive threshold, never spike, so they run through the recurrence unseen
    h_tm = input_projection(x, w1, pad=spec.threshold > 0)  # (T, batch, H or Hp)
    alpha_out = math.exp(-model.dt_s / cfg.tau_output_s)
    order = hp.update_order
    r = None  # the readout's time-weighted sum, when the LIF kernel forms it
    if (
        cfg.readout in ("mean_membrane", "regression")
        and not (model.training and cfg.dropout > 0)
        and h_tm.device.type == "cpu"
        and _cpu_engine(h_tm) == "numba"
    ):
        c = li_mean_weights(T, alpha_out, order, dtype=h_tm.dtype, device=h_tm.device)
        spikes_p, r = LIFReadout.apply(h_tm, c, spec)
    else:
        spikes_p = lif_sequence(h_tm, spec)  # (T, batch, H or Hp), batch-major on the CPU
    spikes_tm = spikes_p[..., :H] if spikes_p.shape[2] != H else spikes_p
    spikes = spikes_tm.transpose(0, 1)  # (batch, T, n_hidden) view
    mask = model.dropout_mask(spikes.shape, spikes, dropout_generator)
    if mask is not None:
        s_tm = spikes_tm * mask.transpose(0, 1)
        s_bt = s_tm.transpose(0, 1)  # (batch, T, n_hidden)
    else:
        s_tm = spikes_tm
        s_bt = spikes_p.transpose(0, 1)  # (batch, T, H or Hp): batch-major from the CPU kernel

    def currents() -> torch.Tensor:  # readout input currents, time-major (T, batch, n_out)
        return torch.matmul(s_tm, w2)

    if cfg.readout == "spike_count":
        out_tm = lif_sequence(currents(), LIFSpec.from_params(model.output_params))
        out = out_tm.transpose(0, 1)
        return SNNOutput(out.mean(1), spikes, out)
    if cfg.readout == "max_membrane":
        output_v = li_trace(currents(), alpha_out, order).transpose(0, 1)
        return SNNOutput(output_v.max(1).values, spikes, output_v)
    # mean over time of the leaky integrator = (c @ spikes) @ W2, no output time loop
    if r is None:
        c = li_mean_weights(T, alpha_out, order, dtype=s_bt.dtype, device=s_bt.device)
        # (T,) @ (batch, T, n) -> (batch, n): one batched product, whatever the layout
        r = TimeWeightedSum.apply(c, s_bt)
    readout = torch.matmul(r[:, :H], w2)
    if cfg.readout == "regression":
        readout = readout[:, 0]
    grad_mode = torch.is_grad_enabled()

    def trace() -> torch.Tensor:
        with torch.set_grad_enabled(grad_mode):
            return li_trace(currents(), alpha_out, order).transpose(0, 1)

    return FusedSNNOutput(readout, spikes, _Deferred(trace))


# ======================================================================================
# Triton kernels (CUDA only; imported lazily, never on the CPU path)
# ======================================================================================


def _triton_kernels():  # pragma: no cover - needs a GPU
    """The compiled-on-demand Triton kernels, or None when triton is unavailable."""
    # Triton resolves the names a kernel uses among the module's globals (not closures), so
    # the modules and the helper become globals of this module -- only here, on first use.
    global triton, tl, _tl_surrogate
    if "kernels" in _triton_state:
        return _triton_state["kernels"]
    try:
        import triton
        import triton.language as tl
    except Exception:
        _triton_state["kernels"] = None
        return None

    @triton.jit
    def _tl_surrogate(x, beta, SUPERSPIKE: tl.constexpr):
        if SUPERSPIKE:
            d = beta * tl.abs(x) + 1.0
            r = 1.0 / (d * d)
        else:
            sg = 1.0 / (1.0 + tl.exp(-beta * x))
            r = beta * sg * (1.0 - sg)
        return r

    @triton.jit
    def lif_fwd(
        h_ptr, x_ptr, s_ptr, u_ptr, T, BN, alpha, theta, beta_a, rho,
        PUBLISHED: tl.constexpr, ZERO: tl.constexpr, ADAPTIVE: tl.constexpr,
        STORE_U: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < BN
        v = tl.zeros([BLOCK], dtype=tl.float32)
        s = tl.zeros([BLOCK], dtype=tl.float32)
        a = tl.zeros([BLOCK], dtype=tl.float32)
        hp = h_ptr + offs
        xp = x_ptr + offs
        sp = s_ptr + offs
        up = u_ptr + offs
        if PUBLISHED:
            tl.store(sp, s, mask=mask)  # s_0 = 0
            if STORE_U:
                tl.store(up, v, mask=mask)  # u_0 = 0
            for _t in range(0, T - 1):
                if ADAPTIVE:
                    thr = theta + beta_a * a
                else:
                    thr = theta + 0.0 * a
                x = v - thr
                s_new = (x > 0.0).to(tl.float32)
                hv = tl.load(hp, mask=mask, other=0.0)
                u = alpha * v + hv
                if ZERO:
                    v = u * (1.0 - s)
                else:
                    v = u - theta * s
                if ADAPTIVE:
                    a = rho * a + (1.0 - rho) * s_new
                tl.store(xp, x, mask=mask)
                hp += BN
                xp += BN
                sp += BN
                up += BN
                tl.store(sp, s_new, mask=mask)
                if STORE_U:
                    tl.store(up, u, mask=mask)
                s = s_new
            tl.store(xp, tl.zeros([BLOCK], dtype=tl.float32), mask=mask)
        else:
            for _t in range(0, T):
                hv = tl.load(hp, mask=mask, other=0.0)
                u = alpha * v + hv
                if ADAPTIVE:
                    thr = theta + beta_a * a
                else:
                    thr = theta + 0.0 * a
                x = u - thr
                s = (x > 0.0).to(tl.float32)
                if ZERO:
                    v = u * (1.0 - s)
                else:
                    v = u - theta * s
                if ADAPTIVE:
                    a = rho * a + (1.0 - rho) * s
                tl.store(xp, x, mask=mask)
                tl.store(sp, s, mask=mask)
                if STORE_U:
                    tl.store(up, u, mask=mask)
                hp += BN
                xp += BN
                sp += BN
                up += BN

    @triton.jit
    def lif_bwd(
        g_ptr, x_ptr, s_ptr, u_ptr, dh_ptr, T, BN, last, alpha, theta, beta_a, rho, beta,
        PUBLISHED: tl.constexpr, ZERO: tl.constexpr, ADAPTIVE: tl.constexpr,
        COUPLED: tl.constexpr, SUPERSPIKE: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        # last = (T - 1) * BN, computed on the host (64-bit when it has to be)
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < BN
        if PUBLISHED:
            # lam = lam_{t+1}, kap = kap_{t+1}, mu = mu_{t+1}; start at t + 1 = T - 1
            lam = tl.zeros([BLOCK], dtype=tl.float32)
            kap = tl.zeros([BLOCK], dtype=tl.float32)
            mu = tl.load(g_ptr + last + offs, mask=mask, other=0.0)
            tl.store(dh_ptr + last + offs, lam, mask=mask)  # dL/dh_{T-1} = 0
            gp = g_ptr + last - BN + offs
            xp = x_ptr + last - BN + offs
            sp = s_ptr + last - BN + offs
            up = u_ptr + last + offs  # u_{t+1}
            dp = dh_ptr + last - BN + offs
            for _i in range(0, T - 1):
                sg = _tl_surrogate(tl.load(xp, mask=mask, other=0.0), beta, SUPERSPIKE)
                st = tl.load(sp, mask=mask, other=0.0)
                gt = tl.load(gp, mask=mask, other=0.0)
                q = mu * sg
                if ZERO:
                    e = 1.0 - st
                    lam_new = q + alpha * e * lam
                else:
                    e = 1.0 + 0.0 * st
                    lam_new = q + alpha * lam
                tl.store(dp, lam * e, mask=mask)  # dL/dh_t = lam_{t+1} E_t
                if ADAPTIVE:
                    kap = rho * kap - beta_a * q
                mu = gt
                if COUPLED:
                    if ZERO:
                        mu = mu - lam * tl.load(up, mask=mask, other=0.0)
                    else:
                        mu = mu - theta * lam
                if ADAPTIVE:
                    mu = mu + (1.0 - rho) * kap
                lam = lam_new
                gp -= BN
                xp -= BN
                sp -= BN
                up -= BN
                dp -= BN
        else:
            nu = tl.zeros([BLOCK], dtype=tl.float32)  # nu_{t+1}
            q = tl.zeros([BLOCK], dtype=tl.float32)  # q_{t+1} = mu_{t+1} sigma'_{t+1}
            kap = tl.zeros([BLOCK], dtype=tl.float32)
            gp = g_ptr + last + offs
            xp = x_ptr + last + offs
            sp = s_ptr + last + offs
            up = u_ptr + last + offs
            dp = dh_ptr + last + offs
            for _i in range(0, T):
                lam = alpha * nu
                if ADAPTIVE:
                    kap = rho * kap - beta_a * q
                gt = tl.load(gp, mask=mask, other=0.0)
                sg = _tl_surrogate(tl.load(xp, mask=mask, other=0.0), beta, SUPERSPIKE)
                st = tl.load(sp, mask=mask, other=0.0)
                mu = gt
                if COUPLED:
                    if ZERO:
                        mu = mu - lam * tl.load(up, mask=mask, other=0.0)
                    else:
                        mu = mu - theta * lam
                if ADAPTIVE:
                    mu = mu + (1.0 - rho) * kap
                q = mu * sg
                if ZERO:
                    nu = q + lam * (1.0 - st)
                else:
                    nu = q + lam
                tl.store(dp, nu, mask=mask)
                gp -= BN
                xp -= BN
                sp -= BN
                up -= BN
                dp -= BN

    kernels = {"fwd": lif_fwd, "bwd": lif_bwd, "triton": triton}
    _triton_state["kernels"] = kernels
    return kernels


_TRITON_BLOCK = 128


def _triton_forward(h: torch.Tensor, spec: LIFSpec):  # pragma: no cover - needs a GPU
    """Forward kernel: one program per block of neurons, the time loop inside the kernel.
    Returns the spike record ``s`` (not complemented) and (X, S[, U]) for the backward kernel."""
    k = _triton_kernels()
    T = h.shape[0]
    BN = h[0].numel()
    X = torch.empty_like(h)
    S = torch.empty_like(h)
    U = torch.empty_like(h) if spec.needs_u else S  # S doubles as a dummy pointer
    grid = (_cdiv(BN, _TRITON_BLOCK),)
    k["fwd"][grid](
        h, X, S, U, T, BN, spec.alpha, spec.threshold, spec.adaptive_beta, spec.rho,
        PUBLISHED=spec.order == "published", ZERO=spec.reset == "zero",
        ADAPTIVE=spec.adaptive, STORE_U=spec.needs_u, BLOCK=_TRITON_BLOCK,
    )  # fmt: skip
    return S, ((X, S, U) if spec.needs_u else (X, S))


def _triton_backward(
    G: torch.Tensor, saved: tuple, spec: LIFSpec
) -> torch.Tensor:  # pragma: no cover
    k = _triton_kernels()
    X, S = saved[0], saved[1]
    U = saved[2] if len(saved) > 2 else S
    G = G.contiguous()
    T = X.shape[0]
    BN = X[0].numel()
    dh = torch.empty_like(X)
    grid = (_cdiv(BN, _TRITON_BLOCK),)
    k["bwd"][grid](
        G, X, S, U, dh, T, BN, (T - 1) * BN, spec.alpha, spec.threshold, spec.adaptive_beta, spec.rho,
        spec.beta, PUBLISHED=spec.order == "published", ZERO=spec.reset == "zero",
        ADAPTIVE=spec.adaptive, COUPLED=not spec.detach_reset,
        SUPERSPIKE=spec.surrogate == "superspike", BLOCK=_TRITON_BLOCK,
    )  # fmt: skip
    return dh


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _triton_ok(spec: LIFSpec, device: torch.device) -> bool:  # pragma: no cover - needs a GPU
    """Triton is importable and its kernels for ``spec`` agree with the eager loops on a small
    random problem (checked once per spec and device); otherwise warn and use CUDA graphs."""
    key = ("ok", spec, str(device))
    if key in _triton_state:
        return _triton_state[key]
    ok = False
    if _triton_kernels() is not None:
        try:
            gen = torch.Generator(device="cpu").manual_seed(0)
            h = (torch.rand((13, 3, 5), generator=gen) * 1.5 * spec.threshold).to(device)
            g = torch.randn((13, 3, 5), generator=gen).to(device)
            outs = []
            for engine in ("triton", "eager"):
                hh = h.clone().requires_grad_(True)
                s = LIFSequence.apply(hh, spec, engine)
                (dh,) = torch.autograd.grad(s, hh, g)
                outs.append((s, dh))
            (s1, d1), (s2, d2) = outs
            ok = torch.equal(s1, s2) and torch.allclose(d1, d2, rtol=1e-4, atol=1e-5)
            if not ok:
                warnings.warn(
                    f"spikeloc: the Triton LIF kernel disagrees with the eager loop for {spec}; "
                    "using CUDA graphs",
                    RuntimeWarning,
                    stacklevel=3,
                )
        except Exception as exc:
            warnings.warn(
                f"spikeloc: the Triton LIF kernel failed ({exc!r}); using CUDA graphs",
                RuntimeWarning,
                stacklevel=3,
            )
            ok = False
    _triton_state[key] = ok
    return ok
