"""The named writes on notification channels: create one, send it a test notification.

The API (dashboard/api/channels.py), the channels page and the admin call these."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.alerting.transports import InvalidChannel, Notice, Outcome, transport_for
from dashboard.models import Channel
from dashboard.permissions import Role, has_role, require

MAX_NAME_CHARS = 200


def do_create_channel(user, kind: str, name: str, fields: dict[str, Any]) -> Channel:
    """A new channel of ``kind`` ("webhook": url, format; "email": to; "browser": nothing).

    Raises InvalidChannel naming the field and the reason, PermissionDenied for a viewer."""
    require(user, Role.OPERATOR, "creating a notification channel")
    transport = transport_for(kind)
    name = (name or "").strip()
    if not name:
        raise InvalidChannel("name: give the channel a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidChannel(f"name: at most {MAX_NAME_CHARS} characters")
    config = transport.parse_config(fields)
    if Channel.objects.filter(name=name).exists():
        raise InvalidChannel(f"name: a channel named {name!r} exists already")
    try:
        with transaction.atomic():
            return Channel.objects.create(kind=kind, name=name, config=config, created_by=user)
    except IntegrityError:  # created by someone else between the check and the insert
        raise InvalidChannel(f"name: a channel named {name!r} exists already") from None


def do_set_channel_enabled(user, channel: Channel, enabled: bool) -> Channel:
    require(user, Role.OPERATOR, "changing a notification channel")
    Channel.objects.filter(pk=channel.pk).update(enabled=enabled)
    channel.enabled = enabled
    return channel


def do_test_channel(user, channel: Channel) -> dict[str, Any]:
    """Send a test notification now, in this request, and say what happened (code, error, ms).

    A test is not an alert's delivery: it leaves no Delivery row (those belong to alerts), and is
    tried once, so the person who clicked sees the receiver's own answer."""
    require(user, Role.OPERATOR, "sending a test notification")
    now = timezone.now()
    notice = Notice(
        rule="perfmon test notification",
        state="test",
        value=None,
        labels={"alertname": "perfmon test notification", "severity": "info"},
        annotations={"summary": f"a test from {getattr(user, 'username', 'perfmon')}: this channel works"},
        fingerprint="test",
        starts_at=now,
        ends_at=None,
        url=_channels_url(),
        severity="info",
    )
    transport = transport_for(channel.kind)
    payload = transport.render(channel, notice)
    started = time.perf_counter()
    try:
        outcome = transport.send(channel, payload, f"test:{channel.pk}:{now.isoformat()}")
    except Exception as exc:  # shown to the person testing, not raised as a 500
        outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
    return {
        "ok": outcome.ok,
        "response_code": outcome.response_code,
        "error": outcome.error,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def shown_config(channel: Channel, user) -> dict[str, Any]:
    """A channel's config as ``user`` may see it: a webhook URL's path and query often hold the
    receiver's secret (Slack's do), so below the operator role only its scheme and host show."""
    config = dict(channel.config or {})
    if channel.kind == "webhook" and not has_role(user, Role.OPERATOR) and config.get("url"):
        parts = urlsplit(config["url"])
        config["url"] = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
    return config


def channel_json(channel: Channel, user) -> dict[str, Any]:
    last = channel.deliveries.order_by("-created_at", "-id").first()
    failed = channel.deliveries.filter(status="failed").count()
    return {
        "id": channel.pk,
        "kind": channel.kind,
        "name": channel.name,
        "enabled": channel.enabled,
        "config": shown_config(channel, user),
        "describe": transport_for(channel.kind).describe(shown_config(channel, user)),
        "created_at": channel.created_at.isoformat(),
        "last_delivery": None
        if last is None
        else {
            "status": last.status,
            "at": last.created_at.isoformat(),
            "response_code": last.response_code,
            "error": last.error,
        },
        "failed_deliveries": failed,
    }


def _channels_url() -> str:
    return f"{settings.PERFMON_EXTERNAL_URL}/channels/"
