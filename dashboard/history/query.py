"""Reading history: one series over a time range at a bounded number of points, and the catalog.

``series`` picks the coarsest resolution (1 h, 1 min, raw) that still gives the requested number
of points over the part of the range that holds data (a 30-day range over a 15-minute-old history
is read from the raw samples, not as one hourly point), falling back to a coarser one where a finer
tier no longer holds that part's start, and averages equal buckets down to at most that many points."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dashboard.history.codec import decode_buckets, decode_samples
from dashboard.history.rollup import reduce_by_key
from dashboard.history.tiers import (
    HOUR,
    MINUTE,
    RAW_BLOCK_S,
    RAW_RESOLUTION_S,
    ROLLUP_TIERS,
    RollupTier,
    retention_s,
)
from dashboard.models import MetricSeries, Node, RawBlock, RollupBlock, natural_order
from dashboard.models.history import HOST_DEVICE

DEFAULT_POINTS = 500
MAX_POINTS = 5000
DEFAULT_RANGE_S = 3600.0
MAX_RANGE_S = 400 * 86400.0
RESOLUTIONS_S = (RAW_RESOLUTION_S, MINUTE.resolution_s, HOUR.resolution_s)  # fine to coarse
TIER_NAMES = {RAW_RESOLUTION_S: "raw", MINUTE.resolution_s: "1m", HOUR.resolution_s: "1h"}


class HistoryQueryError(ValueError):
    """A query that cannot be answered; ``status`` is the HTTP status it maps to."""

    status = 400


class BadQuery(HistoryQueryError):
    status = 400


class NotFound(HistoryQueryError):
    status = 404


def parse_time(raw: str | float | None, name: str) -> float | None:
    """Epoch seconds from epoch seconds or ISO-8601 (a time without zone is UTC); None stays None."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = raw.strip()
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None:
            moment = _iso(text)
            if moment is None:
                raise BadQuery(
                    f"{name}={raw!r} is neither epoch seconds nor an ISO-8601 time (e.g. 2025-01-31T12:00:00Z)"
                )
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            value = moment.timestamp()
    if not math.isfinite(value):
        raise BadQuery(f"{name}={raw!r} is not a finite time")
    return value


def _iso(text: str) -> datetime | None:
    # An unescaped "+01:00" in a query string arrives as " 01:00".
    for candidate in (text, "+".join(text.rsplit(" ", 1))):
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    return None


def unit_of(metric: str) -> str:
    """The metric's unit from the sampler's METRIC_UNITS table, or "" where it has none."""
    from workers.sampler import sample

    units = getattr(sample, "METRIC_UNITS", None) or {}
    return str(units.get(metric, ""))


