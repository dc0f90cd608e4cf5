"""Host readings through psutil and /proc (CPU, load, memory, swap, disk, network, filesystems, pressure),
plus static host facts."""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import psutil

from workers.sampler.sample import CPU_MODES, PRESSURE_KINDS, HostSample
from workers.sampler.top_processes import TopProcessScanner


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


def _mode_percent(before: Any, after: Any) -> dict[str, float]:
    """% of the CPU time between two ``cpu_times()`` spent in each mode (``top``'s us, ni, sy, id,
    wa, hi, si, st); guest time is inside user and nice, as in the busy percentage."""
    _, total0 = _busy_and_total_s(before)
    _, total1 = _busy_and_total_s(after)
    d_total = total1 - total0
    if d_total <= 0:
        return {}
    return {
        mode: round(min(100.0, max(0.0, (getattr(after, mode) - getattr(before, mode)) / d_total * 100.0)), 1)
        for mode in CPU_MODES
        if hasattr(after, mode)
    }


# node_exporter's default --collector.diskstats.device-exclude: partitions (counted in their
# disk), RAM disks, loop devices and floppies, so the totals count each byte once.
_EXCLUDED_DISK = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
# Meminfo fields HostSample carries in fields of their own, so not again in memory_detail_bytes.
_MEMINFO_IN_FIELDS = frozenset({"MemTotal", "MemAvailable", "SwapTotal", "SwapFree"})
_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# psutil's Linux cpu_times() fields, in /proc/stat's order.
_CpuTimes = namedtuple(
    "_CpuTimes",
    ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"),
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's own size


# The /proc files read every tick stay open: pread() at offset 0 makes the kernel write the file
# anew, and skips an open() and close() (and Python's file object) per file per tick, a third of
# what reading them cost.
_PROC_FDS: dict[str, int] = {}
_PROC_FDS_LOCK = threading.Lock()


def read_proc(path: str, size: int) -> bytes:
    """The contents of ``path`` (at most ``size`` bytes) read now; raises OSError as open() would."""
    fd = _PROC_FDS.get(path)
    if fd is None:
        with _PROC_FDS_LOCK:
            fd = _PROC_FDS.get(path)
            if fd is None:
                fd = _PROC_FDS[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return os.pread(fd, size, 0)


# The probe reads /proc itself where it can: psutil's cpu_times(), cpu_times(percpu=True),
# disk_io_counters() and net_io_counters() read /proc/stat twice, /proc/diskstats and
# /proc/net/dev through general parsers, which together were most of a tick's CPU time.
# /proc/stat's other lines, as node_exporter's stat collector names them (node_<name>): the
# first number of each (the "intr" line's first is the total of all interrupts).
_STAT_COUNTERS = {b"ctxt": "context_switches_total", b"intr": "intr_total", b"processes": "forks_total"}


def _cpu_times() -> tuple[Any, list[Any], dict[str, int]]:
    """The machine's and each CPU's times in seconds (``psutil.cpu_times()`` and
    ``cpu_times(percpu=True)``), and the counters of ``_STAT_COUNTERS`` (empty where there is no
    ``/proc/stat``), from one read of ``/proc/stat``."""
    try:
        data = read_proc("/proc/stat", 1 << 20)
        total, per_cpu, counters = None, [], {}
        for line in data.splitlines():
            if not line.startswith(b"cpu"):
                name, _, rest = line.partition(b" ")
                if name in _STAT_COUNTERS:
                    counters[_STAT_COUNTERS[name]] = int(rest.lstrip().partition(b" ")[0])
                continue
            fields = line.split()
            values = [int(v) / _CLOCK_TICKS for v in fields[1:11]]
            times = _CpuTimes(*values, *[0.0] * (10 - len(values)))
            if fields[0] == b"cpu":
                total = times
            else:
                per_cpu.append(times)
        if total is None or not per_cpu:
            raise ValueError("no cpu lines")
        return total, per_cpu, counters
    except (OSError, ValueError):  # not Linux
        return psutil.cpu_times(), psutil.cpu_times(percpu=True), {}


_MEMINFO_NAMES: dict[bytes, str] = {}


def _meminfo() -> dict[str, int]:
    """Every ``/proc/meminfo`` field counted in kB, in bytes, by node_exporter's name for it
    ("Active(anon)" -> "Active_anon"; node_memory_<name>_bytes); fields without a unit (huge page
    counts) are left out. MemTotal, MemAvailable, SwapTotal and SwapFree are always there.

    One read of ``/proc/meminfo`` where there is one: psutil's ``swap_memory()`` also reads
    ``/proc/vmstat`` for swap-in/out counts this probe does not use, which tripled its cost.
    """
    try:
        data = read_proc("/proc/meminfo", 16384)
        values = {}
        names = _MEMINFO_NAMES
        for line in data.splitlines():
            key, _, rest = line.partition(b":")
            number, _, unit = rest.strip().partition(b" ")
            if unit == b"kB":
                name = names.get(key)
                if name is None:  # the same fifty-odd names every tick: translated once
                    name = names[key] = key.decode().replace("(", "_").replace(")", "")
                values[name] = int(number) * 1024
        if "MemAvailable" not in values:  # a kernel before 3.14
            raise ValueError("no MemAvailable")
        return values
    except (OSError, ValueError):  # not Linux
        mem, swap = psutil.virtual_memory(), psutil.swap_memory()
        values = {"MemTotal": int(mem.total), "MemAvailable": int(mem.available)}
        values |= {"SwapTotal": int(swap.total), "SwapFree": int(swap.free), "MemFree": int(mem.free)}
        for key, attr in (("Buffers", "buffers"), ("Cached", "cached")):
            if hasattr(mem, attr):
                values[key] = int(getattr(mem, attr))
        return values


# node_exporter's default --collector.filesystem.fs-types-exclude and mount-points-exclude: pseudo
# filesystems, container layers and mounts inside /dev, /proc and /sys.
_FS_TYPES_EXCLUDED = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue"
    r"|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$"
)
_MOUNTS_EXCLUDED = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
# Unlike node_exporter, which gives each statfs() a timeout in a goroutine: a statvfs() on a network
# filesystem whose server is gone blocks, and would stall every tick of the sampler.
_NETWORK_FS = re.compile(r"^(nfs4?|cifs|smb3?|smbfs|ceph|glusterfs|lustre|gpfs|beegfs|9p|afs|fuse\..*)$")
MOUNTS_REFRESH_S = 60.0  # listing mounts costs ~0.5 ms; a statvfs() per mount costs microseconds
# The process scan opens /proc/<pid>/stat of every process: ~30 µs of CPU each (mostly the kernel's,
# the same with /proc/<pid>/statm), ~4 ms at 120 processes; every 5 s that was a fifth of the
# sampler's CPU. Every 10 s, as Datadog's process agent collects.
TOP_REFRESH_S = 10.0


def _mounts() -> list[tuple[str, str, str]]:
    """(device, mount point, fstype) of the filesystems node_exporter would report, local ones only."""
    try:
        partitions = psutil.disk_partitions(all=True)
    except (OSError, RuntimeError):
        return []
    kept: dict[str, tuple[str, str, str]] = {}
    for part in partitions:
        if _FS_TYPES_EXCLUDED.match(part.fstype) or _NETWORK_FS.match(part.fstype):
            continue
        if _MOUNTS_EXCLUDED.match(part.mountpoint):
            continue
        kept[part.mountpoint] = (part.device, part.mountpoint, part.fstype)  # the last mount on a path wins
    return list(kept.values())


def _filesystems(mounts: list[tuple[str, str, str]]) -> tuple[dict[str, Any], ...]:
    """Size, free and available bytes of each mount (``df -B1``); "available" is what
    non-root users may still write (free minus the reserved blocks)."""
    out = []
    for device, mountpoint, fstype in mounts:
        try:
            st = os.statvfs(mountpoint)
        except OSError:  # unmounted since it was listed, or not ours to read
            continue
        out.append(
            {
                "device": device,
                "mountpoint": mountpoint,
                "fstype": fstype,
                "size_bytes": st.f_blocks * st.f_frsize,
                "free_bytes": st.f_bfree * st.f_frsize,
                "avail_bytes": st.f_bavail * st.f_frsize,
            }
        )
    return tuple(out)


def _pressure() -> dict[str, float]:
    """Seconds tasks waited on CPU, memory and I/O since boot (``/proc/pressure/*``, Linux 4.20+
    with PSI on): ``pressure_<resource>_waiting_seconds_total`` (some tasks stalled) and
    ``pressure_<resource>_stalled_seconds_total`` (all tasks stalled), as node_exporter names them."""
    out: dict[str, float] = {}
    for resource in ("cpu", "memory", "io"):
        try:
            data = read_proc(f"/proc/pressure/{resource}", 512)
        except OSError:  # no PSI: not Linux, an old kernel, or psi=0
            continue
        for line in data.splitlines():
            kind, _, rest = line.partition(b" ")
            name = {b"some": "waiting", b"full": "stalled"}.get(kind)
            total = rest.rpartition(b"total=")[2]
            if name and total.isdigit():
                out[f"pressure_{resource}_{name}_seconds_total"] = int(total) / 1e6  # kernel counts µs
    return out


# Per disk and per interface, the counters node_exporter's diskstats and netdev collectors export
# that Node Exporter Full (1860) charts (IOps, throughput, I/O time; traffic, packets, errors,
# drops), by the suffix of their node_disk_* / node_network_* names.
DISK_FIELDS = (
    "read_bytes_total",
    "written_bytes_total",
    "reads_completed_total",
    "writes_completed_total",
    "io_time_seconds_total",
)
NIC_FIELDS = (
    "receive_bytes_total",
    "transmit_bytes_total",
    "receive_packets_total",
    "transmit_packets_total",
    "receive_errs_total",
    "transmit_errs_total",
    "receive_drop_total",
    "transmit_drop_total",
)


def _disk_counters() -> dict[str, tuple]:
    """{disk: DISK_FIELDS' values} since boot, as psutil's ``disk_io_counters(perdisk=True)``."""
    try:
        data = read_proc("/proc/diskstats", 1 << 20)
    except OSError:  # not Linux
        per_disk = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        return {
            name: (
                io.read_bytes,
                io.write_bytes,
                io.read_count,
                io.write_count,
                getattr(io, "busy_time", 0) / 1000,
            )
            for name, io in per_disk.items()
        }
    out = {}
    for line in data.splitlines():
        # major minor name reads merged sectors_read ms_reading writes merged sectors_written
        # ms_writing in_flight ms_doing_io ... (the kernel's iostats.rst)
        fields = line.split()
        if len(fields) >= 13:
            out[fields[2].decode(errors="replace")] = (
                int(fields[5]) * _SECTOR_BYTES,
                int(fields[9]) * _SECTOR_BYTES,
                int(fields[3]),
                int(fields[7]),
                int(fields[12]) / 1000,
            )
    return out


def _disks(included: dict[str, bool]) -> tuple[tuple[int, int] | None, dict[str, dict[str, float]]]:
    """(bytes read and written since boot over whole disks, or None; {disk: {DISK_FIELDS: value}}
    of those disks), from ``/proc/diskstats``. Whole disks as node_exporter's default device
    filter keeps them: partitions, RAM disks and loop devices left out."""
    try:
        per_disk = _disk_counters()
    except (OSError, RuntimeError, ValueError):
        return None, {}
    if not per_disk:
        return None, {}
    read = written = 0
    kept = {}
    for name, values in per_disk.items():
        keep = included.get(name)
        if keep is None:
            keep = included[name] = _EXCLUDED_DISK.match(name) is None
        if keep:
            read += values[0]
            written += values[1]
            kept[name] = dict(zip(DISK_FIELDS, values, strict=True))
    return (read, written), kept


def _net_counters() -> dict[str, Any]:
    """{interface: counters named as psutil's ``net_io_counters(pernic=True)`` names them} since
    boot, from one read of ``/proc/net/dev``."""
    try:
        data = read_proc("/proc/net/dev", 1 << 20)
    except OSError:  # not Linux
        return psutil.net_io_counters(pernic=True, nowrap=False) or {}
    out = {}
    for line in data.splitlines()[2:]:  # two header lines
        name, _, rest = line.partition(b":")
        f = rest.split()
        # receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop ...
        if len(f) >= 12:
            out[name.strip().decode(errors="replace")] = _Nic(
                int(f[8]), int(f[0]), int(f[9]), int(f[1]), int(f[2]), int(f[10]), int(f[3]), int(f[11])
            )
    return out


# psutil's snetio fields, in its order.
_Nic = namedtuple(
    "_Nic",
    ("bytes_sent", "bytes_recv", "packets_sent", "packets_recv", "errin", "errout", "dropin", "dropout"),
)
_NIC_ATTRS = (
    "bytes_recv",
    "bytes_sent",
    "packets_recv",
    "packets_sent",
    "errin",
    "errout",
    "dropin",
    "dropout",
)


def _nics() -> tuple[tuple[int, int] | None, dict[str, dict[str, float]]]:
    """(bytes received and sent since boot over every interface but loopback, or None;
    {interface: {NIC_FIELDS: value}} of every interface, loopback too, as node_exporter has them)."""
    try:
        per_nic = _net_counters()
    except (OSError, RuntimeError, ValueError):
        return None, {}
    if not per_nic:
        return None, {}
    rx = sum(io.bytes_recv for name, io in per_nic.items() if name != "lo")
    tx = sum(io.bytes_sent for name, io in per_nic.items() if name != "lo")
    each = {}
    for name, io in per_nic.items():
        values = {key: getattr(io, attr, None) for key, attr in zip(NIC_FIELDS, _NIC_ATTRS, strict=True)}
        each[name] = {key: value for key, value in values.items() if value is not None}
    return (rx, tx), each


def _rate(now: int | None, before: int | None, elapsed_s: float) -> float | None:
    # A counter going down (a device removed, a reboot) gives no rate rather than a negative one.
    if now is None or before is None or elapsed_s <= 0 or now < before:
        return None
    return round((now - before) / elapsed_s, 1)


class HostProbe:
    """Samples the host.

    Besides the charted readings it gathers what node_exporter's most used dashboard (Grafana
    1860) reads, for the Prometheus export: meminfo details, filesystems (mounts listed every
    ``MOUNTS_REFRESH_S``, sizes read every tick), boot time, per-CPU times and pressure stalls.

    CPU percentages cover the time since the previous ``sample()`` (or since construction).
    The probe keeps its own previous CPU times rather than relying on ``psutil.cpu_percent``,
    whose state is per thread: priming it here would not help a sampler thread. Disk and
    network rates cover the time since the previous ``sample()`` and are None on the first.
    The top-processes table is refreshed every ``top_refresh_s`` (a full scan is dear).
    ``clock`` is monotonic seconds; tests move it.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        top_refresh_s: float = TOP_REFRESH_S,
        top_limit: int = 10,
        top: TopProcessScanner | None = None,
    ) -> None:
        self._clock = clock
        self._last_total, self._last_per_cpu, _ = _cpu_times()
        self._last_io: tuple[float, tuple[int, int] | None, tuple[int, int] | None] | None = None
        self._last_pressure: tuple[float, dict[str, float]] | None = None
        self._disk_included: dict[str, bool] = {}
        self._mounts: list[tuple[str, str, str]] = []
        self._mounts_due = float("-inf")
        try:
            self._boot_time_s: float | None = psutil.boot_time()
        except (OSError, RuntimeError):
            self._boot_time_s = None
        self._top = (
            top
            if top is not None
            else TopProcessScanner(limit=top_limit, refresh_s=top_refresh_s, clock=clock)
        )

    @property
    def watched(self) -> bool:
        """Whether someone is looking at the top-processes table (see ``TopProcessScanner``)."""
        return self._top.watched

    @watched.setter
    def watched(self, value: bool) -> None:
        self._top.watched = value

    def sample(self) -> HostSample:
        """CPU (like ``top``), load (``uptime``), memory and swap (``free -b``), disk and network
        bytes/s (``vmstat``/``sar -n DEV``, loopback excluded) right now."""
        total, per_cpu, stat_counters = _cpu_times()
        cpu_percent = _percent(self._last_total, total)
        cpu_mode_percent = _mode_percent(self._last_total, total)
        per_cpu_percent = tuple(_percent(a, b) for a, b in zip(self._last_per_cpu, per_cpu, strict=False))
        self._last_total, self._last_per_cpu = total, per_cpu

        load_1m, load_5m, load_15m = os.getloadavg() if hasattr(os, "getloadavg") else psutil.getloadavg()
        meminfo = _meminfo()
        mem_total, mem_available = meminfo["MemTotal"], meminfo["MemAvailable"]
        swap_total, swap_free = meminfo["SwapTotal"], meminfo["SwapFree"]

        now = self._clock()
        pressure = _pressure()
        pressure_percent = {}
        if self._last_pressure is not None and now > self._last_pressure[0]:
            elapsed_s, before = now - self._last_pressure[0], self._last_pressure[1]
            for kind in PRESSURE_KINDS:
                key = f"pressure_{kind}_seconds_total"
                if key in pressure and key in before and pressure[key] >= before[key]:
                    pressure_percent[kind] = round(
                        min(100.0, (pressure[key] - before[key]) / elapsed_s * 100), 2
                    )
        self._last_pressure = (now, pressure)
        if now >= self._mounts_due:
            self._mounts, self._mounts_due = _mounts(), now + MOUNTS_REFRESH_S
        (disk, per_disk), (net, per_nic) = _disks(self._disk_included), _nics()
        last, self._last_io = self._last_io, (now, disk, net)
        rates: list[float | None] = [None] * 4
        if last is not None:
            elapsed_s = now - last[0]
            for i, (cur, prev) in enumerate(((disk, last[1]), (net, last[2]))):
                for j in range(2):
                    rates[2 * i + j] = _rate(cur[j] if cur else None, prev[j] if prev else None, elapsed_s)
        return HostSample(
            cpu_percent=cpu_percent,
            per_cpu_percent=per_cpu_percent,
            load_avg_1m=load_1m,
            load_avg_5m=load_5m,
            load_avg_15m=load_15m,
            # "used" as in `free`: total minus available, so page cache does not count as used.
            memory_used_bytes=mem_total - mem_available,
            memory_total_bytes=mem_total,
            memory_percent=round((mem_total - mem_available) / mem_total * 100.0, 1) if mem_total else 0.0,
            swap_used_bytes=swap_total - swap_free,
            swap_total_bytes=swap_total,
            memory_available_bytes=mem_available,
            disk_read_bytes_per_s=rates[0],
            disk_write_bytes_per_s=rates[1],
            net_rx_bytes_per_s=rates[2],
            net_tx_bytes_per_s=rates[3],
            boot_time_s=self._boot_time_s,
            memory_detail_bytes={k: v for k, v in meminfo.items() if k not in _MEMINFO_IN_FIELDS},
            filesystems=_filesystems(self._mounts),
            counters={
                "cpu_seconds_total": {m: getattr(total, m) for m in _CPU_MODES if hasattr(total, m)},
                "cpu_seconds_total_per_cpu": [
                    {m: getattr(cpu, m) for m in _CPU_MODES if hasattr(cpu, m)} for cpu in per_cpu
                ],
                **pressure,
                **stat_counters,
                "disk_read_bytes_total": disk[0] if disk else None,
                "disk_written_bytes_total": disk[1] if disk else None,
                "network_receive_bytes_total": net[0] if net else None,
                "network_transmit_bytes_total": net[1] if net else None,
                "disks": per_disk,
                "network_interfaces": per_nic,
            },
            top_processes=self._top.current(),
            cpu_mode_percent=cpu_mode_percent,
            pressure_percent=pressure_percent,
        )
