"""Jobs run by a real Celery worker over the real Redis broker, with live updates on the socket."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.actions import _enqueue
from dashboard.models import ApiToken, Job, JobStatus, Role
from dashboard.permissions import grant
from perfmon.celery import app
from tests.dashboard.live_client import communicator_for, receive_until, subscribe
from workers.tasks.liveness import start_beating

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def celery_worker():
    app.control.purge()
    with start_worker(
        app, pool="solo", queues=["jobs"], perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        # The test controller sends no worker_ready: start the liveness a real worker writes itself.
        stop_beating = start_beating(worker.hostname)
        yield worker
        stop_beating.set()


@pytest.fixture
def user_client():
    user = get_user_model().objects.create_user("carol", password="pw-carol-123")
    grant(user, Role.OPERATOR)  # submits, cancels or uploads
    client = Client()
    client.force_login(user)
    return user, client


async def test_a_submitted_benchmark_runs_and_reports_each_state(celery_worker, user_client):
    user, client = user_client
    _token, raw = await sync_to_async(ApiToken.issue)(user, Role.OPERATOR)
    communicator = communicator_for(client)
    await communicator.connect()
    await subscribe(communicator, "jobs")

    body = {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [1, 8], "iterations": 30}}
    response = await sync_to_async(client.post)(
        "/api/jobs", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 201
    job_id = response.json()["id"]

    seen = []
    while not seen or seen[-1] not in {"succeeded", "failed"}:
        message = await receive_until(
            communicator, lambda m: m.get("type") == "job" and m["job"]["id"] == job_id, 60
        )
        if not seen or seen[-1] != message["job"]["status"]:
            seen.append(message["job"]["status"])
    await communicator.disconnect()
    assert seen == ["queued", "running", "succeeded"], seen

    job = (await sync_to_async(client.get)(f"/api/jobs/{job_id}")).json()
    assert job["status"] == "succeeded" and job["progress"] == 100 and job["error"] is None
    assert job["started_at"] and job["finished_at"] and job["node"]
    log = job["log"].splitlines()
    assert any("batch 1" in line for line in log) and any("batch 8" in line for line in log), log
    assert len(log) == len(set(log)), "one line per step, not per progress tick"
    runs = job["result"]["runs"]
    assert [run["batch_size"] for run in runs] == [1, 8]
    for run in runs:
        assert run["iterations"] >= 30, "iterations is the minimum; the harness runs until the median settles"
        latency = run["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
        assert latency["mean"] > 0 and run["throughput_per_s"] > 0
    assert job["result"]["env"]["torch_version"]


async def test_a_job_whose_task_raises_ends_failed_with_the_error(celery_worker, user_client):
    user, _client = user_client
    # A row that validation would refuse, as if the model left the zoo after the job was queued.
    job = await sync_to_async(Job.objects.create)(
        kind="benchmark", model_name="RetiredModel", params={"batch_sizes": [1], "iterations": 5}, owner=user
    )
    await sync_to_async(_enqueue)(job)
    for _ in range(300):
        await job.arefresh_from_db()
        if job.status not in {JobStatus.QUEUED, JobStatus.RUNNING}:
            break
        await asyncio.sleep(0.1)
    assert job.status == JobStatus.FAILED
    assert "RetiredModel" in job.error
    assert job.finished_at is not None


async def test_running_jobs_of_a_vanished_worker_are_failed_and_others_left_alone(
    celery_worker, user_client, settings
):
    import datetime

    from django.utils import timezone

    from dashboard.workers_seen import alive_workers
    from workers.tasks import fail_orphaned_jobs

    user, _client = user_client
    settings.ORPHAN_GRACE_S = 1
    worker_since = (await sync_to_async(alive_workers)())[celery_worker.hostname]["since"]
    # Claimed after the worker started (before that, the job would belong to an earlier process).
    long_ago = datetime.datetime.fromtimestamp(worker_since + 0.01, tz=datetime.UTC)
    await asyncio.sleep(max(0.0, worker_since + 1.5 - timezone.now().timestamp()))
    common = {"kind": "benchmark", "model_name": "SimpleModel", "params": {}, "status": JobStatus.RUNNING}
    orphan = await sync_to_async(Job.objects.create)(
        worker_hostname="jobs@vanished", started_at=long_ago, **common
    )
    alive = await sync_to_async(Job.objects.create)(
        worker_hostname=celery_worker.hostname, started_at=long_ago, **common
    )
    just_started = await sync_to_async(Job.objects.create)(
        worker_hostname="jobs@vanished", started_at=timezone.now(), **common
    )

    assert await sync_to_async(fail_orphaned_jobs)() == 1

    for job in (orphan, alive, just_started):
        await job.arefresh_from_db()
    assert orphan.status == JobStatus.FAILED and "worker lost" in orphan.error
    assert alive.status == JobStatus.RUNNING, "its worker is seen alive"
    assert just_started.status == JobStatus.RUNNING, "a worker gets a grace period to report"
