r"""Compiled CPU kernels (numba) for the fused engine: the LIF recurrence over time, forward and
adjoint, and the table input layer.

Per-step loops run as torch or numpy calls pay a microsecond or more of interpreter and
dispatch cost per operation -- at T=100, H=30 that is most of a training step. Here the
recurrences are compiled once (numba, cached on disk) and run over all time steps in one call,
so the cost is the arithmetic.

**Arithmetic.** Every kernel computes in the dtype of its arrays (float32 or float64): the
scalars (``alpha``, ``theta``, ...) are passed in an array of that dtype, so no operation is
promoted to double, and numba's default (no fast-math) keeps each IEEE operation as written --
no reassociation and no fused multiply-add. The LIF forward pass therefore performs exactly the
reference step's operations (``(alpha * v + h) * (1 - s)``, the spike ``H(v - theta)``) and its
spikes are bit-identical to the reference loop's for the same input currents.

**LIF kernels** (:func:`lif_forward`, :func:`lif_backward`), generated from the specification
in :mod:`spikeloc.engine.lif_spec` (every option of its ``LIFSpec``: both update orders, reset to
zero or by subtraction, ``detach_reset``, adaptive threshold, both surrogates). Arrays indexed
(batch, T, units) with any strides; results are batch-major (each batch row's (T, units) block
contiguous: the layout of the input layer's output and of the readout's gradient, so no
transposing copies). The forward kernel records what the adjoint needs -- ``S`` (spikes), ``X``
(the surrogate's argument times its ``beta``) and, for reset to zero with the reset in the
graph, ``U`` (the pre-reset potential). For the sigmoid surrogate torch evaluates
``sigmoid(X)`` over all steps at once (its vectorised ``exp``); the adjoint kernel forms
``sigma'`` from it (or from ``X``, for SuperSpike) with the operations of the torch surrogate.
Two forms of each kernel, from the same statements:

* loop kernels (any width, any strides): the units of a step in an inner loop, the state in
  small arrays;
* lane-block kernels (C-contiguous arrays, a width that is a multiple of 8 up to
  :data:`MAX_LANES`): every unit unrolled into named scalars, so the state stays in registers
  over the time loop and LLVM's SLP vectoriser packs the units into SIMD registers -- the
  adjoint 4x faster (``SPIKELOC_LANE_KERNELS=0`` turns them off).

The generated modules are written to ``SPIKELOC_KERNEL_DIR`` (default
``~/.cache/spikeloc/kernels``), named by the hash of their source, where numba also caches
their machine code.

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

from spikeloc.engine import lif_spec

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


# Each jitted kernel is one function: a kernel calling another jitted closure is recompiled in
# every process instead of being loaded from the cache.


# ======================================================================================
# The LIF kernels, generated from the specification (spikeloc.engine.lif_spec)
# ======================================================================================
#
# Two forms of each kernel, both generated from the same statements:
#
# * the loop kernel (any width, any strides): the units of a step in an inner loop, the state
#   in small arrays. numba cannot tell LLVM that those do not overlap the (batch, T, N) arrays,
#   so the unit loop stays scalar and every state update goes through memory;
# * the lane-block kernel (C-contiguous arrays, a width allowed by :func:`_lane_width`): the
#   layer's C units unrolled into C named scalars, so the state lives in registers across the
#   whole time loop, and LLVM's SLP vectoriser (switched on for these kernels only, see
#   :func:`_slp_vectorize`) packs the C lanes into SIMD registers. Each lane performs the loop
#   kernel's IEEE operations in the same order (no fast-math, no FMA contraction), so the
#   results are bit-identical (checked in the tests).
#
# The flags are resolved when the source is generated: one specialised kernel per option
# combination (3x faster than one kernel testing the flags inside its loops), compiled once
# and cached on disk.

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
    "import numba\nimport numpy as np\n\n\n"
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


def _params(spec, dtype, table: np.ndarray | None = None) -> np.ndarray:
    """The kernels' table of values (M, len(PARAMS)): ``table`` (one row per member, see
    :func:`params_table`) or, for one layer alone, the single row of ``spec``."""
    if table is None:
        return np.array([spec.values()], dtype=dtype)
    if table.ndim != 2 or table.dtype != dtype:
        raise ValueError(f"parameter table must be 2-d {dtype}, got {table.ndim}-d {table.dtype}")
    return table


def params_table(specs, dtype) -> np.ndarray:
    """The per-member table of values (len(specs), len(PARAMS)) for an ensemble of layers
    ``specs`` that share their option flags (:meth:`LIFSpec.flags`); the rows of the arrays
    given with it are the members' rows one after the other, equally many each."""
    flags = {tuple(s.flags().items()) for s in specs}
    if len(flags) != 1:
        raise ValueError("an ensemble's layers must share their option flags")
    return np.array([s.values() for s in specs], dtype=dtype)


