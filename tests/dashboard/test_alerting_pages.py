"""The rules and alerts pages: the form validates like the API; an alert shows its history, and an
operator acknowledges or silences it from there."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.alerting.silences import is_silenced
from dashboard.models import Alert, AlertEvent, Role, Rule
from dashboard.permissions import grant
from tests.dashboard.base import BaseTestCase

FORM = {
    "name": "busy node",
    "kind": "metric",
    "metric": "host.cpu_percent",
    "node": "gpu-node-1",
    "op": ">",
    "threshold": "90",
    "resolve_threshold": "80",
    "for_s": "30",
    "keep_firing_for_s": "0",
    "repeat_interval_s": "3600",
    "no_data": "nodata",
    "severity": "warning",
    "labels": "team=ml",
    "enabled": "on",
}


class RulePagesTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_an_operator_creates_a_rule_from_the_form(self):
        response = self.client.post("/rules/", FORM)
        rule = Rule.objects.get()
        self.assertRedirects(response, f"/rules/{rule.pk}/")
        self.assertEqual(rule.target, {"metric": "host.cpu_percent", "node": "gpu-node-1", "gpu": None})
        self.assertEqual((rule.threshold, rule.resolve_threshold, rule.labels), (90, 80, {"team": "ml"}))
        page = self.client.get("/rules/").content.decode()
        self.assertIn("busy node", page)

    def test_the_form_refuses_what_the_api_refuses_with_the_reason(self):
        response = self.client.post("/rules/", FORM | {"node": "nowhere"})
        self.assertEqual(response.status_code, 400)
        self.assertIn("unknown node &#x27;nowhere&#x27;", response.content.decode())
        self.assertFalse(Rule.objects.exists())

    def test_editing_changes_the_rule(self):
        self.client.post("/rules/", FORM)
        rule = Rule.objects.get()
        page = self.client.get(f"/rules/{rule.pk}/").content.decode()
        self.assertIn('value="busy node"', page)
        response = self.client.post(f"/rules/{rule.pk}/", FORM | {"threshold": "95"})
        self.assertRedirects(response, f"/rules/{rule.pk}/")
        rule.refresh_from_db()
        self.assertEqual(rule.threshold, 95)

    def test_a_viewer_sees_rules_but_no_form_and_cannot_post(self):
        viewer = get_user_model().objects.create_user("vic", password="viewer-pass-1")
        grant(viewer, Role.VIEWER)
        self.client.force_login(viewer)
        self.assertNotIn('id="rule-form"', self.client.get("/rules/").content.decode())
        self.assertEqual(self.client.post("/rules/", FORM).status_code, 403)


class AlertPagesTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)
        self.rule = Rule.objects.create(
            name="busy", target={"metric": "host.cpu_percent", "node": "gpu-node-1"}, threshold=90
        )
        now = timezone.now()
        self.alert = Alert.objects.create(
            rule=self.rule,
            fingerprint="f",
            labels={"alertname": "busy", "node": "gpu-node-1"},
            state="firing",
            value=97.5,
            pending_since=now,
            started_at=now,
            next_notify_at=now,
        )
        AlertEvent.objects.create(
            alert=self.alert, from_state="", to_state="pending", value=95, reason="value 95 > 90"
        )
        AlertEvent.objects.create(
            alert=self.alert, from_state="pending", to_state="firing", value=97.5, reason="for 30 s"
        )

    def test_the_alerts_page_lists_open_alerts_and_filters_by_state(self):
        page = self.client.get("/alerts/?state=firing").content.decode()
        self.assertIn(f'data-alert-id="{self.alert.pk}"', page)
        page = self.client.get("/alerts/?state=resolved").content.decode()
        self.assertIn('id="no-alerts"', page)

    def test_an_alert_shows_its_history_and_next_repeat(self):
        page = self.client.get(f"/alerts/{self.alert.pk}/").content.decode()
        self.assertIn("value 95 &gt; 90", page)
        self.assertIn("for 30 s", page)
        self.assertIn('id="next-repeat"', page)

    def test_acknowledge_and_silence_from_the_page(self):
        self.client.post(f"/alerts/{self.alert.pk}/ack/")
        self.alert.refresh_from_db()
        self.assertEqual(self.alert.acked_by, self.alice)
        self.client.post(f"/alerts/{self.alert.pk}/silence/", {"minutes": "30"})
        self.assertTrue(is_silenced(self.alert))


class RuleAdminTestCase(BaseTestCase):
    def test_the_admin_validates_rules_like_the_api(self):
        admin = get_user_model().objects.create_superuser("root", password="root-pass-123")
        self.client.force_login(admin)
        response = self.client.post(
            "/admin/dashboard/rule/add/",
            {
                "name": "bad",
                "target": '{"metric": "host.cpu_percent", "node": "nowhere"}',
                "op": ">",
                "threshold": "90",
                "for_s": "0",
                "keep_firing_for_s": "0",
                "repeat_interval_s": "3600",
                "no_data": "nodata",
                "severity": "warning",
                "labels": "{}",
                "actions": "[]",
                "cooldown_s": "1800",
                "max_attempts": "3",
                "created_at_0": "2026-01-01",
                "created_at_1": "00:00:00",
                "updated_at_0": "2026-01-01",
                "updated_at_1": "00:00:00",
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("unknown node", response.content.decode())
        self.assertFalse(Rule.objects.exists())
        self.assertEqual(self.client.get("/admin/dashboard/alert/").status_code, 200)
