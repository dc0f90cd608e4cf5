"""Cancelling jobs with a real worker: a queued job never starts, a running one stops."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.models import ApiToken, Job, JobStatus, Role
from dashboard.permissions import grant
from perfmon.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

# A run that cannot end soon on any machine: 16 points of at least 100,000 timed calls each, with a
# 10-minute budget. A tiny model keeps each call short, so the harness polls for the cancel often
# even on a busy machine (a large model's calls there can outlast any timeout).
LONG = {
    "kind": "benchmark",
    "model": "SimpleModel",
    "params": {"batch_sizes": list(range(1, 17)), "iterations": 100_000, "time_budget_s": 600.0},
}


@pytest.fixture
def api():
    user = get_user_model().objects.create_user("erin", password="pw-erin-123")
    grant(user, Role.OPERATOR)  # submits, cancels or uploads
    _token, raw = ApiToken.issue(user, Role.OPERATOR)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def call(method: str, path: str, body: dict | None = None):
        send = getattr(client, method)
        return send(path, json.dumps(body), content_type="application/json") if body else send(path)

    return call


async def wait_status(job_id: int, statuses: set[str], timeout_s: float = 60) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = await Job.objects.aget(pk=job_id)
        if job.status in statuses:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {statuses}")


async def test_cancel_stops_a_running_job_and_a_queued_one_never_starts(api):
    app.control.purge()
    with start_worker(app, pool="solo", queues=["jobs"], perform_ping_check=False, shutdown_timeout=30):
        running_id = (await sync_to_async(api)("post", "/api/jobs", LONG)).json()["id"]
        queued_id = (await sync_to_async(api)("post", "/api/jobs", LONG)).json()["id"]
        await wait_status(running_id, {JobStatus.RUNNING})

        response = await sync_to_async(api)("post", f"/api/jobs/{queued_id}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        response = await sync_to_async(api)("post", f"/api/jobs/{running_id}/cancel")
        assert response.status_code == 200

        running = await Job.objects.aget(pk=running_id)
        outcome = await sync_to_async(app.AsyncResult(running.celery_task_id).get)(timeout=120)
        # "cancelled" only comes from the harness stopping at a poll; a run that went on to its
        # budget would return "succeeded". So no wall-clock bound is needed to prove it stopped.
        assert outcome == "cancelled", "the worker stopped measuring"
        # The worker is free again and takes the queued job off the queue without running it.
        queued = await Job.objects.aget(pk=queued_id)
        assert await sync_to_async(app.AsyncResult(queued.celery_task_id).get)(timeout=30) == "skipped"

    running, queued = await Job.objects.aget(pk=running_id), await Job.objects.aget(pk=queued_id)
    assert running.status == JobStatus.CANCELLED and running.error == "cancelled by erin"
    assert queued.status == JobStatus.CANCELLED and queued.started_at is None


def test_cancelling_an_ended_job_is_a_conflict(api):
    job = Job.objects.create(kind="benchmark", model_name="SimpleModel", status=JobStatus.SUCCEEDED)
    response = api("post", f"/api/jobs/{job.pk}/cancel")
    assert response.status_code == 409
    assert response.json() == {"error": f"job {job.pk} has already ended (succeeded)"}
    assert api("post", "/api/jobs/999999/cancel").status_code == 404
