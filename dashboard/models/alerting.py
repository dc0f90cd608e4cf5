"""Threshold rules, their alerts (one row per episode, with a row per state change), silences,
notification channels and one row per delivery attempt (the healthchecks model).

The evaluator (dashboard/alerting/) persists every state it needs here, so restarting any process
neither resets a pending timer nor re-notifies a firing alert."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Comparator(models.TextChoices):
    GT = ">", ">"
    GE = ">=", "≥"
    LT = "<", "<"
    LE = "<=", "≤"


class NoDataPolicy(models.TextChoices):
    NODATA = "nodata", "no data state (notifies as such)"
    KEEP = "keep", "keep last state"
    RESOLVE = "resolve", "resolve"
    ALERT = "alerting", "alert"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Rule(models.Model):
    name = models.CharField(max_length=200, unique=True)
    # {"metric": "gpu.temperature_c", "node": "gpu-a", "gpu": 0}, or
    # {"deployment": "digits-prod", "stat": "mean"|"p50"|"p95"|"p99", "window": "5m"|"last_5"}, or
    # {"benchmark": {...}} (benchmark regressions as a rule type). Validated by dashboard.alerting.targets.
    target = models.JSONField()
    op = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.GT)
    threshold = models.FloatField()
    resolve_threshold = models.FloatField(null=True, blank=True, help_text="hysteresis; None = threshold")
    for_s = models.PositiveIntegerField(default=0, help_text="pending this long before firing")
    keep_firing_for_s = models.PositiveIntegerField(default=0)
    repeat_interval_s = models.PositiveIntegerField(default=3600)
    no_data = models.CharField(max_length=16, choices=NoDataPolicy.choices, default=NoDataPolicy.NODATA)
    no_data_after_s = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="no sample for this long = no data (None: from the source's interval)",
    )
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    labels = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    channels = models.ManyToManyField("dashboard.Channel", blank=True, related_name="rules")
    # Priority-ordered: [{"kind": "notify"} | {"kind": "optimize", "passes": [...]} |
    # {"kind": "auto_optimize", "max_accuracy_drop": 0.01, ...}]. See dashboard/alerting/actions.py.
    actions = models.JSONField(default=list, blank=True)
    auto_promote = models.BooleanField(default=False)
    require_approval = models.BooleanField(default=False, help_text="actions wait for an operator")
    cooldown_s = models.PositiveIntegerField(default=1800, help_text="after an action's job ends")
    max_attempts = models.PositiveIntegerField(default=3, help_text="action jobs per firing")
    mute_during_jobs = models.BooleanField(
        default=False, help_text="GPU rules: no notification while perfmon's own job runs on that GPU"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    PENDING = "pending"
    FIRING = "firing"
    NODATA = "nodata"
    ERROR = "error"
    RESOLVED = "resolved"
    # A pending episode whose condition cleared before `for` elapsed: it never fired.
    INACTIVE = "inactive"


OPEN_STATES = frozenset({AlertState.PENDING, AlertState.FIRING, AlertState.NODATA, AlertState.ERROR})


class Alert(models.Model):
    """One episode of one rule on one series (``fingerprint``): from pending until resolved (or
    inactive). At most one open episode per rule and fingerprint."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="alerts")
    fingerprint = models.CharField(max_length=64, help_text="hash of the rule id and the series labels")
    labels = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=AlertState.choices, db_index=True)
    is_open = models.BooleanField(default=True, db_index=True)
    value = models.FloatField(null=True, blank=True, help_text="last evaluated value")
    pending_since = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="entered firing")
    resolved_at = models.DateTimeField(null=True, blank=True)
    keep_firing_until = models.DateTimeField(null=True, blank=True)
    last_eval_at = models.DateTimeField(null=True, blank=True)
    last_data_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    next_notify_at = models.DateTimeField(null=True, blank=True, help_text="next repeat notification")
    error = models.TextField(default="", blank=True)
    deployment = models.ForeignKey(
        "dashboard.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    acked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pending_since", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "fingerprint"], condition=Q(is_open=True), name="alert_one_open_episode"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule.name} [{self.state}]"


class AlertEvent(models.Model):
    """One state change of an alert, with the value that caused it."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, default="", blank=True)
    to_state = models.CharField(max_length=16)
    value = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=500, default="", blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]


class Silence(models.Model):
    """Mutes notifications (never evaluation) of one rule, or of alerts whose labels match."""

    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.CASCADE, related_name="silences")
    matchers = models.JSONField(default=dict, blank=True, help_text="label -> value, all must match")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=500, default="", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-ends_at"]


class ChannelKind(models.TextChoices):
    BROWSER = "browser"
    EMAIL = "email"
    WEBHOOK = "webhook"


class Channel(models.Model):
    """A way to notify: its transport is looked up by kind in dashboard.alerting.transports."""

    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    name = models.CharField(max_length=200, unique=True)
    # webhook: {"url", "format": "alertmanager"|"slack"}; email: {"to": [...]}; browser: {}.
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"


class Delivery(models.Model):
    """One attempt to deliver one notification (an alert in one state) through one channel."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    alert_state = models.CharField(max_length=16, help_text="the state notified: firing, resolved, ...")
    idempotency_key = models.CharField(max_length=200, db_index=True)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(default="", blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class AlertActionStatus(models.TextChoices):
    # The rule's {"kind": "notify"} marker: the rule's channels carry the notification.
    DONE = "done"
    AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
    # The job is submitted; what happens next is the job's own status.
    SUBMITTED = "submitted"
    # A loop guard held it back (a job in flight, the cooldown, the attempts of this episode).
    BLOCKED = "blocked"
    # It could not be submitted: invalid params, a refusal, no deployment to act on.
    FAILED = "failed"
    # Awaiting approval when the alert resolved: nothing left to approve.
    EXPIRED = "expired"


class AlertAction(models.Model):
    """One action of a rule taken (or held back) for one alert when it entered firing: a row per
    attempt, as deliveries are, so the alert page shows what perfmon did and why it did not."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveSmallIntegerField(help_text="index in the rule's actions (priority order)")
    kind = models.CharField(max_length=32)
    spec = models.JSONField(default=dict, help_text="the action as the rule said when it fired")
    status = models.CharField(max_length=20, choices=AlertActionStatus.choices)
    detail = models.TextField(default="", blank=True, help_text="why it was held back or failed")
    job = models.ForeignKey(
        "dashboard.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="alert_actions"
    )
    # Once the job ended: measured before/after, the produced version and the auto-promote decision.
    outcome = models.JSONField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
