"""GET /metrics serves every series Grafana's "Node Exporter Full" (grafana.com dashboard 1860) reads in
its first two rows, with node_exporter's names, units and labels, so the dashboard works unchanged."""

from __future__ import annotations

import os
import time

import psutil
from prometheus_client.parser import text_string_to_metric_families

from dashboard.latest import store_latest
from tests.dashboard.test_prometheus import GiB, MetricsTestCase, cpu_node_sample

# Panel -> the series it queries and the labels its queries select or group by, beyond the
# instance="$node" every query filters on (job is Prometheus' own). From the dashboard's rows
# "Quick CPU / Mem / Disk" and "Basic CPU / Mem / Net / Disk", and its $node variable.
NODE_EXPORTER_FULL_FIRST_ROWS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "$node variable": [("node_uname_info", ("nodename",))],
    "Pressure": [
        ("node_pressure_cpu_waiting_seconds_total", ()),
        ("node_pressure_memory_waiting_seconds_total", ()),
        ("node_pressure_io_waiting_seconds_total", ()),
    ],
    "CPU Busy": [("node_cpu_seconds_total", ("mode",))],
    "Sys Load": [("node_load1", ()), ("node_cpu_seconds_total", ("cpu",))],
    "RAM Used": [
        ("node_memory_MemTotal_bytes", ()),
        ("node_memory_MemFree_bytes", ()),
        ("node_memory_MemAvailable_bytes", ()),
    ],
    "SWAP Used": [("node_memory_SwapTotal_bytes", ()), ("node_memory_SwapFree_bytes", ())],
    "Root FS Used": [
        ("node_filesystem_avail_bytes", ("mountpoint", "fstype")),
        ("node_filesystem_size_bytes", ("mountpoint", "fstype")),
    ],
    "CPU Cores": [("node_cpu_seconds_total", ("cpu",))],
    "Uptime": [("node_time_seconds", ()), ("node_boot_time_seconds", ())],
    "RootFS Total": [("node_filesystem_size_bytes", ("mountpoint", "fstype"))],
    "RAM Total": [("node_memory_MemTotal_bytes", ())],
    "SWAP Total": [("node_memory_SwapTotal_bytes", ())],
    "CPU Basic": [("node_cpu_seconds_total", ("cpu", "mode"))],
    "Memory Basic": [
        ("node_memory_MemTotal_bytes", ()),
        ("node_memory_MemFree_bytes", ()),
        ("node_memory_Cached_bytes", ()),
        ("node_memory_Buffers_bytes", ()),
        ("node_memory_SReclaimable_bytes", ()),
        ("node_memory_SwapTotal_bytes", ()),
        ("node_memory_SwapFree_bytes", ()),
    ],
    "Network Traffic Basic": [
        ("node_network_receive_bytes_total", ("device",)),
        ("node_network_transmit_bytes_total", ("device",)),
    ],
    "Disk Space Used Basic": [
        ("node_filesystem_avail_bytes", ("device", "mountpoint")),
        ("node_filesystem_size_bytes", ("device", "mountpoint")),
    ],
}
BOOT_TIME_S = 1_700_000_000.0


def full_host_sample(node: str = "cpu-b") -> dict:
    """A node as a current agent reports it: per-CPU times, meminfo details, filesystems, PSI."""
    sample = cpu_node_sample(node)
    host = sample["host"]
    host["boot_time_s"] = BOOT_TIME_S
    host["memory_detail_bytes"] = {
        "MemFree": 6 * GiB,
        "Buffers": 1 * GiB,
        "Cached": 12 * GiB,
        "SReclaimable": GiB,
    }
    host["filesystems"] = [
        {
            "device": "/dev/nvme0n1p2",
            "mountpoint": "/",
            "fstype": "ext4",
            "size_bytes": 100 * GiB,
            "free_bytes": 40 * GiB,
            "avail_bytes": 35 * GiB,
        },
        {
            "device": "tmpfs",
            "mountpoint": "/run",
            "fstype": "tmpfs",
            "size_bytes": 2 * GiB,
            "free_bytes": 2 * GiB,
            "avail_bytes": 2 * GiB,
        },
    ]
    modes = {
        "user": 10.0,
        "nice": 0.0,
        "system": 5.0,
        "idle": 100.0,
        "iowait": 1.0,
        "irq": 0.5,
        "softirq": 0.5,
        "steal": 0.0,
    }
    host["counters"]["cpu_seconds_total_per_cpu"] = [dict(modes) for _ in range(4)]
    for resource in ("cpu", "memory", "io"):
        host["counters"][f"pressure_{resource}_waiting_seconds_total"] = 12.5
        host["counters"][f"pressure_{resource}_stalled_seconds_total"] = 2.5
    return sample


