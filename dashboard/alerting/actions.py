"""A firing rule's actions, and the guards that keep them from looping.

A rule names its actions in priority order (list order):

    {"kind": "notify"}                                 the rule's channels notify (a marker here)
    {"kind": "optimize", "passes": [...], ...}         an optimization pipeline (OptimizeParams keys,
                                                       plus "max_accuracy_drop" for promotion)
    {"kind": "auto_optimize", ...}                     the accuracy-aware search (AutoOptimizeParams)

They run when an alert *enters* firing, never on a repeat, and never because a job failed (a job's
end never re-fires anything). For an alert about a deployment, a job action optimizes the
deployment's *active* version on the deployment's node with its serving config (device, batch size,
threads); keys of the action override those. Each action taken or held back is an AlertAction row.
A job action that fails to submit (invalid params, refused, no deployment) is logged there and the
next action still runs; once one job is submitted the remaining job actions are held back by the
one-in-flight guard, so later job actions are the fallbacks of earlier ones.

Guards, per rule and deployment: one job in flight; ``rule.cooldown_s`` after the previous action
job ended; at most ``rule.max_attempts`` jobs per firing episode, after which a person is told once
(an AlertEvent ``needs_attention`` through the rule's channels); ``rule.require_approval`` makes job
actions wait for an operator (``do_approve_action``).

Who acts: perfmon itself (``do_submit_job(None, ..., alert=)``; the permission was checked when the
rule was given its actions), or the operator who approved. When the job ends, the action records
the measured before/after latency and fidelity at the deployment's batch size; with
``rule.auto_promote`` the produced version is promoted once it is validated, if it is faster than
the original, within the accuracy constraint and the deployment still runs the version the job
started from. Otherwise an operator promotes it with one click (``do_promote_from_alert``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from dashboard.models import (
    Alert,
    AlertAction,
    AlertActionStatus,
    AlertEvent,
    AlertState,
    Deployment,
    DeploymentChange,
    DeploymentChangeKind,
    Job,
    JobStatus,
    ModelVersion,
    ModelVersionStatus,
    Rule,
)
from dashboard.permissions import PermissionDenied, Role, require

log = logging.getLogger(__name__)

NOTIFY = "notify"
JOB_ACTIONS = ("optimize", "auto_optimize")
ACTION_KINDS = (NOTIFY, *JOB_ACTIONS)
# The AlertEvent state that says "perfmon has done what it may; a person must look".
NEEDS_ATTENTION = "needs_attention"
# How much fidelity an optimize action's result may lose and still be promoted automatically
# (relative accuracy drop, or 1 - agreement without a data set): the auto-optimizer's default.
DEFAULT_MAX_ACCURACY_DROP = 0.01
# Keys of an optimize action that judge its result rather than configure its job.
_PROMOTION_KEYS = ("max_accuracy_drop",)
_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# The detail of a job action held back because the deployment's active version is still being
# validated (a deployment just created registers its model): on_active_version_settled finds it.
WAITING_FOR_VALIDATION = "waiting for {label} to be validated: the job starts once it is ready"


class ActionRefused(ValueError):
    """An action a person asked for that cannot be taken; the message says why (API: 400)."""


class InvalidAction(ValueError):
    """A rule's action that cannot be run as written (the rules API answers 400 with it)."""


# ----------------------------------------------------------------------------------------------
# Validation (for the rules API and form)


def validate_actions(actions: object) -> list[dict[str, Any]]:
    """The actions of a rule, checked: a list of objects with a known kind whose job parameters
    the job kind accepts. Raises InvalidAction naming the first problem."""
    from pydantic import ValidationError

    from dashboard.jobspec import describe_problems
    from dashboard.kinds import KINDS

    if actions is None:
        return []
    if not isinstance(actions, list):
        raise InvalidAction('actions must be a list, e.g. [{"kind": "optimize", "passes": [...]}]')
    checked = []
    for position, action in enumerate(actions, start=1):
        if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
            got = action.get("kind") if isinstance(action, dict) else action
            raise InvalidAction(f"action {position}: unknown kind {got!r}; one of {', '.join(ACTION_KINDS)}")
        kind = action["kind"]
        if kind == NOTIFY:
            if set(action) != {"kind"}:
                raise InvalidAction(f"action {position}: notify takes no parameters")
            checked.append({"kind": NOTIFY})
            continue
        drop = action.get("max_accuracy_drop", DEFAULT_MAX_ACCURACY_DROP)
        if kind == "optimize" and not (isinstance(drop, int | float) and 0 <= drop <= 0.5):
            raise InvalidAction(f"action {position}: max_accuracy_drop must be a number from 0 to 0.5")
        params = _job_params(kind, action, {})
        try:
            KINDS[kind].params_model.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(message for _, message in describe_problems(exc))
            raise InvalidAction(f"action {position} ({kind}): {problems}") from None
        checked.append(dict(action))
    return checked


