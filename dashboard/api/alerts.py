"""/api/alerts (one row per episode of a rule on a series) and /api/silences."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from dashboard.alerting.rules import RuleInvalid, do_ack_alert, do_create_silence, do_end_silence
from dashboard.alerting.silences import is_silenced
from dashboard.api.errors import READ_ERRORS, WRITE_ERRORS, Error
from dashboard.models import Alert, Rule, Silence

router = Router(tags=["alerting"])
silences_router = Router(tags=["alerting"])

MAX_ALERTS = 500


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class AlertEventOut(Schema):
    from_state: str
    to_state: str
    value: float | None
    reason: str
    at: str


class AlertOut(Schema):
    id: int
    rule: int
    rule_name: str
    state: str
    is_open: bool
    value: float | None
    labels: dict[str, Any]
    pending_since: str
    started_at: str | None
    resolved_at: str | None
    last_data_at: str | None
    next_notify_at: str | None
    error: str
    jobs: list[int]
    deliveries: list[int]
    acked: bool
    acked_by: str | None
    acked_at: str | None
    silenced: bool
    deployment: str | None
    events: list[AlertEventOut] | None = None


def alert_json(alert: Alert, events: bool = False) -> dict[str, Any]:
    data = {
        "id": alert.pk,
        "rule": alert.rule_id,
        "rule_name": alert.rule.name,
        "state": alert.state,
        "is_open": alert.is_open,
        "value": alert.value,
        "labels": alert.labels,
        "pending_since": alert.pending_since.isoformat(),
        "started_at": _iso(alert.started_at),
        "resolved_at": _iso(alert.resolved_at),
        "last_data_at": _iso(alert.last_data_at),
        "next_notify_at": _iso(alert.next_notify_at),
        "error": alert.error,
        "jobs": sorted(j.pk for j in alert.jobs.all()),
        "deliveries": sorted(d.pk for d in alert.deliveries.all()),
        "acked": alert.acked_at is not None,
        "acked_by": alert.acked_by.username if alert.acked_by else None,
        "acked_at": _iso(alert.acked_at),
        "silenced": alert.is_open and is_silenced(alert),
        "deployment": alert.deployment.name if alert.deployment else None,
    }
    if events:
        data["events"] = [
            {
                "from_state": e.from_state,
                "to_state": e.to_state,
                "value": e.value,
                "reason": e.reason,
                "at": e.at.isoformat(),
            }
            for e in alert.events.all()
        ]
    return data


StateFilter = Literal["", "open", "pending", "firing", "nodata", "error", "resolved", "inactive"]


@router.get("", response={200: list[AlertOut], 400: Error, 401: Error})
def list_alerts(
    request, state: StateFilter = "", rule: int | None = None, limit: int = Query(100, ge=1, le=MAX_ALERTS)
):
    """Newest first. ``state``: pending, firing, nodata, error, resolved, inactive, or "open" (any of
    the first four). ``rule``: one rule's. ``limit``: 1..500."""
    alerts = Alert.objects.select_related("rule", "acked_by", "deployment").prefetch_related(
        "jobs", "deliveries"
    )
    if state == "open":
        alerts = alerts.filter(is_open=True)
    elif state:
        alerts = alerts.filter(state=state)
    if rule is not None:
        alerts = alerts.filter(rule_id=rule)
    return [alert_json(alert) for alert in alerts[:limit]]


@router.get("/{alert_id}", response={200: AlertOut, 401: Error, 404: Error})
def get_alert(request, alert_id: int):
    """One alert with its history (a row per state change)."""
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        return Status(404, {"error": f"alert {alert_id} not found"})
    return alert_json(alert, events=True)


@router.post("/{alert_id}/ack", response={200: AlertOut, **WRITE_ERRORS, 404: Error})
def ack_alert(request, alert_id: int):
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        return Status(404, {"error": f"alert {alert_id} not found"})
    return alert_json(do_ack_alert(request.user, alert))


class SilenceIn(Schema):
    """Example: {"rule": 3, "duration_s": 3600, "comment": "maintenance"} or
    {"matchers": {"node": "gpu-a"}, "duration_s": 600}."""

    rule: int | None = None
    matchers: dict[str, str] = {}
    duration_s: int = Field(description="seconds from now, 1 to a year")
    comment: str = ""


class SilenceOut(Schema):
    id: int
    rule: int | None
    matchers: dict[str, str]
    starts_at: str
    ends_at: str
    active: bool
    comment: str
    created_by: str | None


def silence_json(silence: Silence) -> dict[str, Any]:
    now = timezone.now()
    return {
        "id": silence.pk,
        "rule": silence.rule_id,
        "matchers": silence.matchers,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "active": silence.starts_at <= now < silence.ends_at,
        "comment": silence.comment,
        "created_by": silence.created_by.username if silence.created_by else None,
    }


@silences_router.post("", response={201: SilenceOut, **WRITE_ERRORS})
def create_silence(request, payload: SilenceIn):
    """Mute notifications (never evaluation) of one rule, or of alerts whose labels all match."""
    rule = None
    if payload.rule is not None:
        rule = Rule.objects.filter(pk=payload.rule).first()
        if rule is None:
            return Status(400, {"error": f"unknown rule {payload.rule}"})
    try:
        silence = do_create_silence(request.user, rule, payload.matchers, payload.duration_s, payload.comment)
    except RuleInvalid as exc:
        return Status(400, {"error": str(exc)})
    return Status(201, silence_json(silence))


@silences_router.get("", response={200: list[SilenceOut], **READ_ERRORS})
def list_silences(request, all: bool = False):
    """Active silences; ``?all=true`` for ended ones too."""
    silences = Silence.objects.select_related("created_by")
    if not all:
        silences = silences.filter(ends_at__gt=timezone.now())
    return [silence_json(s) for s in silences[:MAX_ALERTS]]


@silences_router.delete("/{silence_id}", response={200: SilenceOut, **WRITE_ERRORS, 404: Error})
def end_silence(request, silence_id: int):
    """End a silence now (the row stays, as history)."""
    silence = Silence.objects.filter(pk=silence_id).first()
    if silence is None:
        return Status(404, {"error": f"silence {silence_id} not found"})
    return silence_json(do_end_silence(request.user, silence))
