"""Prometheus metrics of every node's latest sample, named so existing dashboards work unchanged.

GPU fields use dcgm-exporter's names, units and labels (its etc/default-counters.csv, plus a few
DCGM fields outside that set which NVML gives us: FB_TOTAL, FAN_SPEED, POWER_MGMT_LIMIT, ECC):

    DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-…",pci_bus_id="00000000:3B:00.0",device="nvidia0",
                        modelName="NVIDIA A100-SXM4-40GB",Hostname="node-a",hostname="node-a"} 1234

* ``Hostname`` is what the widely used Grafana dashboards (NVIDIA's 12239) query; ``hostname`` is what
  dcgm-exporter's newest dashboards use. Both carry the perfmon node name.
* A MIG device is labelled as dcgm-exporter labels it: ``gpu``/``UUID``/``device``/``modelName``/
  ``pci_bus_id`` of its parent GPU plus ``GPU_I_PROFILE`` (e.g. "1g.10gb", from the sample's
  ``mig_profile`` or the tail of the MIG device name, "NVIDIA A100-SXM4-40GB MIG 1g.5gb") and
  ``GPU_I_ID`` (the sample's ``gpu_instance_id`` where the sampler reports it, else perfmon's own
  index of the MIG device, e.g. 100).
* DCGM_FI_DEV_PCIE_{TX,RX}_THROUGHPUT are in KB/s, as NVML reports them. dcgm-exporter declares them
  counters, but the values are rates over NVML's 20 ms window (they go down), so they are exposed as
  gauges; that also keeps the exact name (prometheus-client would add ``_total`` to a counter).
* ECC: the sampler's volatile totals (since the driver loaded) are DCGM_FI_DEV_ECC_SBE_VOL_TOTAL
  (corrected, single-bit) and DCGM_FI_DEV_ECC_DBE_VOL_TOTAL (uncorrected, double-bit), DCGM fields
  outside the default set. dcgm-exporter types them counter; they are gauges here for the same
  reason as PCIe (``_TOTAL`` is not prometheus-client's lower-case ``_total``, so it would rename a
  counter); ``rate()`` and ``increase()`` work on them all the same.
* DCGM_FI_DEV_XID_ERRORS is not available to us and is not exported.
* Per-process GPU memory, which dcgm-exporter cannot give:
  ``perfmon_gpu_process_memory_used_bytes{pid,command,user,gpu,UUID,Hostname,hostname}`` (host PIDs).

Host fields use node_exporter's names and units. Every host series carries ``instance`` and
``nodename`` = the node name, and ``node_uname_info{instance,nodename} 1`` is exported, because
node_exporter dashboards (Node Exporter Full, 1860) list hosts with
``label_values(node_uname_info{job="$job"}, instance)`` and filter on ``instance="$node"``. Prometheus
keeps our ``instance`` only with ``honor_labels: true`` on this scrape job; without it the label
arrives as ``exported_instance`` and ``nodename`` still tells the nodes apart.

* CPU time: with per-CPU totals in the sample (``counters["cpu_seconds_total_per_cpu"]``, a list of
  {mode: seconds}) the series are node_exporter's own, ``cpu="0"``, ``"1"``, …. With only the
  machine's totals, ``node_cpu_seconds_total{cpu="all",mode}`` is the total divided by the CPU count
  (the mean per CPU), so ``avg(rate(node_cpu_seconds_total{mode="idle"}[…]))`` and the ratio
  formulas give the right busy fraction; panels that count CPUs with ``count(... by (cpu))`` see 1.
  ``guest``/``guest_nice`` are left out (node_exporter counts them inside user/nice already).
* Disk and network counters per device, as node_exporter's diskstats and netdev collectors name
  them (``node_disk_{read,written}_bytes_total``, ``node_disk_{reads,writes}_completed_total``,
  ``node_disk_io_time_seconds_total``; ``node_network_{receive,transmit}_{bytes,packets,errs,drop}_total``),
  whole disks only (no partitions, RAM disks or loop devices) and every interface. A sample from an
  agent that predates them carries machine totals instead, exported with ``device="all"``.
* Memory: every /proc/meminfo field counted in kB (``node_memory_<field>_bytes``, named as
  node_exporter names them, "Active(anon)" -> ``Active_anon``; huge page counts are left out).
* ``node_context_switches_total``, ``node_intr_total`` and ``node_forks_total`` from /proc/stat.
* ``node_filesystem_{size,free,avail}_bytes{device,fstype,mountpoint}`` for the mounts node_exporter
  reports by default, less network filesystems (a statvfs on a dead NFS server would stall the
  sampler). ``node_time_seconds`` is the sample's time and ``node_boot_time_seconds`` the boot time,
  so the uptime panel reads right. ``node_pressure_{cpu,memory,io}_{waiting,stalled}_seconds_total``
  where the kernel has PSI.
* Every series Node Exporter Full (1860) queries in its "Quick CPU / Mem / Disk" and "Basic CPU /
  Mem / Net / Disk" rows is here; tests/dashboard/test_prometheus.py lists them.

A field that is missing or None in the sample emits no series (never 0). A node whose latest sample is
older than ``stale_after_s`` reports ``perfmon_node_up 0`` and its age, and none of its values."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MIB = 1024 * 1024
KIB = 1024
# Command lines can be kilobytes long; a label value that size bloats every scrape and the TSDB.
MAX_COMMAND_CHARS = 200
_MIG_PROFILE = re.compile(r"\bMIG\s+(\S+)\s*$")


def _number(value: Any) -> float | int | None:
    """The value if it is a finite number, else None (missing, null, NaN or the wrong type)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _same(value: float) -> float:
    return value


