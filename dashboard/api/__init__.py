"""The public REST API (django-ninja; OpenAPI at /api/openapi.json, docs at /api/docs).

Every endpoint, the OpenAPI document and the docs need a user: a session cookie (with its CSRF
token for writes) or `Authorization: Bearer <token>`; without one, 401. Writes need the operator
role (403 otherwise, see dashboard.permissions). JSON bodies must be `application/json` in UTF-8
(415 otherwise). Every 4xx answer has one shape: {"error": "<what is wrong>"}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from ninja.errors import AuthenticationError, HttpError, ValidationError

from dashboard.api.auth import BearerToken, SessionCookie, login_or_token_required, unauthenticated_message
from dashboard.api.docs import LocalSwagger
from dashboard.api.openapi import PerfmonAPI
from dashboard.api.parser import StrictJsonParser
from dashboard.jobspec import InvalidJob

api = PerfmonAPI(
    title="perfmon API",
    version="1",
    auth=[BearerToken(), SessionCookie()],
    urls_namespace="api",
    parser=StrictJsonParser(),
    docs_decorator=login_or_token_required,
    docs=LocalSwagger(),  # Swagger UI from static/vendor/: the default one comes from a CDN
)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return api.create_response(request, {"error": unauthenticated_message(request)}, status=401)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc: PermissionDenied):
    return api.create_response(request, {"error": str(exc) or "permission denied"}, status=403)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE (file uploads are streamed
    # and do not count); without this handler the client would get Django's HTML 400 page.
    return api.create_response(request, {"error": f"request body too large: {exc}"}, status=400)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    return api.create_response(request, {"error": _describe(exc.errors)}, status=400)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    # ninja wraps what the body parser raised in a bare "Cannot parse request body" 400.
    if isinstance(exc.__cause__, HttpError):
        exc = exc.__cause__
    elif isinstance(exc.__cause__, ValueError):
        return api.create_response(request, {"error": f"malformed JSON: {exc.__cause__}"}, status=400)
    return api.create_response(request, {"error": str(exc)}, status=exc.status_code)


@api.exception_handler(InvalidJob)
def _invalid_job(request, exc: InvalidJob):
    return api.create_response(request, {"error": str(exc)}, status=400)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_away(request, exc):
    # The database restarting: say so and that a retry will do, instead of a bare 500.
    body = {"error": "the database is unavailable right now; nothing was stored, try again shortly"}
    return api.create_response(request, body, status=503)


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
from dashboard.api import channels  # noqa: E402

api.add_router("/channels", channels.router)
from dashboard.api import datasets  # noqa: E402

api.add_router("/datasets", datasets.router)
from dashboard.api import deployments  # noqa: E402

api.add_router("/deployments", deployments.router)
api.add_router("/ingest", deployments.ingest_router)
from dashboard.api import alert_actions  # noqa: E402

api.add_router("/alerts", alert_actions.router)
from dashboard.api import alerts, rules  # noqa: E402

api.add_router("/rules", rules.router)
api.add_router("/alerts", alerts.router)
api.add_router("/silences", alerts.silences_router)
