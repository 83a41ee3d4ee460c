r"""The fused LIF engine: input currents in, spikes and readouts out -- the fast path behind
``SNN(backend="fused"|"auto")``.

**The interface.** :func:`run_lif` takes the currents driving a LIF layer, the layer's options
(:class:`~spikeloc.engine.lif_spec.LIFSpec`) and its readout (:class:`Readout`), and returns
:class:`~spikeloc.engine.outputs.SNNOutput` (readout, hidden spikes, output membrane trace),
with the values of the reference time loop (:meth:`spikeloc.core.models.SNN._reference_forward`,
the equations of :mod:`spikeloc.core.neurons`). The currents come from any upstream torch
module as a ``(batch, T, n)`` tensor (a learned-delay convolution, a dendritic filter, noise
added to a projection: autograd carries the gradient back into it), or from the engine's own
input layers, named by :class:`SpikeInput` (spikes and a weight matrix), which choose per call
between a dense GEMM, table look-ups and sparse bags. :func:`unsupported` says, in one phrase,
why a neuron, device or dtype cannot run here; the caller then runs the reference and says so
(``SNN`` warns once). :func:`lif_sequence` is the bare recurrence (time-major).

* **One autograd node for the whole recurrence** (:class:`LIFSequence`). The forward kernel
  runs over all time steps without autograd and records, per step, what the adjoint needs;
  the backward pass is the hand-derived adjoint, also one kernel over time. Both are generated
  from the single specification in :mod:`spikeloc.engine.lif_spec` (both update orders, reset
  zero/subtract, ``detach_reset``, adaptive threshold, sigmoid/SuperSpike surrogates with any
  beta, separate time constants): on the CPU as numba kernels (:mod:`spikeloc.engine.cpu_kernels`:
  loop kernels, and lane-block SIMD kernels for layers of up to 128 units, a multiple of 8),
  on CUDA as Triton kernels (:mod:`spikeloc.engine.gpu_kernels`, float32/float64, checked once
  against the CPU kernels). The forward pass performs the reference step's operations in its
  order, so hidden spikes are bit-identical to the reference whenever the input currents are.
  With neither back end (CUDA without triton, CPU without numba, other dtypes),
  :func:`unsupported` names the gap and the reference loop runs.
* **Closed-form readout.** For ``mean_membrane``/``regression`` the time-mean of the leaky
  integrator is a fixed weighted sum over time, ``mean_t out_t = sum_k c_k I_k`` with
  ``I = spikes @ W2`` (:func:`li_mean_weights`), so the readout is ``(c @ spikes) @ W2`` -- no
  output time loop. On the CPU (no dropout) ``c @ spikes`` is summed inside the LIF forward
  kernel and its gradient ``c_t dL/dr`` formed inside the adjoint (:class:`LIFWithReadout`);
  elsewhere it is one batched product (:class:`TimeWeightedSum`). The membrane trace
  ``output_v`` is computed when first read (:class:`FusedSNNOutput`), in blocks by
  :func:`li_trace` (block-Toeplitz, no per-step loop).
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

Dropout is a mask the caller draws (``SNN.dropout_mask``, as in the reference) and passes in;
Dale weights arrive as effective weights. Nothing here imports triton on the CPU path.

**Ensembles** (:mod:`spikeloc.core.ensemble`): members' rows stacked in the batch dimension of
:class:`LIFSequence` / :class:`LIFWithReadout` / :func:`lif_sequence`, with an optional
per-member table of values (``table``, :func:`spikeloc.engine.cpu_kernels.params_table`; numba
kernels) and per-member readout weights ``(E, n, n_out)`` in a batched product; :func:`run_lif`
keeps its shape.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeloc.engine import cpu_kernels
from spikeloc.engine.lif_spec import LIFSpec, unsupported_feature
from spikeloc.engine.outputs import SNNOutput, as_float_spikes
from spikeloc.engine.runtime import configure_runtime

__all__ = [
    "LIFSpec",
    "Readout",
    "SpikeInput",
    "SPARSE_MAX_DENSITY",
    "ensure_runtime",
    "backend_for",
    "unsupported",
    "run_lif",
    "lif_sequence",
    "input_projection",
    "TableInput",
    "table_input_available",
    "choose_input_mode",
    "set_input_mode",
    "li_mean_weights",
    "li_trace",
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
# The recurrence: back ends and the autograd nodes
# ======================================================================================


def _gpu():
    from spikeloc.engine import gpu_kernels  # imports triton lazily; never on the CPU path

    return gpu_kernels


def backend_for(device: torch.device | str, dtype: torch.dtype) -> str | None:
    """``numba`` (CPU) or ``triton`` (CUDA) for tensors on ``device`` of ``dtype``, or None
    when neither runs there."""
    device = torch.device(device)
    if dtype not in (torch.float32, torch.float64):
        return None
    if device.type == "cpu":
        return "numba" if cpu_kernels.available() else None
    if device.type == "cuda":
        return "triton" if _gpu().available() else None
    return None


def _numba_forward(
    h: torch.Tensor, spec: LIFSpec, c: torch.Tensor | None = None, table: np.ndarray | None = None
):
    """The compiled CPU kernel (:func:`spikeloc.engine.cpu_kernels.lif_forward`) on time-major ``h``
    (T, batch, n), any strides (read in place). The records are batch-major in memory and
    returned as time-major views: the layout in which the dense input layer produced ``h`` and
    in which the readout's gradient comes back. Returns ``(spikes, saved, r)``: with readout
    weights ``c`` (T,), ``r = sum_t c_t s_t`` (batch, n), else None. ``table``: per-member
    values (:func:`spikeloc.engine.cpu_kernels.params_table`), the batch rows split equally
    among the members."""
    cn = c.numpy() if c is not None else None
    S, X, U, R = cpu_kernels.lif_forward(h.detach().transpose(0, 1).numpy(), spec, cn, table)
    recs = (X, S) if U is None else (X, S, U)
    saved = tuple(torch.from_numpy(a).transpose(0, 1) for a in recs)
    return saved[1], saved, (torch.from_numpy(R) if R is not None else None)


def _numba_backward(
    G: torch.Tensor | None,
    saved: tuple,
    spec: LIFSpec,
    c: torch.Tensor | None = None,
    gr: torch.Tensor | None = None,
    table: np.ndarray | None = None,
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
        table,
    )
    return torch.from_numpy(dh).transpose(0, 1)


class LIFSequence(torch.autograd.Function):
    """A LIF layer over all time steps: time-major input currents ``h`` (T, batch, n), any
    strides -> time-major spikes (T, batch, n); backward is the adjoint kernel. ``table``
    (numba only): per-member values of an ensemble whose members' rows are stacked in ``h``'s
    batch dimension (:func:`spikeloc.engine.cpu_kernels.params_table`)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, spec: LIFSpec, backend: str, table=None):  # type: ignore[override]
        ctx.table = table
        if backend == "numba":
            spikes, saved, _ = _numba_forward(h, spec, None, table)
        elif table is not None:
            raise ValueError("per-member parameter tables need the numba back end")
        elif backend == "triton":
            S, X, U = _gpu().lif_forward(h, spec)
            spikes, saved = S, ((X, S) if U is None else (X, S, U))
        else:
            raise ValueError(f"unknown LIF back end {backend!r}")
        ctx.spec = spec
        ctx.backend = backend
        ctx.save_for_backward(*saved)
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        saved = ctx.saved_tensors
        if ctx.backend == "numba":
            dh = _numba_backward(grad_spikes, saved, ctx.spec, table=ctx.table)
        else:
            U = saved[2] if len(saved) > 2 else None
            dh = _gpu().lif_backward(grad_spikes, saved[0], saved[1], U, ctx.spec)
        return dh, None, None, None


