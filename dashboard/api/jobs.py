"""/api/jobs: submit benchmark (and later optimization) jobs and follow them."""

from __future__ import annotations

from typing import Any

from ninja import Field, Router, Schema, Status

from dashboard.actions import JobAlreadyFinished, do_cancel_job, do_submit_job
from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.jobspec import PARAMS_BY_KIND
from dashboard.models import Job

router = Router(tags=["jobs"])


class JobIn(Schema):
    # Documented as the registry's kinds; checked by validate_submission, whose 400 lists them.
    kind: str = Field(json_schema_extra={"enum": list(PARAMS_BY_KIND)})
    model: str = Field(min_length=1, description="a zoo name, or a registered model's name[@version]")
    node: str | None = Field(
        default=None, description="a registered node; empty or null: any node (CPU jobs)"
    )
    params: dict[str, Any] = {}


class JobCreated(Schema):
    id: int
    status: str


class JobOut(Schema):
    id: int
    kind: str
    model: str
    params: dict[str, Any]
    status: str
    progress: float
    step: str
    log: str
    result: dict[str, Any] | None
    error: str | None
    node: str | None
    target_node: str | None
    regressions: list[dict[str, Any]] = []
    created_at: str
    started_at: str | None
    finished_at: str | None


@router.post("", response={201: JobCreated, **WRITE_ERRORS})
def submit_job(request, payload: JobIn):
    """Queue a job. Example: {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [32], "iterations": 200}}."""
    job = do_submit_job(request.user, payload.kind, payload.model, payload.params, payload.node)
    return Status(201, {"id": job.pk, "status": job.status})


@router.get("/{job_id}", response={200: JobOut, 401: Error, 404: Error})
def get_job(request, job_id: int):
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return Status(404, {"error": f"job {job_id} not found"})
    return job.to_json()


@router.get("", response={200: list[JobOut], 401: Error})
def list_jobs(request, limit: int = 50):
    """The newest jobs first."""
    limit = max(1, min(limit, 500))
    return [job.to_json() for job in Job.objects.prefetch_related("regressions")[:limit]]


@router.post("/{job_id}/cancel", response={200: JobOut, **WRITE_ERRORS, 404: Error, 409: Error})
def cancel_job(request, job_id: int):
    """Cancel a queued or running job; 409 if it has already ended."""
    if not Job.objects.filter(pk=job_id).exists():
        return Status(404, {"error": f"job {job_id} not found"})
    try:
        return do_cancel_job(job_id, request.user).to_json()
    except JobAlreadyFinished as exc:
        return Status(409, {"error": str(exc)})
