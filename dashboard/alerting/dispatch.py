"""What happens after an alert changes state: the one place the evaluator calls, so notification
and automatic actions stay independent of each other and of how the state was decided.

Called inside the evaluator's transaction; both callees defer outside work (Celery tasks, channel
layer pushes) to after commit."""

from __future__ import annotations

import logging

from dashboard.models import Alert, AlertEvent

log = logging.getLogger(__name__)


def alert_changed(alert: Alert, event: AlertEvent) -> None:
    """An alert entered ``event.to_state``: notify its channels, then run the rule's actions."""
    from dashboard.alerting import actions, notify

    notify.notify_transition(alert, event)
    actions.on_transition(alert, event)


def alert_repeat(alert: Alert) -> None:
    """A firing alert's ``repeat_interval`` elapsed: notify again (never re-run actions)."""
    from dashboard.alerting import notify

    notify.notify_repeat(alert)
