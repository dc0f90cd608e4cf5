"""Compaction: merge the small raw blocks each flush appends into one block per series per hour.

A flush every 10 s leaves 360 blocks an hour per series, each carrying row and compression
overhead; once the hour is over they are merged into one, which brings a sample down to a few
bytes on disk. Runs from a Celery beat task; safe to run concurrently with writers (it deletes
only the rows it merged, so a block written meanwhile is merged by the next run)."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
from django.db import transaction
from django.db.models import Count

from dashboard.history.codec import decode_samples, encode_samples
from dashboard.history.tiers import RAW_BLOCK_S
from dashboard.models import RawBlock

_IN_CHUNK = 500


def compact_raw_blocks(now_s: float | None = None, settle_s: float = 120.0, max_groups: int = 20_000) -> int:
    """Merge the blocks of every (series, hour) that ended at least ``settle_s`` ago and has more
    than one block; at most ``max_groups`` groups a run. Returns the number of groups merged."""
    now_s = time.time() if now_s is None else now_s
    closed_before = int((now_s - settle_s) // RAW_BLOCK_S * RAW_BLOCK_S) - RAW_BLOCK_S
    groups = (
        RawBlock.objects.filter(block_start_s__lte=closed_before)
        .values_list("block_start_s", "series_id")
        .annotate(blocks=Count("id"))
        .filter(blocks__gt=1)
        .order_by()[:max_groups]
    )
    by_hour: dict[int, list[int]] = defaultdict(list)
    for block_start, series_id, _blocks in groups:
        by_hour[block_start].append(series_id)
    merged = 0
    for block_start, series_ids in sorted(by_hour.items()):
        for i in range(0, len(series_ids), _IN_CHUNK):
            merged += _compact_hour(block_start, series_ids[i : i + _IN_CHUNK])
    return merged


def _compact_hour(block_start: int, series_ids: list[int]) -> int:
    with transaction.atomic():
        rows = RawBlock.objects.filter(block_start_s=block_start, series_id__in=series_ids).values_list(
            "id", "series_id", "data"
        )
        per_series: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for row_id, series_id, data in rows:
            per_series[series_id].append((row_id, data))
        replaced: list[int] = []
        new_rows: list[RawBlock] = []
        for series_id, blocks in per_series.items():
            if len(blocks) < 2:
                continue
            decoded = [decode_samples(data) for _, data in blocks]
            ts = np.concatenate([t for t, _ in decoded])
            values = np.concatenate([v for _, v in decoded])
            order = np.argsort(ts, kind="stable")
            ts, values = ts[order], values[order]
            # A flush retried after its commit was lost in transit writes the same samples twice.
            first = np.r_[True, ts[1:] != ts[:-1]]
            ts, values = ts[first], values[first]
            new_rows.append(
                RawBlock(
                    series_id=series_id,
                    block_start_s=block_start,
                    first_ts_ms=int(ts[0]),
                    last_ts_ms=int(ts[-1]),
                    sample_count=len(ts),
                    data=encode_samples(ts, values, level=9),
                )
            )
            replaced.extend(row_id for row_id, _ in blocks)
        for i in range(0, len(replaced), _IN_CHUNK):
            RawBlock.objects.filter(id__in=replaced[i : i + _IN_CHUNK]).delete()
        RawBlock.objects.bulk_create(new_rows)
    return len(new_rows)
