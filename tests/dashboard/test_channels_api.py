"""/api/channels and the channels page: create (with the 400s that say why), list, deliveries, test."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from dashboard.models import Alert, ApiToken, Channel, Delivery, Role, Rule
from dashboard.permissions import grant
from tests.dashboard.base import BaseTestCase
from tests.dashboard.receiver import receiver


class ChannelsApiTest(BaseTestCase):
    def post(self, path: str, body: dict | None = None, token: str | None = None):
        return self.client.post(
            path, json.dumps(body or {}), content_type="application/json", **self.bearer(token)
        )

    def test_an_operator_creates_webhook_email_and_browser_channels(self):
        hook = self.post(
            "/api/channels",
            {"kind": "webhook", "name": "ops", "url": "https://hooks.example.com/x", "format": "slack"},
        )
        self.assertEqual(hook.status_code, 201, hook.content)
        self.assertEqual(hook.json()["config"], {"url": "https://hooks.example.com/x", "format": "slack"})
        email = self.post("/api/channels", {"kind": "email", "name": "oncall", "to": ["a@example.com"]})
        self.assertEqual(email.status_code, 201, email.content)
        browser = self.post("/api/channels", {"kind": "browser", "name": "toasts"})
        self.assertEqual(browser.status_code, 201, browser.content)
        default = self.post(
            "/api/channels", {"kind": "webhook", "name": "am", "url": "http://127.0.0.1:9093/hook"}
        )
        self.assertEqual(default.json()["config"]["format"], "alertmanager")
        listed = self.client.get("/api/channels", **self.bearer()).json()
        self.assertEqual([c["name"] for c in listed], ["am", "oncall", "ops", "toasts"])
        self.assertIsNone(listed[0]["last_delivery"])

    def test_bad_channels_are_refused_with_the_reason(self):
        cases = [
            (
                {"kind": "webhook", "name": "a", "url": "ftp://example.com/x"},
                "url: the scheme must be http or https",
            ),
            (
                {"kind": "webhook", "name": "a", "url": "file:///etc/passwd"},
                "url: the scheme must be http or https",
            ),
            ({"kind": "webhook", "name": "a", "url": "http:///nohost"}, "url: no host"),
            ({"kind": "webhook", "name": "a"}, "url: a webhook needs the URL"),
            (
                {"kind": "webhook", "name": "a", "url": "http://x.example/", "format": "teams"},
                "format: 'teams' is not one of",
            ),
            ({"kind": "email", "name": "a", "to": []}, "to: an email channel needs at least one recipient"),
            ({"kind": "email", "name": "a"}, "to: an email channel needs at least one recipient"),
            (
                {"kind": "email", "name": "a", "to": ["not-an-address"]},
                "to: 'not-an-address' is not an email address",
            ),
            ({"kind": "pager", "name": "a"}, "kind: 'pager' is not one of webhook, email, browser"),
            ({"kind": "browser", "name": "  "}, "name: give the channel a name"),
        ]
        for body, reason in cases:
            response = self.post("/api/channels", body)
            self.assertEqual(response.status_code, 400, body)
            self.assertIn(reason, response.json()["error"], body)
        self.post("/api/channels", {"kind": "browser", "name": "toasts"})
        again = self.post("/api/channels", {"kind": "browser", "name": "toasts"})
        self.assertEqual(again.status_code, 400)
        self.assertIn("exists already", again.json()["error"])
        self.assertEqual(Channel.objects.count(), 1)

    def test_a_viewer_may_look_but_not_create(self):
        viewer = get_user_model().objects.create_user("vic", password="pw-vic-12345")
        _token, raw = ApiToken.issue(viewer, Role.VIEWER)
        response = self.post("/api/channels", {"kind": "browser", "name": "toasts"}, token=raw)
        self.assertEqual(response.status_code, 403)
        self.assertIn("operator", response.json()["error"])
        Channel.objects.create(
            kind="webhook",
            name="slack",
            config={"url": "https://hooks.slack.example/services/T0/B0/SECRET", "format": "slack"},
        )
        (seen,) = self.client.get("/api/channels", **self.bearer(raw)).json()
        self.assertEqual(
            seen["config"]["url"], "https://hooks.slack.example/…", "the secret path is for operators"
        )
        self.assertNotIn("SECRET", json.dumps(seen))
        (operator_sees,) = self.client.get("/api/channels", **self.bearer()).json()
        self.assertIn("SECRET", operator_sees["config"]["url"])

    def test_deliveries_of_a_channel_newest_first_with_status_code_error_and_duration(self):
        channel = Channel.objects.create(kind="webhook", name="ops", config={"url": "http://x.example/"})
        rule = Rule.objects.create(
            name="r", target={"metric": "host.cpu_percent", "node": "gpu-node-1"}, threshold=90
        )
        alert = Alert.objects.create(rule=rule, fingerprint="f", state="firing", started_at=timezone.now())
        for attempt, status, code in ((1, "retrying", 503), (2, "failed", 400)):
            Delivery.objects.create(
                channel=channel,
                alert=alert,
                alert_state="firing",
                idempotency_key="k",
                attempt=attempt,
                status=status,
                response_code=code,
                error=f"HTTP {code}",
                duration_ms=12.5,
            )
        rows = self.client.get(f"/api/channels/{channel.pk}/deliveries", **self.bearer()).json()
        self.assertEqual(
            [(r["attempt"], r["status"], r["response_code"]) for r in rows],
            [(2, "failed", 400), (1, "retrying", 503)],
        )
        self.assertEqual(rows[0]["error"], "HTTP 400")
        self.assertEqual(rows[0]["duration_ms"], 12.5)
        failed = self.client.get(
            f"/api/channels/{channel.pk}/deliveries?status=failed", **self.bearer()
        ).json()
        self.assertEqual(len(failed), 1)
        self.assertEqual(
            self.client.get(f"/api/channels/{channel.pk}/deliveries?status=odd", **self.bearer()).status_code,
            400,
        )
        self.assertEqual(self.client.get("/api/channels/999/deliveries", **self.bearer()).status_code, 404)
        summary = self.client.get(f"/api/channels/{channel.pk}", **self.bearer()).json()
        self.assertEqual(summary["failed_deliveries"], 1)
        self.assertEqual(summary["last_delivery"]["status"], "failed")

    def test_send_test_notification_answers_what_the_receiver_said(self):
        with receiver([200, 500]) as hook:
            created = self.post("/api/channels", {"kind": "webhook", "name": "ops", "url": hook.url}).json()
            ok = self.post(f"/api/channels/{created['id']}/test").json()
            bad = self.post(f"/api/channels/{created['id']}/test").json()
        self.assertEqual((ok["ok"], ok["response_code"]), (True, 200))
        self.assertEqual((bad["ok"], bad["response_code"]), (False, 500))
        self.assertEqual(
            hook.received[0].body["alerts"][0]["labels"]["alertname"], "perfmon test notification"
        )
        self.assertEqual(Delivery.objects.count(), 0, "a test is not an alert's delivery")

    def test_disabling_a_channel(self):
        channel = Channel.objects.create(kind="browser", name="toasts")
        response = self.client.patch(
            f"/api/channels/{channel.pk}",
            json.dumps({"enabled": False}),
            content_type="application/json",
            **self.bearer(),
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertFalse(Channel.objects.get(pk=channel.pk).enabled)


class ChannelsPageTest(BaseTestCase):
    def setUp(self) -> None:
        self.client = Client()
        self.client.force_login(self.alice)

    def test_the_page_lists_channels_and_their_failed_deliveries(self):
        channel = Channel.objects.create(kind="webhook", name="ops", config={"url": "http://x.example/hook"})
        rule = Rule.objects.create(
            name="hot gpu",
            target={"metric": "gpu.temperature_c", "node": "gpu-node-1", "gpu": 0},
            threshold=80,
        )
        alert = Alert.objects.create(rule=rule, fingerprint="f", state="firing", started_at=timezone.now())
        Delivery.objects.create(
            channel=channel,
            alert=alert,
            alert_state="firing",
            idempotency_key="k",
            status="failed",
            response_code=404,
            error="HTTP 404: no such hook",
            duration_ms=3.0,
        )
        page = self.client.get("/channels/")
        self.assertEqual(page.status_code, 200)
        html = page.content.decode()
        self.assertIn("http://x.example/hook", html)
        self.assertIn("HTTP 404: no such hook", html)
        self.assertIn('data-status="failed"', html)
        self.assertIn('id="alert-count"', html)
        self.assertIn('data-count="1"', html, "the navigation counts the firing alert")
        self.assertIn("js/alerts-toast.js", html)

    def test_the_form_creates_a_channel_and_shows_a_refusal_on_its_field(self):
        made = self.client.post(
            "/channels/", {"kind": "email", "name": "oncall", "to": "a@example.com, b@example.com"}
        )
        self.assertEqual(made.status_code, 302)
        self.assertEqual(
            Channel.objects.get(name="oncall").config, {"to": ["a@example.com", "b@example.com"]}
        )
        refused = self.client.post(
            "/channels/", {"kind": "webhook", "name": "bad", "url": "gopher://x", "format": "alertmanager"}
        )
        self.assertEqual(refused.status_code, 400)
        self.assertIn("the scheme must be http or https", refused.content.decode())

    def test_a_viewer_sees_no_form(self):
        viewer = get_user_model().objects.create_user("vic", password="pw-vic-12345")
        grant(viewer, Role.VIEWER)
        client = Client()
        client.force_login(viewer)
        html = client.get("/channels/").content.decode()
        self.assertNotIn('id="channel-form"', html)
        self.assertEqual(client.post("/channels/", {"kind": "browser", "name": "x"}).status_code, 403)
