from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from workers.sampler import host
from workers.sampler.host import HostProbe, cpu_model
from workers.sampler.sample import NodeSample


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_memory_matches_psutil() -> None:
    sample = HostProbe().sample()
    assert sample.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < sample.memory_used_bytes <= sample.memory_total_bytes
    assert 0.0 < sample.memory_percent <= 100.0
    assert 0 <= sample.swap_used_bytes <= sample.swap_total_bytes
    assert sample.load_avg_1m >= 0


def test_first_sample_measures_busy_cpu_even_from_another_thread() -> None:
    # A probe made in one thread and sampled in another (as the sampler does) must
    # report the load since construction, not psutil's meaningless first 0.0.
    probe = HostProbe()
    _spin(0.4)
    samples = []
    t = threading.Thread(target=lambda: samples.append(probe.sample()))
    t.start()
    t.join()
    sample = samples[0]
    cpu_count = psutil.cpu_count() or 1
    assert len(sample.per_cpu_percent) == cpu_count
    assert all(0.0 <= p <= 100.0 for p in sample.per_cpu_percent)
    # One spinning core out of cpu_count is 100/cpu_count percent of the machine.
    assert sample.cpu_percent >= 50.0 / cpu_count
    assert max(sample.per_cpu_percent) >= 50.0


def test_to_json_gives_plain_lists() -> None:
    data = HostProbe().sample().to_json()
    assert isinstance(data["per_cpu_percent"], list)
    assert isinstance(data["memory_total_bytes"], int)