@cache
def _lif_kernel(direction: str, flags: tuple, lanes: int | None) -> tuple[str, tuple[str, ...]]:
    """Generated source (:func:`spikeloc.engine.lif_spec.kernel_source`) and array names."""
    source, names = lif_spec.kernel_source(direction, dict(flags), "numba", lanes)
    return source, tuple(names)


def _run_lif(direction: str, spec, arrays: dict, lanes: int | None, table=None, **flags) -> None:
    source, names = _lif_kernel(direction, tuple(spec.flags(**flags).items()), lanes)
    args = [arrays[name] for name in names]
    p = _params(spec, args[0].dtype, table)
    if args[0].shape[0] % p.shape[0]:
        raise ValueError(f"{args[0].shape[0]} rows do not split among {p.shape[0]} members")
    if lanes is None:  # the loop kernel: single-threaded, any strides
        _generated(source)(0, 1, *args, p)
        return
    B = args[0].shape[0]
    _run_parts(source, min(kernel_threads(), B), *args, p)


def lif_forward(
    h: np.ndarray, spec, c: np.ndarray | None = None, table: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """LIF recurrence over time for currents ``h`` indexed (batch, T, n), any strides,
    float32/float64.

    Returns ``(S, X, U, R)``: new C-contiguous (batch, T, n) arrays of the spikes, the
    surrogate's argument scaled by its ``beta`` (``beta * (v - theta)`` before the spike
    decision, the product torch's surrogate would form first; zero where no spike is recorded)
    and the pre-reset potential (None unless ``spec.needs_u``); with readout weights ``c``
    (T,), ``R`` (batch, n) = ``sum_t c[t] S[:, t]`` summed in time order (else None).
    ``table``: per-member values (:func:`params_table`; the rows split equally among the
    members, in order); None: ``spec``'s values for every row.
    """
    if not spec.beta > 0:
        raise ValueError(f"the surrogate's beta must be positive, got {spec.beta}")
    readout = c is not None
    B, T, n = h.shape
    arrays = {
        "H": h,
        "S": np.empty(h.shape, h.dtype),
        "X": np.empty(h.shape, h.dtype),
        "U": np.empty(h.shape, h.dtype) if spec.needs_u else None,
        "C": np.ascontiguousarray(c, h.dtype) if readout else None,
        "R": np.empty((B, n), h.dtype) if readout else None,
    }
    _run_lif("forward", spec, arrays, _lane_ok("forward", n, h), table, readout=readout)
    return arrays["S"], arrays["X"], arrays["U"], arrays["R"]


def lif_backward(
    G: np.ndarray | None,
    Y: np.ndarray,
    S: np.ndarray,
    U: np.ndarray | None,
    spec,
    c: np.ndarray | None = None,
    gr: np.ndarray | None = None,
    table: np.ndarray | None = None,
) -> np.ndarray:
    """dL/dh, a new C-contiguous (batch, T, n) array (all arrays indexed (batch, T, n), any
    strides), from dL/dspikes: ``G``, plus, with readout weights ``c`` (T,), the gradient ``gr``
    (batch, n) of ``R = sum_t c[t] S[:, t]`` (``c[t] gr`` per step, formed inside the adjoint,
    never stored). ``G`` may be None when ``gr`` is given. The surrogate derivative is formed
    inside the adjoint from ``Y``: for the sigmoid surrogate ``Y = sigmoid(X)`` of the
    forward's record ``X`` (computed by torch, whose ``exp`` this must match), for SuperSpike
    ``Y = X``; the operations are those of the torch surrogate, so the values are the same bit
    for bit."""
    readout = gr is not None
    if G is None and not readout:
        raise ValueError("lif_backward needs G, or c and gr")
    n = Y.shape[2]
    arrays = {
        "G": G,
        "Y": Y,
        "S": S,
        "U": U,
        "DH": np.empty(Y.shape, Y.dtype),
        "C": np.ascontiguousarray(c, Y.dtype) if readout else None,
        "GR": np.ascontiguousarray(gr, Y.dtype) if readout else None,
    }
    lanes = _lane_ok("backward", n, Y, S, U, G)
    _run_lif("adjoint", spec, arrays, lanes, table, readout=readout, grad_s=G is not None)
    return arrays["DH"]


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
