"""A deployment's page in Debian's chromium against the real `perfmon up`: created through the
API, fed through ingest, its latency chart draws the samples and the objective line."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.stack import NODE_NAME, logged_in_page, trained

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

DATASETS = """(canvas) => Chart.getChart(canvas).data.datasets.map(
  (d) => ({ label: d.label, ys: d.data.map((p) => p.y) }))"""


def create(stack, token: str, name: str, probe_interval_s: int) -> None:
    trained(stack, token, "SimpleModel")  # quick once the weights are cached
    # Registering the zoo original hashes and validates its weights: can be longer than
    # stack.post's 10 s on a busy machine.
    body = json.dumps(
        {
            "name": name,
            "model": "SimpleModel",
            "node": NODE_NAME,
            "params": {"device": "cpu", "batch_size": 8, "threads": 1},
            "probe_interval_s": probe_interval_s,
            "objective_ms": 50,
        }
    ).encode()
    request = urllib.request.Request(stack.url + "/api/deployments", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=300) as response:
        assert response.status == 201


def test_beat_sends_probes_that_a_worker_measures_into_the_history(stack):
    token = stack.cli("token", "admin").stdout.strip()
    create(stack, token, "digits-probed", probe_interval_s=5)
    deadline = time.monotonic() + 240
    while True:
        status, body = stack.get("/api/deployments/digits-probed", token)
        state = body.get("probe_state") or {}
        if state.get("status") == "ok" and "p50" in body.get("latency", {}):
            break
        assert state.get("status") in (None, "ok"), state
        assert time.monotonic() < deadline, f"no probe within 240 s: {body}\n{stack.log()[-3000:]}"
        time.sleep(2)
    assert state["version"] == "SimpleModel@1"
    assert 0 < body["latency"]["p50"]["last_ms"] <= body["latency"]["p99"]["last_ms"]


def test_the_page_draws_ingested_latency_and_the_objective_line(stack, browser):
    token = stack.cli("token", "admin").stdout.strip()
    create(stack, token, "digits-prod", probe_interval_s=0)
    now = time.time()
    samples = [{"ts": now - 120 + i, "latency_ms": 30.0 + (i % 40)} for i in range(120)]
    status, body = stack.post("/api/ingest/latency", {"deployment": "digits-prod", "samples": samples}, token)
    assert (status, body) == (202, {"stored": 120})

    with logged_in_page(stack, browser) as page:
        page.goto(stack.url + "/deployments/")
        page.click("#deployment-digits-prod a")
        page.wait_for_selector("#latency-chart-status[data-state=drawn]")
        datasets = page.eval_on_selector("#latency-chart", DATASETS)
        by_label = {d["label"]: d["ys"] for d in datasets}
        assert len(by_label["ingested samples"]) == 120
        assert set(by_label["objective 50 ms"]) == {50}
        assert "SimpleModel@1" in page.inner_text("#version h2")
        assert page.inner_text("#latency-table").count("sample") == 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "deployment-page.png"), full_page=True)
        assert page.script_errors == []
