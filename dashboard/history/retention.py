"""Retention: delete history older than each tier keeps (settings HISTORY_RETENTION_*).

Whole blocks go at once, so a tier keeps up to one block more than its retention: an hour for raw
samples and 1-minute buckets, a day for 1-hour buckets."""

from __future__ import annotations

import time

from django.db.models import Exists, OuterRef

from dashboard.history.tiers import HOUR, MINUTE, RAW_BLOCK_S, RAW_RESOLUTION_S, retention_s
from dashboard.models import MetricSeries, RawBlock, RollupBlock


def enforce_retention(now_s: float | None = None) -> dict[str, int]:
    """Delete blocks that lie wholly before their tier's retention, then series left without data.
    Returns the number of rows deleted per table."""
    now_s = time.time() if now_s is None else now_s
    keep = retention_s()
    deleted = {
        "raw": _delete(RawBlock.objects.all(), now_s - keep[RAW_RESOLUTION_S], RAW_BLOCK_S),
        "rollup_1m": _delete(
            RollupBlock.objects.filter(resolution_s=MINUTE.resolution_s),
            now_s - keep[MINUTE.resolution_s],
            MINUTE.block_s,
        ),
        "rollup_1h": _delete(
            RollupBlock.objects.filter(resolution_s=HOUR.resolution_s),
            now_s - keep[HOUR.resolution_s],
            HOUR.block_s,
        ),
    }
    empty = MetricSeries.objects.filter(
        ~Exists(RawBlock.objects.filter(series=OuterRef("pk"))),
        ~Exists(RollupBlock.objects.filter(series=OuterRef("pk"))),
    )
    deleted["series"] = empty.delete()[0]
    return deleted


def _delete(blocks, cutoff_s: float, block_s: int) -> int:
    # A block ends at block_start_s + block_s; it goes when it ends at or before the cutoff.
    return blocks.filter(block_start_s__lte=int(cutoff_s) - block_s).delete()[0]
