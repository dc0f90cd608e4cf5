"""A firing rule's automatic actions (implemented by the auto-optimization work)."""

from __future__ import annotations

from dashboard.models import Alert, AlertEvent


def on_transition(alert: Alert, event: AlertEvent) -> None:
    """On entering firing: run the rule's actions in priority order, under the loop guards."""
