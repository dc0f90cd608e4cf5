"""Error pages that say what went wrong instead of a bare "Server Error (500)"."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error as django_server_error


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a 503 page when the database is unreachable, Django's 500 page otherwise.

    Django calls this while handling the uncaught exception, so sys.exc_info() names it. A refusing
    database fails in the session or auth middleware before any view runs (SessionStore loading
    the session), where no view or middleware `process_exception` sees it: only this handler does,
    for pages as for the API's own 503 (dashboard.api._database_away)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        # Rendered without the request: the context processors would read the session and the
        # user, i.e. the database, again.
        body = render_to_string("503.html")
        return HttpResponse(body, status=503, headers={"Retry-After": "10"})
    return django_server_error(request)
