"""Results: the verdict on each batch size of a benchmark compared with the previous like-for-like one."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from dashboard.models.jobs import Job


class Verdict(models.TextChoices):
    # Slower by more than the threshold, and the medians' 95% CIs do not overlap.
    REGRESSION = "regression", "regression"
    # Faster by more than the threshold, and the CIs do not overlap.
    IMPROVEMENT = "improvement", "improvement"
    # The medians differ by more than the threshold, but a run was unstable or the CIs overlap.
    INCONCLUSIVE = "inconclusive", "inconclusive"
    NO_CHANGE = "no_change", "no change"


class Regression(models.Model):
    """The verdict on one batch size of a job against its baseline (the name predates verdicts other
    than "regression"; the rows, their API key and related_name stay as they were).

    The baseline is the most recent earlier succeeded benchmark with the same comparison key
    (``basis``: model@version, node, device, precision, threads, runtime, torch version, device name)
    and batch size; dashboard.results.regressions.record_regressions finds it and judges."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="regressions")
    # SET_NULL: deleting an old job must not erase the warning on the new one.
    baseline_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    batch_size = models.PositiveIntegerField()
    # Rows from before verdicts were all regressions.
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.REGRESSION)
    baseline_p50_ms = models.FloatField()
    p50_ms = models.FloatField()
    # The 95% confidence intervals of both medians; None where the run had too few samples for one.
    baseline_ci95_low_ms = models.FloatField(null=True, blank=True)
    baseline_ci95_high_ms = models.FloatField(null=True, blank=True)
    ci95_low_ms = models.FloatField(null=True, blank=True)
    ci95_high_ms = models.FloatField(null=True, blank=True)
    ratio = models.FloatField(help_text="p50_ms / baseline_p50_ms")
    threshold = models.FloatField(help_text="the fraction in force when it was recorded (0.10 = +10%)")
    # What made the two runs comparable: {"model", "node", "device", "precision", "threads", "runtime",
    # "torch_version", "device_name"}.
    basis = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, help_text="why this verdict, in words")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "batch_size"]
        constraints = [models.UniqueConstraint(fields=["job", "batch_size"], name="one_regression_per_batch")]

    def __str__(self) -> str:
        return f"job #{self.job_id} batch {self.batch_size}: {self.verdict}, p50 {self.percent_slower:+.1f}%"

    @property
    def percent_slower(self) -> float:
        """How much slower the p50 is than the baseline's, in percent (15.0 = 15% slower, -20.0 = faster)."""
        return (self.ratio - 1.0) * 100.0

    @property
    def parent_label(self) -> str:
        """ "name@N" when the baseline is the parent version's result (lineage), else ""."""
        b = self.basis or {}
        return str(b.get("baseline_model") or "") if b.get("via") == "parent" else ""

    @property
    def basis_text(self) -> str:
        """The comparison key in words, for the banner: "SimpleModel, node a, cpu, fp32, 1 thread, ..."."""
        b = self.basis or {}
        threads = b.get("threads")
        parent = b.get("via") == "parent"  # model and runtime differ there: not "the same"
        parts = [
            None if parent else b.get("model"),
            f"node {b['node']}" if b.get("node") else None,
            b.get("device"),
            b.get("precision"),
            f"{threads} thread{'s' if threads != 1 else ''}" if threads is not None else None,
            None if parent else b.get("runtime"),
            f"torch {b['torch_version']}" if b.get("torch_version") else None,
            b.get("device_name"),
        ]
        return ", ".join(str(p) for p in parts if p)

    def to_json(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "verdict": self.verdict,
            "baseline_job": self.baseline_job_id,
            "baseline_p50_ms": self.baseline_p50_ms,
            "baseline_ci95_ms": _ci(self.baseline_ci95_low_ms, self.baseline_ci95_high_ms),
            "p50_ms": self.p50_ms,
            "ci95_ms": _ci(self.ci95_low_ms, self.ci95_high_ms),
            "ratio": self.ratio,
            "threshold": self.threshold,
            "basis": self.basis,
            "reason": self.reason,
        }


def _ci(low: float | None, high: float | None) -> list[float] | None:
    return [low, high] if low is not None and high is not None else None
