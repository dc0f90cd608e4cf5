"""Results: regressions found when a benchmark's figures are compared with the previous ones."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from dashboard.models.jobs import Job


class Regression(models.Model):
    """One batch size of a job whose p50 latency is worse than its baseline's by more than the threshold.

    The baseline is the most recent earlier succeeded benchmark of the same model, node, device,
    precision and batch size (dashboard.results.regressions.record_regressions finds it)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="regressions")
    # SET_NULL: deleting an old job must not erase the warning on the new one.
    baseline_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    batch_size = models.PositiveIntegerField()
    baseline_p50_ms = models.FloatField()
    p50_ms = models.FloatField()
    ratio = models.FloatField(help_text="p50_ms / baseline_p50_ms")
    threshold = models.FloatField(help_text="the fraction in force when it was recorded (0.10 = +10%)")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "batch_size"]
        constraints = [models.UniqueConstraint(fields=["job", "batch_size"], name="one_regression_per_batch")]

    def __str__(self) -> str:
        return f"job #{self.job_id} batch {self.batch_size}: p50 {self.percent_slower:+.1f}%"

    @property
    def percent_slower(self) -> float:
        """How much slower the p50 is than the baseline's, in percent (15.0 = 15% slower)."""
        return (self.ratio - 1.0) * 100.0

    def to_json(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "baseline_job": self.baseline_job_id,
            "baseline_p50_ms": self.baseline_p50_ms,
            "p50_ms": self.p50_ms,
            "ratio": self.ratio,
            "threshold": self.threshold,
        }
