"""/api/channels: where alerts are sent (browser toasts, email, webhooks), and every delivery attempt.

POST {"kind": "webhook", "name": "ops", "url": "http://...", "format": "alertmanager" | "slack"},
{"kind": "email", "name": "oncall", "to": ["a@example.com"]} or {"kind": "browser", "name": "toasts"}."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Query, Router, Schema, Status

from dashboard.alerting.channels import (
    channel_json,
    do_create_channel,
    do_set_channel_enabled,
    do_test_channel,
)
from dashboard.alerting.notify import delivery_json
from dashboard.alerting.transports import TRANSPORTS, WEBHOOK_FORMATS, InvalidChannel
from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.models import Channel, Delivery

router = Router(tags=["channels"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class ChannelIn(Schema):
    kind: str = Field(json_schema_extra={"enum": list(TRANSPORTS)})
    name: str = Field(description="unique; rules name channels by id")
    url: str | None = Field(default=None, description="webhook: the http(s) URL to POST to")
    format: str | None = Field(
        default=None,
        description='webhook: alertmanager (webhook payload version 4, the default) or slack ({"text"})',
        json_schema_extra={"enum": list(WEBHOOK_FORMATS)},
    )
    to: list[str] | None = Field(default=None, description="email: the recipients")


class ChannelPatch(Schema):
    enabled: bool


class LastDelivery(Schema):
    status: str
    at: str
    response_code: int | None
    error: str


class ChannelOut(Schema):
    id: int
    kind: str
    name: str
    enabled: bool
    config: dict[str, Any]
    describe: str
    created_at: str
    last_delivery: LastDelivery | None
    failed_deliveries: int


class DeliveryOut(Schema):
    id: int
    channel: int
    channel_name: str
    alert: int
    alert_state: str
    idempotency_key: str
    attempt: int
    status: str
    response_code: int | None
    error: str
    duration_ms: float | None
    created_at: str | None
    sent_at: str | None


class TestOut(Schema):
    ok: bool
    response_code: int | None
    error: str
    duration_ms: float


@router.post("", response={201: ChannelOut, **WRITE_ERRORS})
def create_channel(request, payload: ChannelIn):
    """Create a channel; 400 names what is wrong (unknown kind or format, a URL that is not http(s),
    no recipients, a name in use). Rules route to channels by id."""
    fields = payload.dict(exclude={"kind", "name"}, exclude_none=True)
    try:
        channel = do_create_channel(request.user, payload.kind, payload.name, fields)
    except InvalidChannel as exc:
        return Status(400, {"error": str(exc)})
    return Status(201, channel_json(channel, request.user))


@router.get("", response={200: list[ChannelOut], 401: Error})
def list_channels(request):
    """Every channel with its last delivery and how many deliveries failed."""
    return [channel_json(channel, request.user) for channel in Channel.objects.all()]


@router.get("/{channel_id}", response={200: ChannelOut, 401: Error, 404: Error})
def get_channel(request, channel_id: int):
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return Status(404, {"error": f"channel {channel_id} not found"})
    return channel_json(channel, request.user)


@router.patch("/{channel_id}", response={200: ChannelOut, **WRITE_ERRORS, 404: Error})
def patch_channel(request, channel_id: int, payload: ChannelPatch):
    """Enable or disable a channel (a disabled one gets no new deliveries; pending ones end failed)."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return Status(404, {"error": f"channel {channel_id} not found"})
    return channel_json(do_set_channel_enabled(request.user, channel, payload.enabled), request.user)


@router.get("/{channel_id}/deliveries", response={200: list[DeliveryOut], 400: Error, 401: Error, 404: Error})
def channel_deliveries(
    request,
    channel_id: int,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    status: Literal["", "pending", "sent", "retrying", "failed"] = "",
):
    """Delivery attempts through this channel, newest first: one row per attempt (a retried
    notification shows each attempt, all with the same idempotency key). ``status``: pending, sent,
    retrying or failed; empty for all."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return Status(404, {"error": f"channel {channel_id} not found"})
    rows = Delivery.objects.filter(channel=channel).select_related("channel")
    if status:
        rows = rows.filter(status=status)
    return [delivery_json(d) for d in rows[:limit]]


@router.post("/{channel_id}/test", response={200: TestOut, **WRITE_ERRORS, 404: Error})
def test_channel(request, channel_id: int):
    """Send a test notification now and answer what the receiver said (ok, response code, error,
    duration). Tried once; it is not an alert's delivery, so no Delivery row is written."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return Status(404, {"error": f"channel {channel_id} not found"})
    return do_test_channel(request.user, channel)