def _to_mib(value: float) -> float:
    # DCGM reports whole MiB.
    return int(value) // MIB


def _to_kib(value: float) -> float:
    return value / KIB


@dataclass(frozen=True)
class _Field:
    metric: str
    key: str
    help: str
    convert: Callable[[float], float] = _same


DCGM_GAUGES: tuple[_Field, ...] = (
    _Field("DCGM_FI_DEV_SM_CLOCK", "sm_clock_mhz", "SM clock frequency (in MHz)."),
    _Field("DCGM_FI_DEV_MEM_CLOCK", "mem_clock_mhz", "Memory clock frequency (in MHz)."),
    _Field("DCGM_FI_DEV_GPU_TEMP", "temperature_c", "GPU temperature (in C)."),
    _Field("DCGM_FI_DEV_POWER_USAGE", "power_draw_w", "Power draw (in W)."),
    _Field("DCGM_FI_DEV_POWER_MGMT_LIMIT", "power_limit_w", "Power management limit (in W)."),
    _Field(
        "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
        "pcie_tx_bytes_per_s",
        "PCIe TX throughput (in KB/s) via NVML.",
        _to_kib,
    ),
    _Field(
        "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
        "pcie_rx_bytes_per_s",
        "PCIe RX throughput (in KB/s) via NVML.",
        _to_kib,
    ),
    _Field("DCGM_FI_DEV_GPU_UTIL", "utilization_gpu_percent", "GPU utilization (in %)."),
    _Field("DCGM_FI_DEV_MEM_COPY_UTIL", "utilization_memory_percent", "Memory utilization (in %)."),
    _Field("DCGM_FI_DEV_FB_FREE", "memory_free_bytes", "Framebuffer memory free (in MiB).", _to_mib),
    _Field("DCGM_FI_DEV_FB_USED", "memory_used_bytes", "Framebuffer memory used (in MiB).", _to_mib),
    _Field("DCGM_FI_DEV_FB_TOTAL", "memory_total_bytes", "Framebuffer memory total (in MiB).", _to_mib),
    _Field("DCGM_FI_DEV_FAN_SPEED", "fan_percent", "Fan speed (in %, 0-100)."),
    _Field(
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "ecc_errors_corrected",
        "Total number of single-bit (corrected) volatile ECC errors.",
    ),
    _Field(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "ecc_errors_uncorrected",
        "Total number of double-bit (uncorrected) volatile ECC errors.",
    ),
)

