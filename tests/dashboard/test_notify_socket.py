"""The browser channel: an alert's toast and the firing count reach every open page's socket
through the real Redis channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from dashboard.alerting import dispatch
from dashboard.alerting.delivery import do_attempt_delivery
from dashboard.models import Alert, AlertEvent, AlertState, Channel, Delivery, Rule
from tests.dashboard.live_client import communicator_for, receive_until, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def fire_into_a_browser_channel() -> int:
    channel = Channel.objects.create(kind="browser", name="toasts")
    rule = Rule.objects.create(
        name="hot gpu",
        target={"metric": "gpu.temperature_c", "node": "n", "gpu": 0},
        threshold=80,
        severity="critical",
    )
    rule.channels.add(channel)
    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.create(
            rule=rule,
            fingerprint="fp",
            state=AlertState.FIRING,
            value=91.5,
            pending_since=now,
            started_at=now,
        )
        event = AlertEvent.objects.create(alert=alert, from_state="pending", to_state="firing", value=91.5)
        dispatch.alert_changed(alert, event)
    return Delivery.objects.get(alert=alert).pk


async def test_a_firing_alert_toasts_on_an_open_page_and_updates_its_count():
    user = await sync_to_async(get_user_model().objects.create_user)("vic", password="pw-vic-12345")
    client = Client()
    await sync_to_async(client.force_login)(user)  # a viewer watches alerts too
    communicator = communicator_for(client)
    assert (await communicator.connect())[0]
    await subscribe(communicator, "alerts")

    # The on-commit count push arrives; the delivery task (not running here) is run by hand.
    delivery_id = await sync_to_async(fire_into_a_browser_channel)()
    count = await receive_until(communicator, lambda m: m.get("type") == "alert_count")
    assert count["firing"] == 1
    await sync_to_async(do_attempt_delivery)(delivery_id)
    toast = await receive_until(communicator, lambda m: m.get("type") == "alert")
    assert toast["alert"]["rule"] == "hot gpu"
    assert (toast["alert"]["state"], toast["alert"]["value"], toast["alert"]["severity"]) == (
        "firing",
        91.5,
        "critical",
    )
    assert toast["key"].startswith("fp:firing:")
    delivery = await sync_to_async(Delivery.objects.get)(pk=delivery_id)
    assert delivery.status == "sent"
    await communicator.disconnect()
