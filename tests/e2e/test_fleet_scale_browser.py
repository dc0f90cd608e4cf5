"""A simulated fleet of 10 nodes x 8 GPUs (`perfmon agent --demo-gpus 8 --no-worker`, 1 Hz each)
into one `perfmon up`: the fleet overview shows 80 live tiles that move, and the node list, node
pages, /api/nodes and /metrics hold the whole fleet."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_USER, logged_in_page, start_stack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NODES = 10
GPUS = 8
SIM = [f"sim-{n}" for n in range(1, NODES + 1)]

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture(scope="module")
def fleet_stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("fleet"))
    fleet = stack.start_fleet(nodes=NODES, gpus=GPUS)
    stack.token = stack.cli("token", ADMIN_USER).stdout.strip()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert not fleet.exited(), fleet.exited()
            status, nodes = stack.get("/api/nodes", stack.token)
            online = {n["name"] for n in nodes if n["online"]} if status == 200 else set()
            if online >= set(SIM):
                break
            time.sleep(1)
        else:
            raise AssertionError(f"the simulated nodes did not all come online: {sorted(online)}")
        yield stack
    finally:
        codes = fleet.stop()
        stack.stop()
    assert set(codes.values()) == {0}, codes


def test_the_fleet_overview_shows_80_gpu_tiles_that_update(fleet_stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    with logged_in_page(fleet_stack, browser) as page:
        tiles = page.locator("#fleet-overview .fleet-node[data-node^='sim-'] .fleet-tile")
        assert tiles.count() == NODES * GPUS
        # Every tile's figures (utilization, memory, temperature, power) change while we watch.
        read_all = """() => [...document.querySelectorAll("#fleet-overview .fleet-node[data-node^='sim-']")]
            .flatMap((node) => [...node.querySelectorAll('.fleet-tile')].map((tile) =>
                [node.dataset.node + '/' + tile.dataset.gpuIndex,
                 tile.querySelector('.fleet-figures').textContent.replace(/\\s+/g, ' ').trim(),
                 Number(tile.dataset.updates || 0)]))"""
        seen: dict[str, set[str]] = {}
        updates: dict[str, int] = {}
        latest: dict[str, str] = {}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            for key, figures, count in page.evaluate(read_all):
                seen.setdefault(key, set()).add(figures)
                updates[key] = count
                latest[key] = figures
            if len(seen) == NODES * GPUS and all(len(v) >= 3 for v in seen.values()):
                break
            page.wait_for_timeout(1000)
        unchanged = sorted(key for key, values in seen.items() if len(values) < 3)
        assert len(seen) == NODES * GPUS and not unchanged, unchanged
        assert min(updates.values()) >= 2
        sample = latest["sim-10/7"]
        assert re.search(r"\d+\.\d %", sample) and re.search(r"GiB / 80(\.0)? GiB", sample), sample
        online = page.locator("#fleet-overview .fleet-node[data-node^='sim-'] [data-role=node-state]")
        assert online.all_text_contents() == ["online"] * NODES
        page.screenshot(path=str(ARTIFACTS / "fleet-80-gpus.png"), full_page=True)
        assert page.script_errors == []


def test_the_node_list_and_a_node_page_hold_the_fleet(fleet_stack, browser):
    with logged_in_page(fleet_stack, browser) as page:
        page.goto(fleet_stack.url + "/nodes/")
        for name in SIM:
            row = page.locator(f"#node-list tbody tr[data-node='{name}']")
            assert f"{GPUS} × Simulated H100 80GB" in row.text_content()
            assert row.locator("[data-role=node-state]").text_content() == "online"
        page.goto(f"{fleet_stack.url}/nodes/sim-7/")
        assert page.locator(".gpu-card[data-gpu-index]").count() >= GPUS
        page.wait_for_function(
            "Number(document.querySelector('[data-gpu-index=\"7\"] canvas.spark').dataset.points || 0) >= 3"
        )
        assert page.script_errors == []


def test_metrics_holds_every_gpu_of_the_fleet(fleet_stack):
    with urllib.request.urlopen(fleet_stack.url + "/metrics", timeout=60) as answer:
        text = answer.read().decode()
    gpus = set()
    for line in text.splitlines():
        if line.startswith("DCGM_FI_DEV_GPU_UTIL{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels["Hostname"].startswith("sim-"):
                gpus.add((labels["Hostname"], labels["gpu"]))
    assert gpus == {(name, str(index)) for name in SIM for index in range(GPUS)}
    hosts = set(re.findall(r'^node_uname_info\{[^}]*nodename="(sim-\d+)"', text, re.M))
    assert hosts == set(SIM)
    status, nodes = fleet_stack.get("/api/nodes", fleet_stack.token)
    assert status == 200
    assert {n["name"] for n in nodes} >= set(SIM)
