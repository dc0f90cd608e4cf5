"""`perfmon up` as a user runs it: one command, every part real, all-or-nothing supervision."""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.e2e.stack import NODE_NAME, start_stack

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
    return [p for p in stack.descendants() if fragment in " ".join(p.cmdline())]


def test_a_dying_child_is_named_and_takes_the_stack_down(tmp_path):
    own = start_stack(tmp_path)
    children = own.descendants()
    (sampler,) = _children_named(own, "perfmon.cli sampler")
    sampler.kill()
    code = own.process.wait(timeout=60)
    assert code != 0
    assert "sampler exited unexpectedly" in own.log()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"


def test_ctrl_c_stops_every_child_and_the_private_redis(tmp_path):
    own = start_stack(tmp_path)
    children = own.descendants()
    names = {" ".join(p.cmdline()) for p in children}
    for part in ["uvicorn", "perfmon.cli sampler", "-n cpu@", "-n maintenance@", "beat"]:
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


def test_a_job_whose_worker_process_dies_ends_failed_as_worker_lost(tmp_path):
    own = start_stack(tmp_path, PERFMON_ORPHAN_SWEEP_S="1", PERFMON_ORPHAN_GRACE_S="1")
    try:
        token = own.cli("token", "admin").stdout.strip()
        long_job = {
            "kind": "benchmark",
            "model": "TeacherModel",
            "params": {"batch_sizes": [256], "iterations": 100000},
        }
        job_id = own.post("/api/jobs", long_job, token)[1]["id"]
        deadline = time.monotonic() + 60
        while (job := own.get(f"/api/jobs/{job_id}", token)[1])["status"] != "running":
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        measuring = [p for p in own.descendants() if p.pid == own_job_pid(own, job_id)]
        assert measuring, "the job records the PID of the process measuring it"
        measuring[0].kill()
        deadline = time.monotonic() + 30
        while (job := own.get(f"/api/jobs/{job_id}", token)[1])["status"] == "running":
            assert time.monotonic() < deadline, "the job stayed running after its worker died"
            time.sleep(0.3)
        assert job["status"] == "failed" and "worker lost" in job["error"]
        assert own.get("/healthz")[0] == 200, "the worker itself recovers (Celery forks a new child)"
    finally:
        own.stop()


def own_job_pid(stack, job_id: int) -> int:
    import sqlite3

    with sqlite3.connect(stack.data_dir / "perfmon.sqlite3") as db:
        return db.execute("SELECT worker_pid FROM dashboard_job WHERE id = ?", (job_id,)).fetchone()[0]