# ----------------------------------------------------------------------------------------------
# Entering firing


def on_transition(alert: Alert, event: AlertEvent) -> None:
    """On entering firing: run the rule's actions in priority order, under the loop guards. On
    resolving: approvals still awaited expire (nothing is left to fix).

    Runs inside the evaluator's transaction: whatever goes wrong here is logged and undone to a
    savepoint, never raised into the evaluator (its state change and notification stand)."""
    try:
        with transaction.atomic():
            if event.to_state == AlertState.FIRING and event.from_state != AlertState.FIRING:
                run_actions(alert)
            elif event.to_state in (AlertState.RESOLVED, AlertState.INACTIVE):
                alert.actions.filter(status=AlertActionStatus.AWAITING_APPROVAL).update(
                    status=AlertActionStatus.EXPIRED,
                    detail=f"the alert {event.to_state} before anyone approved",
                )
    except Exception:
        log.exception("alert %s: its rule's actions failed on entering %s", alert.pk, event.to_state)


def run_actions(alert: Alert) -> list[AlertAction]:
    """Take (or hold back) each action of the alert's rule, in order; one row each."""
    rule = alert.rule
    taken = []
    with transaction.atomic():
        _lock(rule)
        for position, spec in enumerate(rule.actions or []):
            kind = spec.get("kind") if isinstance(spec, dict) else None
            row = AlertAction(alert=alert, position=position, kind=str(kind or "")[:32], spec=spec)
            if kind == NOTIFY:
                row.status, row.detail = AlertActionStatus.DONE, "sent through the rule's channels"
                row.save()
            elif kind in JOB_ACTIONS and rule.require_approval:
                row.status = AlertActionStatus.AWAITING_APPROVAL
                row.detail = "the rule asks an operator to approve before a job is started"
                row.save()
            elif kind in JOB_ACTIONS:
                _try_submit(row, user=None)
            else:
                row.status, row.detail = AlertActionStatus.FAILED, f"unknown action kind {kind!r}"
                row.save()
            if row.status == AlertActionStatus.FAILED:
                log.warning("alert %s: action %s (%s) failed: %s", alert.pk, position, kind, row.detail)
            taken.append(row)
    return taken


def _lock(rule: Rule) -> None:
    """Serialize the guards of one rule (PostgreSQL row lock; SQLite's writes are serialized)."""
    Rule.objects.select_for_update().filter(pk=rule.pk).first()


def _try_submit(row: AlertAction, user) -> AlertAction:
    """Check the guards, then submit the row's job (as perfmon when ``user`` is None)."""
    from dashboard.actions import do_submit_job
    from dashboard.kinds.base import InvalidJob

    alert = row.alert
    held = guard(alert)
    if held is not None:
        row.status, row.detail = AlertActionStatus.BLOCKED, held
        row.save()
        return row
    active = (
        ModelVersion.objects.select_related("model").filter(pk=alert.deployment.active_version_id).first()
        if alert.deployment is not None
        else None
    )
    if active is not None and active.status == ModelVersionStatus.VALIDATING:
        row.status = AlertActionStatus.BLOCKED
        row.detail = WAITING_FOR_VALIDATION.format(label=f"{active.model.name}@{active.version}")
        row.save()
        return row
    try:
        kind, model, params, node = job_request(row.spec, alert)
        with transaction.atomic():  # a savepoint: a refused submission leaves no half job
            job = do_submit_job(user, kind, model, params, node, alert=alert, deployment=alert.deployment)
    except (InvalidAction, InvalidJob, PermissionDenied) as exc:
        row.status, row.detail = AlertActionStatus.FAILED, str(exc)[:2000]
    except Exception as exc:  # one action failing must not stop the next
        log.exception("alert %s: action %s could not be submitted", alert.pk, row.position)
        row.status, row.detail = AlertActionStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    else:
        row.status, row.job, row.detail = AlertActionStatus.SUBMITTED, job, ""
    row.save()
    return row


