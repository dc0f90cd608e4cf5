"""One delivery attempt, as the Celery task ``perfmon.deliver_notification`` runs it.

The task is thin (workers/tasks/notify.py): it calls ``do_attempt_delivery`` and, when that asks
for another attempt, has Celery send the task again after the backoff with the new row's id."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from dashboard.alerting.transports import Outcome, transport_for
from dashboard.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retry:
    delivery_id: int  # the row of the next attempt
    countdown_s: float


def backoff_s(attempt: int) -> float:
    """The wait before attempt ``attempt + 1``: the base, doubling, capped."""
    return min(settings.NOTIFY_RETRY_BASE_S * 2 ** (attempt - 1), settings.NOTIFY_RETRY_MAX_S)


def do_attempt_delivery(delivery_id: int) -> Retry | None:
    """Send one pending Delivery once and record what happened on its row.

    Claims the row first (a conditional update on ``sent_at``), so a task delivered twice sends
    once. On a failure worth retrying (timeout, connection error, 5xx) and attempts left, the row
    becomes "retrying" and a new pending row (attempt + 1, same payload and idempotency key) is
    made: the answer says which, and after how long. Anything else ends "sent" or "failed"."""
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, sent_at__isnull=True
    ).update(sent_at=timezone.now())
    if not claimed:  # already attempted, or deleted with its channel or alert
        return None
    delivery = Delivery.objects.select_related("channel", "alert").get(pk=delivery_id)
    if not delivery.channel.enabled:
        _finish(delivery, DeliveryStatus.FAILED, Outcome(False, error="the channel was disabled"), None)
        return None
    superseded = _superseded(delivery)
    if superseded:
        _finish(delivery, DeliveryStatus.FAILED, Outcome(False, error=superseded), None)
        return None
    started = time.perf_counter()
    try:
        outcome = transport_for(delivery.channel.kind).send(
            delivery.channel, delivery.payload or {}, delivery.idempotency_key
        )
    except Exception as exc:  # a transport's bug: recorded on the row, and tried again like an outage
        log.exception("delivery %s: the %s transport raised", delivery_id, delivery.channel.kind)
        outcome = Outcome(False, retry=True, error=f"{type(exc).__name__}: {exc}"[:500])
    duration_ms = (time.perf_counter() - started) * 1000
    if outcome.ok:
        _finish(delivery, DeliveryStatus.SENT, outcome, duration_ms)
        return None
    if outcome.retry and delivery.attempt < settings.NOTIFY_MAX_ATTEMPTS:
        wait_s = backoff_s(delivery.attempt)
        with transaction.atomic():
            note = Outcome(
                False, True, outcome.response_code, f"{outcome.error}; trying again in {wait_s:g} s"
            )
            _finish(delivery, DeliveryStatus.RETRYING, note, duration_ms)
            following = _next_attempt(delivery)
        return Retry(following.pk, wait_s)
    if outcome.retry:
        outcome = Outcome(
            False, False, outcome.response_code, f"{outcome.error}; gave up after {delivery.attempt} attempts"
        )
    _finish(delivery, DeliveryStatus.FAILED, outcome, duration_ms)
    return None


def _finish(delivery: Delivery, status: str, outcome: Outcome, duration_ms: float | None) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, response_code=outcome.response_code, error=outcome.error, duration_ms=duration_ms
    )
    if status == DeliveryStatus.FAILED:
        log.warning("delivery %s to %s failed: %s", delivery.pk, delivery.channel.name, outcome.error)


def _superseded(delivery: Delivery) -> str:
    """A retry of an old notification must not arrive after a newer one for the same alert and
    channel went out (a "firing" retried after the "resolved" was delivered would re-open it
    for the receiver). Newer = its first attempt was made after this one's first attempt."""
    same_place = Delivery.objects.filter(alert_id=delivery.alert_id, channel_id=delivery.channel_id)
    first_id = same_place.filter(idempotency_key=delivery.idempotency_key).aggregate(Min("id"))["id__min"]
    for key, state in (
        same_place.filter(status=DeliveryStatus.SENT)
        .exclude(idempotency_key=delivery.idempotency_key)
        .values_list("idempotency_key", "alert_state")
        .distinct()
    ):
        if same_place.filter(idempotency_key=key).aggregate(Min("id"))["id__min"] > (first_id or delivery.pk):
            return f"not sent: a newer notification ({state}) was delivered first"
    return ""


# An attempt not started this long after it was due (its message lost with a Redis that lost its
# data, or held for its countdown by a worker that died), or started but never finished this long
# after its timeout (the worker died during it), is taken up by the sweep.
STUCK_GRACE_S = 120.0


def sweep_stuck_deliveries(now=None) -> int:
    """Send again the pending attempts whose task never ran, and end the attempts a dying worker left
    half done (as a failure worth retrying: the receiver may have got it, and drops the duplicate
    by its idempotency key). A duplicate task is harmless: an attempt is claimed once. Returns how
    many attempts it took up."""
    from dashboard.alerting.notify import send_delivery_task

    now = now or timezone.now()
    grace = timedelta(seconds=STUCK_GRACE_S)
    taken = 0
    for delivery in Delivery.objects.filter(status=DeliveryStatus.PENDING, sent_at__isnull=True):
        due = delivery.created_at
        if delivery.attempt > 1:  # made when the previous attempt failed, due after its backoff
            due += timedelta(seconds=backoff_s(delivery.attempt - 1))
        if due + grace < now:
            log.warning("delivery %s was never attempted; sending it again", delivery.pk)
            send_delivery_task(delivery.pk)
            taken += 1
    cutoff = now - timedelta(seconds=settings.NOTIFY_TIMEOUT_S) - grace
    for delivery in Delivery.objects.filter(status=DeliveryStatus.PENDING, sent_at__lt=cutoff).select_related(
        "channel", "alert"
    ):
        lost = Outcome(False, retry=True, error="the worker stopped during the attempt")
        if delivery.attempt < settings.NOTIFY_MAX_ATTEMPTS:
            with transaction.atomic():
                if not Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
                    status=DeliveryStatus.RETRYING, error=lost.error + "; trying again"
                ):
                    continue
                following = _next_attempt(delivery)
            transaction.on_commit(lambda pk=following.pk: send_delivery_task(pk))
        else:
            Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
                status=DeliveryStatus.FAILED, error=f"{lost.error}; gave up after {delivery.attempt} attempts"
            )
        taken += 1
    return taken


def _next_attempt(delivery: Delivery) -> Delivery:
    return Delivery.objects.create(
        channel=delivery.channel,
        alert=delivery.alert,
        alert_state=delivery.alert_state,
        idempotency_key=delivery.idempotency_key,
        attempt=delivery.attempt + 1,
        payload=delivery.payload,
    )
