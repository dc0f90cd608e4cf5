"""The filters of the jobs list, shared by GET /api/jobs and the /jobs/ page."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from dashboard.models import Job, JobKind, JobStatus


class BadQuery(ValueError):
    """A list parameter we cannot use; the message says why."""


def filter_jobs(
    jobs: QuerySet[Job], *, kind: str = "", status: str = "", model: str = "", node: str = "", since: str = ""
) -> QuerySet[Job]:
    """``jobs`` narrowed by the list filters; empty means no filter. Raises BadQuery for values no job can have."""
    if kind:
        if kind not in JobKind.values:
            raise BadQuery(f"unknown kind {kind!r}; kinds: {', '.join(JobKind.values)}")
        jobs = jobs.filter(kind=kind)
    if status:
        if status not in JobStatus.values:
            raise BadQuery(f"unknown status {status!r}; statuses: {', '.join(JobStatus.values)}")
        jobs = jobs.filter(status=status)
    if model:
        # "resnet" matches every registered version ("resnet@1", "resnet@2"); "resnet@2" just that one.
        jobs = jobs.filter(
            Q(model_name=model) | Q(model_name__startswith=f"{model}@")
            if "@" not in model
            else Q(model_name=model)
        )
    if node:
        jobs = jobs.filter(Q(node_name=node) | Q(target_node=node))
    if since:
        jobs = jobs.filter(created_at__gte=parse_since(since))
    return jobs


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time; one without a zone is taken in the server's time zone."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError:
        raise BadQuery(
            f"since must be an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T08:00:00Z, not {text!r}"
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def active_jobs_phrase(jobs: QuerySet) -> str | None:
    """ "job #3 (queued), #5 (running)" for the queued or running jobs among ``jobs``, None if there are
    none: what a refused deletion names, so the user knows what to cancel or wait for."""
    active = list(
        jobs.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
        .order_by("pk")
        .values_list("pk", "status")
    )
    return "job " + ", ".join(f"#{pk} ({status})" for pk, status in active) if active else None
