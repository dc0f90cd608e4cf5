"""Notifications of alert state changes: which deliveries are made, what they carry, and what one
delivery attempt does against a real HTTP receiver on loopback (no Celery here: the rows and the
on-commit sends are checked, and attempts are run by calling the task's body)."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import patch

from django.core import mail
from django.test import override_settings
from django.utils import timezone

from dashboard.alerting import dispatch
from dashboard.alerting.delivery import do_attempt_delivery, sweep_stuck_deliveries
from dashboard.alerting.notify import idempotency_key
from dashboard.models import (
    Alert,
    AlertEvent,
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    Job,
    JobStatus,
    Rule,
    Silence,
)
from tests.dashboard.base import BaseTestCase
from tests.dashboard.receiver import receiver


class NotifyTestCase(BaseTestCase):
    def setUp(self) -> None:
        self.rule = Rule.objects.create(
            name="hot gpu",
            target={"metric": "gpu.temperature_c", "node": "gpu-node-1", "gpu": 0},
            threshold=80,
            resolve_threshold=75,
            repeat_interval_s=3600,
            labels={"team": "ml"},
        )
        self.hook = Channel.objects.create(
            kind="webhook", name="ops", config={"url": "http://127.0.0.1:9/hook"}
        )
        self.rule.channels.add(self.hook)

    def route(self, channel: Channel) -> Channel:
        self.rule.channels.add(channel)
        return channel

    def alert(self, state: str = AlertState.PENDING, **fields) -> Alert:
        start = timezone.now() - timedelta(minutes=5)
        return Alert.objects.create(
            rule=self.rule,
            fingerprint="fp-hot-0",
            labels={"node": "gpu-node-1", "gpu": "0"},
            state=state,
            pending_since=start,
            **fields,
        )

    def move(
        self, alert: Alert, to_state: str, value: float | None, *, sends: int | None = None
    ) -> list[int]:
        """The evaluator's side of a state change: update the row, record the event, dispatch;
        returns the delivery ids whose tasks would be sent on commit."""
        now = timezone.now()
        event = AlertEvent.objects.create(alert=alert, from_state=alert.state, to_state=to_state, value=value)
        alert.state, alert.value = to_state, value
        if to_state == AlertState.FIRING and alert.started_at is None:
            alert.started_at = now
        if to_state in (AlertState.RESOLVED, AlertState.INACTIVE):
            alert.is_open, alert.resolved_at = False, now
        alert.save()
        before = set(Delivery.objects.values_list("pk", flat=True))
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            dispatch.alert_changed(alert, event)
        created = sorted(set(Delivery.objects.values_list("pk", flat=True)) - before)
        # One callback sends the deliveries, one pushes the firing count (both after the commit).
        if created:
            self.assertGreaterEqual(len(callbacks), 1)
        if sends is not None:
            self.assertEqual(len(created), sends)
        return created


class WhichNotificationsTest(NotifyTestCase):
    def test_firing_makes_one_delivery_per_enabled_channel_keyed_by_fingerprint_state_and_start(self):
        self.route(Channel.objects.create(kind="email", name="oncall", config={"to": ["a@example.com"]}))
        self.route(Channel.objects.create(kind="browser", name="toasts", enabled=False))
        alert = self.alert()
        ids = self.move(alert, AlertState.FIRING, 85.0, sends=2)
        rows = Delivery.objects.filter(pk__in=ids).order_by("channel__name")
        self.assertEqual(
            [r.channel.name for r in rows], ["oncall", "ops"], "the disabled channel gets nothing"
        )
        key = f"fp-hot-0:firing:{alert.started_at.isoformat()}"
        self.assertEqual({r.idempotency_key for r in rows}, {key})
        self.assertEqual({r.status for r in rows}, {DeliveryStatus.PENDING})
        alert.refresh_from_db()
        self.assertIsNotNone(alert.last_notified_at)
        self.assertEqual(alert.next_notify_at, alert.last_notified_at + timedelta(seconds=3600))

    def test_needs_attention_reaches_the_channels_with_its_reason_and_keeps_the_repeat_time(self):
        alert = self.alert()
        self.move(alert, AlertState.FIRING, 85.0, sends=1)
        alert.refresh_from_db()
        next_repeat = alert.next_notify_at
        event = AlertEvent.objects.create(
            alert=alert,
            from_state=alert.state,
            to_state="needs_attention",
            value=85.0,
            reason="3 of 3 attempts",
        )
        with self.captureOnCommitCallbacks(execute=False):
            dispatch.alert_changed(alert, event)
        (row,) = Delivery.objects.filter(alert_state="needs_attention")
        am = row.payload["alerts"][0]
        self.assertEqual(row.payload["status"], "firing")
        self.assertEqual(am["annotations"]["reason"], "3 of 3 attempts")
        self.assertIn("a person must look", am["annotations"]["summary"])
        alert.refresh_from_db()
        self.assertEqual(alert.next_notify_at, next_repeat)

    def test_pending_and_a_pending_episode_that_cleared_notify_nobody(self):
        alert = self.alert(state="")
        self.move(alert, AlertState.PENDING, 82.0, sends=0)
        self.move(alert, AlertState.INACTIVE, 70.0, sends=0)

    def test_resolved_carries_the_value_at_resolve_time_and_goes_only_where_firing_went(self):
        alert = self.alert()
        self.move(alert, AlertState.FIRING, 91.0, sends=1)
        self.route(Channel.objects.create(kind="email", name="late", config={"to": ["b@example.com"]}))
        (resolved_id,) = self.move(alert, AlertState.RESOLVED, 72.5, sends=1)
        resolved = Delivery.objects.get(pk=resolved_id)
        self.assertEqual(resolved.channel, self.hook, "the channel added after firing never heard of it")
        am = resolved.payload["alerts"][0]
        self.assertEqual(resolved.payload["status"], "resolved")
        self.assertEqual(am["annotations"]["value"], "72.5")
        self.assertIn("resolved at 72.5", am["annotations"]["summary"])
        self.assertNotEqual(am["endsAt"], "0001-01-01T00:00:00Z")
        self.assertTrue(resolved.idempotency_key.startswith("fp-hot-0:resolved:"))
        alert.refresh_from_db()
        self.assertIsNone(alert.next_notify_at, "a resolved alert is not repeated")

    def test_a_silenced_alert_gets_no_delivery_by_rule_or_by_labels(self):
        now = timezone.now()
        silence = Silence.objects.create(rule=self.rule, ends_at=now + timedelta(hours=1))
        self.move(self.alert(), AlertState.FIRING, 85.0, sends=0)
        silence.delete()
        Alert.objects.all().delete()
        Silence.objects.create(matchers={"team": "ml", "gpu": "0"}, ends_at=now + timedelta(hours=1))
        alert = self.alert()
        self.move(alert, AlertState.FIRING, 85.0, sends=0)
        alert.refresh_from_db()
        self.assertIsNone(alert.last_notified_at)
        self.assertIsNotNone(alert.next_notify_at, "looked at again, so it is notified once the silence ends")

    def test_a_silence_on_other_labels_or_an_expired_one_mutes_nothing(self):
        now = timezone.now()
        Silence.objects.create(matchers={"team": "web"}, ends_at=now + timedelta(hours=1))
        Silence.objects.create(
            rule=self.rule, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1)
        )
        self.move(self.alert(), AlertState.FIRING, 85.0, sends=1)

    def test_an_acknowledged_alert_gets_no_repeats_but_its_state_changes_still_notify(self):
        alert = self.alert()
        self.move(alert, AlertState.FIRING, 85.0, sends=1)
        alert.acked_by, alert.acked_at = self.alice, timezone.now()
        alert.save()
        with self.captureOnCommitCallbacks(execute=False):
            dispatch.alert_repeat(alert)
        self.assertEqual(Delivery.objects.count(), 1)
        alert.refresh_from_db()
        self.assertIsNone(alert.next_notify_at)
        self.move(alert, AlertState.RESOLVED, 70.0, sends=1)

    def test_a_repeat_is_a_new_notification_with_its_own_key_and_moves_the_next_one_on(self):
        alert = self.alert()
        (first,) = self.move(alert, AlertState.FIRING, 85.0, sends=1)
        alert.value = 88.0
        with self.captureOnCommitCallbacks(execute=False):
            dispatch.alert_repeat(alert)
        second = Delivery.objects.exclude(pk=first).get()
        first_key = Delivery.objects.get(pk=first).idempotency_key
        self.assertEqual(second.idempotency_key, first_key + ":repeat-1")
        self.assertEqual(second.payload["alerts"][0]["annotations"]["value"], "88")
        alert.refresh_from_db()
        self.assertEqual(alert.next_notify_at, alert.last_notified_at + timedelta(seconds=3600))

    def test_mute_during_jobs_holds_back_a_gpu_alert_while_perfmon_runs_a_job_on_that_gpu(self):
        self.rule.mute_during_jobs = True
        self.rule.save()
        job = Job.objects.create(
            kind="benchmark",
            model_name="SimpleModel",
            params={"device": "cuda:0"},
            status=JobStatus.RUNNING,
            node_name="gpu-node-1",
        )
        self.move(self.alert(), AlertState.FIRING, 95.0, sends=0)
        Alert.objects.all().delete()
        job.params = {"device": "cuda:1"}
        job.save()
        self.move(self.alert(), AlertState.FIRING, 95.0, sends=1)  # the job runs on another GPU

    def test_no_data_and_evaluation_errors_notify_as_themselves(self):
        alert = self.alert(error="metric store unreachable")
        (nodata,) = self.move(alert, AlertState.NODATA, None, sends=1)
        (error,) = self.move(alert, AlertState.ERROR, None, sends=1)
        self.assertEqual(
            Delivery.objects.get(pk=nodata).payload["alerts"][0]["annotations"]["state"], "nodata"
        )
        err = Delivery.objects.get(pk=error).payload["alerts"][0]["annotations"]
        self.assertEqual(err["error"], "metric store unreachable")
        self.assertEqual(Delivery.objects.get(pk=error).payload["status"], "firing")

    def test_a_notification_that_breaks_never_undoes_the_state_change_or_raises(self):
        alert = self.alert()
        with patch("dashboard.alerting.transports.Webhook.render", side_effect=RuntimeError("template bug")):
            self.move(alert, AlertState.FIRING, 85.0, sends=0)
            alert.next_notify_at = None
            with self.captureOnCommitCallbacks(execute=False):
                dispatch.alert_repeat(alert)
        alert.refresh_from_db()
        self.assertEqual(alert.state, AlertState.FIRING)
        self.assertIsNotNone(alert.next_notify_at, "a failed repeat is looked at again later, not every tick")

    def test_the_idempotency_key_of_a_state_uses_its_episode_start(self):
        alert = self.alert()
        self.assertEqual(
            idempotency_key(alert, AlertState.NODATA), f"fp-hot-0:nodata:{alert.pending_since.isoformat()}"
        )


@override_settings(NOTIFY_RETRY_BASE_S=2, NOTIFY_RETRY_MAX_S=60, NOTIFY_MAX_ATTEMPTS=3)
class DeliveryAttemptTest(NotifyTestCase):
    def fire(self) -> Delivery:
        alert = self.alert()
        (delivery_id,) = self.move(alert, AlertState.FIRING, 85.0)
        return Delivery.objects.get(pk=delivery_id)

    def test_a_webhook_posts_alertmanagers_v4_payload_with_the_idempotency_key_header(self):
        with receiver([200]) as hook:
            Channel.objects.filter(pk=self.hook.pk).update(config={"url": hook.url, "format": "alertmanager"})
            delivery = self.fire()
            self.assertIsNone(do_attempt_delivery(delivery.pk))
        (got,) = hook.received
        self.assertEqual(got.headers["Idempotency-Key"], delivery.idempotency_key)
        self.assertEqual(got.headers["Content-Type"], "application/json")
        body = got.body
        for key in (
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts",
        ):
            self.assertIn(key, body)
        self.assertEqual((body["version"], body["status"], body["receiver"]), ("4", "firing", "ops"))
        self.assertEqual(body["groupLabels"], {"alertname": "hot gpu"})
        (am,) = body["alerts"]
        self.assertEqual(
            set(am), {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        )
        self.assertEqual(
            am["labels"],
            {"alertname": "hot gpu", "severity": "warning", "team": "ml", "node": "gpu-node-1", "gpu": "0"},
        )
        self.assertEqual((am["fingerprint"], am["endsAt"]), ("fp-hot-0", "0001-01-01T00:00:00Z"))
        self.assertTrue(am["startsAt"].endswith("Z"))
        self.assertTrue(am["generatorURL"].endswith(f"/alerts/{delivery.alert_id}/"))
        delivery.refresh_from_db()
        self.assertEqual((delivery.status, delivery.response_code, delivery.error), ("sent", 200, ""))
        self.assertIsNotNone(delivery.duration_ms)

    def test_a_4xx_answer_fails_the_delivery_with_no_retry(self):
        with receiver([410]) as hook:
            Channel.objects.filter(pk=self.hook.pk).update(config={"url": hook.url, "format": "alertmanager"})
            delivery = self.fire()
            self.assertIsNone(do_attempt_delivery(delivery.pk))
        self.assertEqual(len(hook.received), 1)
        delivery.refresh_from_db()
        self.assertEqual((delivery.status, delivery.response_code), ("failed", 410))
        self.assertIn("receiver says no", delivery.error)
        self.assertEqual(Delivery.objects.count(), 1, "no further attempt")

    def test_5xx_makes_a_row_per_attempt_with_growing_waits_then_gives_up(self):
        with receiver([503]) as hook:
            Channel.objects.filter(pk=self.hook.pk).update(config={"url": hook.url, "format": "alertmanager"})
            delivery = self.fire()
            first = do_attempt_delivery(delivery.pk)
            second = do_attempt_delivery(first.delivery_id)
            self.assertIsNone(do_attempt_delivery(second.delivery_id))
        self.assertEqual((first.countdown_s, second.countdown_s), (2, 4))
        rows = list(Delivery.objects.order_by("attempt"))
        self.assertEqual([r.attempt for r in rows], [1, 2, 3])
        self.assertEqual([r.status for r in rows], ["retrying", "retrying", "failed"])
        self.assertEqual({r.idempotency_key for r in rows}, {delivery.idempotency_key})
        self.assertEqual({h.headers["Idempotency-Key"] for h in hook.received}, {delivery.idempotency_key})
        self.assertIn("gave up after 3 attempts", rows[-1].error)
        self.assertIn("trying again in 2 s", rows[0].error)

    def test_a_connection_refused_is_retried(self):
        delivery = self.fire()  # nothing listens on port 9
        retry = do_attempt_delivery(delivery.pk)
        self.assertIsNotNone(retry)
        delivery.refresh_from_db()
        self.assertEqual(delivery.status, "retrying")
        self.assertIn("could not connect", delivery.error)

    def test_an_attempt_runs_once_however_often_its_task_arrives(self):
        with receiver([200]) as hook:
            Channel.objects.filter(pk=self.hook.pk).update(config={"url": hook.url})
            delivery = self.fire()
            do_attempt_delivery(delivery.pk)
            do_attempt_delivery(delivery.pk)
        self.assertEqual(len(hook.received), 1)

    def test_a_retry_of_firing_is_dropped_once_the_resolved_notification_went_out(self):
        delivery = self.fire()
        retry = do_attempt_delivery(delivery.pk)  # connection refused: attempt 2 is pending
        alert = Alert.objects.get(pk=delivery.alert_id)
        with receiver([200]) as hook:
            Channel.objects.filter(pk=self.hook.pk).update(config={"url": hook.url})
            (resolved,) = self.move(alert, AlertState.RESOLVED, 70.0)
            do_attempt_delivery(resolved)
            do_attempt_delivery(retry.delivery_id)
        self.assertEqual([r.body["status"] for r in hook.received], ["resolved"])
        late = Delivery.objects.get(pk=retry.delivery_id)
        self.assertEqual(late.status, "failed")
        self.assertIn("newer notification (resolved)", late.error)

    def test_slack_format_posts_text(self):
        with receiver([200]) as hook:
            Channel.objects.filter(pk=self.hook.pk).update(config={"url": hook.url, "format": "slack"})
            do_attempt_delivery(self.fire().pk)
        (got,) = hook.received
        self.assertEqual(set(got.body), {"text"})
        self.assertIn("[FIRING] hot gpu: value 85", got.body["text"])

    def test_email_goes_through_djangos_backend(self):
        self.rule.channels.clear()
        self.route(
            Channel.objects.create(
                kind="email", name="oncall", config={"to": ["a@example.com", "b@example.com"]}
            )
        )
        delivery = self.fire()
        do_attempt_delivery(delivery.pk)
        (message,) = mail.outbox
        self.assertEqual(message.to, ["a@example.com", "b@example.com"])
        self.assertIn("FIRING: hot gpu", message.subject)
        self.assertIn(delivery.idempotency_key, message.body)
        delivery.refresh_from_db()
        self.assertEqual(delivery.status, "sent")


@override_settings(NOTIFY_RETRY_BASE_S=60, NOTIFY_RETRY_MAX_S=600, NOTIFY_MAX_ATTEMPTS=3, NOTIFY_TIMEOUT_S=10)
class StuckDeliverySweepTest(NotifyTestCase):
    def row(self, attempt: int, created_at, sent_at=None) -> Delivery:
        alert = Alert.objects.first() or self.alert(state=AlertState.FIRING, started_at=timezone.now())
        return Delivery.objects.create(
            channel=self.hook,
            alert=alert,
            alert_state="firing",
            idempotency_key="k",
            attempt=attempt,
            created_at=created_at,
            sent_at=sent_at,
            payload={},
        )

    def sweep(self, now) -> list[int]:
        with (
            patch("dashboard.alerting.notify.send_delivery_task") as send,
            self.captureOnCommitCallbacks(execute=True),
        ):
            sweep_stuck_deliveries(now)
        return sorted(call.args[0] for call in send.call_args_list)

    def test_an_attempt_whose_task_never_ran_is_sent_again_once_overdue(self):
        now = timezone.now()
        lost = self.row(1, now - timedelta(minutes=5))
        fresh = self.row(1, now - timedelta(seconds=30))
        waiting = self.row(2, now - timedelta(seconds=90))  # due 60 s after it was made; grace 120 s
        self.assertEqual(self.sweep(now), [lost.pk])
        self.assertEqual(self.sweep(now + timedelta(minutes=3)), sorted([lost.pk, fresh.pk, waiting.pk]))

    def test_an_attempt_its_worker_died_in_is_ended_and_retried_or_given_up(self):
        now = timezone.now()
        dead = self.row(1, now - timedelta(minutes=10), sent_at=now - timedelta(minutes=10))
        last = self.row(3, now - timedelta(minutes=10), sent_at=now - timedelta(minutes=10))
        running = self.row(1, now - timedelta(seconds=5), sent_at=now - timedelta(seconds=5))
        (resent,) = self.sweep(now)
        dead.refresh_from_db(), last.refresh_from_db(), running.refresh_from_db()
        self.assertEqual(dead.status, "retrying")
        self.assertIn("the worker stopped during the attempt", dead.error)
        following = Delivery.objects.get(pk=resent)
        self.assertEqual(
            (following.attempt, following.status, following.idempotency_key), (2, "pending", "k")
        )
        self.assertEqual(last.status, "failed")
        self.assertIn("gave up after 3 attempts", last.error)
        self.assertEqual(running.status, "pending", "an attempt within its timeout is left alone")
