"""Who an API request is: a bearer token, or a logged-in session (with its CSRF token).

A request with neither gets a 401 {"error"} before anything else is looked at, so an
unauthenticated POST is told to authenticate rather than that its CSRF check failed."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, JsonResponse
from ninja.security import HttpBearer, SessionAuth

from dashboard.models import ApiToken, TokenRefused

UNAUTHENTICATED = (
    "authentication required: log in, or send Authorization: Bearer <token> (see `perfmon token`)"
)


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        try:
            found = ApiToken.verify(token)
        except TokenRefused as exc:
            request.perfmon_auth_problem = str(exc)  # the 401 says why, not only that
            return None
        user = found.acting_user()
        request.user = user
        request.perfmon_token = found  # what an endpoint may check beyond the role (an agent's node)
        return user


class SessionCookie(SessionAuth):
    """Django's session, with its CSRF check only once there is a session to protect."""

    def _get_key(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)


def unauthenticated_message(request: HttpRequest) -> str:
    problem = getattr(request, "perfmon_auth_problem", "")
    return f"{problem}; {UNAUTHENTICATED}" if problem else UNAUTHENTICATED


def login_or_token_required(view):
    """For the OpenAPI document and the docs page: what the API does is for its users only.

    A browser without a session goes to the login page; a client that asked for JSON gets a 401."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            header = request.headers.get("Authorization", "")
            scheme, _, raw = header.partition(" ")
            user = None
            if scheme.lower() == "bearer" and raw.strip():
                user = BearerToken().authenticate(request, raw.strip())
            if user is None:
                if request.path.endswith(".json"):
                    return JsonResponse({"error": unauthenticated_message(request)}, status=401)
                return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return guarded
