"""The node list (/nodes/) and the node page (/nodes/<name>/), as the server renders them."""

from __future__ import annotations

import json
from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from dashboard.models import Job, Node
from tests.dashboard.base import BaseTestCase

GIB = 1024**3


def gpu(index: int, name: str = "NVIDIA A100-SXM4-80GB") -> dict:
    return {
        "index": index,
        "name": name,
        "uuid": f"GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd",
        "memory_total_bytes": 80 * GIB,
        "pci_bus_id": f"00000000:0{index}:00.0",
    }


def gpu_node_info(*gpus: dict) -> dict:
    return {
        "hostname": "dgx-07",
        "cpu_model": "AMD EPYC 7742 64-Core Processor",
        "cpu_count": 256,
        "memory_total_bytes": 1024 * GIB,
        "torch_version": "2.13.0",
        "cuda_version": "12.8",
        "driver_version": "570.86.15",
        "gpus": list(gpus),
        "gpu_status": "ok",
    }


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="node-page-config" type="application/json">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


@override_settings(SAMPLE_INTERVAL_S=1.0)
class NodeListTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_it_requires_login(self):
        self.client.logout()
        for url in ["/nodes/", "/nodes/gpu-node-1/"]:
            response = self.client.get(url)
            self.assertEqual(response.status_code, 302, url)
            self.assertTrue(response["Location"].startswith("/login/?next="), url)

    def test_it_lists_gpus_cpu_and_state(self):
        Node.objects.create(
            name="dgx-07", gpu_status="ok", info=gpu_node_info(gpu(0), gpu(1), gpu(2, "NVIDIA H100 PCIe"))
        )
        page = self.client.get("/nodes/").content.decode()
        self.assertIn('href="/nodes/dgx-07/"', page)
        self.assertIn("2 × NVIDIA A100-SXM4-80GB, 1 × NVIDIA H100 PCIe", page)
        self.assertIn("AMD EPYC 7742 64-Core Processor", page)
        self.assertIn("× 256 logical", page)
        # The CPU-only node says why it has no GPU.
        self.assertIn("none (no GPU)", page)

    def test_a_node_is_offline_after_three_missed_ticks(self):
        now = timezone.now()
        Node.objects.filter(name="gpu-node-1").update(last_seen=now - timedelta(seconds=2))
        Node.objects.create(name="quiet-node", last_seen=now - timedelta(seconds=6))
        page = self.client.get("/nodes/").content.decode()
        fresh = page[page.index('data-node="gpu-node-1"') :][:600]
        quiet = page[page.index('data-node="quiet-node"') :][:600]
        self.assertIn(">online<", fresh)
        self.assertIn(">offline<", quiet)

    def test_it_says_when_no_node_has_reported(self):
        Node.objects.all().delete()
        self.assertContains(self.client.get("/nodes/"), "No node has reported yet")


class NodePageTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_an_unknown_node_is_a_404_with_a_message(self):
        response = self.client.get("/nodes/no-such-node/")
        self.assertContains(response, "No node named “no-such-node”", status_code=404)
        self.assertContains(response, 'href="/nodes/gpu-node-1/"', status_code=404)

    def test_it_shows_one_card_per_gpu_and_the_gpu_charts(self):
        Node.objects.create(name="dgx-07", gpu_status="ok", info=gpu_node_info(gpu(0), gpu(1)))
        response = self.client.get("/nodes/dgx-07/")
        page = response.content.decode()
        # Two cards rendered, plus the template the page clones for a GPU that shows up later.
        self.assertEqual(page.count('class="gpu-card"'), 3)
        self.assertIn('data-gpu-index="0"', page)
        self.assertIn('data-gpu-index="1"', page)
        self.assertIn("GPU-00000001-aaaa-bbbb-cccc-dddddddddddd", page)
        self.assertIn("2 × NVIDIA A100-SXM4-80GB", page)
        self.assertIn("570.86.15", page)
        for chart in [
            "gpu-util",
            "gpu-memory",
            "gpu-temp",
            "gpu-power",
            "gpu-clocks",
            "gpu-pcie",
            "host-cpu",
        ]:
            self.assertIn(f'data-chart="{chart}"', page)
        self.assertNotIn("CPU only", page)
        config = page_config(response)
        self.assertEqual(config["node"], "dgx-07")
        self.assertEqual(config["gpuIndexes"], [0, 1])
        self.assertEqual(config["seriesUrl"], "/api/metrics/series")

    def test_a_cpu_only_node_says_why(self):
        Node.objects.create(
            name="cpu-box",
            gpu_status="no GPU: NVML library not found",
            info={"cpu_model": "Intel Xeon", "cpu_count": 2, "gpus": [], "gpu_status": "no GPU"},
        )
        page = self.client.get("/nodes/cpu-box/").content.decode()
        self.assertIn("CPU only: no GPU: NVML library not found", page)
        self.assertNotIn('data-chart="gpu-util"', page)
        for chart in ["host-cpu", "host-memory", "host-disk", "host-network"]:
            self.assertIn(f'data-chart="{chart}"', page)
        self.assertNotIn('data-gpu-index="0"', page)

    def test_it_hands_the_running_jobs_of_this_node_to_the_process_table(self):
        Job.objects.create(
            kind="benchmark",
            model_name="SimpleModel",
            status="running",
            node_name="gpu-node-1",
            worker_hostname="cpu@gpu-node-1",
            worker_pid=4242,
        )
        Job.objects.create(
            kind="benchmark", model_name="SimpleModel", status="succeeded", node_name="gpu-node-1"
        )
        Job.objects.create(kind="benchmark", model_name="SimpleModel", status="running", node_name="other")
        running = Job.objects.get(status="running", node_name="gpu-node-1")
        config = page_config(self.client.get("/nodes/gpu-node-1/"))
        self.assertEqual(config["runningJobs"], [{"id": running.pk, "model": "SimpleModel", "pid": 4242}])
        self.assertEqual(config["jobUrl"], "/jobs/0/")

    def test_any_node_name_gets_a_page_and_is_escaped(self):
        Node.objects.create(name="<b>rack/3</b>", info={"cpu_model": "<script>alert(1)</script>"})
        listing = self.client.get("/nodes/").content.decode()
        self.assertIn('href="/nodes/%3Cb%3Erack/3%3C/b%3E/"', listing)
        self.assertNotIn("<script>alert(1)</script>", listing)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", listing)
        response = self.client.get("/nodes/%3Cb%3Erack/3%3C/b%3E/")
        self.assertContains(response, "&lt;b&gt;rack/3&lt;/b&gt;")
        self.assertEqual(page_config(response)["node"], "<b>rack/3</b>")
        self.assertNotIn("<b>rack", response.content.decode())
