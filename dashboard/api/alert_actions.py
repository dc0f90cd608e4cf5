"""/api/alerts/<id>/{actions,approve,promote,rollback}: what a firing rule did for a deployment,
and the operator's one-click answers to it. (The alert list, one alert, ack and silences are the
rules and notifications routers'.)"""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema, Status

from dashboard.alerting.actions import (
    ActionRefused,
    do_approve_action,
    do_promote_from_alert,
    do_rollback_from_alert,
)
from dashboard.api.errors import READ_ERRORS, WRITE_ERRORS, Error
from dashboard.deployments.actions import DeploymentRefused
from dashboard.models import Alert, AlertAction, DeploymentChange

router = Router(tags=["alerts"])


class ActionOut(Schema):
    id: int
    position: int
    kind: str
    spec: dict[str, Any]
    status: str
    detail: str
    job: int | None
    job_status: str | None
    outcome: dict[str, Any] | None
    approved_by: str | None
    approved_at: str | None
    created_at: str


class ChangeOut(Schema):
    id: int
    deployment: str
    kind: str
    from_version: str | None
    to_version: str | None
    by: str | None
    job: int | None
    at: str


def action_json(row: AlertAction) -> dict[str, Any]:
    return {
        "id": row.pk,
        "position": row.position,
        "kind": row.kind,
        "spec": row.spec if isinstance(row.spec, dict) else {"value": row.spec},
        "status": row.status,
        "detail": row.detail,
        "job": row.job_id,
        "job_status": row.job.status if row.job is not None else None,
        "outcome": row.outcome,
        "approved_by": row.approved_by.username if row.approved_by else None,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        "created_at": row.created_at.isoformat(),
    }


def change_json(change: DeploymentChange) -> dict[str, Any]:
    def label(version) -> str | None:
        return f"{version.model.name}@{version.version}" if version is not None else None

    return {
        "id": change.pk,
        "deployment": change.deployment.name,
        "kind": change.kind,
        "from_version": label(change.from_version),
        "to_version": label(change.to_version),
        "by": change.by.username if change.by else None,
        "job": change.job_id,
        "at": change.at.isoformat(),
    }


def _alert(alert_id: int) -> Alert | None:
    return Alert.objects.select_related("rule", "deployment").filter(pk=alert_id).first()


def _missing(alert_id: int):
    return Status(404, {"error": f"alert {alert_id} not found"})


@router.get("/{alert_id}/actions", response={200: list[ActionOut], **READ_ERRORS, 404: Error})
def list_actions(request, alert_id: int):
    """The actions the alert's rule took or held back when it entered firing, oldest first: each
    with its job, and once the job ended the measured before/after ``outcome`` at the deployment's
    batch size (p50/p99 ms, accuracy or agreement, speed-up, the produced version, and
    ``promotion``: whether it was promoted automatically and why not)."""
    alert = _alert(alert_id)
    if alert is None:
        return _missing(alert_id)
    rows = alert.actions.select_related("job", "approved_by")
    return [action_json(row) for row in rows]


@router.post("/{alert_id}/approve", response={200: ActionOut, **WRITE_ERRORS, 404: Error})
def approve(request, alert_id: int, action: int | None = None):
    """Approve the first action awaiting approval (or ``?action=<id>``): its job is submitted now
    in your name, under the rule's guards; 400 says why not (resolved, in flight, cooldown)."""
    alert = _alert(alert_id)
    if alert is None:
        return _missing(alert_id)
    try:
        row = do_approve_action(request.user, alert, action)
    except ActionRefused as exc:
        return Status(400, {"error": str(exc)})
    return action_json(AlertAction.objects.select_related("job", "approved_by").get(pk=row.pk))


@router.post("/{alert_id}/promote", response={200: ChangeOut, **WRITE_ERRORS, 404: Error})
def promote(request, alert_id: int, job: int | None = None):
    """Make the version the alert's newest successful action job produced (or ``?job=<id>``'s)
    the deployment's active version."""
    alert = _alert(alert_id)
    if alert is None:
        return _missing(alert_id)
    try:
        change = do_promote_from_alert(request.user, alert, job)
    except DeploymentRefused as exc:
        return Status(400, {"error": str(exc)})
    return change_json(change)


@router.post("/{alert_id}/rollback", response={200: ChangeOut, **WRITE_ERRORS, 404: Error})
def rollback(request, alert_id: int):
    """Undo the promotion made from this alert (it must still be the deployment's last change)."""
    alert = _alert(alert_id)
    if alert is None:
        return _missing(alert_id)
    try:
        change = do_rollback_from_alert(request.user, alert)
    except DeploymentRefused as exc:
        return Status(400, {"error": str(exc)})
    return change_json(change)
