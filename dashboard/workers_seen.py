"""Which Celery workers are alive, from the liveness each worker writes to Redis.

A thread in every worker's main process (workers.tasks.liveness) writes ``perfmon:worker:<hostname>``
every WORKER_BEAT_S with an expiry of WORKER_STALE_AFTER_S. Readers (/healthz, the orphaned-job
sweep) look at the keys instead of pinging: a synchronous ping waits for a reply that a busy
concurrency-1 worker may send late, which made health flap while a benchmark ran."""

from __future__ import annotations

import json
import time

import redis
from django.conf import settings

from dashboard.redis_clients import redis_client

KEY_PREFIX = "perfmon:worker:"
# Health answers within a second or two even when Redis is stalled.
READ_TIMEOUT_S = 1.0


def _client() -> redis.Redis:
    return redis_client(READ_TIMEOUT_S)


def record_alive(hostname: str, pid: int, since: float) -> None:
    """Say that worker `hostname` (main process `pid`, started at epoch `since`) is alive now."""
    record = {"pid": pid, "since": since, "seen": time.time()}
    _client().set(KEY_PREFIX + hostname, json.dumps(record), ex=max(1, round(settings.WORKER_STALE_AFTER_S)))


def forget(hostname: str) -> None:
    _client().delete(KEY_PREFIX + hostname)


def alive_workers() -> dict[str, dict]:
    """{hostname: {"pid", "since", "seen"}} of every worker seen within WORKER_STALE_AFTER_S.

    Raises redis.RedisError (or OSError) when Redis cannot be read."""
    client = _client()
    keys = sorted(client.scan_iter(match=KEY_PREFIX + "*", count=500))
    if not keys:
        return {}
    workers = {}
    for key, raw in zip(keys, client.mget(keys), strict=True):
        if raw is None:  # expired between SCAN and MGET
            continue
        try:
            workers[key.decode()[len(KEY_PREFIX) :]] = json.loads(raw)
        except ValueError:
            continue
    return workers
