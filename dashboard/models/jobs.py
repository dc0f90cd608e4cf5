"""Jobs: benchmark (and later optimization) runs, their progress and results."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class JobKind(models.TextChoices):
    BENCHMARK = "benchmark", "Benchmark"
    OPTIMIZE = "optimize", "Optimize"
    AUTO_OPTIMIZE = "auto_optimize", "Auto-optimize"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(models.Model):
    kind = models.CharField(max_length=32, choices=JobKind.choices)
    model_name = models.CharField(max_length=200)
    # Lineage as a relation: the registered version a job ran on (None for a zoo model, or once deleted).
    model_version = models.ForeignKey(
        "dashboard.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    params = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress_percent = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, default="", blank=True, help_text="what the worker is doing now")
    result = models.JSONField(null=True, blank=True)
    log = models.TextField(default="", blank=True, help_text="one line per step the worker took")
    error = models.TextField(default="", blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    target_node = models.CharField(
        max_length=200, default="", blank=True, help_text='node asked for ("" = any node\'s CPU worker)'
    )
    queue = models.CharField(max_length=255, default="", blank=True, help_text="Celery queue it was sent to")
    node_name = models.CharField(max_length=200, default="", blank=True, help_text="node that ran it")
    worker_pid = models.IntegerField(null=True, blank=True, help_text="host PID of the process running it")
    worker_hostname = models.CharField(max_length=255, default="", blank=True, help_text="Celery worker")
    celery_task_id = models.CharField(max_length=64, default="", blank=True)
    # Set when an alert rule's action started the job (the alert links back through .jobs).
    alert = models.ForeignKey(
        "dashboard.Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    deployment = models.ForeignKey(
        "dashboard.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.model_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def flagged_verdict(self) -> str:
        """ "regression", else "inconclusive", else "": what the jobs list flags. Reads the verdicts
        through .all() so a prefetch_related("regressions") serves it."""
        verdicts = {row.verdict for row in self.regressions.all()}
        return next((v for v in ("regression", "inconclusive") if v in verdicts), "")

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (or to now while running); None before it started."""
        if self.started_at is None:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def queued_s(self) -> float | None:
        """Seconds it waited in the queue before a worker took it."""
        return (self.started_at - self.created_at).total_seconds() if self.started_at else None

    @cached_property
    def result_summary(self) -> dict[str, Any] | None:
        from dashboard.results.summary import summarize

        return summarize(self.result)

    @property
    def is_partial(self) -> bool:
        return bool(self.result_summary and self.result_summary["partial"])

    def _common_json(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "kind": self.kind,
            "model": self.model_name,
            "params": self.params,
            "status": self.status,
            "progress": round(self.progress_percent, 1),
            "step": self.step,
            "error": self.error or None,
            # "regressions" keeps its meaning (flagged batch sizes); "verdicts" has every comparison.
            "regressions": [row.to_json() for row in self.regressions.all() if row.verdict == "regression"],
            "verdicts": [row.to_json() for row in self.regressions.all()],
            "node": self.node_name or None,
            "target_node": self.target_node or None,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_s": _round(self.duration_s),
            "partial": self.is_partial,
            # Set when an alert rule's action started it: the alert, and the deployment it optimizes.
            "alert": self.alert_id,
            "deployment": self.deployment.name if self.deployment_id else None,
        }

    def to_json(self, *, raw_times: bool = True) -> dict[str, Any]:
        """The job as GET /api/jobs/<id> shows it: the full result, with each run's raw
        ``times_ms`` unless ``raw_times`` is false."""
        from dashboard.results.summary import without_raw_times

        return {
            **self._common_json(),
            "log": self.log,
            "worker_pid": self.worker_pid,
            "result": self.result if raw_times else without_raw_times(self.result),
        }

    def summary_json(self) -> dict[str, Any]:
        """The job as lists show it (GET /api/jobs, the WebSocket): per point p50/p99, throughput,
        error and stop reason, and a headline; no raw times and no log."""
        return {**self._common_json(), "result": self.result_summary}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
