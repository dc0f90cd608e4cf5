"""Silences mute notifications, never evaluation: a silenced alert still changes state and keeps
its history; notify asks ``is_silenced`` before delivering."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from dashboard.models import Alert, Silence


def active_silences(now: datetime | None = None):
    now = now or timezone.now()
    return Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)


def alert_labels(alert: Alert) -> dict[str, str]:
    """The labels a notification carries and a silence matches, as in Alertmanager: alertname and
    severity, the rule's own labels, then the alert's series labels (node, gpu, deployment...)."""
    rule = alert.rule
    return {
        "alertname": rule.name,
        "severity": rule.severity,
        **{str(k): str(v) for k, v in (rule.labels or {}).items()},
        **{str(k): str(v) for k, v in (alert.labels or {}).items()},
    }


def matches(silence: Silence, alert: Alert) -> bool:
    """A silence of the alert's rule (its matchers, if any, must match too), or one without a rule
    whose every matcher equals the alert's label of that name (rule labels included)."""
    if silence.rule_id is not None and silence.rule_id != alert.rule_id:
        return False
    labels = alert_labels(alert)
    return all(labels.get(name) == str(value) for name, value in (silence.matchers or {}).items())


def is_silenced(alert: Alert, now: datetime | None = None) -> bool:
    """True while an active silence covers the alert."""
    candidates = active_silences(now).filter(Q(rule__isnull=True) | Q(rule_id=alert.rule_id))
    return any(matches(silence, alert) for silence in candidates)
