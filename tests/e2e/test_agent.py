"""A second node: `perfmon agent` against the same Redis and database shows up as its own node,
and a job routed to it runs there."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.stack


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_second_agent_registers_and_runs_the_jobs_routed_to_it(stack, tmp_path):
    token = stack.cli("token", "admin").stdout.strip()
    database = f"sqlite:///{stack.data_dir / 'perfmon.sqlite3'}"
    log = (tmp_path / "agent.log").open("w")
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfmon.cli",
            "agent",
            "--name",
            "node-b",
            "--redis",
            stack.env["REDIS_URL"],
            "--database",
            database,
        ],
        env={key: value for key, value in stack.env.items() if key != "REDIS_URL"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        nodes = wait_for(
            lambda: [n for n in stack.get("/api/nodes", token)[1] if n["name"] == "node-b" and n["online"]],
            60,
            "node-b to register",
        )
        assert nodes[0]["info"]["cpu_count"] >= 1
        assert len(stack.get("/api/nodes", token)[1]) == 2

        status, created = stack.post(
            "/api/jobs",
            {
                "kind": "benchmark",
                "model": "StudentModel",
                "node": "node-b",
                "params": {"batch_sizes": [2], "iterations": 20},
            },
            token,
        )
        assert status == 201, created
        job = wait_for(
            lambda: (
                (j := stack.get(f"/api/jobs/{created['id']}", token)[1])["status"] in {"succeeded", "failed"}
                and j
            ),
            90,
            "the job on node-b",
        )
        assert job["status"] == "succeeded", job
        assert (job["node"], job["target_node"]) == ("node-b", "node-b")
    finally:
        agent.send_signal(signal.SIGINT)
        assert agent.wait(timeout=60) == 0, (tmp_path / "agent.log").read_text()
