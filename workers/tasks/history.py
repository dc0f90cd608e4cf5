"""Celery beat tasks that keep metric history compact and within retention (maintenance queue)."""

from __future__ import annotations

from celery import shared_task

from dashboard.history.compaction import compact_raw_blocks
from dashboard.history.retention import enforce_retention as enforce_retention_now


@shared_task(name="perfmon.compact_metric_history", queue="maintenance")
def compact_metric_history() -> int:
    """Merge each closed hour's raw blocks into one per series; returns the groups merged."""
    return compact_raw_blocks()


@shared_task(name="perfmon.enforce_retention", queue="maintenance")
def enforce_retention() -> dict[str, int]:
    """Delete history past retention (settings HISTORY_RETENTION_*); returns rows deleted per table."""
    return enforce_retention_now()