def test_cpu_model_is_named() -> None:
    assert cpu_model().strip()


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _loopback_traffic(total_bytes: int) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    chunk = b"x" * 65536
    received = 0

    def drain() -> None:
        nonlocal received
        while received < total_bytes:
            received += len(peer.recv(1 << 20))

    reader = threading.Thread(target=drain)
    reader.start()
    for _ in range(total_bytes // len(chunk)):
        client.sendall(chunk)
    reader.join()
    for s in (client, peer, server):
        s.close()


def test_disk_and_network_rates_start_empty_then_count_without_loopback() -> None:
    clock = FakeClock()
    probe = HostProbe(clock=clock)
    first = probe.sample()
    rates = ["disk_read_bytes_per_s", "disk_write_bytes_per_s", "net_rx_bytes_per_s", "net_tx_bytes_per_s"]
    assert [getattr(first, r) for r in rates] == [None] * 4

    _loopback_traffic(16 * 1024**2)
    clock.now_s += 1.0
    second = probe.sample()
    for r in rates:
        assert isinstance(getattr(second, r), float), r
        assert getattr(second, r) >= 0


def test_loopback_traffic_is_not_counted_as_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # Counters from the probe's /proc/net/dev reader, so other traffic on a shared machine cannot
    # blur the figure.
    counters = {"lo": [0, 0], "eth0": [1000, 2000]}

    def net_counters() -> dict:
        return {name: SimpleNamespace(bytes_recv=rx, bytes_sent=tx) for name, (rx, tx) in counters.items()}

    monkeypatch.setattr(host, "_net_counters", net_counters)
    clock = FakeClock()
    probe = HostProbe(clock=clock)
    probe.sample()
    counters["lo"] = [16 * 1024**2, 16 * 1024**2]  # rx, tx: 16 MiB over loopback
    counters["eth0"] = [1000 + 4096, 2000 + 1024]
    clock.now_s += 2.0
    second = probe.sample()
    assert (second.net_rx_bytes_per_s, second.net_tx_bytes_per_s) == (2048.0, 512.0)


def test_counters_are_cumulative_totals_for_prometheus() -> None:
    probe = HostProbe()
    before = probe.sample().counters
    after = probe.sample().counters
    modes = before["cpu_seconds_total"]
    assert {"user", "system", "idle"} <= set(modes)
    assert set(modes) <= {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
    assert modes["idle"] == pytest.approx(psutil.cpu_times().idle, rel=0.05)
    for key in [
        "disk_read_bytes_total",
        "disk_written_bytes_total",
        "network_receive_bytes_total",
        "network_transmit_bytes_total",
    ]:
        assert isinstance(before[key], int), key
        assert after[key] >= before[key]
    lo = psutil.net_io_counters(pernic=True).get("lo")
    everything = psutil.net_io_counters()
    if lo is not None and lo.bytes_recv > 0:
        assert after["network_receive_bytes_total"] <= everything.bytes_recv - lo.bytes_recv


def test_memory_available_and_json_shape() -> None:
    sample = HostProbe().sample()
    assert sample.memory_available_bytes == pytest.approx(psutil.virtual_memory().available, rel=0.2)
    data = sample.to_json()
    assert set(data["top_processes"]) == {"by_cpu", "by_rss"}
    assert data["counters"]["cpu_seconds_total"]["user"] > 0


def test_it_reads_what_node_exporter_dashboards_need() -> None:
    sample = HostProbe().sample()
    meminfo = psutil.virtual_memory()
    details = sample.memory_detail_bytes
    assert details["MemFree"] == pytest.approx(meminfo.free, rel=0.5)
    if hasattr(meminfo, "cached"):  # Linux
        assert details["Cached"] == pytest.approx(meminfo.cached, rel=0.5)
        assert {"Buffers", "SReclaimable"} <= set(details)
    assert sample.boot_time_s == psutil.boot_time()
    per_cpu = sample.counters["cpu_seconds_total_per_cpu"]
    assert len(per_cpu) == len(psutil.cpu_times(percpu=True))
    assert all(cpu["idle"] >= 0 for cpu in per_cpu)
    if os.path.exists("/proc/pressure/io"):
        assert sample.counters["pressure_io_waiting_seconds_total"] >= 0
    for fs in sample.filesystems:
        assert 0 <= fs["avail_bytes"] <= fs["free_bytes"] <= fs["size_bytes"], fs
        assert not fs["mountpoint"].startswith(("/proc", "/sys", "/dev"))
        assert fs["fstype"] not in ("overlay", "proc", "sysfs", "cgroup", "cgroup2", "nfs", "nfs4")
    root = [fs for fs in sample.filesystems if fs["mountpoint"] == "/"]
    if root:
        usage = psutil.disk_usage("/")
        assert root[0]["size_bytes"] == usage.total


def test_the_live_push_leaves_out_what_only_prometheus_reads() -> None:
    from workers.sampler.sample import for_browsers

    data = {"node": "n", "host": HostProbe().sample().to_json(), "gpus": []}
    pushed = for_browsers(data)
    assert (
        "filesystems" not in pushed["host"] and "cpu_seconds_total_per_cpu" not in pushed["host"]["counters"]
    )
    assert pushed["host"]["cpu_percent"] == data["host"]["cpu_percent"]
    assert "filesystems" in data["host"], "the stored sample keeps them"


def test_cpu_time_by_mode_adds_up_to_the_whole_and_pressure_is_a_share_of_the_interval() -> None:
    clock = FakeClock()
    probe = HostProbe(clock=clock)
    _spin(0.2)
    probe.sample()
    _spin(0.2)
    clock.now_s += 1.0
    sample = probe.sample()
    modes = sample.cpu_mode_percent
    assert {"user", "system", "idle"} <= set(modes)
    assert sum(modes.values()) == pytest.approx(100.0, abs=1.0)
    busy = 100.0 - modes["idle"] - modes.get("iowait", 0.0)
    assert busy == pytest.approx(sample.cpu_percent, abs=1.0)
    if os.path.exists("/proc/pressure/cpu"):
        assert set(sample.pressure_percent) == {
            f"{r}_{k}" for r in ("cpu", "memory", "io") for k in ("waiting", "stalled")
        } - ({"cpu_stalled"} - set(sample.pressure_percent))  # older kernels lack cpu "full"
        assert all(0.0 <= value <= 100.0 for value in sample.pressure_percent.values())
    metrics = NodeSample("n1", 0.0, sample, (), "no GPU").metrics()
    names = {name for name, _, _ in metrics if name.startswith("host.cpu_")}
    assert {"host.cpu_user_percent", "host.cpu_idle_percent"} <= names


def test_a_proc_file_kept_open_reads_fresh_contents_each_time() -> None:
    from workers.sampler.host import read_proc

    first = float(read_proc("/proc/uptime", 256).split()[0])
    time.sleep(0.05)
    second = float(read_proc("/proc/uptime", 256).split()[0])
    assert second >= first + 0.04  # the kernel wrote the file anew, not the first read again
    with pytest.raises(OSError):  # as open() would: callers fall back (no PSI, not Linux)
        read_proc("/proc/pressure/no-such-resource", 512)


def test_whole_disks_and_every_interface_get_counters_of_their_own() -> None:
    if not os.path.exists("/proc/diskstats") or not os.path.exists("/proc/net/dev"):
        pytest.skip("needs Linux's /proc")
    listed = [line.split() for line in Path("/proc/diskstats").read_text().splitlines()]
    interfaces = {line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]}
    counters = HostProbe().sample().counters  # read after the files: its counters are no smaller
    disks, nics = counters["disks"], counters["network_interfaces"]
    excluded = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
    whole = {f[2] for f in listed if not excluded.match(f[2])}
    assert set(disks) == whole  # partitions, RAM disks and loop devices left out, as node_exporter does
    for fields in listed:
        if fields[2] in disks:
            assert disks[fields[2]]["reads_completed_total"] >= int(fields[3])  # counters only grow
            assert disks[fields[2]]["written_bytes_total"] >= int(fields[9]) * 512
    assert set(nics) == interfaces and "lo" in nics
    assert set(nics["lo"]) == set(host.NIC_FIELDS)
    # The machine totals (the charts' disk and network rates) still leave loopback out.
    assert counters["network_receive_bytes_total"] == pytest.approx(
        sum(n["receive_bytes_total"] for name, n in nics.items() if name != "lo"), rel=0.01, abs=1 << 20
    )
