"""Named actions on rules, alerts and silences, with the one validation the API, the web form and
the admin share. Writes need the operator role.

The evaluator notices a rule change by itself (it compares rules' ``updated_at`` every second), so
these actions only write rows."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from dashboard.alerting import targets
from dashboard.alerting.targets import TargetError
from dashboard.models import Alert, Channel, NoDataPolicy, Role, Rule, Severity, Silence
from dashboard.permissions import require

ACTION_KINDS = ("notify", "optimize", "auto_optimize")
DURATIONS = ("for_s", "keep_firing_for_s", "repeat_interval_s", "no_data_after_s", "cooldown_s")
MAX_SILENCE_S = 365 * 86400


class RuleInvalid(ValueError):
    """The rule cannot be stored as asked; the message says why (a 400)."""


DEFAULTS: dict[str, Any] = {
    "op": ">",
    "resolve_threshold": None,
    "for_s": 0,
    "keep_firing_for_s": 0,
    "repeat_interval_s": 3600,
    "no_data": NoDataPolicy.NODATA.value,
    "no_data_after_s": None,
    "severity": Severity.WARNING.value,
    "labels": {},
    "enabled": True,
    "channels": [],
    "actions": [],
    "auto_promote": False,
    "require_approval": False,
    "cooldown_s": 1800,
    "max_attempts": 3,
    "mute_during_jobs": False,
}
FIELDS = ("name", "target", "threshold", *DEFAULTS)


def rule_fields(rule: Rule) -> dict[str, Any]:
    data = {name: getattr(rule, name) for name in FIELDS if name != "channels"}
    data["channels"] = list(rule.channels.values_list("pk", flat=True)) if rule.pk else []
    return data


def clean_rule(data: dict[str, Any], rule: Rule | None = None) -> dict[str, Any]:
    """The complete, valid field values for a new rule (``rule`` None) or an edit of ``rule``
    (``data`` may then hold only the fields that change). Raises RuleInvalid naming the problem."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise RuleInvalid(f"unknown field(s): {', '.join(unknown)}")
    merged = {**(rule_fields(rule) if rule else DEFAULTS), **data}
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise RuleInvalid("name is required (at most 200 characters)")
    merged["name"] = name = name.strip()
    if Rule.objects.filter(name=name).exclude(pk=rule.pk if rule else None).exists():
        raise RuleInvalid(f"a rule named {name!r} already exists")
    if "threshold" not in merged or merged["threshold"] is None:
        raise RuleInvalid("threshold is required")
    for key in ("threshold", "resolve_threshold"):
        value = merged.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise RuleInvalid(f"{key} must be a finite number")
            merged[key] = float(value)
    try:
        merged["target"] = targets.validate(merged.get("target"))
        targets.check_condition(
            merged["target"], merged["op"], merged["threshold"], merged["resolve_threshold"]
        )
        targets.check_durations(**{k: merged.get(k) for k in DURATIONS})
    except TargetError as exc:
        raise RuleInvalid(str(exc)) from None
    if merged["no_data"] not in NoDataPolicy.values:
        raise RuleInvalid(f"no_data {merged['no_data']!r}: one of {', '.join(NoDataPolicy.values)}")
    if merged["severity"] not in Severity.values:
        raise RuleInvalid(f"severity {merged['severity']!r}: one of {', '.join(Severity.values)}")
    labels = merged["labels"]
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and len(k) <= 100 and len(v) <= 500
        for k, v in labels.items()
    ):
        raise RuleInvalid("labels must be an object of short strings to strings")
    reserved = sorted(set(labels) & {"alertname", "alertstate"})
    if reserved:
        raise RuleInvalid(f"label {reserved[0]!r} is set by perfmon")
    for flag in ("enabled", "auto_promote", "require_approval", "mute_during_jobs"):
        if not isinstance(merged[flag], bool):
            raise RuleInvalid(f"{flag} must be true or false")
    attempts = merged["max_attempts"]
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise RuleInvalid("max_attempts must be a whole number from 1 to 100")
    channels = merged["channels"]
    if not isinstance(channels, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in channels
    ):
        raise RuleInvalid("channels must be a list of channel ids")
    missing = sorted(
        set(channels) - set(Channel.objects.filter(pk__in=channels).values_list("pk", flat=True))
    )
    if missing:
        raise RuleInvalid(f"unknown channel {missing[0]}")
    actions = merged["actions"]
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise RuleInvalid("actions must be a list of objects with a kind")
    for i, action in enumerate(actions):
        if action.get("kind") not in ACTION_KINDS:
            raise RuleInvalid(f"actions[{i}].kind: one of {', '.join(ACTION_KINDS)}")
    if actions and "deployment" not in merged["target"] and any(a["kind"] != "notify" for a in actions):
        raise RuleInvalid("optimization actions need a deployment target (what would they optimize?)")
    return merged


def _save(rule: Rule, fields: dict[str, Any]) -> Rule:
    channels = fields.pop("channels")
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.updated_at = timezone.now()
    with transaction.atomic():
        rule.save()
        rule.channels.set(channels)
    return rule


def do_create_rule(user, data: dict[str, Any]) -> Rule:
    require(user, Role.OPERATOR, "creating an alert rule")
    fields = clean_rule(data)
    return _save(Rule(created_by=user if getattr(user, "pk", None) else None), fields)


def do_update_rule(user, rule: Rule, data: dict[str, Any]) -> Rule:
    """Change some fields of one rule. The evaluator keeps this rule's open episodes unless its
    target changed, and never touches other rules."""
    require(user, Role.OPERATOR, "changing an alert rule")
    return _save(rule, clean_rule(data, rule))


def do_delete_rule(user, rule: Rule) -> None:
    require(user, Role.OPERATOR, "deleting an alert rule")
    rule.delete()


def do_ack_alert(user, alert: Alert) -> Alert:
    """Someone is on it: shown on the alert; notifications of this episode may stop (see notify)."""
    require(user, Role.OPERATOR, "acknowledging an alert")
    Alert.objects.filter(pk=alert.pk).update(acked_by=user, acked_at=timezone.now())
    alert.refresh_from_db()
    return alert


def do_create_silence(
    user,
    rule: Rule | None,
    matchers: dict[str, str],
    duration_s: int,
    comment: str = "",
) -> Silence:
    require(user, Role.OPERATOR, "silencing alerts")
    if rule is None and not matchers:
        raise RuleInvalid("a silence needs a rule or label matchers (silencing everything is not a silence)")
    if not isinstance(matchers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()
    ):
        raise RuleInvalid("matchers must be an object of label names to values")
    if (
        isinstance(duration_s, bool)
        or not isinstance(duration_s, int)
        or not 1 <= duration_s <= MAX_SILENCE_S
    ):
        raise RuleInvalid("duration_s must be whole seconds from 1 to a year")
    now = timezone.now()
    return Silence.objects.create(
        rule=rule,
        matchers=matchers,
        starts_at=now,
        ends_at=now + timedelta(seconds=duration_s),
        comment=comment[:500],
        created_by=user if getattr(user, "pk", None) else None,
    )


def do_end_silence(user, silence: Silence) -> Silence:
    require(user, Role.OPERATOR, "ending a silence")
    now = timezone.now()
    if silence.ends_at > now:
        silence.ends_at = now
        silence.save(update_fields=["ends_at"])
    return silence
