"""Celery tasks, one module per area; Celery's autodiscovery imports this package."""

from workers.tasks.jobs import fail_orphaned_jobs, run_benchmark

__all__ = ["fail_orphaned_jobs", "run_benchmark"]
