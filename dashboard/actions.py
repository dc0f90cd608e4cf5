"""The named writes of perfmon; views, the API and consumers call these and nothing else writes."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from dashboard import kinds, live
from dashboard.jobspec import validate_submission
from dashboard.models import Job, JobStatus
from dashboard.queues import ANY_NODE_QUEUE
from dashboard.tasknames import RUN_JOB

log = logging.getLogger(__name__)


def do_submit_job(user, kind: str, model: str, params: dict, node: str | None = None) -> Job:
    """Create a queued job and enqueue its task on its node's queue once the row is committed.

    Raises dashboard.jobspec.InvalidJob for a submission we refuse."""
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


def _enqueue(job: Job) -> None:
    from perfmon.celery import app

    try:
        # By name: the Django side never imports workers.tasks (imports flow one way).
        async_result = app.send_task(RUN_JOB, args=[job.pk], queue=job.queue or ANY_NODE_QUEUE)
    except Exception as exc:  # broker down: the job must not sit "queued" forever
        log.exception("could not enqueue job %s", job.pk)
        do_finish_job(job.pk, JobStatus.FAILED, error=f"could not reach the job queue: {exc}")
        return
    Job.objects.filter(pk=job.pk).update(celery_task_id=async_result.id)
    live.push_job(Job.objects.get(pk=job.pk))


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
    live.push_job(job)
    return job


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
    worker's next step (the worker checks about once a second)."""
    who = getattr(user, "username", "") or "someone"
    cancelled = Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), error=f"cancelled by {who}", step=""
    )
    job = Job.objects.get(pk=job_id)
    if not cancelled:
        raise JobAlreadyFinished(f"job {job_id} has already ended ({job.status})")
    live.push_job(job)
    return job