def guard(alert: Alert) -> str | None:
    """Why no job may start for this alert now, or None. Tells a person once when the episode's
    attempts are used up."""
    rule, deployment = alert.rule, alert.deployment
    if deployment is None:
        return None  # nothing to guard: job_request refuses it with the reason
    ours = Job.objects.filter(alert__rule=rule, deployment=deployment)
    in_flight = ours.filter(status__in=_ACTIVE).order_by("created_at").first()
    if in_flight is not None:
        return (
            f"job #{in_flight.pk} is still {in_flight.status} for this rule and deployment "
            "(one job at a time)"
        )
    attempts = alert.jobs.count()
    if attempts >= rule.max_attempts:
        reason = (
            f"{attempts} of {rule.max_attempts} attempts of this firing used and the alert still "
            "fires: a person must look"
        )
        needs_attention(alert, reason)
        return reason
    last = ours.filter(finished_at__isnull=False).order_by("-finished_at").first()
    if last is not None and rule.cooldown_s:
        until = last.finished_at + timedelta(seconds=rule.cooldown_s)
        if timezone.now() < until:
            return (
                f"cooling down: job #{last.pk} ended at {last.finished_at:%Y-%m-%d %H:%M:%S} UTC; "
                f"the next job may start at {until:%H:%M:%S} UTC (cooldown {rule.cooldown_s} s)"
            )
    return None


def needs_attention(alert: Alert, reason: str) -> AlertEvent | None:
    """Record, once per episode, that perfmon will not act again, and notify the rule's channels."""
    from dashboard.alerting import notify

    if alert.events.filter(to_state=NEEDS_ATTENTION).exists():
        return None
    event = AlertEvent.objects.create(
        alert=alert, from_state=alert.state, to_state=NEEDS_ATTENTION, value=alert.value, reason=reason[:500]
    )
    notify.notify_transition(alert, event)
    return event


def job_request(spec: dict[str, Any], alert: Alert) -> tuple[str, str, dict[str, Any], str]:
    """(kind, model, params, node) of the job an action asks for on the alert's deployment."""
    deployment = alert.deployment
    if deployment is None:
        raise InvalidAction(
            "this alert is not about a deployment: optimize actions act on a deployment's active version"
        )
    version = ModelVersion.objects.select_related("model").get(pk=deployment.active_version_id)
    kind = spec["kind"]
    return (
        kind,
        f"{version.model.name}@{version.version}",
        _job_params(kind, spec, deployment.params or {}),
        deployment.node_name,
    )


def _job_params(kind: str, spec: dict[str, Any], serving: dict[str, Any]) -> dict[str, Any]:
    """The job's params: the deployment's serving config, then the action's own keys."""
    base: dict[str, Any] = {}
    if isinstance(serving.get("device"), str):
        base["device"] = serving["device"]
    if isinstance(serving.get("threads"), int):
        base["threads"] = serving["threads"]
    batch = serving.get("batch_size")
    if isinstance(batch, int):
        base["batch_sizes" if kind == "optimize" else "batch_size"] = [batch] if kind == "optimize" else batch
    own = {k: v for k, v in spec.items() if k != "kind" and not (kind == "optimize" and k in _PROMOTION_KEYS)}
    return {**base, **own}


# ----------------------------------------------------------------------------------------------
# Approval, promotion and rollback by an operator


def do_approve_action(user, alert: Alert, action_id: int | None = None) -> AlertAction:
    """An operator approves the first action awaiting approval (or ``action_id``): its job is
    submitted now, in the operator's name, under the same guards."""
    require(user, Role.OPERATOR, "approving an alert's action")
    with transaction.atomic():
        _lock(alert.rule)
        awaiting = alert.actions.select_for_update().filter(status=AlertActionStatus.AWAITING_APPROVAL)
        if action_id is not None:
            awaiting = awaiting.filter(pk=action_id)
        row = awaiting.order_by("position", "id").first()
        if row is None:
            raise ActionRefused(f"alert #{alert.pk} has no action awaiting approval")
        alert.refresh_from_db()
        if alert.state != AlertState.FIRING:
            raise ActionRefused(f"alert #{alert.pk} is {alert.state}, not firing: there is nothing to fix")
        held = guard(alert)
        if held is not None:
            raise ActionRefused(held)
        row.approved_by, row.approved_at = user, timezone.now()
        _try_submit(row, user=user)
    if row.status == AlertActionStatus.FAILED:
        raise ActionRefused(f"approved, but the job could not be submitted: {row.detail}")
    return row


