"""What one sampling tick of a node reports. ``None`` in a field means unsupported or unavailable."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class HostSample:
    """CPU and memory of the host. Percentages are 0..100, load averages are runnable tasks."""

    cpu_percent: float
    per_cpu_percent: tuple[float, ...]
    load_avg_1m: float
    load_avg_5m: float
    load_avg_15m: float
    memory_used_bytes: int
    memory_total_bytes: int
    memory_percent: float
    swap_used_bytes: int
    swap_total_bytes: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_cpu_percent"] = list(self.per_cpu_percent)
        return d


@dataclass(frozen=True)
class GpuSample:
    """One GPU's readings: bytes, degrees Celsius, watts, MHz and percent (0..100)."""

    index: int
    uuid: str | None
    name: str | None
    utilization_gpu_percent: float | int | None
    utilization_memory_percent: float | int | None
    memory_used_bytes: float | int | None
    memory_free_bytes: float | int | None
    memory_total_bytes: float | int | None
    temperature_c: float | int | None
    power_draw_w: float | int | None
    power_limit_w: float | int | None
    sm_clock_mhz: float | int | None
    mem_clock_mhz: float | int | None
    fan_percent: float | int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NodeSample:
    """A node at one instant: ``ts`` in epoch seconds; ``gpu_status`` is "ok" or why there are no GPUs."""

    node: str
    ts: float
    host: HostSample
    gpus: tuple[GpuSample, ...]
    gpu_status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "ts": self.ts,
            "host": self.host.to_json(),
            "gpus": [g.to_json() for g in self.gpus],
            "gpu_status": self.gpu_status,
        }
