"""Run compiled kernels on torch's own OpenMP threads (imported only when numba is).

On a CPU, torch's intra-op threads keep spinning for a while after each parallel torch
operation, waiting for the next one. Threads of a second pool (numba's, or Python's) then
compete with them for the same cores: a two-thread numba kernel measured no faster than one
between torch operations on the project's 2-core machine. This module hands the work to the
spinning threads themselves: it calls ``GOMP_parallel`` of the OpenMP runtime that torch loaded,
with a numba ``cfunc`` as the parallel region. The work is cut into parts that do not share
output (batch rows, or table rows), claimed by the threads through an atomic counter, so the
results do not depend on which thread ran which part, nor on how many threads there were.

Where torch does not run on a GNU-compatible OpenMP runtime (another parallel backend, another
platform), :func:`omp_parallel` is None and every kernel runs on the calling thread. Set
``SPIKELOC_KERNEL_THREADS`` to cap the threads (``1``: never use the pool).
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

from numba import types
from numba.extending import intrinsic

__all__ = ["as_pointer", "fetch_add", "omp_parallel", "kernel_threads"]


@intrinsic
def as_pointer(typingctx, address, dtype):
    """``address`` (an integer) as a pointer to ``dtype`` values (a numba type such as
    ``numba.float32``), for ``numba.carray``."""
    if not isinstance(address, types.Integer) or not isinstance(dtype, types.NumberClass):
        return None
    ptr = types.CPointer(dtype.instance_type)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address, dtype), codegen


@intrinsic
def fetch_add(typingctx, ptr, value):
    """Atomically add ``value`` to ``*ptr`` (int64) and return the old value."""
    if not (isinstance(ptr, types.CPointer) and ptr.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        return builder.atomic_rmw("add", args[0], args[1], "monotonic")

    return types.int64(ptr, types.int64), codegen


def _torch_openmp_library() -> str | None:
    """Path of the OpenMP runtime loaded by torch (a ``libgomp``, or Intel's ``libiomp5``,
    which exports the same entry points), or None when torch does not run on OpenMP or the
    runtime cannot be identified as torch's."""
    import torch

    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    torch_dir = os.path.dirname(os.path.realpath(torch.__file__))
    roots = (torch_dir, os.path.join(os.path.dirname(torch_dir), "torch.libs"))
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split(None, 5)[-1].strip() for line in fh if "/lib" in line}
    except OSError:
        return None
    for path in sorted(paths):
        name = os.path.basename(path)
        if (name.startswith("libgomp") or name.startswith("libiomp5")) and ".so" in name:
            if any(os.path.realpath(path).startswith(root + os.sep) for root in roots):
                return path
    return None


@cache
def omp_parallel():
    """``GOMP_parallel(fn, data, n_threads, flags)`` of torch's OpenMP runtime, or None."""
    path = _torch_openmp_library()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # the loaded library again (same path): torch's thread pool
        fn = lib.GOMP_parallel
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    fn.restype = None
    return fn


def kernel_threads() -> int:
    """Threads for a parallel kernel: torch's intra-op thread count, capped by
    ``SPIKELOC_KERNEL_THREADS``; 1 when torch's OpenMP runtime is not available."""
    import torch

    n = torch.get_num_threads()
    cap = os.environ.get("SPIKELOC_KERNEL_THREADS")
    if cap:
        try:
            value = int(cap)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"SPIKELOC_KERNEL_THREADS must be a positive integer, got {cap!r}")
        n = min(n, value)
    if n <= 1 or omp_parallel() is None:
        return 1
    return n
