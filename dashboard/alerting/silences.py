"""Whether a silence mutes an alert's notifications (never its evaluation).

Minimal version written by the notifications work so notify.py can call it; the rules work owns the
full one (creation through POST /api/silences, its page). The contract notify.py relies on is only
``is_silenced(alert, now=None) -> bool``."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from dashboard.models import Alert, Silence


def is_silenced(alert: Alert, now: datetime | None = None) -> bool:
    """True while a silence is active whose rule is the alert's rule, or (a silence without a rule)
    whose matchers are non-empty and all equal the alert's labels (the rule's name matches as
    ``alertname``)."""
    now = now or timezone.now()
    active = Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)
    if active.filter(rule_id=alert.rule_id).exists():
        return True
    labels = {"alertname": alert.rule.name, **(alert.rule.labels or {}), **(alert.labels or {})}
    for matchers in active.filter(Q(rule__isnull=True)).values_list("matchers", flat=True):
        if matchers and all(
            key in labels and str(labels[key]) == str(value) for key, value in matchers.items()
        ):
            return True
    return False
