"""/channels/: notification channels (create, test, enable/disable) and their delivery attempts."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.alerting.channels import (
    do_create_channel,
    do_set_channel_enabled,
    do_test_channel,
    shown_config,
)
from dashboard.alerting.transports import TRANSPORTS, WEBHOOK_FORMATS, InvalidChannel
from dashboard.models import Channel, Delivery, Role
from dashboard.permissions import has_role

DELIVERIES_SHOWN = 50


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind, kind) for kind in TRANSPORTS], initial="webhook")
    name = forms.CharField(max_length=200)
    url = forms.CharField(
        max_length=2000, required=False, label="URL", help_text="webhook: http(s) URL to POST to"
    )
    format = forms.ChoiceField(
        choices=[(f, f) for f in WEBHOOK_FORMATS], required=False, help_text="webhook: payload format"
    )
    to = forms.CharField(
        required=False,
        label="Recipients",
        help_text="email: addresses, separated by commas or spaces",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def fields_for(self, kind: str) -> dict:
        data = self.cleaned_data
        if kind == "webhook":
            return {"url": data["url"], "format": data["format"] or "alertmanager"}
        if kind == "email":
            return {"to": [a for a in re.split(r"[\s,;]+", data["to"]) if a]}
        return {}


def _page(request: HttpRequest, *, form=None, test=None, status=200) -> HttpResponse:
    selected = request.GET.get("channel", "")
    deliveries = Delivery.objects.select_related("channel", "alert", "alert__rule")
    channel = None
    if selected.isdecimal():
        channel = Channel.objects.filter(pk=int(selected)).first()
        if channel is not None:
            deliveries = deliveries.filter(channel=channel)
    channels = list(Channel.objects.all())
    for each in channels:
        shown = shown_config(each, request.user)
        each.describe = TRANSPORTS[each.kind].describe(shown) if each.kind in TRANSPORTS else ""
        each.last = each.deliveries.order_by("-created_at", "-id").first()
        each.failed = each.deliveries.filter(status="failed").count()
    context = {
        "channels": channels,
        "form": form or ChannelForm(),
        "may_write": has_role(request.user, Role.OPERATOR),
        "deliveries": deliveries[:DELIVERIES_SHOWN],
        "selected": channel,
        "test": test,
    }
    return render(request, "dashboard/channels.html", context, status=status)


@login_required
def channels(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    form = ChannelForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    kind = form.cleaned_data["kind"]
    try:
        do_create_channel(request.user, kind, form.cleaned_data["name"], form.fields_for(kind))
    except InvalidChannel as exc:
        field, _, reason = str(exc).partition(": ")
        if field in form.fields and reason:
            form.add_error(field, reason)
        else:
            form.add_error(None, str(exc))
        return _page(request, form=form, status=400)
    return redirect("dashboard:channels")


@login_required
@require_POST
def test_channel(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(channel_id)
    result = do_test_channel(request.user, channel)
    return _page(request, test={"channel": channel, **result})


@login_required
@require_POST
def toggle_channel(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(channel_id)
    do_set_channel_enabled(request.user, channel, not channel.enabled)
    return redirect("dashboard:channels")


def _channel(channel_id: int) -> Channel:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise Http404(f"channel {channel_id} not found")
    return channel