def promotable(alert: Alert) -> AlertAction | None:
    """The newest action of the alert whose job produced a version, or None."""
    for row in alert.actions.filter(job__status=JobStatus.SUCCEEDED).order_by("-created_at", "-id"):
        if (row.outcome or {}).get("version"):
            return row
    return None


def do_promote_from_alert(user, alert: Alert, job_id: int | None = None) -> DeploymentChange:
    """One click: make the version the alert's action job produced the deployment's active one."""
    from dashboard.deployments.actions import DeploymentRefused, do_promote

    require(user, Role.OPERATOR, "promoting a model version")
    if alert.deployment is None:
        raise DeploymentRefused(f"alert #{alert.pk} is not about a deployment")
    rows = alert.actions.filter(job_id=job_id) if job_id is not None else None
    row = rows.first() if rows is not None else promotable(alert)
    version_id = ((row.outcome or {}).get("version") or {}).get("id") if row is not None else None
    version = ModelVersion.objects.select_related("model").filter(pk=version_id).first()
    if version is None:
        which = f"job #{job_id} of alert #{alert.pk}" if job_id is not None else f"alert #{alert.pk}"
        raise DeploymentRefused(f"{which} produced no model version to promote")
    if version.status != ModelVersionStatus.READY:
        why = f": {version.status_reason}" if version.status_reason else ""
        raise DeploymentRefused(f"{version.label} is {version.status}{why}; only a ready version is promoted")
    return do_promote(user, alert.deployment, version, alert=alert, job=row.job)


def do_rollback_from_alert(user, alert: Alert) -> DeploymentChange:
    """One click: undo the promotion this alert made, if it is still the deployment's last change."""
    from dashboard.deployments.actions import DeploymentRefused, do_rollback

    require(user, Role.OPERATOR, "rolling back a deployment")
    deployment = alert.deployment
    if deployment is None:
        raise DeploymentRefused(f"alert #{alert.pk} is not about a deployment")
    last = deployment.changes.first()
    if last is None or last.alert_id != alert.pk or last.kind == DeploymentChangeKind.ROLLBACK:
        raise DeploymentRefused(
            f"{deployment.name}'s last change was not a promotion made from alert #{alert.pk}; "
            "roll it back from the deployment's page"
        )
    return do_rollback(user, deployment)


def rollbackable(alert: Alert) -> DeploymentChange | None:
    """The alert's promotion that a rollback would undo now, or None."""
    if alert.deployment is None:
        return None
    last = alert.deployment.changes.first()
    if last is not None and last.alert_id == alert.pk and last.kind != DeploymentChangeKind.ROLLBACK:
        return last
    return None


# ----------------------------------------------------------------------------------------------
# When the job ends


def on_job_finished(job: Job) -> None:
    """Record the measured before/after of an alert's action job and decide on auto-promotion.
    Called by dashboard.actions.do_finish_job inside its transaction."""
    row = AlertAction.objects.filter(job=job).select_related("alert__rule", "alert__deployment").first()
    if row is None:
        return
    row.outcome = measure_outcome(job, row.spec)
    _decide_promotion(row, job)
    row.save(update_fields=["outcome"])
    _tell_a_person_if_exhausted(row)


def on_version_settled(version: ModelVersion) -> None:
    """The version an alert's action job produced was validated (or rejected): promote it now if
    the rule auto-promotes and the constraints held."""
    row = (
        AlertAction.objects.filter(job_id=version.produced_by_job_id)
        .select_related("alert__rule", "alert__deployment", "job")
        .first()
    )
    if row is None or row.outcome is None or row.job is None:
        return
    _decide_promotion(row, row.job)
    row.save(update_fields=["outcome"])
    _tell_a_person_if_exhausted(row)


