"""Notification fan-out (implemented by the notifications work)."""

from __future__ import annotations

from dashboard.models import Alert, AlertEvent


def notify_transition(alert: Alert, event: AlertEvent) -> None:
    """Create one Delivery per channel of the rule for this state change and send them."""


def notify_repeat(alert: Alert) -> None:
    """Create one Delivery per channel for a repeat of a firing alert and send them."""
