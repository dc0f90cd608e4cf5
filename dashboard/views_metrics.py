"""GET /metrics: every node's latest values in the Prometheus text format (see dashboard.prometheus).

Open to loopback callers and to `Authorization: Bearer <token>` (`perfmon token <user>`). A request
that came through a proxy (X-Forwarded-For, X-Real-IP or Forwarded present) is never taken as local,
because behind a reverse proxy on the same machine every request arrives from 127.0.0.1."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dashboard.latest import LatestUnavailable, load_latest
from dashboard.models import Alert, AlertState, ApiToken, Node
from dashboard.prometheus import AlertsCollector, LatestSamplesCollector

LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = JsonResponse(
            {
                "error": "authentication required: scrape from this machine, or send "
                "Authorization: Bearer <token> (see `perfmon token`)"
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="perfmon"'
        return response
    try:
        samples = load_latest()
    except LatestUnavailable as exc:
        return JsonResponse({"error": str(exc)}, status=503)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        LatestSamplesCollector(
            samples,
            now=time.time(),
            stale_after_s=settings.SAMPLER_STALE_AFTER_S,
            known_nodes=Node.objects.values_list("name", flat=True),
        )
    )
    registry.register(AlertsCollector(_active_alerts()))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _active_alerts():
    rows = Alert.objects.filter(is_open=True, state__in=[AlertState.PENDING, AlertState.FIRING])
    for labels, alert_state, pending_since in rows.values_list("labels", "state", "pending_since"):
        yield labels or {}, alert_state, pending_since.timestamp()


def _allowed(request: HttpRequest) -> bool:
    if request.META.get("REMOTE_ADDR") in LOOPBACK_ADDRESSES and not any(
        header in request.META for header in PROXY_HEADERS
    ):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return scheme.lower() == "bearer" and bool(token) and ApiToken.authenticate(token) is not None
