"""Notification fan-out: an alert's state change (or a repeat) becomes one Delivery row per channel
of its rule, each sent by the Celery task ``perfmon.deliver_notification`` after commit; every
further attempt of a failed delivery is a new row (the healthchecks model: a row per attempt).

Called by dashboard.alerting.dispatch inside the evaluator's transaction. Nothing here talks to the
outside before the commit: the rows are written now, the tasks are sent on commit.

What is notified: entering firing, no data or error, and resolved (only on channels this episode
was already notified on, so a receiver never gets a "resolved" for something it never saw).
Pending and inactive (a pending episode that cleared) are not. Nothing is sent while a silence
matches the alert, or while the rule mutes itself during perfmon's own job on its node/GPU. An
acknowledged alert gets no repeats; its state changes still notify."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from dashboard import live
from dashboard.alerting.transports import ALERTS_TOPIC, Notice, transport_for
from dashboard.models import (
    Alert,
    AlertEvent,
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    Job,
    JobStatus,
)
from dashboard.tasknames import DELIVER_NOTIFICATION

log = logging.getLogger(__name__)

NOTIFIED_STATES = frozenset({AlertState.FIRING, AlertState.NODATA, AlertState.ERROR, AlertState.RESOLVED})
# Not a state of the alert but an event the rule's actions record once an episode: perfmon will not
# act again and a person must look. Notified like a firing alert, with the reason; repeats unchanged.
NEEDS_ATTENTION = "needs_attention"
# The queue of the delivery task: the maintenance worker consumes it (a thread pool, so a slow
# receiver never holds up the job sweeps and no benchmark waits for a webhook).
NOTIFY_QUEUE = "notify"
# A firing alert whose notification was held back (silenced, muted during a job) is looked at again
# this soon, so it is notified shortly after the silence ends rather than a repeat interval later.
SUPPRESSED_RECHECK_S = 60


def notify_transition(alert: Alert, event: AlertEvent) -> None:
    """Create one Delivery per channel of the rule for this state change and send them.

    Never raises into the evaluator: a notification problem must not undo the state change it is
    about (nor keep the rule's actions from running); it is logged, and its writes are undone."""
    _guarded(_notify_transition, alert, event)


def notify_repeat(alert: Alert) -> None:
    """Create one Delivery per channel for a repeat of a firing alert and send them. Always moves
    ``next_notify_at`` on (or clears it), so the evaluator's tick never calls twice for one repeat.
    Never raises into the evaluator."""
    if not _guarded(_notify_repeat, alert):
        # Looked at again later, not on every tick of the evaluator.
        later = timezone.now() + timedelta(seconds=SUPPRESSED_RECHECK_S)
        _guarded(lambda a: _set_times(a, None, later), alert)


def _guarded(function, alert: Alert, *args) -> bool:
    try:
        with transaction.atomic():  # a savepoint inside the evaluator's transaction
            function(alert, *args)
    except Exception:
        log.exception("notifying alert %s failed; its state change stands", alert.pk)
        return False
    return True


def _notify_transition(alert: Alert, event: AlertEvent) -> None:
    state = event.to_state
    _schedule_count_push()
    if state == NEEDS_ATTENTION:
        _notify_needs_attention(alert, event)
        return
    if state not in NOTIFIED_STATES:
        return
    now = timezone.now()
    value = event.value if event.value is not None else alert.value
    held = suppressed(alert)
    if held:
        log.info("alert %s %s not notified: %s", alert.pk, state, held)
        _set_times(alert, None, _next_notify(alert, state, now, held=True))
        return
    channels = _channels(alert, state)
    sent = _create_deliveries(alert, state, value, channels, repeat=0)
    _set_times(alert, now if sent else None, _next_notify(alert, state, now, held=False))


def _notify_needs_attention(alert: Alert, event: AlertEvent) -> None:
    """Silences hold it back like any notification; the alert's repeat timing is left as it is."""
    held = suppressed(alert)
    if held:
        log.info("alert %s needs attention, not notified: %s", alert.pk, held)
        return
    value = event.value if event.value is not None else alert.value
    _create_deliveries(
        alert, NEEDS_ATTENTION, value, _channels(alert, NEEDS_ATTENTION), repeat=0, reason=event.reason
    )


def _notify_repeat(alert: Alert) -> None:
    now = timezone.now()
    if alert.state != AlertState.FIRING or alert.acked_at is not None:
        _set_times(alert, None, None)
        return
    held = suppressed(alert)
    if held:
        _set_times(alert, None, _next_notify(alert, AlertState.FIRING, now, held=True))
        return
    firing_keys = (
        Delivery.objects.filter(alert=alert, alert_state=AlertState.FIRING)
        .values_list("idempotency_key", flat=True)
        .distinct()
    )
    repeat = len(set(firing_keys))
    sent = _create_deliveries(
        alert, AlertState.FIRING, alert.value, _channels(alert, AlertState.FIRING), repeat
    )
    _set_times(alert, now if sent else None, _next_notify(alert, AlertState.FIRING, now, held=False))


def suppressed(alert: Alert) -> str:
    """Why this alert's notifications are held back now ("" when they are not)."""
    from dashboard.alerting.silences import is_silenced

    if is_silenced(alert):
        return "silenced"
    if alert.rule.mute_during_jobs:
        job = running_job_on(alert)
        if job is not None:
            return f"muted: perfmon's job #{job.pk} is running there"
    return ""


def running_job_on(alert: Alert) -> Job | None:
    """A running perfmon job on the alert's node (and GPU, for a GPU metric), if any."""
    target = alert.rule.target if isinstance(alert.rule.target, dict) else {}
    labels = alert.labels or {}
    node = target.get("node") or labels.get("node")
    if not node:
        return None
    gpu = target.get("gpu", labels.get("gpu"))
    jobs = Job.objects.filter(status=JobStatus.RUNNING).filter(
        Q(node_name=node) | Q(node_name="", target_node=node)
    )
    for job in jobs:
        if gpu is None or gpu == "":
            return job
        params = job.params or {}
        devices = [params.get("device")] + list(params.get("devices") or [])
        if f"cuda:{gpu}" in devices:
            return job
    return None


def idempotency_key(alert: Alert, state: str, repeat: int = 0) -> str:
    """fingerprint + state + start time: every attempt of one notification carries the same key, so a
    receiver can drop duplicates. A repeat (a reminder of the same firing) gets its own suffix, or a
    receiver deduplicating by key would drop every reminder."""
    start = (
        alert.started_at
        if state in (AlertState.FIRING, AlertState.RESOLVED, NEEDS_ATTENTION) and alert.started_at
        else None
    )
    start = start or alert.pending_since
    key = f"{alert.fingerprint}:{state}:{start.isoformat()}"
    return f"{key}:repeat-{repeat}" if repeat else key


def notice_for(alert: Alert, state: str, value: float | None, repeat: int = 0) -> Notice:
    from dashboard.alerting.silences import alert_labels

    rule = alert.rule
    labels = alert_labels(alert)
    annotations = {
        "summary": _summary(alert, state, value),
        "value": "" if value is None else f"{value:g}",
        "state": state,
    }
    if alert.error:
        annotations["error"] = alert.error
    ends_at = alert.resolved_at if state == AlertState.RESOLVED else None
    if state == AlertState.RESOLVED and ends_at is None:
        ends_at = timezone.now()
    return Notice(
        rule=rule.name,
        state=state,
        value=value,
        labels=labels,
        annotations=annotations,
        fingerprint=alert.fingerprint,
        starts_at=alert.started_at or alert.pending_since,
        ends_at=ends_at,
        url=alert_url(alert),
        severity=rule.severity,
        alert_id=alert.pk,
        repeat=repeat,
    )


def alert_url(alert: Alert) -> str:
    return f"{settings.PERFMON_EXTERNAL_URL}/alerts/{alert.pk}/"


def firing_count() -> int:
    return Alert.objects.filter(is_open=True, state=AlertState.FIRING).count()


def push_count() -> None:
    """Tell every open page how many alerts fire now (the count in the navigation)."""
    live.push(ALERTS_TOPIC, {"type": "alert_count", "firing": firing_count()})


def send_delivery_task(delivery_id: int, countdown: float | None = None) -> None:
    """Publish perfmon.deliver_notification by name (the Django side never imports workers.tasks)."""
    from perfmon.celery import app

    app.send_task(DELIVER_NOTIFICATION, args=[delivery_id], queue=NOTIFY_QUEUE, countdown=countdown)


def delivery_json(delivery: Delivery) -> dict:
    """A delivery attempt as the API and pages show it (on the alert and on the channel)."""
    return {
        "id": delivery.pk,
        "channel": delivery.channel_id,
        "channel_name": delivery.channel.name,
        "alert": delivery.alert_id,
        "alert_state": delivery.alert_state,
        "idempotency_key": delivery.idempotency_key,
        "attempt": delivery.attempt,
        "status": delivery.status,
        "response_code": delivery.response_code,
        "error": delivery.error,
        "duration_ms": delivery.duration_ms,
        "created_at": _iso(delivery.created_at),
        "sent_at": _iso(delivery.sent_at),
    }


def _channels(alert: Alert, state: str) -> list[Channel]:
    channels = list(alert.rule.channels.filter(enabled=True).order_by("pk"))
    if state == AlertState.RESOLVED:
        # Only where this episode was notified: "resolved" for an alert a receiver never saw is noise.
        told = set(Delivery.objects.filter(alert=alert).values_list("channel_id", flat=True))
        channels = [c for c in channels if c.pk in told]
    return channels


def _create_deliveries(
    alert: Alert, state: str, value: float | None, channels: list[Channel], repeat: int, reason: str = ""
) -> list[int]:
    if not channels:
        return []
    notice = notice_for(alert, state, value, repeat)
    if reason:
        notice.annotations["reason"] = reason
    key = idempotency_key(alert, state, repeat)
    ids = []
    for channel in channels:
        payload = transport_for(channel.kind).render(channel, notice)
        delivery = Delivery.objects.create(
            channel=channel, alert=alert, alert_state=state, idempotency_key=key, payload=payload
        )
        ids.append(delivery.pk)
    transaction.on_commit(lambda: _send_all(ids))
    return ids


def _send_all(ids: list[int]) -> None:
    for delivery_id in ids:
        try:
            send_delivery_task(delivery_id)
        except Exception as exc:  # the broker away: say so on the row rather than drop it silently
            log.warning("could not queue delivery %s (%s: %s)", delivery_id, type(exc).__name__, exc)
            Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
                status=DeliveryStatus.FAILED,
                error=f"could not queue the delivery (task queue unreachable: {type(exc).__name__})",
            )


