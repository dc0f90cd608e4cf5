"""/api/rules: threshold rules on resource metrics, deployment latency and benchmark regressions.

Bodies are checked by dashboard.alerting.rules.clean_rule (the web form uses the same), so every
refusal is a 400 {"error"} naming the field and the reason."""

from __future__ import annotations

import json
from typing import Any, Literal

from django.db.models import Prefetch
from ninja import Router, Schema, Status

from dashboard.alerting.rules import RuleInvalid, do_create_rule, do_delete_rule, do_update_rule
from dashboard.api.errors import READ_ERRORS, WRITE_ERRORS, Error
from dashboard.models import Alert, Rule

router = Router(tags=["alerting"])


class RuleIn(Schema):
    """Example: {"name": "slow digits", "target": {"deployment": "digits-prod", "stat": "mean",
    "window": "last_5"}, "op": ">", "threshold": 50, "resolve_threshold": 45, "for_s": 0}.
    On PATCH every field is optional; unknown fields are refused."""

    name: str | None = None
    target: dict[str, Any] | None = None
    op: Literal[">", ">=", "<", "<="] | None = None
    threshold: float | None = None
    resolve_threshold: float | None = None
    for_s: int | None = None
    keep_firing_for_s: int | None = None
    repeat_interval_s: int | None = None
    no_data: Literal["nodata", "keep", "resolve", "alerting"] | None = None
    no_data_after_s: int | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    labels: dict[str, str] | None = None
    enabled: bool | None = None
    channels: list[int] | None = None
    actions: list[dict[str, Any]] | None = None
    auto_promote: bool | None = None
    require_approval: bool | None = None
    cooldown_s: int | None = None
    max_attempts: int | None = None
    mute_during_jobs: bool | None = None


class RuleOut(Schema):
    id: int
    name: str
    target: dict[str, Any]
    op: str
    threshold: float
    resolve_threshold: float | None
    for_s: int
    keep_firing_for_s: int
    repeat_interval_s: int
    no_data: str
    no_data_after_s: int | None
    severity: str
    labels: dict[str, Any]
    enabled: bool
    channels: list[int]
    actions: list[dict[str, Any]]
    auto_promote: bool
    require_approval: bool
    cooldown_s: int
    max_attempts: int
    mute_during_jobs: bool
    open_alerts: list[int]
    created_at: str
    updated_at: str


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        **{
            name: getattr(rule, name)
            for name in (
                "name",
                "target",
                "op",
                "threshold",
                "resolve_threshold",
                "for_s",
                "keep_firing_for_s",
                "repeat_interval_s",
                "no_data",
                "no_data_after_s",
                "severity",
                "labels",
                "enabled",
                "actions",
                "auto_promote",
                "require_approval",
                "cooldown_s",
                "max_attempts",
                "mute_during_jobs",
            )
        },
        "channels": sorted(c.pk for c in rule.channels.all()),
        "open_alerts": sorted(a.pk for a in rule.alerts.all() if a.is_open),
        "created_at": rule.created_at.isoformat(),
        "updated_at": rule.updated_at.isoformat(),
    }


def _fields(request, payload: RuleIn) -> dict[str, Any]:
    """What the client sent: explicit nulls kept (they clear a field), absent fields left out, and
    unknown fields passed on so that clean_rule refuses them by name."""
    data = payload.model_dump(exclude_unset=True)
    raw = json.loads(request.body or b"{}")  # already parsed once by the API's strict parser
    if isinstance(raw, dict):
        data.update({k: v for k, v in raw.items() if k not in RuleIn.model_fields})
    return data


@router.post("", response={201: RuleOut, **WRITE_ERRORS})
def create_rule(request, payload: RuleIn):
    """Create a rule. Target: {"metric", "node", "gpu"}, {"deployment", "stat", "window"} or
    {"benchmark": "regression", "model"?, "node"?}."""
    try:
        rule = do_create_rule(request.user, _fields(request, payload))
    except RuleInvalid as exc:
        return Status(400, {"error": str(exc)})
    return Status(201, rule_json(rule))


@router.get("", response={200: list[RuleOut], **READ_ERRORS})
def list_rules(request):
    open_alerts = Prefetch(
        "alerts", queryset=Alert.objects.filter(is_open=True).only("id", "rule_id", "is_open")
    )
    rules = Rule.objects.prefetch_related("channels", open_alerts)
    return [rule_json(rule) for rule in rules]


@router.get("/{rule_id}", response={200: RuleOut, 401: Error, 404: Error})
def get_rule(request, rule_id: int):
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        return Status(404, {"error": f"rule {rule_id} not found"})
    return rule_json(rule)


@router.patch("/{rule_id}", response={200: RuleOut, **WRITE_ERRORS, 404: Error})
def update_rule(request, rule_id: int, payload: RuleIn):
    """Change the fields given; the others stay. Other rules' alerts are never touched."""
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        return Status(404, {"error": f"rule {rule_id} not found"})
    try:
        rule = do_update_rule(request.user, rule, _fields(request, payload))
    except RuleInvalid as exc:
        return Status(400, {"error": str(exc)})
    return rule_json(rule)


@router.delete("/{rule_id}", response={204: None, **WRITE_ERRORS, 404: Error})
def delete_rule(request, rule_id: int):
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        return Status(404, {"error": f"rule {rule_id} not found"})
    do_delete_rule(request.user, rule)
    return Status(204, None)
