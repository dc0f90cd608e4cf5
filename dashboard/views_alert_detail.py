"""One alert's page (/alerts/<id>/): its state history, its value, the notifications sent, the jobs
its rule's actions started with their measured before/after, and an operator's one-click answers
(acknowledge and silence in views_alerting; approve, promote, roll back here)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboard.alerting.actions import (
    NEEDS_ATTENTION,
    ActionRefused,
    do_approve_action,
    do_promote_from_alert,
    do_rollback_from_alert,
    promotable,
    rollbackable,
)
from dashboard.alerting.silences import is_silenced
from dashboard.deployments.actions import DeploymentRefused
from dashboard.models import Alert, AlertActionStatus, DeploymentChange, Role
from dashboard.permissions import has_role


def _alert(alert_id: int) -> Alert:
    return get_object_or_404(
        Alert.objects.select_related("rule", "deployment__active_version__model", "acked_by"), pk=alert_id
    )


@login_required
def alert_detail(request: HttpRequest, alert_id: int, error: str = "", status: int = 200) -> HttpResponse:
    alert = _alert(alert_id)
    actions = list(alert.actions.select_related("job", "approved_by").order_by("created_at", "id"))
    changes = DeploymentChange.objects.filter(alert=alert).select_related(
        "from_version__model", "to_version__model", "by", "deployment"
    )
    can_operate = has_role(request.user, Role.OPERATOR)
    candidate = promotable(alert)
    context = {
        "alert": alert,
        "rule": alert.rule,
        "events": alert.events.all(),
        "actions": actions,
        "changes": changes,
        "jobs": alert.jobs.order_by("created_at"),
        "can_operate": can_operate,
        "awaiting": [row for row in actions if row.status == AlertActionStatus.AWAITING_APPROVAL],
        "promotable": candidate,
        "rollbackable": rollbackable(alert),
        "needs_attention": NEEDS_ATTENTION,
        "live_jobs": [row.job_id for row in actions if row.job is not None and not row.job.is_finished],
        "deliveries": alert.deliveries.select_related("channel", "alert__rule")[:100],
        "silenced": alert.is_open and is_silenced(alert),
        "error": error,
    }
    return render(request, "dashboard/alert_detail.html", context, status=status)


def _answer(request: HttpRequest, alert_id: int, act) -> HttpResponse:
    alert = _alert(alert_id)
    try:
        act(alert)
    except (ActionRefused, DeploymentRefused) as exc:
        return alert_detail(request, alert_id, error=str(exc), status=400)
    return redirect("dashboard:alert", alert_id=alert_id)


@login_required
@require_POST
def alert_approve(request: HttpRequest, alert_id: int) -> HttpResponse:
    action = request.POST.get("action")
    action_id = int(action) if action and action.isdigit() else None
    return _answer(request, alert_id, lambda alert: do_approve_action(request.user, alert, action_id))


@login_required
@require_POST
def alert_promote(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _answer(request, alert_id, lambda alert: do_promote_from_alert(request.user, alert))


@login_required
@require_POST
def alert_rollback(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _answer(request, alert_id, lambda alert: do_rollback_from_alert(request.user, alert))
