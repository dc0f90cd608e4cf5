"""What one sampling tick of a node reports. ``None`` in a field means unsupported or unavailable.

``None`` travels end to end (JSON ``null``, N/A in the UI): a field a GPU cannot report is never
0 and never an NVML "not available" sentinel such as 0xFFFFFFFF.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Metric fields, by the unit their name ends in. ``NodeSample.metrics()`` emits exactly these.
_HOST_METRIC_FIELDS = (
    "cpu_percent",
    "load_avg_1m",
    "load_avg_5m",
    "load_avg_15m",
    "memory_used_bytes",
    "memory_available_bytes",
    "memory_total_bytes",
    "memory_percent",
    "swap_used_bytes",
    "swap_total_bytes",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
)
# Readings of Node Exporter Full's panels, stored in history as well: /proc/meminfo details, the
# machine's CPU time by mode, and pressure stalls, the latter two as % of the time since the
# previous sample (what the panels draw from rate()). Absent where the host lacks them.
_HOST_MEMORY_DETAIL = {
    "MemFree": "free",
    "Buffers": "buffers",
    "Cached": "cached",
    "SReclaimable": "sreclaimable",
}
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
PRESSURE_KINDS = tuple(
    f"{resource}_{kind}" for resource in ("cpu", "memory", "io") for kind in ("waiting", "stalled")
)
_HOST_DETAIL_METRICS = (
    tuple(f"memory_{name}_bytes" for name in _HOST_MEMORY_DETAIL.values())
    + tuple(f"cpu_{mode}_percent" for mode in CPU_MODES)
    + tuple(f"pressure_{kind}_percent" for kind in PRESSURE_KINDS)
)
_GPU_METRIC_FIELDS = (
    "utilization_gpu_percent",
    "utilization_memory_percent",
    "memory_used_bytes",
    "memory_free_bytes",
    "memory_total_bytes",
    "temperature_c",
    "power_draw_w",
    "power_limit_w",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "pcie_tx_bytes_per_s",
    "pcie_rx_bytes_per_s",
    "fan_percent",
    "ecc_errors_corrected",
    "ecc_errors_uncorrected",
)


def _unit(field_name: str) -> str:
    # Longest suffix first: "_bytes_per_s" must not read as "_s".
    for suffix, unit in (
        ("_bytes_per_s", "bytes/s"),
        ("_bytes", "bytes"),
        ("_percent", "%"),
        ("_c", "°C"),
        ("_w", "W"),
        ("_mhz", "MHz"),
    ):
        if field_name.endswith(suffix):
            return unit
    if field_name.startswith("ecc_errors_"):
        return "count"
    return ""  # load averages: runnable tasks, no unit


METRIC_UNITS: dict[str, str] = {f"host.{f}": _unit(f) for f in _HOST_METRIC_FIELDS + _HOST_DETAIL_METRICS} | {
    f"gpu.{f}": _unit(f) for f in _GPU_METRIC_FIELDS
}
"""Unit of every metric name ``NodeSample.metrics()`` can give: "%", "bytes", "bytes/s", "°C", "W",
"MHz", "count" or "" (load average)."""

Number = float | int


@dataclass(frozen=True)
class ProcessRow:
    """A host process in the top-processes table. ``cpu_percent`` is of one core (may pass 100)."""

    pid: int
    user: str | None
    command: str | None
    cpu_percent: float | None
    rss_bytes: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "command": self.command,
            "cpu_percent": self.cpu_percent,
            "rss_bytes": self.rss_bytes,
        }


@dataclass(frozen=True)
class TopProcesses:
    """The host's busiest processes by CPU and by resident memory, from the latest process scan."""

    by_cpu: tuple[ProcessRow, ...] = ()
    by_rss: tuple[ProcessRow, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"by_cpu": [p.to_json() for p in self.by_cpu], "by_rss": [p.to_json() for p in self.by_rss]}