class NodeExporterFullTestCase(MetricsTestCase):
    def scrape_samples(self) -> dict[str, list]:
        """{sample name (with _total where node_exporter has it): samples} of GET /metrics."""
        response = self.client.get("/metrics")
        self.assertEqual(response.status_code, 200)
        out: dict[str, list] = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                out.setdefault(sample.name, []).append(sample)
        return out

    def assert_first_rows_served(self, node: str, samples: dict[str, list]) -> None:
        for panel, queries in NODE_EXPORTER_FULL_FIRST_ROWS.items():
            for metric, labels in queries:
                mine = [s for s in samples.get(metric, []) if s.labels.get("instance") == node]
                self.assertTrue(mine, f"{panel}: no {metric}{{instance={node!r}}}")
                for s in mine:
                    missing = [label for label in labels if not s.labels.get(label)]
                    self.assertEqual(missing, [], f"{panel}: {metric} {s.labels}")

    def test_every_series_of_the_first_two_rows_is_served_with_its_labels(self):
        store_latest(full_host_sample("cpu-b"))
        samples = self.scrape_samples()
        self.assert_first_rows_served("cpu-b", samples)

        def value(name, **labels):
            found = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
            self.assertEqual(len(found), 1, (name, labels, found))
            return found[0].value

        # What the panels compute, with node_exporter's units (bytes, seconds).
        self.assertEqual(len({s.labels["cpu"] for s in samples["node_cpu_seconds_total"]}), 4)  # CPU Cores
        root = {"instance": "cpu-b", "mountpoint": "/", "fstype": "ext4", "device": "/dev/nvme0n1p2"}
        self.assertEqual(value("node_filesystem_size_bytes", **root), 100 * GiB)  # RootFS Total
        self.assertEqual(value("node_filesystem_avail_bytes", **root), 35 * GiB)
        self.assertEqual(value("node_filesystem_free_bytes", **root), 40 * GiB)
        uptime_s = value("node_time_seconds", instance="cpu-b") - value(
            "node_boot_time_seconds", instance="cpu-b"
        )
        self.assertAlmostEqual(uptime_s, time.time() - BOOT_TIME_S, delta=120)
        cache_and_buffers = sum(
            value(f"node_memory_{k}_bytes", instance="cpu-b") for k in ("Cached", "Buffers", "SReclaimable")
        )
        self.assertEqual(cache_and_buffers, 14 * GiB)
        self.assertEqual(value("node_pressure_io_waiting_seconds_total", instance="cpu-b"), 12.5)
        self.assertEqual(value("node_pressure_memory_stalled_seconds_total", instance="cpu-b"), 2.5)

    def test_a_real_sampler_tick_serves_the_first_two_rows(self):
        from workers.sampler.loop import Sampler

        sampler = Sampler("this-node")
        self.addCleanup(sampler.close)
        store_latest(sampler.tick().to_json())
        samples = self.scrape_samples()
        rows = dict(NODE_EXPORTER_FULL_FIRST_ROWS)
        if not os.path.exists(
            "/proc/pressure/cpu"
        ):  # PSI off here: no pressure series, as with node_exporter
            del rows["Pressure"]
            self.assertNotIn("node_pressure_cpu_waiting_seconds_total", samples)
        if not [p for p in psutil.disk_partitions(all=False) if p.fstype != "overlay"]:
            # Only container layers and pseudo filesystems here (node_exporter skips them too).
            for panel in ("Root FS Used", "RootFS Total", "Disk Space Used Basic"):
                del rows[panel]
        for panel, queries in rows.items():
            for metric, _labels in queries:
                mine = [s for s in samples.get(metric, []) if s.labels.get("instance") == "this-node"]
                self.assertTrue(mine, (panel, metric))
        cpus = {
            s.labels["cpu"] for s in samples["node_cpu_seconds_total"] if s.labels["instance"] == "this-node"
        }
        self.assertEqual(len(cpus), os.cpu_count())  # "CPU Cores" and "Sys Load" count these

    def test_a_real_sampler_tick_serves_every_meminfo_field_and_the_stat_counters(self):
        from workers.sampler.loop import Sampler

        sampler = Sampler("this-node")
        self.addCleanup(sampler.close)
        store_latest(sampler.tick().to_json())
        samples = self.scrape_samples()
        with open("/proc/meminfo") as f:
            in_kb = [line.split(":")[0] for line in f if line.rstrip().endswith(" kB")]
        for field in in_kb:
            name = f"node_memory_{field.replace('(', '_').replace(')', '')}_bytes"
            mine = [s for s in samples.get(name, []) if s.labels.get("instance") == "this-node"]
            self.assertEqual(len(mine), 1, name)  # once, even the fields with a field of their own
        for name in ("node_context_switches_total", "node_intr_total", "node_forks_total"):
            mine = [s for s in samples.get(name, []) if s.labels.get("instance") == "this-node"]
            self.assertEqual(len(mine), 1, name)
            self.assertGreater(mine[0].value, 0)