HOST_GAUGES: tuple[_Field, ...] = (
    _Field("node_load1", "load_avg_1m", "1m load average."),
    _Field("node_load5", "load_avg_5m", "5m load average."),
    _Field("node_load15", "load_avg_15m", "15m load average."),
    _Field("node_memory_MemTotal_bytes", "memory_total_bytes", "Memory information field MemTotal_bytes."),
    _Field(
        "node_memory_MemAvailable_bytes",
        "memory_available_bytes",
        "Memory information field MemAvailable_bytes.",
    ),
    _Field("node_memory_SwapTotal_bytes", "swap_total_bytes", "Memory information field SwapTotal_bytes."),
)

# Keys of host["memory_detail_bytes"]: /proc/meminfo fields by node_exporter's names for them
# ("Active(anon)" -> "Active_anon"), every kB field the kernel has.
_MEMINFO_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Emitted from fields of their own (HOST_GAUGES and the SwapFree below).
_MEMINFO_ELSEWHERE = frozenset({"MemTotal", "MemAvailable", "SwapTotal", "SwapFree"})

# Keys of host["counters"] from /proc/stat; node-wide, as node_exporter's stat collector has them.
STAT_COUNTERS: tuple[_Field, ...] = (
    _Field("node_context_switches_total", "context_switches_total", "Total number of context switches."),
    _Field("node_intr_total", "intr_total", "Total number of interrupts serviced."),
    _Field("node_forks_total", "forks_total", "Total number of forks."),
)

# Keys of host["counters"]; totals over all disks / network interfaces of the node.
HOST_COUNTERS: tuple[_Field, ...] = (
    _Field("node_disk_read_bytes_total", "disk_read_bytes_total", "The total number of bytes read."),
    _Field("node_disk_written_bytes_total", "disk_written_bytes_total", "The total number of bytes written."),
    _Field("node_network_receive_bytes_total", "network_receive_bytes_total", "Network bytes received."),
    _Field("node_network_transmit_bytes_total", "network_transmit_bytes_total", "Network bytes sent."),
)

# Keys of each device's entry in host["counters"]["disks"] / ["network_interfaces"], with
# node_exporter's help texts; the metric is node_disk_<key> / node_network_<key> {device}.
DISK_COUNTERS = {
    "read_bytes_total": "The total number of bytes read successfully.",
    "written_bytes_total": "The total number of bytes written successfully.",
    "reads_completed_total": "The total number of reads completed successfully.",
    "writes_completed_total": "The total number of writes completed successfully.",
    "io_time_seconds_total": "Total seconds spent doing I/Os.",
}
NETWORK_COUNTERS = {
    f"{way}_{what}_total": f"Network device statistic {way}_{what}."
    for what in ("bytes", "packets", "errs", "drop")
    for way in ("receive", "transmit")
}

# Keys of host["counters"] present where the kernel has PSI; node-wide, so no device label.
PRESSURE_COUNTERS: tuple[_Field, ...] = tuple(
    _Field(
        f"node_pressure_{resource}_{kind}_seconds_total",
        f"pressure_{resource}_{kind}_seconds_total",
        f"Total time in seconds that {who} tasks were stalled on {shown}.",
    )
    for resource, shown in (("cpu", "CPU"), ("memory", "memory"), ("io", "I/O"))
    for kind, who in (("waiting", "some"), ("stalled", "all non-idle"))
)

# Keys of each host["filesystems"] entry, by node_exporter metric.
FILESYSTEM_GAUGES: tuple[_Field, ...] = (
    _Field("node_filesystem_size_bytes", "size_bytes", "Filesystem size in bytes."),
    _Field("node_filesystem_free_bytes", "free_bytes", "Filesystem free space in bytes."),
    _Field(
        "node_filesystem_avail_bytes", "avail_bytes", "Filesystem space available to non-root users in bytes."
    ),
)

# psutil reports guest time inside user/nice as well; node_exporter keeps it in a separate metric.
_CPU_MODES_LEFT_OUT = frozenset({"guest", "guest_nice"})


