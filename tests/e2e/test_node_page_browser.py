"""The node list and the node page in Debian's chromium against the real `perfmon up`: live
state, live charts over the WebSocket, and a history range read from the series API."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.e2e.stack import NODE_NAME, logged_in_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

# The stack's own node (the simulated GPU node of the last test may be listed too).
# The stack's own node; other tests in the session add nodes of their own (node-b, gpu-sim).
THIS_NODE_ROW = f"#node-list tbody tr[data-node='{NODE_NAME}']"


@pytest.fixture
def page(stack, browser):
    with logged_in_page(stack, browser) as page:
        yield page


def wait_for_history(stack, page, metric: str, timeout_s: float = 120.0) -> None:
    url = f"{stack.url}/api/metrics/series?node={NODE_NAME}&metric={metric}"
    deadline = time.monotonic() + timeout_s
    while page.request.get(url).status != 200:
        assert time.monotonic() < deadline, f"no history of {metric} after {timeout_s:.0f} s"
        time.sleep(0.5)


def points(page, chart_id: str) -> int:
    return int(page.get_attribute(f"canvas[data-chart={chart_id}]", "data-points") or 0)


def test_the_node_list_shows_this_node_online_and_live(stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(stack.url + "/nodes/")
    row = page.locator(THIS_NODE_ROW)
    assert row.locator("[data-role=node-state]").text_content() == "online"
    # Its samples reach the row over the WebSocket.
    page.wait_for_function(f'Number(document.querySelector("{THIS_NODE_ROW}").dataset.samples || 0) >= 2')
    assert re.match(r"\d+ s ago", row.locator(".last-seen").text_content())
    assert "logical" in row.text_content()
    page.screenshot(path=str(ARTIFACTS / "nodes.png"), full_page=True)

    assert page.script_errors == []


def test_the_node_page_charts_live_samples_and_reads_history(stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(stack.url + "/nodes/")
    page.click(THIS_NODE_ROW + " a")
    page.wait_for_url(re.compile(r"/nodes/[^/]+/$"))
    assert page.text_content("#node-state") == "online"
    # This machine has no GPU: the page says so and why, and carries on with the host.
    assert "CPU only: no GPU" in page.text_content("#gpu-status")

    # Live: the host CPU chart receives at least two samples from the socket.
    page.wait_for_function(
        "Number(document.querySelector('canvas[data-chart=\"host-cpu\"]').dataset.points || 0) >= 2"
    )
    assert page.get_attribute("canvas[data-chart=host-cpu]", "data-source") == "live"
    # The chart may already hold points seeded from history; the figures wait for a live sample.
    page.wait_for_function("document.getElementById('host-cpu-now').textContent.endsWith('%')")
    assert page.text_content("#connection-state") == "live"
    assert re.match(r"\d+\.\d %$", page.text_content("#host-cpu-now"))
    assert re.search(r"\d+(\.\d)? GiB / \d+(\.\d)? GiB", page.text_content("#host-memory-now"))
    # The sampler's process scan fills the host table within a few seconds.
    page.wait_for_selector("#host-processes tbody tr:not(.empty) td.command")
    assert page.text_content("#gpu-processes tbody") == "No GPU on this node."
    page.screenshot(path=str(ARTIFACTS / "node-live.png"), full_page=True)

    # History is written in batches (every 10 s): on a stack this young the first may not be in yet.
    wait_for_history(stack, page, "host.cpu_percent")
    # 1 h: each chart asks for all its datasets in one request, at one point per pixel of its width.
    with page.expect_response(
        lambda r: "/api/metrics/series" in r.url and "host.cpu_percent" in r.url
    ) as info:
        page.click("button[data-range='3600']")
    response = info.value
    query = dict(pair.split("=", 1) for pair in response.url.split("?", 1)[1].split("&"))
    width = page.eval_on_selector("canvas[data-chart=host-cpu]", "c => c.clientWidth")
    assert int(query["end"]) - int(query["start"]) in (3600, 3601)
    assert abs(int(query["points"]) - width) <= 1
    page.wait_for_function("document.getElementById('node-charts').dataset.loading === 'false'")
    status = page.text_content("#range-status")
    assert response.status == 200 and "/api/metrics/series/many" in response.url
    assert response.json()["series"][0]["points"], "the stack has been sampling: the last hour is not empty"
    page.wait_for_function(
        "document.querySelector('canvas[data-chart=\"host-cpu\"]').dataset.source === 'history'"
    )
    assert points(page, "host-cpu") >= 1
    assert status.startswith("last hour") and "unavailable" not in status
    page.screenshot(path=str(ARTIFACTS / "node-1h.png"), full_page=True)

    # Drag across the chart: every chart asks for just that span, at full detail.
    box = page.locator("canvas[data-chart=host-cpu]").bounding_box()
    y = box["y"] + box["height"] / 2
    with page.expect_response(
        lambda r: "/api/metrics/series" in r.url and "host.cpu_percent" in r.url
    ) as info:
        page.mouse.move(box["x"] + box["width"] * 0.45, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=6)
        page.mouse.up()
    zoomed = dict(pair.split("=", 1) for pair in info.value.url.split("?", 1)[1].split("&"))
    assert int(query["start"]) < int(zoomed["start"]) < int(zoomed["end"]) < int(query["end"])
    assert int(zoomed["end"]) - int(zoomed["start"]) < 3600 / 2
    assert page.is_visible("#range-reset")
    with page.expect_response(
        lambda r: "/api/metrics/series" in r.url and "host.cpu_percent" in r.url
    ) as info:
        page.click("#range-reset")
    again = dict(pair.split("=", 1) for pair in info.value.url.split("?", 1)[1].split("&"))
    assert int(again["end"]) - int(again["start"]) in (3600, 3601)
    assert not page.is_visible("#range-reset")

    # Back to live: the charts follow the socket again.
    page.click("button[data-range='live']")
    page.wait_for_function(
        "document.querySelector('canvas[data-chart=\"host-cpu\"]').dataset.source === 'live'"
        " && Number(document.querySelector('canvas[data-chart=\"host-cpu\"]').dataset.points) >= 1"
    )
    assert page.script_errors == []


# A GPU node simulated through the real pipeline: its Node row and a running job in the stack's
# database, and samples pushed through the stack's Redis channel layer, as a sampler would.
SIMULATED_GPU_NODE = textwrap.dedent(
    """
    import time
    from django.utils import timezone
    from dashboard.live import push
    from dashboard.models import Job, Node

    GIB = 1024 ** 3
    gpus = [
        {"index": i, "name": "NVIDIA A100-SXM4-80GB", "uuid": f"GPU-{i}1111111-2222-3333-4444-555555555555",
         "memory_total_bytes": 80 * GIB, "pci_bus_id": f"00000000:0{i}:00.0"}
        for i in range(2)
    ]
    Node.objects.update_or_create(name="gpu-sim", defaults={"gpu_status": "ok", "info": {
        "hostname": "gpu-sim", "cpu_model": "AMD EPYC 7742", "cpu_count": 128,
        "memory_total_bytes": 512 * GIB, "driver_version": "570.86.15", "cuda_version": "12.8",
        "torch_version": "2.13.0", "gpus": gpus, "gpu_status": "ok"}})
    job = Job.objects.create(kind="benchmark", model_name="SimpleModel", status="running",
                             node_name="gpu-sim", worker_hostname="gpu0@gpu-sim", worker_pid=4242)
    print("job", job.pk, flush=True)
    worker = "python -m celery -A perfmon worker -Q jobs -n jobs@gpu-sim"

    def gpu(i, t):
        return {
            "index": i, "uuid": gpus[i]["uuid"], "name": gpus[i]["name"], "pci_bus_id": gpus[i]["pci_bus_id"],
            "utilization_gpu_percent": 40 + 10 * i + t % 7, "utilization_memory_percent": 20,
            "memory_used_bytes": (10 + i) * GIB, "memory_free_bytes": (70 - i) * GIB,
            "memory_total_bytes": 80 * GIB, "temperature_c": 61 + i, "power_draw_w": 250 + t % 5,
            "power_limit_w": 400, "sm_clock_mhz": 1410, "mem_clock_mhz": 1593,
            "pcie_tx_bytes_per_s": 2.5e9, "pcie_rx_bytes_per_s": None, "fan_percent": None,
            "throttle_reasons": ["sw_power_cap"] if i == 1 else [],
            "ecc_errors_corrected": 0, "ecc_errors_uncorrected": None,
            "persistence_mode": i == 0, "is_mig_device": False, "parent_index": None,
            "processes": [{"pid": 4242 + i, "user": "alice", "command": worker, "used_memory_bytes": 9 * GIB,
                           "sm_percent": 37, "cpu_percent": 99.5, "rss_bytes": 3 * GIB}],
        }

    for t in range(200):
        now = time.time()
        push("node:gpu-sim", {
            "type": "sample", "node": "gpu-sim", "ts": now, "gpu_status": "ok",
            "warnings": ["GPU 1: persistence mode is off"],
            "host": {"cpu_percent": 12.5, "memory_used_bytes": 100 * GIB, "memory_total_bytes": 512 * GIB,
                     "memory_percent": 19.5, "load_avg_1m": 3.0, "load_avg_5m": 2.5, "load_avg_15m": 2.0,
                     "swap_used_bytes": 0, "swap_total_bytes": 0},
            "gpus": [gpu(0, t), gpu(1, t)],
        })
        push("nodes", {"type": "heartbeat", "node": "gpu-sim", "ts": now, "interval_s": 0.5})
        Node.objects.filter(name="gpu-sim").update(last_seen=timezone.now())
        time.sleep(0.5)
    """
)


def test_a_gpu_node_page_shows_cards_warnings_and_job_processes(stack, page):
    feeder = subprocess.Popen(
        [sys.executable, "-m", "perfmon.cli", "manage", "shell", "-c", SIMULATED_GPU_NODE],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = feeder.stdout.readline()
        while line and not line.startswith("job "):
            line = feeder.stdout.readline()
        assert line.startswith("job "), "the simulated node did not start"
        job_id = int(line.split()[1])

        page.goto(stack.url + "/nodes/gpu-sim/")
        # The cards fill from live samples, sparklines included.
        page.wait_for_function(
            "Number(document.querySelector('[data-gpu-index=\"1\"] canvas.spark').dataset.points || 0) >= 6"
        )
        card0 = page.locator(".gpu-card[data-gpu-index='0']").first
        card1 = page.locator(".gpu-card[data-gpu-index='1']").first
        assert card0.locator("[data-metric=memory_used_bytes] .value").text_content() == "10.0 GiB / 80.0 GiB"
        assert card0.locator("[data-metric=temperature_c] [data-value]").text_content() == "61 °C"
        assert re.match(r"25\d W / 400 W", card0.locator("[data-metric=power_draw_w] .value").text_content())
        # Unsupported fields read N/A, never 0.
        assert card0.locator("[data-field=fan_percent]").text_content() == "N/A"
        assert card0.locator("[data-field=pcie]").text_content() == "2.50 GB/s / N/A"
        assert "sw_power_cap" in card1.locator("[data-field=throttle]").text_content()
        assert card0.locator("[data-field=throttle]").is_hidden()
        assert "Persistence mode is off" in card1.locator("[data-field=warnings]").text_content()
        assert "persistence mode is off" in page.text_content("#node-warnings")
        assert page.is_hidden("#gpu-status")

        # Per-GPU charts get one dataset per GPU, fed live.
        page.wait_for_function(
            "Number(document.querySelector('canvas[data-chart=\"gpu-util\"]').dataset.points || 0) >= 2"
        )
        # The process measuring the job (by the PID the job recorded) links to the job; others do not.
        page.wait_for_selector("#gpu-processes a.job-link")
        rows = page.locator("#gpu-processes tbody tr")
        assert rows.count() == 2
        assert page.locator("#gpu-processes a.job-link").count() == 1
        assert rows.first.locator("td").nth(4).text_content() == "9.0 GiB"
        assert page.locator("#gpu-processes a.job-link").first.text_content() == f"perfmon job #{job_id}"
        assert page.locator("#gpu-processes a.job-link").first.get_attribute("href") == f"/jobs/{job_id}/"
        page.screenshot(path=str(ARTIFACTS / "node-gpu.png"), full_page=True)

        # The node list follows it live; when its samples stop, it turns offline after 3 missed
        # intervals (0.5 s each here) without a reload.
        page.goto(stack.url + "/nodes/")
        sim = page.locator("#node-list tbody tr[data-node='gpu-sim']")
        page.wait_for_function(
            "Number(document.querySelector(\"tr[data-node='gpu-sim']\").dataset.samples || 0) >= 2"
        )
        assert sim.locator("[data-role=node-state]").text_content() == "online"
        assert "2 × NVIDIA A100-SXM4-80GB" in sim.text_content()
        feeder.kill()
        feeder.wait()
        page.wait_for_function(
            "document.querySelector(\"tr[data-node='gpu-sim'] [data-role=node-state]\").textContent === 'offline'",
            timeout=10_000,
        )
        assert page.locator(THIS_NODE_ROW + " [data-role=node-state]").text_content() == "online"
        page.screenshot(path=str(ARTIFACTS / "nodes-one-offline.png"), full_page=True)
        assert page.script_errors == []
    finally:
        feeder.kill()
        feeder.wait()
