"""`perfmon up` as a user runs it: one command, every part real, children restarted when they die."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest

from tests.e2e.stack import NODE_NAME, cmdline, start_stack

pytestmark = pytest.mark.stack


def test_the_stack_reports_every_part_healthy(stack):
    status, health = stack.get("/healthz")
    assert status == 200, health
    assert health["database"]["ok"] and health["database"]["vendor"] == "sqlite"
    assert health["redis"]["ok"]
    assert health["workers"]["count"] == 2, "the job worker and the maintenance worker"
    assert health["sampler"]["ok"], health["sampler"]  # the node is online by healthz's own rule
    assert "private Redis at redis://127.0.0.1:" in stack.log()
    assert "created admin user 'admin'" in stack.log()


def test_a_token_from_the_cli_drives_a_benchmark_through_the_api(stack):
    assert stack.get("/api/jobs")[0] == 401
    token = stack.cli("token", "admin").stdout.strip()
    assert token.startswith("pm_")

    status, created = stack.post(
        "/api/jobs",
        {
            "kind": "benchmark",
            "model": "PerformanceTestModel",
            "params": {"batch_sizes": [4], "iterations": 40},
        },
        token,
    )
    assert (status, created["status"]) == (201, "queued")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = stack.get(f"/api/jobs/{created['id']}", token)[1]
        if job["status"] in {"succeeded", "failed"}:
            break
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    (run,) = job["result"]["runs"]
    assert run["batch_size"] == 4 and run["iterations"] >= 40 and run["latency_ms"]["p50"] > 0


def _children_named(stack, fragment: str) -> list[psutil.Process]:
    return [p for p in stack.descendants() if fragment in cmdline(p)]


def test_a_dying_child_is_restarted_and_the_stack_recovers(stack):
    (sampler,) = _children_named(stack, "perfmon.cli sampler")
    sampler.kill()
    deadline = time.monotonic() + 60
    while not [p for p in _children_named(stack, "perfmon.cli sampler") if p.pid != sampler.pid]:
        assert stack.process.poll() is None, f"the stack exited:\n{stack.log()}"
        assert time.monotonic() < deadline, "the sampler was not restarted"
        time.sleep(0.2)
    assert "sampler exited unexpectedly with code -9; restarting it" in stack.log()
    while stack.get("/healthz")[0] != 200:
        assert time.monotonic() < deadline, "the stack did not become healthy again"
        time.sleep(0.3)


def test_a_crash_looping_child_is_named_and_takes_the_stack_down(tmp_path):
    """A web server that cannot bind its port dies at every start: after a few tries within the
    window the stack gives up, names it and exits non-zero, instead of restarting it forever."""
    import socket

    from tests.e2e.stack import start_stack_process

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        own = start_stack_process(tmp_path, port=taken.getsockname()[1])
        code = own.process.wait(timeout=240)
    assert code != 0
    assert re.search(r"web died \d+ times within \d+ s .*giving up", own.log()), own.log()[-3000:]
    assert own.log().count("web exited unexpectedly") >= 2, "it was restarted before giving up"
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or []) and p.pid != os.getpid()
    ]
    assert not leftovers, f"left running: {[p.info['cmdline'] for p in leftovers]}"


def test_ctrl_c_stops_every_child_and_the_private_redis(tmp_path):
    own = start_stack(tmp_path)
    children = own.descendants()
    names = {cmdline(p) for p in children}
    for part in ["uvicorn", "perfmon.cli sampler", "manage evaluator", "-n cpu@", "-n maintenance@", "beat"]:
        assert any(part in name for name in names), f"{part} is not running: {names}"
    redis = [
        p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert redis, "the private Redis should run inside the data dir"

    assert own.stop(signal.SIGINT) == 0
    gone, alive = psutil.wait_procs(children + redis, timeout=20)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"


def test_prometheus_scrapes_the_live_node_from_loopback(stack):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(stack.url + "/metrics", timeout=10) as response:
        families = {
            family.name: family for family in text_string_to_metric_families(response.read().decode())
        }
    up = {sample.labels["node"]: sample.value for sample in families["perfmon_node_up"].samples}
    assert up[NODE_NAME] == 1.0, "the stack's own sampler feeds /metrics"
    load = [s for s in families["node_load1"].samples if s.labels.get("nodename") == NODE_NAME]
    assert load and load[0].value >= 0
    memory = [
        s for s in families["node_memory_MemTotal_bytes"].samples if s.labels.get("nodename") == NODE_NAME
    ]
    assert memory and memory[0].value > 0
    gpu_series = [s for name, f in families.items() if name.startswith("DCGM_") for s in f.samples]
    assert not [s for s in gpu_series if s.labels.get("Hostname") == NODE_NAME], (
        "no GPU here: no DCGM series, not zeros"
    )
