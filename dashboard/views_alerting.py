"""/rules/ (list, create, edit, delete) and /alerts/ (open and past alerts, each with its history,
acknowledge and silence). The form goes through the same clean_rule as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.alerting.rules import (
    RuleInvalid,
    do_ack_alert,
    do_create_rule,
    do_create_silence,
    do_delete_rule,
    do_update_rule,
)
from dashboard.alerting.targets import STATS
from dashboard.models import Alert, AlertState, Comparator, NoDataPolicy, Role, Rule, Severity
from dashboard.permissions import has_role

TARGET_KINDS = [
    ("metric", "resource metric"),
    ("deployment", "deployment latency"),
    ("benchmark", "benchmark regression"),
]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=TARGET_KINDS, label="Target")
    metric = forms.CharField(required=False, help_text="e.g. gpu.temperature_c, host.cpu_percent")
    node = forms.CharField(required=False, help_text="node name (resource metric; optional for benchmarks)")
    gpu = forms.IntegerField(required=False, min_value=0, help_text="GPU index, for gpu.* metrics")
    deployment = forms.CharField(required=False)
    stat = forms.ChoiceField(choices=[(s, s) for s in STATS], required=False, initial="mean")
    window = forms.CharField(required=False, initial="5m", help_text='"5m", "30s", "1h", or "last_5"')
    model = forms.CharField(required=False, help_text="benchmarks: a model name (empty: any)")
    op = forms.ChoiceField(choices=[(c.value, c.value) for c in Comparator], initial=">")
    threshold = forms.FloatField()
    resolve_threshold = forms.FloatField(required=False, help_text="hysteresis; empty = the threshold")
    for_s = forms.IntegerField(initial=0, label="For (s)", help_text="pending this long before firing")
    keep_firing_for_s = forms.IntegerField(initial=0, label="Keep firing for (s)")
    repeat_interval_s = forms.IntegerField(initial=3600, label="Repeat every (s)", help_text="0 = never")
    no_data = forms.ChoiceField(choices=NoDataPolicy.choices, initial="nodata", label="No data")
    no_data_after_s = forms.IntegerField(
        required=False, label="No data after (s)", help_text="empty: 3 source intervals"
    )
    severity = forms.ChoiceField(choices=Severity.choices, initial="warning")
    labels = forms.CharField(required=False, help_text="team=ml, env=prod")
    enabled = forms.BooleanField(required=False, initial=True)

    def rule_data(self) -> dict[str, Any]:
        """The API's fields, for clean_rule."""
        c = self.cleaned_data
        if c["kind"] == "metric":
            target: dict[str, Any] = {"metric": c["metric"], "node": c["node"], "gpu": c["gpu"]}
        elif c["kind"] == "deployment":
            target = {
                "deployment": c["deployment"],
                "stat": c["stat"] or "mean",
                "window": c["window"] or "5m",
            }
        else:
            target = {"benchmark": "regression", "model": c["model"] or None, "node": c["node"] or None}
        labels = {}
        for part in filter(None, (p.strip() for p in (c["labels"] or "").split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise RuleInvalid(f"labels: {part!r} is not name=value")
            labels[key.strip()] = value.strip()
        return {
            "name": c["name"],
            "target": target,
            **{k: c[k] for k in ("op", "threshold", "resolve_threshold", "for_s", "keep_firing_for_s")},
            **{k: c[k] for k in ("repeat_interval_s", "no_data", "no_data_after_s", "severity", "enabled")},
            "labels": labels,
        }


def initial_of(rule: Rule) -> dict[str, Any]:
    target = rule.target if isinstance(rule.target, dict) else {}
    kind = "deployment" if "deployment" in target else "benchmark" if "benchmark" in target else "metric"
    fields = ("op", "threshold", "resolve_threshold", "for_s", "keep_firing_for_s", "repeat_interval_s")
    return {
        "name": rule.name,
        "kind": kind,
        **{k: target.get(k) for k in ("metric", "node", "gpu", "deployment", "stat", "window", "model")},
        **{k: getattr(rule, k) for k in fields},
        **{k: getattr(rule, k) for k in ("no_data", "no_data_after_s", "severity", "enabled")},
        "labels": ", ".join(f"{k}={v}" for k, v in (rule.labels or {}).items()),
    }


def _rules_page(request, form: RuleForm, status: int = 200) -> HttpResponse:
    rules = Rule.objects.prefetch_related(Prefetch("alerts", queryset=Alert.objects.filter(is_open=True)))
    rows = [(rule, list(rule.alerts.all())) for rule in rules]
    context = {"rows": rows, "form": form, "can_write": has_role(request.user, Role.OPERATOR)}
    return render(request, "dashboard/rules.html", context, status=status)


@login_required
def rules(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _rules_page(request, RuleForm())
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            rule = do_create_rule(request.user, form.rule_data())
        except RuleInvalid as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("dashboard:rule", rule_id=rule.pk)
    return _rules_page(request, form, status=400)


@login_required
def rule_detail(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise Http404("no such rule")
    form = RuleForm(request.POST) if request.method == "POST" else RuleForm(initial=initial_of(rule))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                do_update_rule(request.user, rule, form.rule_data())
            except RuleInvalid as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("dashboard:rule", rule_id=rule.pk)
        status = 400
    context = {
        "rule": rule,
        "form": form,
        "alerts": rule.alerts.all()[:50],
        "can_write": has_role(request.user, Role.OPERATOR),
    }
    return render(request, "dashboard/rule.html", context, status=status)


@login_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise Http404("no such rule")
    do_delete_rule(request.user, rule)
    return redirect("dashboard:rules")


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    rows = Alert.objects.select_related("rule", "acked_by")
    if state == "open":
        rows = rows.filter(is_open=True)
    elif state in AlertState.values:
        rows = rows.filter(state=state)
    context = {
        "open_alerts": Alert.objects.filter(is_open=True).select_related("rule", "acked_by"),
        "alerts": rows[:200],
        "state": state,
        "states": ["open", *AlertState.values],
    }
    return render(request, "dashboard/alerts.html", context)


@login_required
@require_POST
def alert_ack(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise Http404("no such alert")
    do_ack_alert(request.user, alert)
    return redirect("dashboard:alert", alert_id=alert_id)


@login_required
@require_POST
def alert_silence(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Silence this alert's rule for the duration chosen (minutes)."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        raise Http404("no such alert")
    try:
        minutes = int(request.POST.get("minutes", "60"))
        do_create_silence(request.user, alert.rule, {}, minutes * 60, request.POST.get("comment", ""))
    except (ValueError, RuleInvalid) as exc:
        from dashboard.views_alert_detail import alert_detail

        return alert_detail(request, alert_id, error=str(exc), status=400)
    return redirect("dashboard:alert", alert_id=alert_id)
