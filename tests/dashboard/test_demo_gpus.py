"""`--demo-gpus N`: a node sampling simulated GPUs, through the real sampler daemon, Redis and pages."""

from __future__ import annotations

import json
import os

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.models import Job, Node
from tests.dashboard.base import BaseTestCase
from tests.dashboard.live_client import communicator_for, receive_until, running_sampler, subscribe
from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import SIMULATED_GPU_NAME


@pytest.mark.django_db(transaction=True)
async def test_the_heartbeat_carries_every_simulated_gpu_and_the_node_says_simulated(settings, monkeypatch):
    # The daemon swaps the NVML bindings of its process for good; here that is this test's process.
    monkeypatch.setattr(nvml_module, "pynvml", nvml_module.pynvml)
    settings.NODE_NAME = "demo-node"
    settings.DEMO_GPUS = 2
    user = await sync_to_async(get_user_model().objects.create_user)("bob", password="builder-123")
    client = Client()
    await sync_to_async(client.force_login)(user)
    communicator = communicator_for(client)
    await communicator.connect()
    await subscribe(communicator, "nodes")
    async with running_sampler(interval_s=0.2):
        beats = [await receive_until(communicator, lambda m: m.get("type") == "heartbeat") for _ in range(3)]
    await communicator.disconnect()

    for beat in beats:
        assert beat["node"] == "demo-node"
        assert [gpu[0] for gpu in beat["gpus"]] == [0, 1]
        for _index, util, used, total, temp, power in beat["gpus"]:
            assert 0 <= util <= 100
            assert 0 < used < total == 80 * 1024**3
            assert 20 < temp < 90
            assert 0 < power <= 700
    node = await sync_to_async(Node.objects.get)(name="demo-node")
    assert node.gpu_status == "ok"
    assert node.info["simulated"] is True
    assert [gpu["name"] for gpu in node.info["gpus"]] == [SIMULATED_GPU_NAME] * 2


def simulated_info(count: int = 2) -> dict:
    gpus = [
        {"index": i, "name": SIMULATED_GPU_NAME, "uuid": f"GPU-sim-{i}", "memory_total_bytes": 80 * 1024**3}
        for i in range(count)
    ]
    return {"gpus": gpus, "gpu_status": "ok", "simulated": True, "cpu_count": 4}


class SimulatedNodeTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.sim = Node.objects.create(name="sim-node", gpu_status="ok", info=simulated_info())

    def submit(self, device: str):
        body = {
            "kind": "benchmark",
            "model": "SimpleModel",
            "node": "sim-node",
            "params": {"batch_sizes": [1], "iterations": 5, "device": device},
        }
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post(
                "/api/jobs", data=json.dumps(body), content_type="application/json", **self.bearer()
            )

    def test_a_cuda_job_on_simulated_gpus_is_a_400_naming_it(self):
        response = self.submit("cuda:0")
        self.assertEqual(response.status_code, 400)
        self.assertIn("node sim-node's GPUs are simulated", response.json()["error"])
        self.assertFalse(Job.objects.exists())

    def test_its_cpu_still_takes_jobs(self):
        self.assertEqual(self.submit("cpu").status_code, 201)

    def test_the_node_list_node_page_and_fleet_tiles_say_simulated(self):
        self.client.force_login(self.alice)
        listing = self.client.get("/nodes/").content.decode()
        self.assertIn('class="badge sim"', listing)
        self.assertEqual(listing.count("simulated</span>"), 1, "only the simulated node is badged")
        self.assertIn('id="node-simulated"', self.client.get("/nodes/sim-node/").content.decode())
        self.assertNotIn('id="node-simulated"', self.client.get("/nodes/gpu-node-1/").content.decode())
        home = self.client.get("/").content.decode()
        self.assertIn('id="fleet-overview"', home)
        self.assertEqual(home.count('class="fleet-tile"'), 2)
        self.assertIn('<div class="fleet-node" data-node="gpu-node-1"', home)
        self.assertIn("CPU only", home)


@pytest.mark.parametrize("command", ["up", "agent"])
def test_the_demo_gpus_option_reaches_the_sampler_through_the_environment(command, monkeypatch):
    from perfmon import cli

    monkeypatch.setenv("PERFMON_DEMO_GPUS", "0")  # restored after the test
    monkeypatch.setattr(cli, f"cmd_{command}", lambda args: 0)
    assert cli.main([command, "--demo-gpus", "3"]) == 0
    assert os.environ["PERFMON_DEMO_GPUS"] == "3"


@pytest.mark.parametrize("count", ["17", "-1", "two"])
def test_a_bad_demo_gpu_count_is_refused_by_the_cli(count, capsys):
    from perfmon import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["up", "--demo-gpus", count])
    assert exit_info.value.code == 2
    assert "give 0 to 16 simulated GPUs" in capsys.readouterr().err
