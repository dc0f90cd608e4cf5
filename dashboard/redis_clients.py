"""The Django side's direct Redis clients (latest samples, worker liveness, the alert rules' stream),
one per REDIS_URL and socket timeout, made on first use: a client owns a connection pool, so
making one per call would pay a pool and a connect each time. Each caller picks its timeout for
what a stalled Redis may cost it. A changed REDIS_URL (tests do this) gets clients of its own."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()


def redis_client(timeout_s: float) -> redis.Redis:
    """A client on REDIS_URL whose connects and reads give up after ``timeout_s`` seconds."""
    key = (settings.REDIS_URL, float(timeout_s))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = redis.Redis.from_url(
                    key[0], socket_timeout=timeout_s, socket_connect_timeout=timeout_s
                )
                _clients[key] = client
    return client
