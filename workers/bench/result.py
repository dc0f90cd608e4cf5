"""Measurements with their context: raw times are kept, statistics are computed when read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.bench.spec import BenchSpec
from workers.bench.stats import LatencyStats, ci_rel_half_width, iqr, is_unstable, median_ci, summarize


def _ms(values: tuple[float, ...] | list[float]) -> list[float]:
    # 1 ns resolution is all perf_counter_ns has; rounding halves the stored JSON.
    return [round(v, 6) for v in values]


@dataclass(frozen=True)
class RunTimes:
    """One batch size: raw latencies (ms per forward pass) and how the point was run.

    A failed point has no times, ``error`` (one line: "out of memory at batch N", or the
    exception's type and message) and ``error_detail`` (the allocator's words or the traceback).
    ``memory`` holds the keys of ``PeakMemory.stop()``.
    """

    batch_size: int
    times_ms: tuple[float, ...] = ()
    # torch.compile only: the compiling first call (seconds, not in times_ms), the graphs it
    # compiled, and those compiled during warm-up and timing (0 unless a guard failed).
    compile_s: float | None = None
    compiled_graphs: int | None = None
    graphs_compiled_while_timing: int | None = None
    stop_reason: str | None = None
    warmup_iterations: int = 0
    warmup_settled: bool = False
    timed_s: float | None = None
    off_cpu_fraction: float | None = None
    memory: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_detail: str | None = None

    @property
    def stats(self) -> LatencyStats:
        return summarize(self.times_ms)

    @property
    def throughput_per_s(self) -> float:
        """Samples per second over the whole timed loop: batch_size * iterations / total timed seconds.

        A sum over all iterations, not batch_size / p50, so slow outliers lower it as they would in use.
        """
        total_s = sum(self.times_ms) / 1000.0
        return self.batch_size * len(self.times_ms) / total_s if total_s > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {
                "batch_size": self.batch_size,
                "error": self.error,
                "error_detail": self.error_detail,
                "iterations": 0,
                "times_ms": [],
            }
        ci = median_ci(self.times_ms)
        stats = self.stats
        return {
            "batch_size": self.batch_size,
            "latency_ms": stats.to_json(),
            "throughput_per_s": self.throughput_per_s,
            "iterations": len(self.times_ms),
            "peak_memory_bytes": self.memory.get("peak_memory_bytes"),
            "peak_reserved_bytes": self.memory.get("peak_reserved_bytes"),
            "host_rss_growth_bytes": self.memory.get("host_rss_growth_bytes"),
            "memory_measure": self.memory.get("memory_measure"),
            "iqr_ms": iqr(self.times_ms),
            "ci95_low_ms": ci[0] if ci else None,
            "ci95_high_ms": ci[1] if ci else None,
            "ci95_rel_half_width": ci_rel_half_width(stats.p50, *ci) if ci else None,
            # The median is not known to +/-5% (stats.UNSTABLE_CI_REL_HALF_WIDTH): too loose for a verdict.
            "unstable": is_unstable(self.times_ms),
            "stop_reason": self.stop_reason,
            "warmup_iterations": self.warmup_iterations,
            "warmup_settled": self.warmup_settled,
            "timed_s": self.timed_s,
            "off_cpu_fraction": self.off_cpu_fraction,
            "compile_s": self.compile_s,
            "compiled_graphs": self.compiled_graphs,
            "graphs_compiled_while_timing": self.graphs_compiled_while_timing,
            "error": None,
            "times_ms": _ms(self.times_ms),
        }


@dataclass(frozen=True)
class ConcurrencyRun:
    """``concurrency`` client threads sending batch-1 requests for ``wall_s``; ``times_ms`` as clients saw them."""

    concurrency: int
    times_ms: tuple[float, ...] = ()
    wall_s: float = 0.0
    error: str | None = None
    error_detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Statistics only: raw times of every request under load would dwarf the rest of the result."""
        if self.error is not None or not self.times_ms:
            return {
                "concurrency": self.concurrency,
                "batch_size": 1,
                "requests": 0,
                "error": self.error or "no request completed",
                "error_detail": self.error_detail,
            }
        return {
            "concurrency": self.concurrency,
            "batch_size": 1,
            "requests": len(self.times_ms),
            "duration_s": self.wall_s,
            "requests_per_s": len(self.times_ms) / self.wall_s,
            "latency_ms": summarize(self.times_ms).to_json(),
            "iqr_ms": iqr(self.times_ms),
            "unstable": is_unstable(self.times_ms),
            "error": None,
        }