def _next_notify(alert: Alert, state: str, now: datetime, *, held: bool) -> datetime | None:
    repeat_s = alert.rule.repeat_interval_s
    if state != AlertState.FIRING or not repeat_s or alert.acked_at is not None:
        return None
    return now + timedelta(seconds=min(repeat_s, SUPPRESSED_RECHECK_S) if held else repeat_s)


def _set_times(alert: Alert, notified_at: datetime | None, next_at: datetime | None) -> None:
    """On the instance (the evaluator may save it after us) and on the row (or it may not)."""
    changes = {"next_notify_at": next_at}
    if notified_at is not None:
        changes["last_notified_at"] = notified_at
    for name, value in changes.items():
        setattr(alert, name, value)
    if alert.pk is not None:
        Alert.objects.filter(pk=alert.pk).update(**changes)


def _schedule_count_push() -> None:
    """One count push per transaction however many alerts it changes."""
    pending = getattr(connection, "run_on_commit", None) or []
    if any(entry[1] is push_count for entry in pending):
        return
    transaction.on_commit(push_count)


def _summary(alert: Alert, state: str, value: float | None) -> str:
    rule = alert.rule
    shown = "no value" if value is None else f"{value:g}"
    if state == AlertState.RESOLVED:
        return f"{rule.name} resolved at {shown}"
    if state == AlertState.NODATA:
        return f"{rule.name}: no data"
    if state == AlertState.ERROR:
        return f"{rule.name}: evaluation error: {alert.error or 'unknown'}"
    if state == NEEDS_ATTENTION:
        return f"{rule.name}: perfmon will not act again, a person must look ({shown})"
    return f"{rule.name}: {shown} {rule.op} {rule.threshold:g}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
