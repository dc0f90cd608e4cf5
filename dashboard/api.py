"""The public REST API (django-ninja; OpenAPI at /api/openapi.json, docs at /api/docs).

Every endpoint needs a user: a session cookie or `Authorization: Bearer <token>`.
Every 4xx answer has one shape: {"error": "<what is wrong>"}."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, django_auth

from dashboard.actions import do_submit_job
from dashboard.jobspec import InvalidJob
from dashboard.models import ApiToken, Job


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(title="perfmon API", version="1", auth=[BearerToken(), django_auth], urls_namespace="api")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    message = "authentication required: log in, or send Authorization: Bearer <token> (see `perfmon token`)"
    return api.create_response(request, {"error": message}, status=401)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    return api.create_response(request, {"error": _describe(exc.errors)}, status=400)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    message = str(exc)
    if isinstance(exc.__cause__, ValueError):  # ninja's "Cannot parse request body" hides the reason
        message = f"malformed JSON: {exc.__cause__}"
    return api.create_response(request, {"error": message}, status=exc.status_code)


@api.exception_handler(InvalidJob)
def _invalid_job(request, exc: InvalidJob):
    return api.create_response(request, {"error": str(exc)}, status=400)


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        # ninja prefixes locations with where the value came from ("body", "payload"); users sent JSON.
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "payload")]
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid" or "JSON" in message:
            return f"malformed JSON: {message}"
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(parts) or "invalid request"


class Error(Schema):
    error: str


class JobIn(Schema):
    kind: str
    model: str
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
    result: dict[str, Any] | None
    error: str | None
    node: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


@api.post("/jobs", response={201: JobCreated, 400: Error, 401: Error})
def submit_job(request, payload: JobIn):
    """Queue a job. Example: {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [32], "iterations": 200}}."""
    job = do_submit_job(request.user, payload.kind, payload.model, payload.params)
    return Status(201, {"id": job.pk, "status": job.status})


@api.get("/jobs/{job_id}", response={200: JobOut, 401: Error, 404: Error})
def get_job(request, job_id: int):
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return Status(404, {"error": f"job {job_id} not found"})
    return job.to_json()


@api.get("/jobs", response={200: list[JobOut], 401: Error})
def list_jobs(request, limit: int = 50):
    """The newest jobs first."""
    limit = max(1, min(limit, 500))
    return [job.to_json() for job in Job.objects.all()[:limit]]
