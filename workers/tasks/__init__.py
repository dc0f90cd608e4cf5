"""Celery tasks, one module per area; Celery's autodiscovery imports this package."""

from workers.tasks.history import compact_metric_history, enforce_retention
from workers.tasks.jobs import fail_orphaned_jobs, run_benchmark

__all__ = [
    "compact_metric_history",
    "enforce_retention",
    "fail_orphaned_jobs",
    "run_benchmark",
]