def on_active_version_settled(version: ModelVersion) -> None:
    """A deployment's active version finished validating: the job actions of its still firing
    alerts that waited for it are submitted now (under the guards), or fail saying why."""
    waiting = AlertAction.objects.filter(
        status=AlertActionStatus.BLOCKED,
        job=None,
        alert__is_open=True,
        alert__state=AlertState.FIRING,
        alert__deployment__active_version=version,
        detail__startswith=WAITING_FOR_VALIDATION.split("{", 1)[0],
    ).select_related("alert__rule", "alert__deployment__active_version__model")
    for row in waiting.order_by("alert_id", "position"):
        if version.status == ModelVersionStatus.READY:
            _lock(row.alert.rule)
            _try_submit(row, user=None)
        else:
            row.status = AlertActionStatus.FAILED
            row.detail = (
                f"{version.model.name}@{version.version} is {version.status}: {version.status_reason}"
            )
            row.save()
        if row.status == AlertActionStatus.FAILED:
            log.warning("alert %s: action %s failed: %s", row.alert_id, row.position, row.detail)


def _tell_a_person_if_exhausted(row: AlertAction) -> None:
    """The episode's last allowed attempt ended without fixing anything while the alert still
    fires: perfmon will not try again (actions run on entering firing only), so say so now rather
    than at a next firing that may never come."""
    alert = Alert.objects.select_related("rule").get(pk=row.alert_id)
    state = ((row.outcome or {}).get("promotion") or {}).get("state")
    if alert.state != AlertState.FIRING or state in ("promoted", "waiting", "off"):
        return
    attempts = alert.jobs.count()
    if attempts >= alert.rule.max_attempts:
        needs_attention(
            alert,
            f"{attempts} of {alert.rule.max_attempts} attempts of this firing used, the last one "
            f"(job #{row.job_id}) was not promoted and the alert still fires: a person must look",
        )


def _decide_promotion(row: AlertAction, job: Job) -> None:
    """Set row.outcome["promotion"]: {"state": off|refused|waiting|promoted, "detail"}."""
    from dashboard.deployments.actions import DeploymentRefused, do_promote

    outcome, rule, alert = row.outcome, row.alert.rule, row.alert
    if not rule.auto_promote:
        outcome["promotion"] = {"state": "off", "detail": "the rule leaves promotion to an operator"}
        return
    if outcome["reasons"]:
        detail = "not promoted automatically: " + "; ".join(outcome["reasons"])
        outcome["promotion"] = {"state": "refused", "detail": detail}
        return
    if DeploymentChange.objects.filter(job=job, kind=DeploymentChangeKind.AUTO_PROMOTE).exists():
        return  # already done (a validation answered twice)
    version = ModelVersion.objects.select_related("model").get(pk=outcome["version"]["id"])
    if version.status == ModelVersionStatus.VALIDATING:
        detail = f"{version.label} is being validated; promoted automatically once it is ready"
        outcome["promotion"] = {"state": "waiting", "detail": detail}
        return
    if version.status != ModelVersionStatus.READY:
        detail = f"not promoted automatically: {version.label} was {version.status}: {version.status_reason}"
        outcome["promotion"] = {"state": "refused", "detail": detail[:500]}
        return
    deployment = Deployment.objects.get(pk=alert.deployment_id)
    if deployment.active_version_id != job.model_version_id:
        detail = (
            "not promoted automatically: the deployment no longer runs the version this job "
            "optimized (someone changed it meanwhile)"
        )
        outcome["promotion"] = {"state": "refused", "detail": detail}
        return
    try:
        do_promote(None, deployment, version, kind=DeploymentChangeKind.AUTO_PROMOTE, alert=alert, job=job)
    except DeploymentRefused as exc:
        outcome["promotion"] = {"state": "refused", "detail": f"not promoted automatically: {exc}"}
        return
    outcome["promotion"] = {"state": "promoted", "detail": f"promoted automatically to {version.label}"}
    log.info("alert %s: deployment %s auto-promoted to %s (job %s)", alert.pk, deployment, version, job.pk)


