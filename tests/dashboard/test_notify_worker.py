"""Notifications delivered by a real Celery worker over the real Redis broker to a real HTTP
receiver on loopback: a receiver that is down and then comes up gets the notification once, after
retries a user can see as rows."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import override_settings
from django.utils import timezone

from dashboard.alerting import dispatch
from dashboard.alerting.notify import NOTIFY_QUEUE
from dashboard.models import Alert, AlertEvent, AlertState, Channel, Delivery, Rule
from perfmon.celery import app
from perfmon.private_redis import free_port
from tests.dashboard.receiver import receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def celery_worker():
    app.control.purge()
    with start_worker(
        app, pool="solo", queues=[NOTIFY_QUEUE], perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield worker


def fire(url: str) -> Alert:
    """What the evaluator does when a rule enters firing: row, event, dispatch, in one transaction."""
    channel = Channel.objects.create(
        kind="webhook", name="ops", config={"url": url, "format": "alertmanager"}
    )
    rule = Rule.objects.create(
        name="slow digits", target={"deployment": "digits-prod", "stat": "mean"}, threshold=50
    )
    rule.channels.add(channel)
    now = timezone.now()
    alert = Alert.objects.create(
        rule=rule,
        fingerprint="fp-digits",
        state=AlertState.FIRING,
        value=63.0,
        pending_since=now,
        started_at=now,
    )
    dispatch.alert_changed(
        alert, AlertEvent.objects.create(alert=alert, from_state="pending", to_state="firing", value=63.0)
    )
    return alert


def wait_for(predicate, what: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


# Short waits between attempts, and enough attempts that the receiver coming up is never too late.
@override_settings(NOTIFY_RETRY_BASE_S=0.1, NOTIFY_RETRY_MAX_S=0.5, NOTIFY_MAX_ATTEMPTS=200)
def test_a_receiver_down_then_up_gets_the_notification_once_after_visible_retries(celery_worker):
    port = free_port()
    alert = fire(f"http://127.0.0.1:{port}/hook")  # nothing listens there yet
    wait_for(
        lambda: Delivery.objects.filter(alert=alert, status="retrying").count() >= 2, "two failed attempts"
    )
    with receiver([200], port=port) as hook:
        sent = wait_for(lambda: Delivery.objects.filter(alert=alert, status="sent").first(), "a delivery")
        assert len(hook.received) == 1
    rows = list(Delivery.objects.filter(alert=alert).order_by("attempt"))
    assert [r.attempt for r in rows] == list(range(1, len(rows) + 1))
    assert [r.status for r in rows] == ["retrying"] * (len(rows) - 1) + ["sent"]
    assert all("could not connect" in r.error for r in rows[:-1])
    assert rows[-1] == sent and sent.response_code == 200
    (got,) = hook.received
    assert got.headers["Idempotency-Key"] == sent.idempotency_key == rows[0].idempotency_key
    assert got.body["status"] == "firing" and got.body["alerts"][0]["fingerprint"] == "fp-digits"


@override_settings(NOTIFY_RETRY_BASE_S=0.1, NOTIFY_RETRY_MAX_S=0.5, NOTIFY_MAX_ATTEMPTS=5)
def test_a_receiver_answering_4xx_is_tried_once_and_the_failure_stays_visible(celery_worker):
    with receiver([400]) as hook:
        alert = fire(hook.url)
        failed = wait_for(lambda: Delivery.objects.filter(alert=alert, status="failed").first(), "a failure")
    assert len(hook.received) == 1
    assert failed.response_code == 400 and failed.attempt == 1
    assert Delivery.objects.filter(alert=alert).count() == 1
