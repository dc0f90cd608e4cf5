"""Deployment pages: /deployments/ (the list) and /deployments/<name>/ (latency chart with the
objective line, active version and lineage, changes with their verdicts, alerts, optimizations;
promote and roll back for operators)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboard.api.deployments import change_json, lineage
from dashboard.deployments import stats as latency_stats
from dashboard.deployments.actions import DeploymentRefused, do_promote, do_rollback, promotable_version
from dashboard.deployments.series import latency_metric
from dashboard.models import Alert, Deployment, ModelVersion, ModelVersionStatus
from dashboard.permissions import Role, has_role


@login_required
def deployments_list(request: HttpRequest) -> HttpResponse:
    deployments = Deployment.objects.select_related("active_version__model")
    return render(request, "dashboard/deployments.html", {"deployments": deployments})


def _chart_config(deployment: Deployment) -> dict:
    """What deployment-detail.js draws: which series of the node, and the objective."""
    series = [
        {"metric": latency_metric(deployment.name, stat), "label": label}
        for stat, label in [
            ("sample", "ingested samples"),
            ("p50", "probe p50"),
            ("p95", "probe p95"),
            ("p99", "probe p99"),
            ("mean", "mean (probe or scrape)"),
        ]
    ]
    e2e = [
        {"metric": latency_metric(deployment.name, stat), "label": label}
        for stat, label in [
            ("p50", "model compute p50"),
            ("e2e_p50", "end to end p50"),
            ("e2e_p95", "end to end p95"),
            ("queue_mean", "queue mean"),
            ("compute_mean", "compute mean"),
        ]
    ]
    return {
        "node": deployment.node_name,
        "objective_ms": deployment.objective_ms,
        "series": series,
        "network": e2e if deployment.endpoint_url or deployment.scrape else [],
    }


@login_required
def deployment_detail(request: HttpRequest, name: str) -> HttpResponse:
    deployment = get_object_or_404(Deployment.objects.select_related("active_version__model"), name=name)
    version = deployment.active_version
    changes = deployment.changes.select_related("from_version__model", "to_version__model", "by")[:50]
    candidates = (
        ModelVersion.objects.filter(model=version.model, status=ModelVersionStatus.READY)
        .exclude(pk=version.pk)
        .order_by("-version")
    )
    context = {
        "deployment": deployment,
        "version": version,
        "lineage": lineage(version),
        "changes": [change_json(c) for c in changes],
        "latency": latency_stats.recent(deployment),
        "alerts": Alert.objects.filter(deployment=deployment).select_related("rule").order_by("-id")[:20],
        "jobs": deployment.jobs.order_by("-id")[:20],
        "candidates": candidates,
        "can_change": has_role(request.user, Role.OPERATOR),
        "chart_config": _chart_config(deployment),
    }
    return render(request, "dashboard/deployment_detail.html", context)


@login_required
@require_POST
def deployment_promote(request: HttpRequest, name: str) -> HttpResponse:
    deployment = get_object_or_404(Deployment.objects.select_related("active_version__model"), name=name)
    try:
        change = do_promote(
            request.user, deployment, promotable_version(deployment, request.POST.get("version"))
        )
    except DeploymentRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"{change.to_version} is now active; watching latency until {change.verify_until:%H:%M}"
        )
    return redirect("dashboard:deployment", name=name)


@login_required
@require_POST
def deployment_rollback(request: HttpRequest, name: str) -> HttpResponse:
    deployment = get_object_or_404(Deployment.objects.select_related("active_version__model"), name=name)
    try:
        change = do_rollback(request.user, deployment)
    except DeploymentRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"rolled back to {change.to_version}")
    return redirect("dashboard:deployment", name=name)