class _Families:
    """Metric families by name, in first-use order. Callers keep label sets unique per family."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, kind: str, name: str, help_text: str, labels: dict[str, str], value: float) -> None:
        family = self._families.get(name)
        if family is None:
            family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = self._families[name] = family_type(name, help_text)
        sample_name = family.name + "_total" if kind == "counter" else family.name
        family.add_sample(sample_name, labels, value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


class LatestSamplesCollector(Collector):
    """Yields the metric families of ``samples`` ({node: NodeSample JSON}) as of ``now`` (epoch s).

    ``known_nodes`` (e.g. registered nodes) with no sample report ``perfmon_node_up 0``."""

    def __init__(
        self,
        samples: Mapping[str, Mapping[str, Any]],
        *,
        now: float,
        stale_after_s: float,
        known_nodes: Iterable[str] = (),
    ) -> None:
        self.samples = samples
        self.now = now
        self.stale_after_s = stale_after_s
        self.known_nodes = frozenset(known_nodes)

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        for node in sorted(self.known_nodes | set(self.samples)):
            sample = self.samples.get(node)
            ts = _number(sample.get("ts")) if sample is not None else None
            age_s = max(0.0, self.now - ts) if ts is not None else None
            up = sample is not None and (age_s is None or age_s <= self.stale_after_s)
            out.add(
                "gauge",
                "perfmon_node_up",
                "1 if the node's latest sample is fresh, else 0 (stale or none).",
                {"node": node},
                1 if up else 0,
            )
            if age_s is not None:
                out.add(
                    "gauge",
                    "perfmon_sample_age_seconds",
                    "Seconds since the node's latest sample was taken.",
                    {"node": node},
                    age_s,
                )
            if up and sample is not None:
                _collect_host(out, node, sample.get("host"), ts)
                _collect_gpus(out, node, sample.get("gpus"))
        yield from out


def _collect_host(out: _Families, node: str, host: Any, ts: float | None) -> None:
    if not isinstance(host, Mapping):
        return
    labels = {"instance": node, "nodename": node}
    out.add("gauge", "node_uname_info", "The node's name (perfmon node).", labels, 1)
    for field in HOST_GAUGES:
        value = _number(host.get(field.key))
        if value is not None:
            out.add("gauge", field.metric, field.help, labels, field.convert(value))
    details = host.get("memory_detail_bytes")
    if isinstance(details, Mapping):
        for key in details:
            value = _number(details.get(key))
            if value is not None and key not in _MEMINFO_ELSEWHERE and _MEMINFO_NAME.match(str(key)):
                name = f"node_memory_{key}_bytes"
                out.add("gauge", name, f"Memory information field {key}_bytes.", labels, value)
    # The time the readings were taken: "uptime" = node_time_seconds - node_boot_time_seconds.
    if ts is not None:
        out.add("gauge", "node_time_seconds", "System time in seconds since epoch (1970).", labels, ts)
    boot_time = _number(host.get("boot_time_s"))
    if boot_time is not None:
        out.add("gauge", "node_boot_time_seconds", "Node boot time, in unixtime.", labels, boot_time)
    _collect_filesystems(out, labels, host.get("filesystems"))
    swap_total, swap_used = _number(host.get("swap_total_bytes")), _number(host.get("swap_used_bytes"))
    if swap_total is not None and swap_used is not None:
        out.add(
            "gauge",
            "node_memory_SwapFree_bytes",
            "Memory information field SwapFree_bytes.",
            labels,
            max(0, swap_total - swap_used),
        )

    counters = host.get("counters")
    if not isinstance(counters, Mapping):
        return
    _collect_cpu_seconds(out, labels, host, counters)
    disks = _collect_devices(out, labels, "node_disk_", DISK_COUNTERS, counters.get("disks"))
    nics = _collect_devices(
        out, labels, "node_network_", NETWORK_COUNTERS, counters.get("network_interfaces")
    )
    for field in HOST_COUNTERS:
        value = _number(counters.get(field.key))
        # Totals only from samples without the per-device counters (agents before them): beside
        # them, a device "all" would be counted twice by every sum().
        per_device = disks if field.metric.startswith("node_disk_") else nics
        if value is not None and not per_device:
            out.add("counter", field.metric, field.help, {**labels, "device": "all"}, value)
    for field in PRESSURE_COUNTERS + STAT_COUNTERS:
        value = _number(counters.get(field.key))
        if value is not None:
            out.add("counter", field.metric, field.help, labels, value)


def _collect_devices(
    out: _Families, labels: dict[str, str], prefix: str, fields: dict[str, str], devices: Any
) -> bool:
    """``<prefix><counter>{device}`` of each device's counters (host["counters"]["disks"] or
    ["network_interfaces"]); returns whether any was emitted."""
    if not isinstance(devices, Mapping):
        return False
    emitted = False
    for device in sorted(devices):
        values = devices[device]
        if not isinstance(values, Mapping) or not isinstance(device, str) or not device:
            continue
        for key, help_text in fields.items():
            value = _number(values.get(key))
            if value is not None:
                out.add("counter", prefix + key, help_text, {**labels, "device": device}, value)
                emitted = True
    return emitted


def _collect_filesystems(out: _Families, labels: dict[str, str], filesystems: Any) -> None:
    if not isinstance(filesystems, list):
        return
    seen: set[tuple[str, str, str]] = set()
    for fs in filesystems:
        if not isinstance(fs, Mapping) or not fs.get("mountpoint"):
            continue
        key = (_text(fs.get("device")), _text(fs.get("fstype")), _text(fs.get("mountpoint")))
        if key in seen:  # one series per label set, or Prometheus rejects the scrape
            continue
        seen.add(key)
        fs_labels = {**labels, "device": key[0], "fstype": key[1], "mountpoint": key[2]}
        for field in FILESYSTEM_GAUGES:
            value = _number(fs.get(field.key))
            if value is not None:
                out.add("gauge", field.metric, field.help, fs_labels, value)


def _collect_cpu_seconds(
    out: _Families, labels: dict[str, str], host: Mapping[str, Any], counters: Mapping[str, Any]
) -> None:
    per_cpu = counters.get("cpu_seconds_total_per_cpu")
    if isinstance(per_cpu, list) and per_cpu and all(isinstance(c, Mapping) for c in per_cpu):
        by_cpu = [(str(i), modes, 1) for i, modes in enumerate(per_cpu)]
    else:
        total, cpu_count = counters.get("cpu_seconds_total"), _cpu_count(host)
        if not isinstance(total, Mapping) or not cpu_count:
            return
        by_cpu = [("all", total, cpu_count)]
    for cpu, modes, divisor in by_cpu:
        for mode, seconds in sorted(modes.items()):
            value = _number(seconds)
            if value is None or mode in _CPU_MODES_LEFT_OUT:
                continue
            out.add(
                "counter",
                "node_cpu_seconds_total",
                'Seconds the CPUs spent in each mode (cpu="all": the mean per CPU).',
                {**labels, "cpu": cpu, "mode": str(mode)},
                value / divisor,
            )


def _cpu_count(host: Mapping[str, Any]) -> int | None:
    count = _number(host.get("cpu_count"))
    if count is not None and count >= 1:
        return int(count)
    per_cpu = host.get("per_cpu_percent")
    if isinstance(per_cpu, list | tuple) and per_cpu:
        return len(per_cpu)
    return None


def _collect_gpus(out: _Families, node: str, gpus: Any) -> None:
    if not isinstance(gpus, list):
        return
    gpus = [g for g in gpus if isinstance(g, Mapping)]
    physical = {g.get("index"): g for g in gpus if not g.get("is_mig_device")}
    seen: set[tuple[tuple[str, str], ...]] = set()
    for gpu in gpus:
        labels = _gpu_labels(gpu, physical, node)
        # Two entries with one label set (a sampler bug, a repeated index) would be two series
        # Prometheus rejects as duplicates: the first one wins.
        key = tuple(labels.items())
        if key in seen:
            continue
        seen.add(key)
        for field in DCGM_GAUGES:
            value = _number(gpu.get(field.key))
            if value is not None:
                out.add("gauge", field.metric, field.help, labels, field.convert(value))
        _collect_processes(out, labels, gpu.get("processes"))


def _gpu_labels(
    gpu: Mapping[str, Any], physical: Mapping[Any, Mapping[str, Any]], node: str
) -> dict[str, str]:
    """dcgm-exporter's label set for a GPU or, for a MIG device, for its parent plus GPU_I_*."""
    mig = bool(gpu.get("is_mig_device"))
    index = gpu.get("parent_index") if mig and gpu.get("parent_index") is not None else gpu.get("index")
    parent = physical.get(index) if mig else None
    board = parent if parent is not None else gpu
    model = board.get("name")
    if mig and parent is None and isinstance(model, str):
        model = _MIG_PROFILE.sub("", model).strip()
    labels = {
        "gpu": _text(index),
        "UUID": _text(board.get("uuid")),
        "pci_bus_id": _text(board.get("pci_bus_id")),
        "device": f"nvidia{_text(index)}",
        "modelName": _text(model),
    }
    if mig:
        profile = gpu.get("mig_profile")
        if profile is None and isinstance(gpu.get("name"), str):
            match = _MIG_PROFILE.search(gpu["name"])
            profile = match.group(1) if match else None
        instance_id = gpu.get("gpu_instance_id")
        labels["GPU_I_PROFILE"] = _text(profile)
        labels["GPU_I_ID"] = _text(instance_id if instance_id is not None else gpu.get("index"))
    labels["Hostname"] = node
    labels["hostname"] = node
    return labels


