"""The public REST API (django-ninja; OpenAPI at /api/openapi.json, docs at /api/docs).

Every endpoint needs a user: a session cookie or `Authorization: Bearer <token>`.
Every 4xx answer has one shape: {"error": "<what is wrong>"}."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, django_auth

from dashboard.api.docs import LocalSwagger
from dashboard.jobspec import InvalidJob
from dashboard.models import ApiToken


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="perfmon API",
    version="1",
    auth=[BearerToken(), django_auth],
    urls_namespace="api",
    docs=LocalSwagger(),  # Swagger UI from static/vendor/: the default one comes from a CDN
)


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


from dashboard.api import jobs, nodes  # noqa: E402  (routers import Error from errors.py, not from here)

api.add_router("/jobs", jobs.router)
api.add_router("/nodes", nodes.router)
from dashboard.api import metrics  # noqa: E402

api.add_router("/metrics", metrics.router)
from dashboard.api import models  # noqa: E402

api.add_router("/models", models.router)
from dashboard.api import passes  # noqa: E402

api.add_router("/passes", passes.router)