def measure_outcome(job: Job, spec: dict[str, Any]) -> dict[str, Any]:
    """What the action's job measured, at the deployment's batch size: {"batch_size", "before",
    "after" ({"p50_ms", "p99_ms", "score"}), "score_name" (accuracy, or agreement without a data
    set), "speedup", "accuracy_drop" (relative), "max_accuracy_drop", "version" ({"id", "model_id", "label"}),
    "reasons" (why it may not be promoted automatically; empty when the constraints held)}."""
    result = job.result or {}
    if job.kind == "auto_optimize":
        batch = job.params.get("batch_size")
        before, after, score_name = _auto_rows(result)
        limit = (result.get("constraints") or {}).get(
            "max_accuracy_drop", job.params.get("max_accuracy_drop")
        )
    else:
        batch = (job.params.get("batch_sizes") or [None])[0]
        before, after, score_name = _optimize_rows(result, str(batch))
        limit = spec.get("max_accuracy_drop", DEFAULT_MAX_ACCURACY_DROP)
    registered = result.get("registered")
    version = None
    if registered:
        found = ModelVersion.objects.filter(
            model_id=registered["model_id"], version=registered["version"]
        ).first()
        if found is not None:
            version = {
                "id": found.pk,
                "model_id": found.model_id,
                "label": f"{registered['model']}@{registered['version']}",
            }
    speedup = drop = None
    if before and after and before.get("p50_ms") and after.get("p50_ms"):
        speedup = before["p50_ms"] / after["p50_ms"]
    if before and after and after.get("score") is not None:
        if score_name == "accuracy" and before.get("score"):
            drop = (before["score"] - after["score"]) / before["score"]
        elif score_name == "agreement":
            drop = 1.0 - after["score"]
    reasons = []
    if job.status != JobStatus.SUCCEEDED:
        reasons.append(f"the job {job.status}" + (f": {job.error}" if job.error else ""))
    elif job.kind == "auto_optimize" and not result.get("chosen"):
        reasons.append("no candidate met the constraints")
    if job.status == JobStatus.SUCCEEDED:
        if version is None:
            reasons.append("no new version was registered")
        if speedup is None:
            reasons.append(f"no latency measured at batch size {batch}")
        elif speedup <= 1.0:
            reasons.append(
                f"not faster than the original at batch size {batch}: "
                f"{after['p50_ms']:.3g} ms against {before['p50_ms']:.3g} ms"
            )
        if drop is None:
            reasons.append("no fidelity measured")
        elif limit is not None and drop > limit:
            reasons.append(f"{score_name} dropped {drop:.2%} (relative), more than the {limit:.2%} allowed")
    return {
        "batch_size": batch,
        "before": before,
        "after": after,
        "score_name": score_name,
        "speedup": speedup,
        "accuracy_drop": drop,
        "max_accuracy_drop": limit,
        "version": version,
        "reasons": reasons,
    }


def _score(fidelity: dict[str, Any] | None) -> tuple[float | None, str]:
    fidelity = fidelity or {}
    if fidelity.get("accuracy") is not None:
        return fidelity["accuracy"], "accuracy"
    return fidelity.get("agreement"), "agreement"


def _optimize_rows(result: dict[str, Any], batch: str):
    def row(data: dict[str, Any] | None) -> dict[str, Any] | None:
        if not data:
            return None
        latency = (data.get("latency_ms") or {}).get(batch) or {}
        score, name = _score(data)
        return {
            "label": data.get("label"),
            "p50_ms": latency.get("p50"),
            "p99_ms": latency.get("p99"),
            "score": score,
            "score_name": name,
        }

    before, after = row(result.get("before")), row(result.get("final"))
    if before is not None and after is not None and after["score_name"] == "accuracy":
        # The original's accuracy as the final row measured it (same split, same run).
        original = (result.get("final") or {}).get("accuracy_original")
        if original is not None:
            before["score"] = original
    name = after["score_name"] if after else (before["score_name"] if before else "accuracy")
    if before is not None and name == "agreement":
        before["score"] = 1.0  # the original agrees with itself
    return before, after, name


def _auto_rows(result: dict[str, Any]):
    def row(data: dict[str, Any] | None) -> dict[str, Any] | None:
        if not data:
            return None
        latency = data.get("latency_ms") or {}
        score, name = _score(data.get("fidelity"))
        return {
            "label": data.get("label"),
            "p50_ms": latency.get("p50_ms"),
            "p99_ms": latency.get("p99_ms"),
            "score": score,
            "score_name": name,
        }

    chosen = result.get("chosen")
    candidate = next((c for c in result.get("candidates") or [] if c.get("label") == chosen), None)
    before, after = row(result.get("baseline")), row(candidate)
    name = after["score_name"] if after else (before["score_name"] if before else "accuracy")
    if before is not None and name == "agreement":
        before["score"] = 1.0
    return before, after, name
