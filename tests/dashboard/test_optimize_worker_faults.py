"""Optimization jobs when they do not end normally, with real Celery workers over the real broker:
a cancel stops a running optimization at its next poll, and a worker killed mid-optimization
leaves the job failed as "worker lost", like a benchmark. Neither registers a model version, not
even half of one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from dashboard.models import Job, JobStatus, ModelVersion, RegisteredModel
from dashboard.permissions import Role, grant
from perfmon.celery import app

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]

# Distillation polls for a cancel at every epoch, and 200 epochs with a patience of 50 cannot end
# soon on any machine; the first pass keeps the job busy long after it is seen running.
LONG = {
    "kind": "optimize",
    "model": "SimpleModel",
    "params": {
        "passes": [
            {"name": "distill", "params": {"epochs": 200, "patience": 50, "width": 0.5}},
            {"name": "onnxruntime"},
        ],
        "batch_sizes": [32],
        "device": "cpu",
        "threads": 1,
        "measure_budget_s": 0.5,
    },
}


@pytest.fixture
def client():
    user = get_user_model().objects.create_user("omar", password="pw-omar-12345")
    grant(user, Role.OPERATOR)  # submits and cancels
    client = Client()
    client.force_login(user)
    return client


def submit(client: Client) -> int:
    response = client.post("/api/jobs", json.dumps(LONG), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def wait_for(predicate, what: str, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def distilling(job_id: int) -> Job | None:
    """The job once it is inside the distillation pass (past measuring the original)."""
    job = Job.objects.get(pk=job_id)
    assert job.status in {JobStatus.QUEUED, JobStatus.RUNNING}, (job.status, job.error)
    return job if job.status == JobStatus.RUNNING and "epoch" in job.step else None


def assert_nothing_registered(job: Job) -> None:
    assert not ModelVersion.objects.filter(produced_by_job=job).exists()
    assert not ModelVersion.objects.filter(produced_by__contains=f"job #{job.pk}:").exists()
    # Not even the zoo original that registration creates first.
    assert not RegisteredModel.objects.exists() and not ModelVersion.objects.exists()
    assert "artifact" not in (job.result or {}) and "registered" not in (job.result or {})


def test_cancel_stops_a_running_optimization_and_registers_nothing(client) -> None:
    app.control.purge()
    with start_worker(app, pool="solo", queues=["jobs"], perform_ping_check=False, shutdown_timeout=60):
        job_id = submit(client)
        wait_for(lambda: distilling(job_id), "the job to start distilling")
        response = client.post(f"/api/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.content
        job = Job.objects.get(pk=job_id)
        # "cancelled" comes back only when the run stopped at a poll; a run that went on to finish
        # its passes would return "succeeded", so no wall-clock bound is needed to prove it stopped.
        outcome = app.AsyncResult(job.celery_task_id).get(timeout=240)
        assert outcome == "cancelled"
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.CANCELLED and job.error == "cancelled by omar"
    assert job.finished_at is not None
    assert_nothing_registered(job)


def _database_url() -> str:
    """The test database, for a worker in another process (the test's rows are committed)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker_process():
    """A real `celery worker` process (prefork, one pool process) on the jobs queue, as `perfmon up`
    starts it; stopped (or reaped, if the test killed it) afterwards."""
    app.control.purge()
    env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONPATH": str(ROOT)}
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "perfmon",
        "worker",
        "-Q",
        "jobs",
        "-c",
        "1",
        "-P",
        "prefork",
    ]
    argv += ["-n", f"optkill-{os.getpid()}@test", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
    yield process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    for child in psutil.Process().children(recursive=True):  # a pool process left behind, if any
        if child.pid != process.pid and "celery" in " ".join(child.cmdline()):
            child.kill()


@pytest.mark.parametrize("victim", ["pool process", "whole worker"])
def test_a_worker_killed_mid_optimization_fails_the_job_as_worker_lost(
    client, worker_process, settings, victim
) -> None:
    from workers.tasks import fail_orphaned_jobs

    job_id = submit(client)
    job = wait_for(lambda: distilling(job_id), "the job to start distilling")
    (pool,) = psutil.Process(worker_process.pid).children()
    if victim == "pool process":
        pool.kill()  # the worker's main process sees its pool process die and fails the task
    else:
        os.killpg(worker_process.pid, signal.SIGKILL)  # the worker and its pool process, at once
        worker_process.wait(timeout=30)
    settings.ORPHAN_GRACE_S = 0
    # The periodic sweep that `perfmon up` schedules: a task that failed, or a worker whose liveness
    # expired, fails the job. Swept here until it does, as beat would every few seconds.
    wait_for(lambda: fail_orphaned_jobs() or Job.objects.get(pk=job_id).is_finished, "the sweep", 120)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED, (job.status, job.error)
    assert job.error == "worker lost: the worker running this job stopped"
    assert job.finished_at is not None
    assert_nothing_registered(job)
