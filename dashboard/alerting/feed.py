"""The observation feed: every data source (sampler, ingest, probes, scrapes) publishes what it has
just stored, so the alert evaluator sees data as it arrives rather than on a schedule.

A stand-in written by the deployments work with the interface agreed for issue #10; the rules work
owns this module and its version replaces this one."""

from __future__ import annotations

import json
import logging
import threading

import redis
from django.conf import settings

log = logging.getLogger(__name__)

STREAM = "perfmon:observations"
MAXLEN = 100_000  # approximate: the evaluator reads as data arrives, so the stream stays short
SOCKET_TIMEOUT_S = 0.5

# (node, metric, GPU index or None, epoch seconds, value)
Point = tuple[str, str, "int | None", float, float]

dropped = 0  # points that could not be published (Redis away); the history still has them
_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    url = settings.REDIS_URL
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
            )
        return _clients[url]


def publish_observations(points: list[Point]) -> None:
    """XADD the points to ``perfmon:observations`` as one entry; never raises into the caller."""
    global dropped
    if not points:
        return
    try:
        payload = json.dumps([[n, m, g, float(t), float(v)] for n, m, g, t, v in points])
        _client().xadd(STREAM, {"points": payload}, maxlen=MAXLEN, approximate=True)
    except Exception as exc:  # Redis away or slow: alerting lags, the caller's write stands
        dropped += len(points)
        log.warning(
            "observations: could not publish %d points (%d dropped so far): %s", len(points), dropped, exc
        )