def series(
    node: str,
    metric: str,
    gpu: int | None = None,
    start: float | None = None,
    end: float | None = None,
    points: int = DEFAULT_POINTS,
    now: float | None = None,
) -> dict[str, Any]:
    """``{"node", "metric", "gpu", "unit", "resolution_s", "tier", "bucket_s", "start", "end",
    "first_ts", "points"}`` where points are ``[epoch_s, avg, min, max]``, oldest first, at most
    ``points`` of them.

    ``epoch_s`` is a bucket's start (a sample's time when raw samples are returned one by one);
    buckets without samples are left out. ``resolution_s`` is the tier read (1 = raw, 60, 3600;
    ``tier`` names it: "raw", "1m", "1h"), ``bucket_s`` the width of the returned buckets (0 when
    raw samples are returned as they are). ``start``/``end`` are the range asked for; ``first_ts``
    is the series' earliest sample in epoch seconds (see ``first_sample_s``), None when it has none,
    so a page can say that history starts inside the range.
    Raises BadQuery (400) or NotFound (404) with the reason."""
    now = time.time() if now is None else now
    if gpu is not None and gpu < 0:
        raise BadQuery(f"gpu={gpu} is not a GPU index (0 or more; leave gpu out for host metrics)")
    if not 1 <= points <= MAX_POINTS:
        raise BadQuery(f"points={points} is out of range: ask for 1 to {MAX_POINTS}")
    end = now if end is None else end
    start = end - DEFAULT_RANGE_S if start is None else start
    if start >= end:
        raise BadQuery("start must be before end")
    if end - start > MAX_RANGE_S:
        raise BadQuery(f"the range spans {(end - start) / 86400:.0f} days; at most 400 are served")
    row = _find_series(node, metric, gpu)
    first_ts = first_sample_s(row.pk)
    # The tier follows the span that holds data: before the first sample there is nothing to read.
    data_start = first_ts if first_ts is not None and start < first_ts < end else start
    resolution = _pick_resolution(end - data_start, points, data_start, now)
    origin = math.floor(data_start / resolution) * resolution
    bucket_s = resolution * max(1, math.ceil((end - origin) / (resolution * points)))
    if resolution == RAW_RESOLUTION_S:
        ts_s, count, total, low, high = _raw(row.pk, start, end)
        if len(ts_s) <= points:  # few enough to send one by one
            bucket_s = 0
    else:
        ts_s, count, total, low, high = _rollups(row.pk, resolution, origin, end)
    if bucket_s:
        keys, agg = reduce_by_key(((ts_s - origin) // bucket_s).astype(np.int64), count, total, low, high)
        ts_s, count, total, low, high = origin + keys * bucket_s, agg.count, agg.total, agg.low, agg.high
    avg = total / np.maximum(count, 1)
    table = np.column_stack([ts_s.astype(np.float64), _tidy(avg), _tidy(low), _tidy(high)])
    return {
        "node": node,
        "metric": metric,
        "gpu": gpu,
        "unit": unit_of(metric),
        "resolution_s": resolution,
        "tier": TIER_NAMES[resolution],
        "bucket_s": bucket_s,
        "start": start,
        "end": end,
        "first_ts": first_ts,
        "points": table.tolist(),
    }


def _find_series(node: str, metric: str, gpu: int | None) -> MetricSeries:
    node_row = Node.objects.filter(name=node).first()
    if node_row is None:
        raise NotFound(f"unknown node {node!r}")
    device = HOST_DEVICE if gpu is None else gpu
    found = list(MetricSeries.objects.filter(node=node_row, metric=metric))
    for row in found:
        if row.gpu_index == device:
            return row
    if not found:
        raise NotFound(f"node {node!r} has no history of metric {metric!r}")
    where = ", ".join("the host" if r.gpu is None else f"GPU {r.gpu}" for r in found)
    asked = "the host (no gpu given)" if gpu is None else f"GPU {gpu}"
    raise NotFound(f"node {node!r} has no {metric!r} for {asked}; it has it for {where}")


def first_sample_s(series_id: int) -> float | None:
    """The series' earliest sample in epoch seconds: exact where the raw samples still hold it,
    else the start of its 1-minute bucket, else of its 1-hour bucket (the longest-kept tier,
    merged into on every flush, so it bounds the answer). None for a series without data."""
    hour = _first_bucket_s(series_id, HOUR)
    raw = (
        RawBlock.objects.filter(series_id=series_id)
        .order_by("block_start_s", "first_ts_ms")
        .values_list("first_ts_ms", flat=True)
        .first()
    )
    if hour is None:  # rollups not written (yet): the raw samples are all there is
        return None if raw is None else raw / 1000.0
    # A finer tier's earliest point counts only where it lies in the first hour bucket: retention
    # has dropped everything the finer tier held before that.
    if raw is not None and raw / 1000.0 < hour + HOUR.resolution_s:
        return raw / 1000.0
    minute = _first_bucket_s(series_id, MINUTE)
    if minute is not None and minute < hour + HOUR.resolution_s:
        return float(minute)
    return float(hour)


def _first_bucket_s(series_id: int, tier: RollupTier) -> int | None:
    blocks = (
        RollupBlock.objects.filter(series_id=series_id, resolution_s=tier.resolution_s)
        .order_by("block_start_s")
        .values_list("block_start_s", "data")
    )
    for block_start, blob in blocks.iterator(chunk_size=4):
        filled = np.flatnonzero(decode_buckets(blob).count > 0)
        if len(filled):
            return int(block_start + int(filled[0]) * tier.resolution_s)
    return None


def _pick_resolution(span_s: float, points: int, start: float, now: float) -> int:
    resolution = RAW_RESOLUTION_S
    for tier in reversed(ROLLUP_TIERS):  # coarsest first
        if span_s / tier.resolution_s >= points:
            resolution = tier.resolution_s
            break
    keep = retention_s()
    # A tier that has already dropped the range's start would show a truncated chart: go coarser.
    while resolution != RESOLUTIONS_S[-1] and start < now - keep[resolution]:
        resolution = RESOLUTIONS_S[RESOLUTIONS_S.index(resolution) + 1]
    return resolution


def raw_points(
    node: str, metric: str, gpu: int | None, start: float, end: float
) -> list[tuple[float, float]]:
    """The raw samples ``(epoch_s, value)`` of one series in [start, end), oldest first; empty when
    the node or series has none (raw samples are kept for the retention's raw window only)."""
    try:
        found = _find_series(node, metric, gpu)
    except NotFound:
        return []
    ts, _count, values, _low, _high = _raw(found.pk, start, end)
    return list(zip(ts.tolist(), values.tolist(), strict=True))


def _raw(series_id: int, start: float, end: float):
    start_ms, end_ms = start * 1000.0, end * 1000.0
    blobs = RawBlock.objects.filter(
        series_id=series_id,
        block_start_s__gte=math.floor(start / RAW_BLOCK_S) * RAW_BLOCK_S,
        block_start_s__lt=end,
        last_ts_ms__gte=math.floor(start_ms),
        first_ts_ms__lt=math.ceil(end_ms),
    ).values_list("data", flat=True)
    parts = [decode_samples(blob) for blob in blobs]
    if not parts:
        return _empty()
    ts_ms = np.concatenate([t for t, _ in parts])
    values = np.concatenate([v for _, v in parts])
    inside = (ts_ms >= start_ms) & (ts_ms < end_ms)
    ts_ms, values = ts_ms[inside], values[inside]
    order = np.argsort(ts_ms, kind="stable")
    ts_ms, values = ts_ms[order], values[order]
    return ts_ms / 1000.0, np.ones(len(values), np.uint32), values.astype(np.float64), values, values


def _rollups(series_id: int, resolution: int, origin: float, end: float):
    tier = MINUTE if resolution == MINUTE.resolution_s else HOUR
    blobs = RollupBlock.objects.filter(
        series_id=series_id,
        resolution_s=resolution,
        block_start_s__gte=math.floor(origin / tier.block_s) * tier.block_s,
        block_start_s__lt=end,
    ).values_list("block_start_s", "data")
    parts = []
    for block_start, blob in blobs:
        buckets = decode_buckets(blob)
        starts = block_start + np.arange(len(buckets.count), dtype=np.int64) * resolution
        keep = (buckets.count > 0) & (starts >= origin) & (starts < end)
        parts.append(
            (starts[keep], buckets.count[keep], buckets.total[keep], buckets.low[keep], buckets.high[keep])
        )
    if not parts:
        return _empty()
    columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
    order = np.argsort(columns[0], kind="stable")
    return tuple(column[order] for column in columns)


def _empty():
    return (
        np.zeros(0, np.float64),
        np.zeros(0, np.uint32),
        np.zeros(0, np.float64),
        np.zeros(0, np.float32),
        np.zeros(0, np.float32),
    )


def _tidy(values: np.ndarray) -> np.ndarray:
    """float32 precision, printed short: 37.3 rather than 37.29999923706055 (what is stored is
    float32, so more digits would be noise)."""
    return np.asarray(values, dtype=np.float32).astype(str).astype(np.float64)


def catalog() -> dict[str, Any]:
    """``{"nodes": [{"name", "online", "last_seen", "gpus", "metrics": [{"metric", "gpu", "unit"}]}]}``,
    every node, with the GPUs it reports and the series that have history."""
    per_node: dict[int, list[tuple[str, int]]] = {}
    for node_id, metric, gpu_index in MetricSeries.objects.order_by("gpu_index", "metric").values_list(
        "node_id", "metric", "gpu_index"
    ):
        per_node.setdefault(node_id, []).append((metric, gpu_index))
    nodes = []
    for node in natural_order(Node.objects.all()):
        entries = per_node.get(node.pk, [])
        gpus = {g for _, g in entries if g != HOST_DEVICE}
        for gpu in (node.info or {}).get("gpus") or []:
            if isinstance(gpu, dict) and isinstance(gpu.get("index"), int):
                gpus.add(gpu["index"])
        nodes.append(
            {
                "name": node.name,
                "online": node.is_online,
                "last_seen": node.last_seen.isoformat(),
                "gpus": sorted(gpus),
                "metrics": [
                    {"metric": m, "gpu": None if g == HOST_DEVICE else g, "unit": unit_of(m)}
                    for m, g in entries
                ],
            }
        )
    return {"nodes": nodes}
