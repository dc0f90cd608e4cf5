"""A job keeps its measurement when the database drops its connection (PostgreSQL restarting):
progress and cancel checks are best effort, the outcome is written once the database answers.
PostgreSQL only (`make test-postgres`): the server ending a session is what a restart does to it."""

from __future__ import annotations

import pytest
from django.db import connection, connections

from dashboard.actions import do_finish_job
from dashboard.models import Job, JobStatus
from workers.tasks.jobs import _cancel_checker, _progress_reporter, _record_end

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL only: run by make test-postgres (in .ci/run)"
    ),
]


def drop_connection_server_side() -> None:
    """The server ends this thread's session, as `pg_ctlcluster stop -m fast` does to every session."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    finally:
        other.close()


def running_job() -> Job:
    return Job.objects.create(kind="benchmark", model_name="SimpleModel", status=JobStatus.RUNNING)


def test_progress_and_cancel_checks_carry_on_when_the_connection_drops():
    job = running_job()
    report, should_stop = _progress_reporter(job.pk), _cancel_checker(job.pk, every_s=0)
    drop_connection_server_side()
    report(0.5, "warmup")  # before: OperationalError, and the job failed with it
    drop_connection_server_side()
    assert should_stop() is False  # cannot tell: keep measuring
    report(0.75, "timing")
    job.refresh_from_db()
    assert (job.status, job.progress_percent, job.step) == (JobStatus.RUNNING, 75.0, "timing")
    assert "timing" in job.log


def test_the_outcome_is_recorded_after_the_connection_drops():
    job = running_job()
    drop_connection_server_side()
    _record_end(job.pk, do_finish_job, job.pk, JobStatus.SUCCEEDED, result={"points": []})
    job.refresh_from_db()
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"points": []})
