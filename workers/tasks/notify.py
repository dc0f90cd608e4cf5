"""The notification worker task: one delivery attempt, and Celery's countdown for the next one."""

from __future__ import annotations

from celery import shared_task

from dashboard.alerting.delivery import do_attempt_delivery, sweep_stuck_deliveries
from dashboard.alerting.notify import NOTIFY_QUEUE


@shared_task(name="perfmon.deliver_notification", bind=True, queue=NOTIFY_QUEUE, max_retries=None)
def deliver_notification(self, delivery_id: int) -> str:
    """Send Delivery ``delivery_id``; on a failure worth retrying, retry with the next attempt's row
    after the backoff (the attempt count is the rows', see settings.NOTIFY_MAX_ATTEMPTS)."""
    retry = do_attempt_delivery(delivery_id)
    if retry is None:
        return "done"
    raise self.retry(args=[retry.delivery_id], countdown=retry.countdown_s, max_retries=None)


@shared_task(name="perfmon.sweep_stuck_deliveries", queue="maintenance")
def sweep_deliveries() -> int:
    """Take up delivery attempts whose task was lost or whose worker died during them."""
    return sweep_stuck_deliveries()
