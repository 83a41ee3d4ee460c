"""Process-wide runtime settings the library applies itself (not left to the user).

* denormal flushing: the sigmoid surrogate underflows into float32 denormals far from
  threshold, which slows the weight-gradient GEMM ~10x on x86 (docs/performance.md);
* glibc malloc thresholds: large per-step tensors are otherwise page-faulted afresh every step;
* torch threads, when a config or ``SPIKELOC_THREADS`` asks for a number.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

__all__ = ["configure_runtime"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def _tune_malloc(threshold_bytes: int = 1 << 30) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok1 = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(min(threshold_bytes, 1 << 30)))
        ok2 = libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(threshold_bytes))
        return bool(ok1 and ok2)
    except (OSError, AttributeError):
        return False


def configure_runtime(threads: int | None = None) -> dict:
    """Apply denormal flushing, malloc tuning and the thread count; idempotent."""
    global _done
    info = {}
    if not _done:
        info["flush_denormal"] = bool(torch.set_flush_denormal(True))
        if os.environ.get("SPIKELOC_NO_MALLOC_TUNING") != "1":
            info["malloc_tuned"] = _tune_malloc()
        _done = True
    env_threads = os.environ.get("SPIKELOC_THREADS")
    n = threads or (int(env_threads) if env_threads else None)
    if n:
        torch.set_num_threads(int(n))
    info["threads"] = torch.get_num_threads()
    return info
