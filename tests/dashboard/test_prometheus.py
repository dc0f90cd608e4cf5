"""GET /metrics end to end: samples stored in the suite's real Redis, the exposition parsed back."""

from __future__ import annotations

import socket
import time

import redis
from django.conf import settings
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from dashboard.latest import KEY_PREFIX, store_latest
from tests.dashboard.base import BaseTestCase

MiB = 2**20
GiB = 2**30
A100_UUID = "GPU-6f2e1c4a-9b1d-4e7a-8c55-0d3f1a2b3c4d"
A100_MIG_PARENT_UUID = "GPU-11111111-2222-3333-4444-555555555555"


def gpu_node_sample(node: str = "gpu-a", ts: float | None = None) -> dict:
    """A two-GPU node as NodeSample.to_json() gives it; GPU 1 reports no fan and no power (null)."""
    return {
        "node": node,
        "ts": time.time() if ts is None else ts,
        "gpu_status": "ok",
        "warnings": ["GPU 1: persistence mode is off"],
        "host": {
            "cpu_percent": 12.5,
            "per_cpu_percent": [10.0, 15.0, 12.0, 13.0],
            "load_avg_1m": 1.25,
            "load_avg_5m": 0.9,
            "load_avg_15m": 0.5,
            "memory_used_bytes": 8 * GiB,
            "memory_available_bytes": 24 * GiB,
            "memory_total_bytes": 32 * GiB,
            "memory_percent": 25.0,
            "swap_used_bytes": 1 * GiB,
            "swap_total_bytes": 4 * GiB,
            "disk_read_bytes_per_s": 4096.0,
            "disk_write_bytes_per_s": 8192.0,
            "counters": {
                "cpu_seconds_total": {
                    "user": 4000.0,
                    "nice": 8.0,
                    "system": 1200.0,
                    "idle": 90000.0,
                    "iowait": 40.0,
                    "irq": 0.0,
                    "softirq": 12.0,
                    "steal": 0.0,
                    "guest": 0.0,
                    "guest_nice": 0.0,
                },
                "disk_read_bytes_total": 123456789,
                "disk_written_bytes_total": 987654321,
                "network_receive_bytes_total": 5555555,
                "network_transmit_bytes_total": 4444444,
            },
            "top_processes": [{"pid": 4242, "name": "python", "cpu_percent": 99.0, "rss_bytes": 3 * GiB}],
        },
        "gpus": [
            {
                "index": 0,
                "uuid": A100_UUID,
                "name": "NVIDIA A100-PCIE-40GB",
                "pci_bus_id": "00000000:3B:00.0",
                "utilization_gpu_percent": 87,
                "utilization_memory_percent": 41,
                "memory_used_bytes": 20480 * MiB + 123,
                "memory_free_bytes": 20480 * MiB - 123,
                "memory_total_bytes": 40960 * MiB,
                "temperature_c": 64,
                "power_draw_w": 212.5,
                "power_limit_w": 250.0,
                "sm_clock_mhz": 1410,
                "mem_clock_mhz": 1215,
                "pcie_tx_bytes_per_s": 2048 * 1024,
                "pcie_rx_bytes_per_s": 512 * 1024,
                "fan_percent": 30,
                "throttle_reasons": ["sw_power_cap"],
                "ecc_errors_corrected": 3,
                "ecc_errors_uncorrected": 0,
                "is_mig_device": False,
                "parent_index": None,
                "processes": [
                    {
                        "pid": 4242,
                        "user": "alice",
                        "command": "python train.py --epochs 10",
                        "used_memory_bytes": 18 * GiB,
                        "sm_percent": 80,
                        "cpu_percent": 99.0,
                        "rss_bytes": 3 * GiB,
                    },
                    {
                        "pid": 5151,
                        "user": "bob",
                        "command": "python serve.py",
                        "used_memory_bytes": None,  # NVML gave no figure for this one
                        "sm_percent": None,
                        "cpu_percent": 1.0,
                        "rss_bytes": GiB,
                    },
                ],
            },
            {
                "index": 1,
                "uuid": "GPU-aa00bb11-cc22-dd33-ee44-ff5566778899",
                "name": "NVIDIA A100-SXM4-40GB",
                "pci_bus_id": "00000000:86:00.0",
                "utilization_gpu_percent": 0,
                "utilization_memory_percent": 0,
                "memory_used_bytes": 4 * MiB,
                "memory_free_bytes": 40956 * MiB,
                "memory_total_bytes": 40960 * MiB,
                "temperature_c": 31,
                "power_draw_w": None,
                "power_limit_w": None,
                "sm_clock_mhz": 210,
                "mem_clock_mhz": 1215,
                "pcie_tx_bytes_per_s": None,
                "pcie_rx_bytes_per_s": None,
                "fan_percent": None,
                "throttle_reasons": [],
                "ecc_errors_corrected": None,
                "ecc_errors_uncorrected": None,
                "is_mig_device": False,
                "parent_index": None,
                "processes": [],
            },
        ],
    }


