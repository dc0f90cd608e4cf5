"""The named writes of perfmon; views, the API and consumers call these and nothing else writes."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from dashboard import live
from dashboard.jobspec import validate_submission
from dashboard.models import Job, JobStatus
from dashboard.permissions import Role, require
from dashboard.queues import ANY_NODE_QUEUE, queue_for
from dashboard.results.regressions import record_regressions

log = logging.getLogger(__name__)


def do_submit_job(user, kind: str, model: str, params: dict, node: str | None = None) -> Job:
    """Create a queued job and enqueue its task on its node's queue once the row is committed.

    Raises dashboard.permissions.PermissionDenied for a viewer, dashboard.jobspec.InvalidJob for a
    submission we refuse."""
    require(user, Role.OPERATOR, "submitting a job")
    kind, model, params, node = validate_submission(kind, model, params, node)
    queue = queue_for(node, params.get("device", "cpu"))
    job = Job.objects.create(
        kind=kind, model_name=model, params=params, owner=user, target_node=node, queue=queue
    )
    # The worker must find the row it is told about, so enqueue only after the commit.
    transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: Job) -> None:
    from workers.tasks import run_benchmark

    try:
        async_result = run_benchmark.apply_async(args=[job.pk], queue=job.queue or ANY_NODE_QUEUE)
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
    updated = Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        **changes
    )
    job = Job.objects.get(pk=job_id)
    if updated and job.status == JobStatus.SUCCEEDED:
        # Before the push: the page fetches the result as soon as it hears, and must see the flags.
        try:
            record_regressions(job)
        except Exception:  # a comparison that fails must not cost the job its result
            log.exception("could not compare job %s with earlier results", job_id)
    live.push_job(job)
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
