"""Deployments: a registered model version served somewhere, and the history of which version was
active when (promotions, rollbacks) with the verdict of each promotion's verification window."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Deployment(models.Model):
    """A model version served on a node with a serving config. Its latency reaches the history as
    series of the node ``node_name`` named by ``dashboard.deployments.series.latency_metric``."""

    name = models.SlugField(max_length=100, unique=True)
    active_version = models.ForeignKey(
        "dashboard.ModelVersion", on_delete=models.PROTECT, related_name="deployments"
    )
    node_name = models.CharField(max_length=200, help_text="node that serves it (and runs its probes)")
    params = models.JSONField(
        default=dict, help_text='serving config: {"device", "batch_size", "precision", "threads", "runtime"}'
    )
    probe_interval_s = models.PositiveIntegerField(default=60, help_text="0 = no probes")
    objective_ms = models.FloatField(null=True, blank=True, help_text="latency objective, drawn on the chart")
    endpoint_url = models.URLField(max_length=500, null=True, blank=True, help_text="HTTP inference URL")
    scrape = models.JSONField(
        null=True, blank=True, help_text='{"url", "format": "triton"|"torchserve"|"histogram", "model", ...}'
    )
    last_probe_at = models.DateTimeField(null=True, blank=True)
    last_scrape_at = models.DateTimeField(null=True, blank=True)
    # What a scrape needs from the previous one (counters are cumulative): {"ts", "counters": {...}}.
    scrape_state = models.JSONField(null=True, blank=True)
    # The last probe's outcome: {"at", "status": "ok"|"skipped"|"failed", "reason"} (a skip says why:
    # a benchmark or optimization job held the device).
    probe_state = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeploymentChangeKind(models.TextChoices):
    CREATE = "create"
    PROMOTE = "promote"
    AUTO_PROMOTE = "auto_promote"
    ROLLBACK = "rollback"


class VerificationVerdict(models.TextChoices):
    NONE = "", "not verified"
    WATCHING = "watching"
    IMPROVED = "improved"
    NOT_IMPROVED = "not_improved"
    NO_DATA = "no_data"


class DeploymentChange(models.Model):
    """One change of a deployment's active version; a promotion is watched for a verification window
    and its verdict says whether latency really improved."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=DeploymentChangeKind.choices)
    from_version = models.ForeignKey(
        "dashboard.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_version = models.ForeignKey(
        "dashboard.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    alert = models.ForeignKey(
        "dashboard.Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        "dashboard.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    verify_until = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=VerificationVerdict.choices, default="", blank=True)
    verdict_detail = models.JSONField(null=True, blank=True, help_text="latency before/after the change")

    class Meta:
        ordering = ["-at", "-id"]
