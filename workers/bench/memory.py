"""Peak memory of one measured point, and recognising out-of-memory errors.

On CUDA the figure is torch's own accounting: ``torch.cuda.max_memory_allocated`` (live tensors,
weights included) and ``max_memory_reserved`` (what the caching allocator holds from the driver),
both reset at the start of the point. On the host no allocator statistic covers torch (tracemalloc
sees only Python objects), so we read the kernel's resident-set high-water mark: ``VmHWM`` in
/proc/self/status, reset to the current RSS by writing "5" to /proc/self/clear_refs (Linux >= 4.0).
The host figure is the peak RSS growth of the whole process over the point: inputs, activations
and allocator caches, not the weights already resident. Each point starts after ``malloc_trim``,
so memory a previous point left in glibc's heap is not silently reused. Where the reset is impossible it falls
back to RSS after minus RSS before, which misses transient peaks; ``host_memory_measure`` says which.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

import psutil
import torch

_CLEAR_REFS = "/proc/self/clear_refs"
_libc: ctypes.CDLL | bool | None = None
_STATUS = "/proc/self/status"

# Substrings of the errors torch and the C allocator raise when an allocation fails.
_OOM_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "could not allocate",
    "failed to allocate",
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure: ``MemoryError``, ``torch.cuda.OutOfMemoryError``, or a
    ``RuntimeError`` whose message says memory could not be allocated (the CPU allocator's form)."""
    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


def _malloc_trim() -> None:
    # glibc keeps freed heap memory resident; without a trim, a small batch after a large one
    # reuses those pages and shows no RSS growth at all. Other C libraries: nothing to do.
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def free_memory(device: torch.device) -> None:
    """Give freed memory back (Python garbage, glibc's heap, CUDA's cache) so the next point starts clean."""
    gc.collect()
    _malloc_trim()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def _status_kib(field: str) -> int | None:
    try:
        with open(_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Bracket one point: ``start()`` before its input is made, ``stop()`` after its last iteration."""

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._process = psutil.Process()
        self._rss_before = 0
        self._hwm_reset = False

    def start(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
            torch.cuda.reset_peak_memory_stats(self._device)
        self._hwm_reset = _reset_peak_rss()
        self._rss_before = self._process.memory_info().rss

    def stop(self) -> dict[str, Any]:
        """``peak_memory_bytes`` (CUDA max allocated on a GPU, host peak RSS growth on the CPU),
        ``peak_reserved_bytes`` (CUDA only, else ``None``), ``host_rss_growth_bytes`` and how each was measured."""
        rss_after = self._process.memory_info().rss
        hwm_kib = _status_kib("VmHWM") if self._hwm_reset else None
        if hwm_kib is not None:
            host_growth = max(0, hwm_kib * 1024 - self._rss_before)
            host_method = "peak RSS growth (VmHWM after clear_refs)"
        else:
            host_growth = max(0, rss_after - self._rss_before)
            host_method = "RSS after minus RSS before (misses transient peaks)"
        out: dict[str, Any] = {
            "host_rss_growth_bytes": host_growth,
            "host_memory_measure": host_method,
        }
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
            out["peak_memory_bytes"] = torch.cuda.max_memory_allocated(self._device)
            out["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(self._device)
            out["memory_measure"] = "torch.cuda.max_memory_allocated"
        else:
            out["peak_memory_bytes"] = host_growth
            out["peak_reserved_bytes"] = None
            out["memory_measure"] = host_method
        return out
