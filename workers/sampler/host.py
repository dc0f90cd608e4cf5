"""Host CPU and memory readings through psutil, plus static host facts."""

from __future__ import annotations

import os
import platform
from typing import Any

import psutil

from workers.sampler.sample import HostSample


def cpu_model() -> str:
    """The CPU's marketing name (``grep "model name" /proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _busy_and_total_s(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of one ``psutil.cpu_times()`` tuple, counted as ``top`` does."""
    # guest time is already inside user/nice on Linux, and iowait is idle time: same as psutil and htop.
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    return busy, total


def _percent(before: Any, after: Any) -> float:
    busy0, total0 = _busy_and_total_s(before)
    busy1, total1 = _busy_and_total_s(after)
    d_total = total1 - total0
    if d_total <= 0:
        return 0.0
    return round(min(100.0, max(0.0, (busy1 - busy0) / d_total * 100.0)), 1)


class HostProbe:
    """Samples the host's CPU and memory.

    CPU percentages cover the time since the previous ``sample()`` (or since construction).
    The probe keeps its own previous CPU times rather than relying on ``psutil.cpu_percent``,
    whose state is per thread: priming it here would not help a sampler thread.
    """

    def __init__(self) -> None:
        self._last_total = psutil.cpu_times()
        self._last_per_cpu = psutil.cpu_times(percpu=True)

    def sample(self) -> HostSample:
        """CPU (like ``top``), load (``uptime``), memory and swap (``free -b``) right now."""
        total = psutil.cpu_times()
        per_cpu = psutil.cpu_times(percpu=True)
        cpu_percent = _percent(self._last_total, total)
        per_cpu_percent = tuple(_percent(a, b) for a, b in zip(self._last_per_cpu, per_cpu, strict=False))
        self._last_total, self._last_per_cpu = total, per_cpu

        load_1m, load_5m, load_15m = os.getloadavg() if hasattr(os, "getloadavg") else psutil.getloadavg()
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        return HostSample(
            cpu_percent=cpu_percent,
            per_cpu_percent=per_cpu_percent,
            load_avg_1m=load_1m,
            load_avg_5m=load_5m,
            load_avg_15m=load_15m,
            # "used" as in `free`: total minus available, so page cache does not count as used.
            memory_used_bytes=int(mem.total - mem.available),
            memory_total_bytes=int(mem.total),
            memory_percent=float(mem.percent),
            swap_used_bytes=int(swap.used),
            swap_total_bytes=int(swap.total),
        )
