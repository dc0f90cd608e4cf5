"""Celery tasks, one module per area; Celery's autodiscovery imports this package."""

from workers.tasks import liveness
from workers.tasks.deployments import probe_deployment, schedule_probes, scrape_deployments, verify_promotions
from workers.tasks.history import compact_metric_history, enforce_retention
from workers.tasks.jobs import fail_orphaned_jobs, resend_lost_queued_jobs, run_benchmark, run_job
from workers.tasks.notify import deliver_notification, sweep_deliveries
from workers.tasks.registry import fail_interrupted_validations, validate_model_version

__all__ = [
    "compact_metric_history",
    "deliver_notification",
    "enforce_retention",
    "fail_interrupted_validations",
    "fail_orphaned_jobs",
    "liveness",
    "probe_deployment",
    "resend_lost_queued_jobs",
    "run_benchmark",
    "run_job",
    "sweep_deliveries",
    "schedule_probes",
    "scrape_deployments",
    "validate_model_version",
    "verify_promotions",
]