@dataclass(frozen=True)
class MultiDeviceRun:
    """One replica per device at ``batch_size``, all at once for ``wall_s``, against the first device alone.

    ``per_device_ms[i]`` are device i's per-iteration latencies (CUDA events) in the joint run.
    """

    batch_size: int
    devices: tuple[str, ...]
    single_times_ms: tuple[float, ...] = ()
    single_wall_s: float = 0.0
    per_device_ms: tuple[tuple[float, ...], ...] = ()
    wall_s: float = 0.0
    error: str | None = None
    error_detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {
                "batch_size": self.batch_size,
                "devices": list(self.devices),
                "error": self.error,
                "error_detail": self.error_detail,
            }
        single = self.batch_size * len(self.single_times_ms) / self.single_wall_s
        total = self.batch_size * sum(len(t) for t in self.per_device_ms) / self.wall_s
        return {
            "batch_size": self.batch_size,
            "devices": list(self.devices),
            "duration_s": self.wall_s,
            "single_device_throughput_per_s": single,
            "total_throughput_per_s": total,
            # 1.0 is perfect scaling: n devices deliver n times one device's throughput.
            "scaling_efficiency": total / (len(self.devices) * single) if single > 0 else None,
            "per_device": [
                {
                    "device": device,
                    "iterations": len(times),
                    "throughput_per_s": self.batch_size * len(times) / self.wall_s,
                    "latency_ms": summarize(times).to_json() if times else None,
                }
                for device, times in zip(self.devices, self.per_device_ms, strict=True)
            ],
            "error": None,
        }


@dataclass(frozen=True)
class BenchResult:
    """A measurement with its context: the spec, the environment and the raw times.

    ``cancelled``: the run was stopped before every point of the spec was measured."""

    spec: BenchSpec
    env: dict[str, Any]
    runs: tuple[RunTimes, ...]
    concurrency_runs: tuple[ConcurrencyRun, ...] = ()
    multi_device_runs: tuple[MultiDeviceRun, ...] = ()
    cancelled: bool = False

    @property
    def failed_points(self) -> int:
        return (
            sum(r.error is not None for r in self.runs)
            + sum(r.error is not None or not r.times_ms for r in self.concurrency_runs)
            + sum(r.error is not None for r in self.multi_device_runs)
        )

    @property
    def ok_points(self) -> int:
        """Points that produced a measurement (batch sizes and concurrency levels)."""
        return sum(r.error is None for r in self.runs) + sum(
            r.error is None and bool(r.times_ms) for r in self.concurrency_runs
        )

    @property
    def partial(self) -> bool:
        """Some of what the spec asked for is missing: a point failed, or the run was cancelled."""
        return self.cancelled or self.failed_points > 0

    @property
    def compile_s(self) -> float | None:
        """torch.compile's compile time over all batch sizes (seconds, outside every latency); None
        for a runtime that does not compile."""
        times = [r.compile_s for r in self.runs if r.compile_s is not None]
        return sum(times) if times else None

    def to_json(self) -> dict[str, Any]:
        return {
            "partial": self.partial,
            "compile_s": self.compile_s,
            "cancelled": self.cancelled,
            "failed_points": self.failed_points,
            "ok_points": self.ok_points,
            "runs": [r.to_json() for r in self.runs],
            "concurrency_runs": [r.to_json() for r in self.concurrency_runs],
            "multi_device_runs": [r.to_json() for r in self.multi_device_runs],
            "env": self.env,
            "spec": self.spec.to_json(),
        }