@dataclass(frozen=True)
class GpuProcess:
    """A process holding a GPU context (``nvidia-smi --query-compute-apps=pid,used_memory``).

    ``pid`` is a host PID: inside a container without ``--pid=host`` it does not match the
    container's own view, and ``user``/``command``/``cpu_percent``/``rss_bytes`` are then None.
    ``sm_percent`` is the process's SM utilization since the previous sample (0 when it ran no
    kernel, None where NVML cannot attribute it, e.g. on MIG). ``cpu_percent`` is of one core
    and None the first time the PID is seen.
    """

    pid: int
    used_memory_bytes: int | None
    sm_percent: Number | None
    user: str | None = None
    command: str | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "command": self.command,
            "used_memory_bytes": self.used_memory_bytes,
            "sm_percent": self.sm_percent,
            "cpu_percent": self.cpu_percent,
            "rss_bytes": self.rss_bytes,
        }


@dataclass(frozen=True)
class HostSample:
    """The host: percentages 0..100 (of the whole machine, or of one core per entry of
    ``per_cpu_percent``), load averages in runnable tasks, bytes, and bytes/s rates over the time
    since the previous sample (``None`` on the first). ``counters`` holds cumulative totals for
    Prometheus: ``cpu_seconds_total`` ({mode: seconds}), ``cpu_seconds_total_per_cpu`` (a list of
    those, one per CPU), ``disk_read_bytes_total``, ``disk_written_bytes_total``,
    ``network_receive_bytes_total`` and ``network_transmit_bytes_total`` (loopback excluded) and,
    where the kernel has PSI, ``pressure_{cpu,memory,io}_{waiting,stalled}_seconds_total``;
    ``disks`` and ``network_interfaces``: {device: {counter: value}} (host.DISK_FIELDS of each whole
    disk, host.NIC_FIELDS of each interface, loopback too), node_exporter's per-device counters.
    Also for Prometheus only: ``boot_time_s`` (epoch seconds), ``memory_detail_bytes``
    (every /proc/meminfo field in kB but MemTotal, MemAvailable, SwapTotal and SwapFree, by
    node_exporter's names: "Active_anon") and ``filesystems``
    ({device, mountpoint, fstype, size_bytes, free_bytes, avail_bytes} per local mount).
    ``cpu_mode_percent`` ({mode: % of the machine's CPU time}) and ``pressure_percent``
    ({"cpu_waiting", ...: % of wall time}) cover the time since the previous sample; both may be
    empty (the first sample, no PSI)."""

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
    memory_available_bytes: int | None = None
    disk_read_bytes_per_s: float | None = None
    disk_write_bytes_per_s: float | None = None
    net_rx_bytes_per_s: float | None = None
    net_tx_bytes_per_s: float | None = None
    counters: Mapping[str, Any] = field(default_factory=dict)
    top_processes: TopProcesses = field(default_factory=TopProcesses)
    boot_time_s: float | None = None
    memory_detail_bytes: Mapping[str, int] = field(default_factory=dict)
    filesystems: tuple[Mapping[str, Any], ...] = ()
    cpu_mode_percent: Mapping[str, float] = field(default_factory=dict)
    pressure_percent: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {f: getattr(self, f) for f in _HOST_FIELDS}
        d["per_cpu_percent"] = list(self.per_cpu_percent)
        d["counters"] = {k: _plain(v) for k, v in self.counters.items()}
        d["top_processes"] = self.top_processes.to_json()
        d["memory_detail_bytes"] = dict(self.memory_detail_bytes)
        d["filesystems"] = [dict(f) for f in self.filesystems]
        d["cpu_mode_percent"] = dict(self.cpu_mode_percent)
        d["pressure_percent"] = dict(self.pressure_percent)
        return d


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# Readings only the Prometheus export uses (it reads the latest sample from Redis). They grow with the
# machine (per-CPU times: 8 numbers a CPU) and browsers draw none of them, so the live push leaves them out.
_PROMETHEUS_ONLY_HOST_KEYS = ("filesystems", "memory_detail_bytes", "boot_time_s")
_PROMETHEUS_ONLY_COUNTERS = ("cpu_seconds_total_per_cpu", "disks", "network_interfaces")


def for_browsers(sample_json: dict[str, Any]) -> dict[str, Any]:
    """``NodeSample.to_json()`` without the readings only the Prometheus export uses (a shallow copy)."""
    host = sample_json.get("host")
    if not isinstance(host, dict):
        return sample_json
    host = {k: v for k, v in host.items() if k not in _PROMETHEUS_ONLY_HOST_KEYS}
    if isinstance(host.get("counters"), dict):
        host["counters"] = {k: v for k, v in host["counters"].items() if k not in _PROMETHEUS_ONLY_COUNTERS}
    return {**sample_json, "host": host}