def cpu_node_sample(node: str = "cpu-b") -> dict:
    sample = gpu_node_sample(node)
    sample["gpus"] = []
    sample["gpu_status"] = "no GPU: NVML library not found"
    return sample


def mig_node_sample(node: str = "mig-c") -> dict:
    sample = gpu_node_sample(node)
    parent = {**sample["gpus"][0], "uuid": A100_MIG_PARENT_UUID, "processes": []}
    parent.update(utilization_gpu_percent=None, memory_used_bytes=None, memory_free_bytes=None)

    def mig(index: int, instance_id: int | None, used_mib: int) -> dict:
        device = {
            **{key: None for key in parent},
            "index": index,
            "uuid": f"MIG-0000000{index}-aaaa-bbbb-cccc-dddddddddddd",
            "name": "NVIDIA A100-PCIE-40GB MIG 1g.5gb",
            "memory_used_bytes": used_mib * MiB,
            "memory_free_bytes": (4864 - used_mib) * MiB,
            "memory_total_bytes": 4864 * MiB,
            "is_mig_device": True,
            "parent_index": 0,
            "processes": [
                {"pid": 7000 + index, "user": "carol", "command": "python", "used_memory_bytes": 1 * GiB}
            ],
        }
        if instance_id is not None:
            device["gpu_instance_id"] = instance_id
        return device

    # The sampler numbers GPU 0's MIG devices 100, 101, ...; the NVML GPU instance id, where reported,
    # is what dcgm-exporter puts in GPU_I_ID.
    sample["gpus"] = [parent, mig(100, 7, 1024), mig(101, None, 2048)]
    return sample


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


class MetricsTestCase(BaseTestCase):
    def setUp(self):
        self.redis = redis.Redis.from_url(settings.REDIS_URL)
        self.addCleanup(self.redis.close)
        self.clear_latest()
        self.addCleanup(self.clear_latest)

    def clear_latest(self):
        for key in self.redis.scan_iter(match=KEY_PREFIX + "*"):
            self.redis.delete(key)

    def scrape(self, **extra) -> dict:
        """{family name: family} of a successful GET /metrics."""
        response = self.client.get("/metrics", **extra)
        self.assertEqual(response.status_code, 200, response.content[:300])
        self.assertTrue(response["Content-Type"].startswith("text/plain; version="))
        return {f.name: f for f in text_string_to_metric_families(response.content.decode())}

    def series(self, families: dict, name: str, **match) -> list:
        """Samples of family ``name`` whose labels include ``match``."""
        family = families.get(name)
        if family is None:
            return []
        return [s for s in family.samples if all(s.labels.get(k) == v for k, v in match.items())]

    def one(self, families: dict, name: str, **match):
        found = self.series(families, name, **match)
        self.assertEqual(len(found), 1, f"{name}{match}: {found}")
        return found[0]


