"""/api/rules, /api/alerts and /api/silences: what an operator can do, and every refusal a 400
that names the reason."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.alerting.silences import is_silenced
from dashboard.models import Alert, AlertEvent, ApiToken, Role, Rule
from dashboard.permissions import grant
from tests.dashboard.alerting_world import deployment
from tests.dashboard.base import BaseTestCase

CPU = {"metric": "host.cpu_percent", "node": "gpu-node-1"}


class RulesApiTestCase(BaseTestCase):
    def post(self, body: dict, path: str = "/api/rules", token: str | None = None):
        return self.client.post(path, json.dumps(body), content_type="application/json", **self.bearer(token))

    def patch(self, rule_id: int, body: dict):
        return self.client.patch(
            f"/api/rules/{rule_id}", json.dumps(body), content_type="application/json", **self.bearer()
        )

    def assert_refused(self, body: dict, reason: str):
        response = self.post({"name": "r", "threshold": 90, "target": CPU} | body)
        self.assertEqual(response.status_code, 400, response.content)
        self.assertIn(reason, response.json()["error"])
        self.assertFalse(Rule.objects.exists())

    def test_an_operator_creates_a_rule_on_a_node_metric(self):
        response = self.post(
            {"name": "busy", "target": CPU, "op": ">", "threshold": 90, "resolve_threshold": 80, "for_s": 30}
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(body["target"], {"metric": "host.cpu_percent", "node": "gpu-node-1", "gpu": None})
        self.assertEqual((body["threshold"], body["resolve_threshold"], body["for_s"]), (90, 80, 30))
        self.assertEqual((body["no_data"], body["repeat_interval_s"]), ("nodata", 3600))
        self.assertEqual(self.client.get("/api/rules", **self.bearer()).json()[0]["name"], "busy")

    def test_a_deployment_latency_rule_as_in_the_issue(self):
        deployment("digits-prod", node="gpu-node-1")
        response = self.post(
            {
                "name": "slow digits",
                "target": {"deployment": "digits-prod", "stat": "mean", "window": "last_5"},
                "op": ">",
                "threshold": 50,
                "resolve_threshold": 45,
                "keep_firing_for_s": 0,
                "repeat_interval_s": 3600,
                "no_data": "nodata",
                "severity": "warning",
                "actions": [{"kind": "optimize", "passes": [{"name": "quantize_dynamic"}]}],
                "auto_promote": False,
            }
        )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["actions"][0]["kind"], "optimize")

    def test_refusals_name_the_reason(self):
        deployment("digits-prod", node="gpu-node-1")
        cases = [
            ({"target": {"metric": "host.nonsense", "node": "gpu-node-1"}}, "unknown metric 'host.nonsense'"),
            ({"target": {"metric": "host.cpu_percent", "node": "nowhere"}}, "unknown node 'nowhere'"),
            ({"target": {"metric": "gpu.temperature_c", "node": "gpu-node-1"}}, "needs gpu"),
            ({"target": {"metric": "gpu.temperature_c", "node": "gpu-node-1", "gpu": 3}}, "has no GPU 3"),
            ({"target": {"deployment": "ghost", "stat": "mean"}}, "unknown deployment 'ghost'"),
            ({"target": {"deployment": "digits-prod", "stat": "p42"}}, "stat 'p42'"),
            ({"target": {"deployment": "digits-prod", "window": "5 minutes"}}, "window"),
            ({"target": {"deployment": "digits-prod", "window": "last_0"}}, "window"),
            ({"target": {"benchmark": "speedup"}}, "regression"),
            ({"target": "cpu"}, "target"),
            ({"resolve_threshold": 95}, "must not be above threshold"),
            ({"op": "<", "threshold": 10, "resolve_threshold": 5}, "must not be below threshold"),
            ({"threshold": 150}, "can never be true"),
            ({"op": ">=", "threshold": 0}, "always true"),
            ({"for_s": -5}, "for_s must be whole seconds"),
            ({"repeat_interval_s": 10**9}, "repeat_interval_s must be whole seconds"),
            ({"no_data_after_s": 0}, "no_data_after_s must be at least 1 s"),
            ({"labels": {"alertname": "x"}}, "set by perfmon"),
            ({"channels": [999]}, "unknown channel 999"),
            ({"actions": [{"kind": "reboot"}]}, "actions[0].kind"),
            ({"actions": [{"kind": "optimize"}]}, "need a deployment target"),
            ({"colour": "red"}, "unknown field(s): colour"),
            ({"op": "!="}, "op"),
            ({"threshold": "hot"}, "threshold"),
            ({"name": " "}, "name is required"),
        ]
        for body, reason in cases:
            with self.subTest(body=body):
                self.assert_refused(body, reason)

    def test_the_same_name_twice_is_refused(self):
        self.assertEqual(self.post({"name": "busy", "target": CPU, "threshold": 90}).status_code, 201)
        response = self.post({"name": "busy", "target": CPU, "threshold": 95})
        self.assertEqual(response.status_code, 400)
        self.assertIn("already exists", response.json()["error"])

    def test_patch_changes_the_fields_given_and_validates_the_whole(self):
        rule_id = self.post({"name": "busy", "target": CPU, "threshold": 90, "for_s": 30}).json()["id"]
        response = self.patch(rule_id, {"threshold": 95})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual((response.json()["threshold"], response.json()["for_s"]), (95, 30))
        response = self.patch(rule_id, {"resolve_threshold": 99})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Rule.objects.get().resolve_threshold, None)

    def test_delete(self):
        rule_id = self.post({"name": "busy", "target": CPU, "threshold": 90}).json()["id"]
        response = self.client.delete(f"/api/rules/{rule_id}", **self.bearer())
        self.assertEqual(response.status_code, 204)
        self.assertFalse(Rule.objects.exists())

    def test_a_viewer_reads_but_cannot_write(self):
        viewer = get_user_model().objects.create_user("vic", password="viewer-pass-1")
        grant(viewer, Role.VIEWER)
        _t, token = ApiToken.issue(viewer, Role.VIEWER)
        response = self.post({"name": "busy", "target": CPU, "threshold": 90}, token=token)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.client.get("/api/rules", **self.bearer(token)).status_code, 200)


class AlertsApiTestCase(BaseTestCase):
    def setUp(self):
        self.rule = Rule.objects.create(name="busy", target=CPU, threshold=90)
        now = timezone.now()
        self.firing = Alert.objects.create(
            rule=self.rule,
            fingerprint="a",
            labels={"alertname": "busy", "node": "gpu-node-1", "severity": "warning"},
            state="firing",
            value=97.0,
            pending_since=now,
            started_at=now,
        )
        AlertEvent.objects.create(alert=self.firing, from_state="", to_state="firing", value=97.0, reason="x")
        self.old = Alert.objects.create(
            rule=self.rule,
            fingerprint="a",
            state="resolved",
            is_open=False,
            pending_since=now,
            resolved_at=now,
        )

    def post(self, path: str, body: dict | None = None):
        return self.client.post(
            path, json.dumps(body or {}), content_type="application/json", **self.bearer()
        )

    def test_alerts_by_state_with_their_fields(self):
        [alert] = self.client.get("/api/alerts?state=firing", **self.bearer()).json()
        self.assertEqual(
            (alert["id"], alert["state"], alert["value"], alert["rule"]),
            (self.firing.pk, "firing", 97.0, self.rule.pk),
        )
        self.assertEqual((alert["jobs"], alert["deliveries"], alert["acked"]), ([], [], False))
        self.assertEqual(len(self.client.get("/api/alerts", **self.bearer()).json()), 2)
        response = self.client.get("/api/alerts?state=burning", **self.bearer())
        self.assertEqual(response.status_code, 400)
        detail = self.client.get(f"/api/alerts/{self.firing.pk}", **self.bearer()).json()
        self.assertEqual([e["to_state"] for e in detail["events"]], ["firing"])

    def test_ack(self):
        response = self.post(f"/api/alerts/{self.firing.pk}/ack")
        self.assertEqual(response.status_code, 200)
        self.assertEqual((response.json()["acked"], response.json()["acked_by"]), (True, "alice"))

    def test_silence_by_rule_and_by_labels(self):
        self.assertFalse(is_silenced(self.firing))
        response = self.post("/api/silences", {"matchers": {"node": "gpu-node-1"}, "duration_s": 600})
        self.assertEqual(response.status_code, 201, response.content)
        self.assertTrue(is_silenced(self.firing))
        self.assertTrue(self.client.get(f"/api/alerts/{self.firing.pk}", **self.bearer()).json()["silenced"])
        silence_id = response.json()["id"]
        self.assertEqual(self.client.delete(f"/api/silences/{silence_id}", **self.bearer()).status_code, 200)
        self.assertFalse(is_silenced(self.firing))
        self.assertEqual(
            self.post("/api/silences", {"rule": self.rule.pk, "duration_s": 60}).status_code, 201
        )
        self.assertTrue(is_silenced(self.firing))
        self.assertEqual(len(self.client.get("/api/silences", **self.bearer()).json()), 1)

    def test_silence_refusals(self):
        for body, reason in [
            ({"duration_s": 60}, "needs a rule or label matchers"),
            ({"rule": 999, "duration_s": 60}, "unknown rule 999"),
            ({"rule": self.rule.pk, "duration_s": 0}, "duration_s"),
        ]:
            with self.subTest(body=body):
                response = self.post("/api/silences", body)
                self.assertEqual(response.status_code, 400)
                self.assertIn(reason, response.json()["error"])