@dataclass(frozen=True)
class GpuSample:
    """One GPU (or MIG device): bytes, bytes/s, °C, W, MHz, percent (0..100) and counts.

    A MIG device has ``is_mig_device`` set, ``parent_index`` naming its physical GPU and
    ``index`` = 100 * (parent_index + 1) + its position on that GPU (GPU 0's are 100, 101, ...),
    so indices stay stable and never collide with physical ones. Clocks, power, temperature and
    the like belong to the parent and are None on a MIG device.

    ``throttle_reasons`` is the decoded clocks-event (throttle) mask, e.g. ``("sw_power_cap",)``,
    empty when nothing holds the clocks back. ``ecc_errors_*`` are volatile totals (since the
    driver loaded), None when ECC is off or unsupported. ``processes`` is None when NVML cannot
    list them.
    """

    index: int
    uuid: str | None
    name: str | None
    utilization_gpu_percent: Number | None
    utilization_memory_percent: Number | None
    memory_used_bytes: Number | None
    memory_free_bytes: Number | None
    memory_total_bytes: Number | None
    temperature_c: Number | None
    power_draw_w: Number | None
    power_limit_w: Number | None
    sm_clock_mhz: Number | None
    mem_clock_mhz: Number | None
    fan_percent: Number | None
    pci_bus_id: str | None = None
    pcie_tx_bytes_per_s: Number | None = None
    pcie_rx_bytes_per_s: Number | None = None
    throttle_reasons: tuple[str, ...] | None = None
    ecc_errors_corrected: int | None = None
    ecc_errors_uncorrected: int | None = None
    persistence_mode: bool | None = None
    mig_mode: bool | None = None
    is_mig_device: bool = False
    parent_index: int | None = None
    processes: tuple[GpuProcess, ...] | None = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {f: getattr(self, f) for f in _GPU_FIELDS}
        d["throttle_reasons"] = None if self.throttle_reasons is None else list(self.throttle_reasons)
        d["processes"] = None if self.processes is None else [p.to_json() for p in self.processes]
        return d


@dataclass(frozen=True)
class NodeSample:
    """A node at one instant: ``ts`` in epoch seconds; ``gpu_status`` is "ok" or why there are no
    GPUs; ``warnings`` are conditions a user should see (persistence mode off, a GPU lost)."""

    node: str
    ts: float
    host: HostSample
    gpus: tuple[GpuSample, ...]
    gpu_status: str
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "ts": self.ts,
            "host": self.host.to_json(),
            "gpus": [g.to_json() for g in self.gpus],
            "gpu_status": self.gpu_status,
            "warnings": list(self.warnings),
        }

    def metrics(self) -> list[tuple[str, int | None, float]]:
        """Every numeric reading that is not None, as (metric name, GPU index or None, value).

        Names are "host.<field>" and "gpu.<field>", all listed in ``METRIC_UNITS``; the host's
        also include meminfo details, CPU time by mode and pressure stalls. Per-core CPU,
        counters, process tables, strings, flags and lists are left out.
        """
        out: list[tuple[str, int | None, float]] = []
        host = self.host
        for name in _HOST_METRIC_FIELDS:
            value = getattr(host, name)
            if value is not None:
                out.append((f"host.{name}", None, float(value)))
        for key, name in _HOST_MEMORY_DETAIL.items():
            value = host.memory_detail_bytes.get(key)
            if value is not None:
                out.append((f"host.memory_{name}_bytes", None, float(value)))
        for mode, value in host.cpu_mode_percent.items():
            out.append((f"host.cpu_{mode}_percent", None, float(value)))
        for kind, value in host.pressure_percent.items():
            out.append((f"host.pressure_{kind}_percent", None, float(value)))
        for gpu in self.gpus:
            for name in _GPU_METRIC_FIELDS:
                value = getattr(gpu, name)
                if value is not None:
                    out.append((f"gpu.{name}", gpu.index, float(value)))
        return out


_HOST_FIELDS = tuple(HostSample.__dataclass_fields__)
_GPU_FIELDS = tuple(GpuSample.__dataclass_fields__)