def lif_sequence(
    h_tm: torch.Tensor, spec: LIFSpec, *, backend: str | None = None, table=None
) -> torch.Tensor:
    """Time-major spikes (T, batch, n) of a LIF layer driven by currents ``h_tm`` (T, batch, n).

    ``backend``: ``numba`` or ``triton``; None picks :func:`backend_for` the tensor (an error
    where there is none: see :func:`unsupported`). ``triton`` runs on CPU tensors too, in
    Triton's interpreter (``TRITON_INTERPRET=1``). ``table``: per-member values
    (numba only, see :class:`LIFSequence`).
    """
    if backend is None:
        backend = backend_for(h_tm.device, h_tm.dtype)
        if backend is None:
            raise ValueError(f"no fused LIF kernel for {h_tm.device.type} {h_tm.dtype}")
    return LIFSequence.apply(h_tm, spec, backend, table)


class LIFWithReadout(torch.autograd.Function):
    """:class:`LIFSequence` on the compiled CPU kernels, with the readout's time-weighted sum
    ``r = sum_t c_t s_t`` (batch, n) formed in the forward kernel and its gradient
    ``c_t dL/dr`` formed inside the adjoint: neither the readout's batched product nor its
    (batch, T, n) gradient is materialised. Returns ``(spikes, r)``; ``spikes`` time-major as
    :class:`LIFSequence`'s. ``r`` is summed in time order (the batched product sums in another
    order: float rounding only). ``table``: per-member values, as :class:`LIFSequence`'s."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, c: torch.Tensor, spec: LIFSpec, table=None):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        rec, saved, r = _numba_forward(h, spec, c, table)
        ctx.spec = spec
        ctx.table = table
        ctx.save_for_backward(c, *saved)
        return rec, r

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_r):  # type: ignore[override]
        if grad_spikes is None and grad_r is None:
            return None, None, None, None
        c, *saved = ctx.saved_tensors
        gr = grad_r.contiguous() if grad_r is not None else None
        dh = _numba_backward(
            grad_spikes, tuple(saved), ctx.spec, c if gr is not None else None, gr, ctx.table
        )
        return dh, None, None, None


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
# The interface used by spikeloc.core.models.SNN
# ======================================================================================


@dataclass(frozen=True, eq=False)
class SpikeInput:
    """Currents ``spikes @ weight`` computed by the engine's own input layers (dense GEMM,
    table look-ups or sparse bags, :func:`choose_input_mode`; ``mode`` forces one).
    ``spikes`` (batch, T, n_in): bool, uint8 or float; ``weight`` (n_in, n)."""

    spikes: torch.Tensor
    weight: torch.Tensor
    mode: str | None = None

    @property
    def units(self) -> int:
        return self.weight.shape[1]

    def currents(self, *, pad: bool = False) -> torch.Tensor:
        """Time-major currents (T, batch, n), with ``pad`` possibly wider (zero columns)."""
        return input_projection(self.spikes, self.weight, mode=self.mode, pad=pad)


@dataclass(frozen=True, eq=False)
class Readout:
    """The layer after the LIF layer, driven by the (dropped-out) hidden spikes through
    ``weight`` (n, n_out).

    ``kind``: ``mean_membrane`` / ``max_membrane`` (time-mean / maximum of a leaky integrator
    of decay ``alpha`` per step, recorded in update ``order`` as the reference's ``_li_loop``),
    ``regression`` (``mean_membrane`` of the first unit, shape (batch,)) or ``spike_count``
    (mean spike count of a LIF layer ``spec``)."""

    weight: torch.Tensor
    kind: str = "mean_membrane"
    alpha: float = 0.0
    order: str = "published"
    spec: LIFSpec | None = None

    def __post_init__(self):
        if self.kind not in _READOUTS:
            raise ValueError(f"readout must be one of {', '.join(_READOUTS)}, got {self.kind!r}")
        if self.kind == "spike_count" and self.spec is None:
            raise ValueError("the spike_count readout needs the output layer's LIFSpec")


def unsupported(
    neuron: Any, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> str | None:
    """None when :func:`run_lif` can run neuron parameters ``neuron`` (a member of the LIF family
    the specification covers, :func:`spikeloc.engine.lif_spec.unsupported_feature`) on
    ``device`` in ``dtype``; else one phrase naming what is missing (for the caller's warning)."""
    reason = unsupported_feature(neuron)
    if reason is not None:
        return reason
    device = torch.device(device)
    backend = backend_for(device, dtype)
    if backend is None:
        if dtype not in (torch.float32, torch.float64):
            return f"dtype {dtype} (the kernels are float32/float64)"
        need = "numba" if device.type == "cpu" else "triton"
        return f"{device.type} tensors without {need}"
    if backend == "triton" and not _gpu().verified(LIFSpec.from_params(neuron), device):
        return "this Triton installation (its LIF kernel failed its check)"
    return None


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


def run_lif(
    currents: torch.Tensor | SpikeInput,
    spec: LIFSpec,
    *,
    readout: Readout,
    dropout_mask: torch.Tensor | None = None,
) -> SNNOutput:
    """The LIF layer ``spec`` driven by ``currents`` and its ``readout``: the reference's
    ``SNNOutput`` (see the module docstring for how).

    ``currents``: a (batch, T, n) tensor from any upstream module (any strides, float32 or
    float64; its gradient flows back), or a :class:`SpikeInput`. ``dropout_mask`` (batch, T, n)
    multiplies the hidden spikes on their way to the readout (inverted dropout, drawn by the
    caller), not the recorded spikes. ``hidden_spikes`` and ``output_v`` have the reference's
    values and shapes (batch, T, n) but may be strided views (of padded or time-major buffers;
    call ``.contiguous()`` before ``.view``). For the mean-membrane and regression readouts
    ``output_v`` is computed when first read.
    """
    ensure_runtime()
    if isinstance(currents, SpikeInput):
        H = currents.units
        # padded GEMM width (CPU dense and table layers): the extra units get zero current and,
        # with a positive threshold, never spike, so they run through the recurrence unseen
        h_tm = currents.currents(pad=spec.threshold > 0)  # (T, batch, H or Hp)
    else:
        H = currents.shape[2]
        h_tm = currents.transpose(0, 1)
    T = h_tm.shape[0]
    backend = backend_for(h_tm.device, h_tm.dtype)
    if backend is None:
        raise ValueError(f"no fused LIF kernel for {h_tm.device.type} {h_tm.dtype}")
    w2, alpha_out, order = readout.weight, readout.alpha, readout.order
    r = None  # the readout's time-weighted sum, when the LIF kernel forms it
    if (
        readout.kind in ("mean_membrane", "regression")
        and dropout_mask is None
        and (backend == "numba")
    ):
        c = li_mean_weights(T, alpha_out, order, dtype=h_tm.dtype, device=h_tm.device)
        spikes_p, r = LIFWithReadout.apply(h_tm, c, spec)
    else:
        spikes_p = LIFSequence.apply(h_tm, spec, backend)  # (T, batch, H or Hp)
    spikes_tm = spikes_p[..., :H] if spikes_p.shape[2] != H else spikes_p
    spikes = spikes_tm.transpose(0, 1)  # (batch, T, n_hidden) view
    if dropout_mask is not None:
        s_tm = spikes_tm * dropout_mask.transpose(0, 1)
        s_bt = s_tm.transpose(0, 1)  # (batch, T, n_hidden)
    else:
        s_tm = spikes_tm
        s_bt = spikes_p.transpose(0, 1)  # (batch, T, H or Hp): batch-major from the CPU kernel

    def drive() -> torch.Tensor:  # readout input currents, time-major (T, batch, n_out)
        return torch.matmul(s_tm, w2)

    if readout.kind == "spike_count":
        out_tm = lif_sequence(drive(), readout.spec, backend=backend)
        out = out_tm.transpose(0, 1)
        return SNNOutput(out.mean(1), spikes, out)
    if readout.kind == "max_membrane":
        output_v = li_trace(drive(), alpha_out, order).transpose(0, 1)
        return SNNOutput(output_v.max(1).values, spikes, output_v)
    # mean over time of the leaky integrator = (c @ spikes) @ W2, no output time loop
    if r is None:
        c = li_mean_weights(T, alpha_out, order, dtype=s_bt.dtype, device=s_bt.device)
        # (T,) @ (batch, T, n) -> (batch, n): one batched product, whatever the layout
        r = TimeWeightedSum.apply(c, s_bt)
    value = torch.matmul(r[:, :H], w2)
    if readout.kind == "regression":
        value = value[:, 0]
    grad_mode = torch.is_grad_enabled()

    def trace() -> torch.Tensor:
        with torch.set_grad_enabled(grad_mode):
            return li_trace(drive(), alpha_out, order).transpose(0, 1)

    return FusedSNNOutput(value, spikes, _Deferred(trace))
