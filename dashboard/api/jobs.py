"""/api/jobs: submit benchmark (and later optimization) jobs and follow them.

The list returns summaries (no raw times, no log); one job's own endpoint returns everything."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpResponse
from ninja import Field, Router, Schema, Status

from dashboard.actions import JobAlreadyFinished, do_cancel_job, do_submit_job
from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.job_filters import BadQuery, filter_jobs
from dashboard.kinds import KINDS
from dashboard.models import Job

router = Router(tags=["jobs"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class JobIn(Schema):
    # Documented as the registry's kinds; checked by validate_submission, whose 400 lists them.
    kind: str = Field(json_schema_extra={"enum": list(KINDS)})
    model: str = Field(min_length=1, description="a zoo name, or a registered model's name[@version]")
    node: str | None = Field(
        default=None, description="a registered node; empty or null: any node (CPU jobs)"
    )
    params: dict[str, Any] = {}


class JobCreated(Schema):
    id: int
    status: str


class JobSummaryOut(Schema):
    id: int
    kind: str
    model: str
    params: dict[str, Any]
    status: str
    progress: float
    step: str
    result: dict[str, Any] | None
    error: str | None
    node: str | None
    target_node: str | None
    regressions: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    partial: bool
    alert: int | None = Field(None, description="the alert whose rule started this job, if any")
    deployment: str | None = Field(None, description="the deployment that alert's action optimizes")


class JobOut(JobSummaryOut):
    log: str


@router.post("", response={201: JobCreated, **WRITE_ERRORS})
def submit_job(request, payload: JobIn):
    """Queue a job. Example: {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [32], "iterations": 200}}."""
    job = do_submit_job(request.user, payload.kind, payload.model, payload.params, payload.node)
    return Status(201, {"id": job.pk, "status": job.status})


@router.get("/{job_id}", response={200: JobOut, 400: Error, 401: Error, 404: Error})
def get_job(request, job_id: int, raw: Literal["0", "1"] = "1"):
    """One job with its full result, raw per-iteration ``times_ms`` included; ``?raw=0`` leaves them out."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return Status(404, {"error": f"job {job_id} not found"})
    return job.to_json(raw_times=raw == "1")


@router.get("", response={200: list[JobSummaryOut], 400: Error, 401: Error})
def list_jobs(
    request,
    response: HttpResponse,
    limit: str = str(DEFAULT_LIMIT),
    offset: str = "0",
    kind: str = "",
    status: str = "",
    model: str = "",
    node: str = "",
    since: str = "",
):
    """The newest jobs first, as summaries (per run: batch size, p50/p99, throughput, error, stop
    reason; no raw times, no log). Filters: ``kind``, ``status``, ``model`` (a zoo name, a registered
    name matches all its versions, or name@version), ``node`` (ran on or was sent to), ``since`` (ISO
    8601, created at or after). Paging: ``limit`` (1..500, default 50) and ``offset``. The header
    ``X-Total-Count`` gives how many jobs match the filters."""
    try:
        first = _integer("offset", offset, 0, None)
        count = _integer("limit", limit, 1, MAX_LIMIT)
        jobs = filter_jobs(Job.objects.all(), kind=kind, status=status, model=model, node=node, since=since)
    except BadQuery as exc:
        return Status(400, {"error": str(exc)})
    response["X-Total-Count"] = str(jobs.count())
    page = jobs.select_related("deployment").prefetch_related("regressions")[first : first + count]
    return [job.summary_json() for job in page]


def _integer(name: str, text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number, not {text!r}") from None
    if value < low:
        raise BadQuery(f"{name} {value} is too small: at least {low}")
    if high is not None and value > high:
        raise BadQuery(f"{name} {value} is too large: at most {high}")
    return value


@router.post("/{job_id}/cancel", response={200: JobOut, **WRITE_ERRORS, 404: Error, 409: Error})
def cancel_job(request, job_id: int):
    """Cancel a queued or running job; 409 if it has already ended. Points already measured are
    kept: the worker stores them as a partial result when it stops."""
    if not Job.objects.filter(pk=job_id).exists():
        return Status(404, {"error": f"job {job_id} not found"})
    try:
        return do_cancel_job(job_id, request.user).to_json(raw_times=False)
    except JobAlreadyFinished as exc:
        return Status(409, {"error": str(exc)})
