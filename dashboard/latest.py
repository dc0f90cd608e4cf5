"""The latest sample of every node, kept in Redis for readers that need "now" (the /metrics export).

Each node's latest NodeSample JSON lives under ``perfmon:latest:<node>`` and expires after
LATEST_TTL_S, so a node that stops sampling drops out by itself; nothing has to delete it.
Writes come from the sampler daemon once a tick (through dashboard.tick_publisher, in the same Redis
pipeline as the tick's live pushes); reads from whoever wants every node at once."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from dashboard.redis_clients import redis_client

log = logging.getLogger(__name__)

KEY_PREFIX = "perfmon:latest:"
# Long enough to ride out a few missed ticks at the slowest rate (0.1 Hz), short enough that a dead
# node disappears from the export within a minute.
LATEST_TTL_S = 60
# Keys per SCAN round trip and per MGET; bounds the size of one reply with hundreds of nodes.
BATCH = 500

# store_latest runs every tick: log a Redis outage once when it starts and once when it ends.
_store_failing = False


class LatestUnavailable(Exception):
    """The latest samples could not be read from Redis (down, unreachable or misbehaving)."""


def _client() -> redis.Redis:
    # Short timeouts: a stalled Redis must not stall the sampler's tick or a scrape.
    return redis_client(2.0)


def key_for(node: str) -> str:
    return KEY_PREFIX + node


def store_latest(sample: dict[str, Any]) -> None:
    """Store ``sample`` (NodeSample.to_json()) as its node's latest, expiring after LATEST_TTL_S.

    Never raises: a Redis outage or an unserialisable sample is logged and the call returns, so the
    sampler keeps sampling."""
    global _store_failing
    node = sample.get("node") if isinstance(sample, dict) else None
    if not isinstance(node, str) or not node:
        log.warning("not storing a latest sample without a node name: %r", type(sample).__name__)
        return
    try:
        payload = json.dumps(sample, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        log.warning("could not serialise the latest sample of %r: %s", node, exc)
        return
    try:
        _client().set(key_for(node), payload, ex=LATEST_TTL_S)
    except (redis.RedisError, OSError) as exc:
        if not _store_failing:
            log.warning("could not store the latest sample of %r in Redis: %s", node, exc)
        _store_failing = True
        return
    if _store_failing:
        log.info("storing latest samples in Redis again")
        _store_failing = False


def load_latest() -> dict[str, dict[str, Any]]:
    """``{node: sample}`` for every node whose latest sample has not expired.

    Uses SCAN + MGET (never KEYS, which blocks Redis on a big keyspace). A value that is not a JSON
    object is skipped and logged. Raises LatestUnavailable if Redis cannot be read."""
    try:
        client = _client()
        keys = list(client.scan_iter(match=KEY_PREFIX + "*", count=BATCH))
        raw_values: list[bytes | None] = []
        for start in range(0, len(keys), BATCH):
            raw_values.extend(client.mget(keys[start : start + BATCH]))
    except (redis.RedisError, OSError) as exc:
        raise LatestUnavailable(f"cannot read the latest samples from Redis: {exc}") from exc

    samples: dict[str, dict[str, Any]] = {}
    for key, raw in zip(keys, raw_values, strict=True):
        if raw is None:  # expired between SCAN and MGET
            continue
        node = key.decode(errors="replace")[len(KEY_PREFIX) :]
        try:
            sample = json.loads(raw)
        except ValueError as exc:
            log.warning("skipping an unreadable latest sample of %r: %s", node, exc)
            continue
        if isinstance(sample, dict):
            samples[node] = sample
    return samples