class GpuMetricsTestCase(MetricsTestCase):
    def setUp(self):
        super().setUp()
        store_latest(gpu_node_sample("gpu-a"))
        self.families = self.scrape()

    def test_it_uses_dcgm_exporter_names_and_labels(self):
        sample = self.one(self.families, "DCGM_FI_DEV_GPU_UTIL", Hostname="gpu-a", gpu="0")
        self.assertEqual(
            sample.labels,
            {
                "gpu": "0",
                "UUID": A100_UUID,
                "pci_bus_id": "00000000:3B:00.0",
                "device": "nvidia0",
                "modelName": "NVIDIA A100-PCIE-40GB",
                "Hostname": "gpu-a",
                "hostname": "gpu-a",
            },
        )
        self.assertEqual(sample.value, 87)
        self.assertEqual(self.families["DCGM_FI_DEV_GPU_UTIL"].type, "gauge")
        expected = {
            "DCGM_FI_DEV_MEM_COPY_UTIL": 41,
            "DCGM_FI_DEV_GPU_TEMP": 64,
            "DCGM_FI_DEV_POWER_USAGE": 212.5,
            "DCGM_FI_DEV_SM_CLOCK": 1410,
            "DCGM_FI_DEV_MEM_CLOCK": 1215,
            "DCGM_FI_DEV_PCIE_TX_THROUGHPUT": 2048,  # KB/s, as NVML and DCGM report it
            "DCGM_FI_DEV_PCIE_RX_THROUGHPUT": 512,
            "DCGM_FI_DEV_FAN_SPEED": 30,
        }
        for name, value in expected.items():
            self.assertEqual(self.one(self.families, name, gpu="0").value, value, name)

    def test_framebuffer_memory_is_in_whole_mib(self):
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_FB_USED", gpu="0").value, 20480)
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_FB_FREE", gpu="0").value, 20479)
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_FB_TOTAL", gpu="1").value, 40960)
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_FB_USED", gpu="1").value, 4)

    def test_a_null_field_emits_no_series_rather_than_zero(self):
        for name in (
            "DCGM_FI_DEV_FAN_SPEED",
            "DCGM_FI_DEV_POWER_USAGE",
            "DCGM_FI_DEV_POWER_MGMT_LIMIT",
            "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
        ):
            self.assertEqual(self.series(self.families, name, gpu="1"), [], name)
            self.assertEqual(len(self.series(self.families, name, gpu="0")), 1, name)
        self.assertEqual(self.series(self.families, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", gpu="1"), [])
        # GPU 1's supported fields are still there
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_GPU_TEMP", gpu="1").value, 31)

    def test_it_exports_per_process_gpu_memory(self):
        sample = self.one(self.families, "perfmon_gpu_process_memory_used_bytes", pid="4242")
        self.assertEqual(
            sample.labels,
            {
                "pid": "4242",
                "command": "python train.py --epochs 10",
                "user": "alice",
                "gpu": "0",
                "UUID": A100_UUID,
                "Hostname": "gpu-a",
                "hostname": "gpu-a",
            },
        )
        self.assertEqual(sample.value, 18 * GiB)
        # a process whose memory NVML did not report is left out, not shown as 0
        self.assertEqual(self.series(self.families, "perfmon_gpu_process_memory_used_bytes", pid="5151"), [])

    def test_ecc_counts_keep_dcgm_names(self):
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", gpu="0").value, 3)
        self.assertEqual(self.one(self.families, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", gpu="0").value, 0)

    def test_it_uses_node_exporter_names_for_the_host(self):
        node = {"instance": "gpu-a", "nodename": "gpu-a"}
        gauges = {
            "node_load1": 1.25,
            "node_load5": 0.9,
            "node_load15": 0.5,
            "node_memory_MemTotal_bytes": 32 * GiB,
            "node_memory_MemAvailable_bytes": 24 * GiB,
            "node_memory_SwapTotal_bytes": 4 * GiB,
            "node_memory_SwapFree_bytes": 3 * GiB,
            "node_uname_info": 1,
        }
        for name, value in gauges.items():
            sample = self.one(self.families, name, **node)
            self.assertEqual((self.families[name].type, sample.labels, sample.value), ("gauge", node, value))

        counters = {
            "node_disk_read_bytes": 123456789,
            "node_disk_written_bytes": 987654321,
            "node_network_receive_bytes": 5555555,
            "node_network_transmit_bytes": 4444444,
        }
        for family_name, value in counters.items():
            self.assertEqual(self.families[family_name].type, "counter", family_name)
            sample = self.one(self.families, family_name, **node, device="all")
            self.assertEqual((sample.name, sample.value), (family_name + "_total", value))

    def test_cpu_seconds_are_the_mean_per_cpu_by_mode(self):
        self.assertEqual(self.families["node_cpu_seconds"].type, "counter")
        samples = self.series(self.families, "node_cpu_seconds", instance="gpu-a")
        by_mode = {s.labels["mode"]: s.value for s in samples}
        # 4 CPUs: the machine's totals divided by 4; guest time is already inside user/nice
        self.assertEqual(by_mode["idle"], 90000.0 / 4)
        self.assertEqual(by_mode["user"], 1000.0)
        self.assertNotIn("guest", by_mode)
        self.assertEqual({s.labels["cpu"] for s in samples}, {"all"})
        self.assertEqual({s.name for s in samples}, {"node_cpu_seconds_total"})

    def test_it_reports_each_node_up_with_its_sample_age(self):
        self.assertEqual(self.one(self.families, "perfmon_node_up", node="gpu-a").value, 1)
        age = self.one(self.families, "perfmon_sample_age_seconds", node="gpu-a").value
        self.assertTrue(0 <= age < 5, age)


class NodeStatesTestCase(MetricsTestCase):
    def test_a_gpu_less_node_has_host_metrics_and_no_dcgm_series(self):
        store_latest(cpu_node_sample("cpu-b"))
        families = self.scrape()
        self.assertEqual(self.one(families, "node_load1", instance="cpu-b").value, 1.25)
        self.assertEqual(self.one(families, "perfmon_node_up", node="cpu-b").value, 1)
        self.assertEqual([name for name in families if name.startswith("DCGM_")], [])
        self.assertNotIn("perfmon_gpu_process_memory_used_bytes", families)

    def test_a_stale_sample_reports_down_and_none_of_its_values(self):
        store_latest(gpu_node_sample("gpu-old", ts=time.time() - 30))
        store_latest(cpu_node_sample("cpu-b"))
        families = self.scrape()
        self.assertEqual(self.one(families, "perfmon_node_up", node="gpu-old").value, 0)
        self.assertGreaterEqual(self.one(families, "perfmon_sample_age_seconds", node="gpu-old").value, 30)
        self.assertEqual(self.series(families, "node_load1", instance="gpu-old"), [])
        self.assertEqual([name for name in families if name.startswith("DCGM_")], [])

    def test_a_registered_node_without_a_sample_is_down(self):
        families = self.scrape()
        self.assertEqual(self.one(families, "perfmon_node_up", node="gpu-node-1").value, 0)
        self.assertEqual(self.series(families, "perfmon_sample_age_seconds", node="gpu-node-1"), [])

    def test_mig_devices_carry_their_parent_gpu_and_instance_labels(self):
        store_latest(mig_node_sample("mig-c"))
        families = self.scrape()
        used = self.series(families, "DCGM_FI_DEV_FB_USED", Hostname="mig-c")
        by_instance = {s.labels.get("GPU_I_ID"): s for s in used}
        self.assertEqual(set(by_instance), {"7", "101"})  # the parent's own FB_USED was null
        seven = by_instance["7"]
        self.assertEqual(seven.value, 1024)
        self.assertEqual(
            seven.labels,
            {
                "gpu": "0",
                "UUID": A100_MIG_PARENT_UUID,
                "pci_bus_id": "00000000:3B:00.0",
                "device": "nvidia0",
                "modelName": "NVIDIA A100-PCIE-40GB",
                "GPU_I_PROFILE": "1g.5gb",
                "GPU_I_ID": "7",
                "Hostname": "mig-c",
                "hostname": "mig-c",
            },
        )
        procs = self.series(families, "perfmon_gpu_process_memory_used_bytes", Hostname="mig-c")
        self.assertEqual(
            {(s.labels["pid"], s.labels["GPU_I_ID"]) for s in procs}, {("7100", "7"), ("7101", "101")}
        )

    def test_a_gpu_listed_twice_gives_one_series_per_label_set(self):
        sample = gpu_node_sample("gpu-a")
        sample["gpus"].append({**sample["gpus"][0], "utilization_gpu_percent": 5})
        store_latest(sample)
        families = self.scrape()
        self.assertEqual([s.value for s in self.series(families, "DCGM_FI_DEV_GPU_UTIL", gpu="0")], [87])

    def test_per_cpu_totals_become_node_exporter_per_cpu_series(self):
        sample = cpu_node_sample("cpu-b")
        sample["host"]["counters"]["cpu_seconds_total_per_cpu"] = [
            {"user": 100.0, "idle": 900.0, "guest": 1.0},
            {"user": 300.0, "idle": 700.0, "guest": 0.0},
        ]
        store_latest(sample)
        families = self.scrape()
        samples = self.series(families, "node_cpu_seconds", instance="cpu-b")
        self.assertEqual(
            {(s.labels["cpu"], s.labels["mode"]): s.value for s in samples},
            {("0", "user"): 100.0, ("0", "idle"): 900.0, ("1", "user"): 300.0, ("1", "idle"): 700.0},
        )

    def test_a_real_sampler_tick_is_exported(self):
        from workers.sampler.loop import Sampler

        sampler = Sampler("this-node")
        self.addCleanup(sampler.close)
        sample = sampler.tick().to_json()
        store_latest(sample)
        families = self.scrape()
        self.assertEqual(self.one(families, "perfmon_node_up", node="this-node").value, 1)
        self.assertGreater(self.one(families, "node_memory_MemTotal_bytes", instance="this-node").value, 0)
        modes = {s.labels["mode"] for s in self.series(families, "node_cpu_seconds", instance="this-node")}
        self.assertTrue({"user", "system", "idle"} <= modes, modes)
        # one FB_USED per GPU that reported its memory; none on a machine without GPUs
        reporting = [g for g in sample["gpus"] if g.get("memory_used_bytes") is not None]
        self.assertEqual(
            len(self.series(families, "DCGM_FI_DEV_FB_USED", Hostname="this-node")), len(reporting)
        )

    def test_redis_down_answers_503(self):
        with override_settings(REDIS_URL=closed_port_url()):
            response = self.client.get("/metrics")
        self.assertEqual(response.status_code, 503)
        self.assertIn("Redis", response.json()["error"])


class PerDeviceCountersTestCase(MetricsTestCase):
    def test_disks_and_interfaces_are_series_of_their_own_as_node_exporter_has_them(self):
        sample = gpu_node_sample("dev-d")
        sample["host"]["counters"]["disks"] = {
            "nvme0n1": {
                "read_bytes_total": 1000,
                "written_bytes_total": 2000,
                "reads_completed_total": 10,
                "writes_completed_total": 20,
                "io_time_seconds_total": 1.5,
            },
            "sda": {"read_bytes_total": 7},
        }
        sample["host"]["counters"]["network_interfaces"] = {
            "eth0": {"receive_bytes_total": 300, "transmit_bytes_total": 400, "receive_drop_total": 3},
            "lo": {"receive_bytes_total": 9, "transmit_bytes_total": 9},
        }
        store_latest(sample)
        families = self.scrape()
        node = {"instance": "dev-d"}
        self.assertEqual(self.one(families, "node_disk_written_bytes", **node, device="nvme0n1").value, 2000)
        self.assertEqual(self.one(families, "node_disk_io_time_seconds", **node, device="nvme0n1").value, 1.5)
        self.assertEqual(self.one(families, "node_disk_read_bytes", **node, device="sda").value, 7)
        self.assertEqual(self.series(families, "node_disk_written_bytes", **node, device="sda"), [])
        self.assertEqual(self.one(families, "node_network_receive_drop", **node, device="eth0").value, 3)
        self.assertEqual(
            {s.labels["device"] for s in self.series(families, "node_network_transmit_bytes", **node)},
            {"eth0", "lo"},
        )
        # No machine total beside them: a sum() over devices would count every byte twice.
        for family in ("node_disk_read_bytes", "node_network_receive_bytes"):
            self.assertEqual(self.series(families, family, **node, device="all"), [], family)


class MetricsAuthTestCase(MetricsTestCase):
    REMOTE = {"REMOTE_ADDR": "10.1.2.3"}

    def setUp(self):
        super().setUp()
        store_latest(cpu_node_sample("cpu-b"))

    def test_loopback_needs_no_token(self):
        self.assertIn("node_load1", self.scrape(REMOTE_ADDR="127.0.0.1"))
        self.assertIn("node_load1", self.scrape(REMOTE_ADDR="::1"))

    def test_a_remote_caller_without_a_token_gets_401(self):
        response = self.client.get("/metrics", **self.REMOTE)
        self.assertEqual(response.status_code, 401)
        self.assertIn("Bearer", response.json()["error"])
        self.assertNotIn(b"node_load1", response.content)

    def test_a_remote_caller_with_a_token_is_served(self):
        self.assertIn("node_load1", self.scrape(**self.REMOTE, **self.bearer()))

    def test_a_remote_caller_with_a_wrong_token_gets_401(self):
        response = self.client.get("/metrics", **self.REMOTE, **self.bearer("pm_not-a-real-token"))
        self.assertEqual(response.status_code, 401)

    def test_a_forwarded_request_from_loopback_is_treated_as_remote(self):
        # a reverse proxy on this machine: every request reaches us from 127.0.0.1
        response = self.client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
        self.assertEqual(response.status_code, 401)
        self.assertIn("node_load1", self.scrape(HTTP_X_FORWARDED_FOR="203.0.113.9", **self.bearer()))
