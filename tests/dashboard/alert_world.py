"""A small world for the alert action tests: a deployment of a ready registered model on a node,
a rule with actions, and alerts that enter firing the way the evaluator makes them (an AlertEvent,
then dispatch.alert_changed)."""

from __future__ import annotations

import itertools

from django.utils import timezone

from dashboard.alerting import dispatch
from dashboard.models import (
    Alert,
    AlertEvent,
    AlertState,
    Deployment,
    ModelVersion,
    Node,
    RegisteredModel,
    Rule,
)

_fingerprints = itertools.count(1)
QUANTIZE = {"kind": "optimize", "passes": [{"name": "quantize_dynamic"}]}


def ready_version(name: str = "digits", number: int = 1, parent: ModelVersion | None = None) -> ModelVersion:
    model, _ = RegisteredModel.objects.get_or_create(name=name)
    return ModelVersion.objects.create(
        model=model,
        version=number,
        format="safetensors",
        architecture="SimpleModel",
        input_spec={"shape": [None, 64], "dtype": "float32", "low": 0, "high": 1},
        sha256=f"{number:064d}",
        size_bytes=1,
        status="ready",
        parent=parent,
    )


def deployment(version: ModelVersion, node: Node, **params) -> Deployment:
    serving = {"device": "cpu", "batch_size": 8, "precision": "fp32", "threads": 1, "runtime": "eager"}
    return Deployment.objects.create(
        name="digits-prod", active_version=version, node_name=node.name, params={**serving, **params}
    )


def rule(actions: list | None = None, **fields) -> Rule:
    target = {"deployment": "digits-prod", "stat": "mean", "window": "last_5"}
    return Rule.objects.create(
        name=fields.pop("name", "slow digits"),
        target=target,
        threshold=50,
        actions=[{"kind": "notify"}, QUANTIZE] if actions is None else actions,
        **fields,
    )


def alert(rule: Rule, deployment: Deployment | None, state: str = AlertState.PENDING) -> Alert:
    return Alert.objects.create(
        rule=rule,
        fingerprint=f"fp{next(_fingerprints)}",
        labels={"deployment": deployment.name if deployment else ""},
        state=state,
        value=62.0,
        deployment=deployment,
    )


def move(alert: Alert, to_state: str) -> AlertEvent:
    """The evaluator's part: persist the new state, record the event, dispatch it."""
    from_state = alert.state
    alert.state = to_state
    alert.is_open = to_state not in (AlertState.RESOLVED, AlertState.INACTIVE)
    if to_state == AlertState.FIRING and alert.started_at is None:
        alert.started_at = timezone.now()
    alert.save()
    event = AlertEvent.objects.create(
        alert=alert, from_state=from_state, to_state=to_state, value=alert.value
    )
    dispatch.alert_changed(alert, event)
    return event


def fire(rule: Rule, deployment: Deployment | None) -> Alert:
    """A new episode that goes pending -> firing."""
    episode = alert(rule, deployment)
    move(episode, AlertState.FIRING)
    return episode
