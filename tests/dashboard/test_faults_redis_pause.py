"""Redis stalls (SIGSTOP) under the web process, the sampler and a running job: nothing waits on it
for good, nothing is lost, and everything recovers by itself once Redis answers again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from dashboard import actions
from dashboard.actions import BROKER_RETRY_AFTER_S, WAITING_FOR_QUEUE
from dashboard.history.query import series
from dashboard.models import ApiToken, Job, JobStatus, Node, Role
from dashboard.permissions import grant
from dashboard.workers_seen import record_alive
from tests.dashboard.live_client import running_sampler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_redis():
    """The test run's own Redis (tests/plugins/private_redis.py), which these tests pause."""
    from tests.plugins import private_redis

    server = getattr(private_redis, "_redis", None)
    if server is None:
        pytest.fail("these tests pause Redis: run them without REDIS_URL so the test run starts its own")
    yield server
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.process.pid, signal.SIGCONT)
    actions._broker_failed_at = float("-inf")  # later tests' submissions try the broker at once


@contextlib.contextmanager
def paused(server):
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def api_client() -> Client:
    user = get_user_model().objects.create_user(f"u{time.monotonic_ns()}", password="pw-faults-123")
    grant(user, Role.OPERATOR)  # submitting needs the operator role
    _token, raw = ApiToken.issue(user, Role.OPERATOR)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def submit(client: Client) -> tuple[int, dict]:
    body = {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [1], "iterations": 5}}
    response = client.post("/api/jobs", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_health_answers_503_while_redis_is_stalled_and_200_once_it_is_back(session_redis):
    Node.objects.create(name="health-node", last_seen=timezone.now(), gpu_status="no GPU")
    record_alive("cpu@health-node", os.getpid(), time.time())
    assert Client().get("/healthz").status_code == 200

    answers: list[tuple[int, dict]] = []

    def poll() -> None:
        response = Client().get("/healthz")
        answers.append((response.status_code, response.json()))

    with paused(session_redis):
        # More concurrent checks than any connection pool holds: none may wait for a free connection.
        pollers = [threading.Thread(target=poll) for _ in range(15)]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join(timeout=60)
        assert not any(poller.is_alive() for poller in pollers), "a health check blocked on the stalled Redis"

    assert len(answers) == 15
    for status, body in answers:
        assert status == 503 and not body["redis"]["ok"] and "Timeout" in body["redis"]["error"], body
        assert body["workers"] == {"ok": False, "error": "Redis unreachable"}
        assert body["database"]["ok"], body

    record_alive("cpu@health-node", os.getpid(), time.time())
    Node.objects.filter(name="health-node").update(last_seen=timezone.now())  # no sampler runs here
    status, body = Client().get("/healthz").status_code, Client().get("/healthz").json()
    assert status == 200 and body["workers"]["names"] == ["cpu@health-node"], body


def test_submissions_answer_while_the_broker_is_stalled_and_are_sent_once_it_is_back(session_redis, settings):
    from workers.tasks import resend_lost_queued_jobs

    client = api_client()
    answers: list[tuple[int, dict]] = []

    def submit_one() -> None:
        answers.append(submit(client))

    with paused(session_redis):
        # More submissions at once than kombu's producer pool holds (10): the issue's wedge.
        submitters = [threading.Thread(target=submit_one) for _ in range(12)]
        for submitter in submitters:
            submitter.start()
        for submitter in submitters:
            submitter.join(timeout=90)
        assert not any(s.is_alive() for s in submitters), "a submission blocked on the broker"

    assert [status for status, _ in answers] == [201] * 12
    ids = [body["id"] for _, body in answers]
    waiting = list(Job.objects.filter(pk__in=ids))
    assert all(job.status == JobStatus.QUEUED for job in waiting), "never failed for a passing stall"
    assert all(job.step == WAITING_FOR_QUEUE for job in waiting), [job.step for job in waiting]

    # Redis is back: once the pause after a failure is over, a new submission goes straight through ...
    time.sleep(BROKER_RETRY_AFTER_S)
    status, body = submit(client)
    assert status == 201 and Job.objects.get(pk=body["id"]).celery_task_id

    # ... and the sweep sends the waiting ones (here at once; in the stack, beat runs it).
    settings.QUEUED_RESEND_AFTER_S = 0
    assert resend_lost_queued_jobs() >= 12
    client_redis = redis.Redis.from_url(settings.REDIS_URL)
    queued_ids = {json.loads(raw)["headers"]["id"] for raw in client_redis.lrange("jobs", 0, -1)}
    for job in Job.objects.filter(pk__in=ids):
        assert job.status == JobStatus.QUEUED and job.step == ""
        assert job.celery_task_id in queued_ids, "its message is on the queue now"
    assert resend_lost_queued_jobs() == 0, "a job whose message is queued is not sent twice"
    client_redis.delete("jobs")  # no worker here: later tests' workers need not skip these


def test_progress_and_live_pushes_never_fail_a_running_job(session_redis):
    from dashboard.actions import do_finish_job
    from workers.tasks.jobs import _progress_reporter

    job = Job.objects.create(kind="benchmark", model_name="SimpleModel", status=JobStatus.RUNNING)
    report = _progress_reporter(job.pk)
    with paused(session_redis):
        report(0.5, "batch 1")  # raised "TimeoutError: Timeout reading from ..." and failed the job
        finished = do_finish_job(job.pk, JobStatus.SUCCEEDED, result={"runs": []})
    assert finished.status == JobStatus.SUCCEEDED and finished.result == {"runs": []}
    job.refresh_from_db()
    assert "batch 1" in job.log


async def test_the_sampler_keeps_recording_history_while_redis_is_stalled(session_redis, settings):
    settings.NODE_NAME = "stalled-node"
    async with running_sampler(interval_s=0.2) as daemon:
        daemon.history.flush_every_s = 0.5
        await sync_to_async(time.sleep)(1.0)
        os.kill(session_redis.process.pid, signal.SIGSTOP)
        stalled_at = time.time()
        try:
            await sync_to_async(time.sleep)(6.0)
        finally:
            os.kill(session_redis.process.pid, signal.SIGCONT)
        resumed_at = time.time()
        await sync_to_async(time.sleep)(1.5)
    points = await sync_to_async(series)(
        "stalled-node", "host.cpu_percent", start=stalled_at - 1, end=resumed_at + 1, points=5000
    )
    times = [point[0] for point in points["points"]]
    inside = [ts for ts in times if stalled_at <= ts <= resumed_at]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    # Before, the tick waited on the stalled Redis: history had one gap as long as the stall.
    assert len(inside) >= 10, f"{len(inside)} samples recorded during a 6 s stall at 5 Hz"
    assert max(gaps) < 3.0, f"a {max(gaps):.1f} s hole in history"