def _collect_processes(out: _Families, gpu_labels: Mapping[str, str], processes: Any) -> None:
    if not isinstance(processes, list):
        return
    # NVML can list one PID twice on a GPU (compute and graphics contexts): add them up, since two
    # series with one label set would be rejected by Prometheus.
    totals: dict[tuple[tuple[str, str], ...], float] = {}
    for proc in processes:
        if not isinstance(proc, Mapping):
            continue
        used = _number(proc.get("used_memory_bytes"))
        if used is None or proc.get("pid") is None:
            continue
        labels = {
            "pid": _text(proc.get("pid")),
            "command": _text(proc.get("command"))[:MAX_COMMAND_CHARS],
            "user": _text(proc.get("user")),
            "gpu": gpu_labels["gpu"],
            "UUID": gpu_labels["UUID"],
            "Hostname": gpu_labels["Hostname"],
            "hostname": gpu_labels["hostname"],
        }
        if "GPU_I_ID" in gpu_labels:
            labels["GPU_I_ID"] = gpu_labels["GPU_I_ID"]
        key = tuple(labels.items())
        totals[key] = totals.get(key, 0) + used
    for key, used in totals.items():
        out.add(
            "gauge",
            "perfmon_gpu_process_memory_used_bytes",
            "GPU memory used by a process (host PID), in bytes.",
            dict(key),
            used,
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(name: str) -> str:
    cleaned = _LABEL_NAME.sub("_", name)
    return (
        cleaned
        if cleaned and not cleaned[0].isdigit() and not cleaned.startswith("__")
        else f"label_{cleaned}"
    )


class AlertsCollector(Collector):
    """Prometheus' synthetic alert series: ``ALERTS{alertname, alertstate="pending"|"firing",
    severity, <the alert's labels>} 1`` for each pending or firing alert, and
    ``ALERTS_FOR_STATE{...} <epoch seconds it became active>``, so a Grafana panel that shows a
    Prometheus server's alerts shows perfmon's the same way. ``alerts``: (labels, state,
    pending_since epoch seconds) of the open alerts in those two states."""

    def __init__(self, alerts: Iterable[tuple[Mapping[str, Any], str, float]]) -> None:
        self.alerts = list(alerts)

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        seen: set[tuple] = set()
        for labels, alert_state, active_since in self.alerts:
            clean = {_label_name(str(k)): _text(v) for k, v in labels.items() if k != "alertstate"}
            clean["alertstate"] = alert_state
            key = tuple(sorted(clean.items()))
            if key in seen:
                continue
            seen.add(key)
            out.add(
                "gauge",
                "ALERTS",
                "perfmon's pending and firing alerts, as Prometheus exports its own.",
                clean,
                1,
            )
            for_state = {k: v for k, v in clean.items() if k != "alertstate"}
            out.add(
                "gauge",
                "ALERTS_FOR_STATE",
                "When each pending or firing alert became active, in epoch seconds.",
                for_state,
                active_since,
            )
        yield from out
