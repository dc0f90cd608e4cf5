"""The observations feed: every data source publishes what it stored, and the rule evaluator reads it.

A call appends ONE entry to the Redis stream ``perfmon:observations`` carrying all of the call's
points, so a sampler tick of 80 GPU readings or an ingest of 10,000 latency samples is one XADD.
The stream is trimmed approximately (MAXLEN ~) so it never grows without bound; the history holds
the data for good, the stream only carries it to the evaluator.

Publishing never raises into the caller and never waits long: a Redis that is down or stalled
costs at most SOCKET_TIMEOUT_S, the points are counted in ``dropped`` and logged once per outage."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence

import redis

from dashboard.redis_clients import redis_client

log = logging.getLogger(__name__)

STREAM = "perfmon:observations"
# About two minutes of the benchmark's 1,000 samples/s in 1-second batches; the evaluator reads
# within milliseconds, so this only matters while it is down (and then old data is not wanted).
MAXLEN = 20_000
SOCKET_TIMEOUT_S = 0.5

# (node, metric, gpu index or None, sample time in epoch seconds, value)
Point = tuple[str, str, "int | None", float, float]

dropped = 0  # points not published because Redis failed; the history still has them
published = 0

_failing = False


def _client() -> redis.Redis:
    return redis_client(SOCKET_TIMEOUT_S)


def encode(points: Iterable[Point]) -> bytes:
    """The entry's payload: a compact JSON list of [node, metric, gpu, ts_s, value]; non-finite
    values are left out (they cannot cross a threshold).

    Built as text rather than through ``json.dumps`` of a list per point: the sampler sends a point
    per reading every tick, and that was ~2.5 µs a point. Each (node, metric, gpu) prefix is encoded
    by json once and remembered, floats are written by ``repr`` exactly as json writes them, so the
    bytes are what ``json.dumps(rows, separators=(",", ":"))`` gives."""
    rows = []
    last_ts, ts_text = None, ""
    for node, metric, gpu, ts, value in points:
        if value is None or not math.isfinite(value) or not math.isfinite(ts):
            continue
        prefix = _prefixes.get((node, metric, gpu))
        if prefix is None:
            if len(_prefixes) >= _PREFIXES_MAX:  # the ingest API may name any number of series
                _prefixes.clear()
            prefix = _prefixes[node, metric, gpu] = json.dumps([node, metric, gpu], separators=(",", ":"))[
                :-1
            ]
        if ts != last_ts:  # one tick's points share their time
            last_ts, ts_text = ts, repr(round(float(ts), 6))
        rows.append(f"{prefix},{ts_text},{float(value)!r}]")
    return ("[" + ",".join(rows) + "]").encode()


_prefixes: dict[tuple, str] = {}
_PREFIXES_MAX = 50_000


def decode(payload: bytes | str) -> list[Point]:
    """The points of one entry; the inverse of ``encode``."""
    return [(r[0], r[1], r[2], float(r[3]), float(r[4])) for r in json.loads(payload)]


def publish_observations(points: Sequence[Point]) -> None:
    """Append ``points`` to the observations stream as one entry. Never raises."""
    if not points:
        return
    try:
        append_observations(_client(), points)
    except Exception as exc:  # Redis away, stalled, or a point that is not numbers
        count_dropped(points, exc)
        return
    count_published(points)


def append_observations(client, points: Sequence[Point]) -> None:
    """The XADD of one entry, on a client or a pipeline (the sampler sends it with its tick)."""
    client.xadd(STREAM, entry_fields(points), maxlen=MAXLEN, approximate=True)


def entry_fields(points: Sequence[Point]) -> dict[str, bytes | str]:
    """The fields of one stream entry (``XADD STREAM MAXLEN ~ MAXLEN * p ... t ...``)."""
    # "t": when it was published, so the evaluator (and bench/rules.py) can measure its lag.
    return {"p": encode(points), "t": repr(time.time())}


def count_published(points: Sequence[Point] | None) -> None:
    global published, _failing
    published += len(points or ())
    if points and _failing:
        log.info("publishing observations again (%d dropped meanwhile)", dropped)
        _failing = False


def count_dropped(points: Sequence[Point] | None, exc: Exception | None = None) -> None:
    """Points that could not be published; the history still has them."""
    global dropped, _failing
    if not points:
        return
    dropped += len(points)
    if not _failing:
        log.warning(
            "could not publish %d observations (alert rules will not see them): %s",
            len(points),
            exc or "Redis away",
        )
    _failing = True


def sample_points(sample) -> list[Point]:
    """The points of one sampler tick (a workers.sampler NodeSample): exactly the (node, metric,
    gpu) keys and values the history writer stores, from the same NodeSample.metrics()."""
    return [(sample.node, metric, gpu, sample.ts, value) for metric, gpu, value in sample.metrics()]
