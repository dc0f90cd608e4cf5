"""The named writes of perfmon; views, the API and consumers call these and nothing else writes."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from dashboard import kinds, live
from dashboard.jobspec import validate_submission
from dashboard.models import Job, JobStatus
from dashboard.permissions import Role, require
from dashboard.queues import ANY_NODE_QUEUE
from dashboard.tasknames import RUN_JOB

log = logging.getLogger(__name__)


def do_submit_job(
    user,
    kind: str,
    model: str,
    params: dict,
    node: str | None = None,
    *,
    alert=None,
    deployment=None,
) -> Job:
    """Create a queued job and enqueue its task on its node's queue once the row is committed.

    ``alert``/``deployment``: the alert whose rule's action started it, and the deployment it
    optimizes (linked both ways: ``alert.jobs``, ``deployment.jobs``). ``user`` None means perfmon
    itself acting for that alert's rule (the rule's author needed the operator role to give it
    actions); it is allowed only with an alert, so no request can submit as no one.

    Raises dashboard.permissions.PermissionDenied for a viewer, dashboard.jobspec.InvalidJob for a
    submission we refuse."""
    if user is not None or alert is None:
        require(user, Role.OPERATOR, "submitting a job")
    kind, model, params, node = validate_submission(kind, model, params, node)
    queue = kinds.get(kind).queue_rule(params, node)
    job = Job.objects.create(
        kind=kind,
        model_name=model,
        model_version=registered_version(model),
        params=params,
        owner=user,
        target_node=node,
        queue=queue,
        alert=alert,
        deployment=deployment,
    )
    # The worker must find the row it is told about, so enqueue only after the commit.
    transaction.on_commit(lambda: _enqueue(job))
    return job


def registered_version(model: str):
    """The ModelVersion row a "name@N" names (lineage as a relation), None for a zoo model."""
    from dashboard.models import ModelVersion

    name, at, number = model.rpartition("@")
    if not at:
        return None
    return ModelVersion.objects.filter(model__name=name, version=int(number)).first()


# Job submission never waits longer than this for the broker: a free producer from the pool, then
# one publish bounded by the broker's socket timeout (settings.REDIS_SOCKET_TIMEOUT_S).
ENQUEUE_POOL_WAIT_S = 2.0
# After a failed publish, submissions skip the broker this long and go straight to waiting: during an
# outage each would otherwise wait out the socket timeout again.
BROKER_RETRY_AFTER_S = 5.0
WAITING_FOR_QUEUE = "waiting for the job queue (Redis unreachable); sent again when it answers"
_broker_failed_at = float("-inf")


class BrokerUnavailable(ConnectionError):
    """The broker failed moments ago; not tried again yet."""


def _enqueue(job: Job) -> None:
    """Send the job's task. When the broker cannot be reached the job stays queued with a visible
    note and the queued-job sweep (workers.tasks.jobs.resend_lost_queued_jobs) sends it again once
    Redis answers: the request answers at once and the job is neither stuck nor lost."""
    global _broker_failed_at
    try:
        if time.monotonic() - _broker_failed_at < BROKER_RETRY_AFTER_S:
            raise BrokerUnavailable("the job queue failed moments ago")
        task_id = send_job_task(job.pk, job.queue or ANY_NODE_QUEUE)
    except Exception as exc:  # broker down or stalled
        if not isinstance(exc, BrokerUnavailable):
            _broker_failed_at = time.monotonic()
        log.warning(
            "could not enqueue job %s (%s: %s); the sweep sends it later", job.pk, type(exc).__name__, exc
        )
        # No live push: it would wait on the same Redis; the page shows the note from the row.
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(step=WAITING_FOR_QUEUE)
        return
    _broker_failed_at = float("-inf")
    Job.objects.filter(pk=job.pk).update(celery_task_id=task_id)
    live.push_job(Job.objects.get(pk=job.pk))


def send_job_task(job_id: int, queue: str, task_id: str | None = None) -> str:
    """Publish perfmon.run_job for job_id on queue, by name (the Django side never imports
    workers.tasks: imports flow one way); returns the task id. Raises within a few
    seconds when the broker is away: the producer pool is waited on with a timeout (kombu's default
    waits forever, which wedged every request thread during a Redis pause) and the publish is tried once."""
    from perfmon.celery import app

    with app.producer_pool.acquire(block=True, timeout=ENQUEUE_POOL_WAIT_S) as producer:
        result = app.send_task(
            RUN_JOB, args=[job_id], queue=queue, producer=producer, retry=False, task_id=task_id
        )
    return result.id


def do_finish_job(job_id: int, status: str, *, result: dict | None = None, error: str = "") -> Job:
    """Move a job to a terminal status, unless it already is in one (first writer wins)."""
    changes = {"status": status, "result": result, "error": error, "finished_at": timezone.now(), "step": ""}
    if status == JobStatus.SUCCEEDED:
        changes["progress_percent"] = 100.0
    # One transaction: whoever sees the job succeeded also sees what follows from it (a benchmark's
    # regression flags, an optimization's registered version).
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
            **changes
        )
        job = Job.objects.get(pk=job_id)
        if updated and job.status == JobStatus.SUCCEEDED:
            try:
                with transaction.atomic():  # a savepoint: its failure must not undo the result
                    kinds.get(job.kind).on_success(job)
            except Exception:  # what follows success must not cost the job its result
                log.exception("job %s: its kind's on-success step failed", job_id)
            job = Job.objects.get(pk=job_id)
        if updated and job.alert_id is not None:
            _alert_job_finished(job)
    live.push_job(job)
    return job


def _alert_job_finished(job: Job) -> None:
    """An alert's action job ended: the alert records its before/after and, when its rule allows
    and the constraints held, promotes the result. Never costs the job its result."""
    from dashboard.alerting.actions import on_job_finished

    try:
        with transaction.atomic():
            on_job_finished(job)
    except Exception:
        log.exception("job %s: recording it on alert %s failed", job.pk, job.alert_id)


def do_finish_cancelled_job(job_id: int, result: dict | None) -> Job:
    """The worker stopped a cancelled job: keep the points it measured before the stop (``result``
    marked partial) even though the job was already marked cancelled by do_cancel_job."""
    job = do_finish_job(job_id, JobStatus.CANCELLED, result=result, error="cancelled")
    if result is not None and job.status == JobStatus.CANCELLED and job.result is None:
        Job.objects.filter(pk=job_id, status=JobStatus.CANCELLED, result__isnull=True).update(result=result)
        job = Job.objects.get(pk=job_id)
        live.push_job(job)  # the page shows the kept points
    return job


class JobAlreadyFinished(ValueError):
    """Cancelling a job that has already ended."""


def do_cancel_job(job_id: int, user) -> Job:
    """Cancel a queued or running job: a queued one never starts; a running one stops at its
    worker's next step (the worker checks about once a second).

    Any operator may cancel any job: operators share the fleet, and one must be able to stop a
    colleague's runaway job. Viewers may cancel none."""
    require(user, Role.OPERATOR, "cancelling a job")
    who = getattr(user, "username", "") or "someone"
    cancelled = Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), error=f"cancelled by {who}", step=""
    )
    job = Job.objects.get(pk=job_id)
    if not cancelled:
        raise JobAlreadyFinished(f"job {job_id} has already ended ({job.status})")
    live.push_job(job)
    return job
