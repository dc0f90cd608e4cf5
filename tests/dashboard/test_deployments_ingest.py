"""POST /api/ingest/latency: all or nothing, the first bad sample named, stored in the history."""

from __future__ import annotations

import json
import time
from unittest import mock

from django.contrib.auth import get_user_model

from dashboard.deployments import stats
from dashboard.history import query
from dashboard.models import ApiToken, Deployment, RawBlock, Role
from dashboard.token_actions import do_issue_agent_token
from tests.dashboard.test_deployments_api import DeploymentApiTestCase


class TestIngest(DeploymentApiTestCase):
    def setUp(self):
        super().setUp()
        self.create(probe_interval_s=0)
        self.now = time.time()

    def ingest(self, samples, token=None, deployment="digits-prod"):
        body = {"deployment": deployment, "samples": samples}
        return self.post("/api/ingest/latency", body, token)

    def test_samples_are_stored_and_published(self):
        samples = [{"ts": self.now - 10 + i, "latency_ms": 10.0 + i} for i in range(5)]
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.now - 3))
        samples.append({"ts": iso, "latency_ms": 20.0})
        with mock.patch("dashboard.deployments.ingest.publish_observations") as publish:
            response = self.ingest(samples)
        self.assertEqual(response.status_code, 202, response.content)
        self.assertEqual(response.json(), {"stored": 6})
        points = publish.call_args.args[0]
        self.assertEqual(len(points), 6)
        self.assertEqual(points[0][:3], ("gpu-node-1", "deploy:digits-prod:sample_ms", None))
        found = query.series(
            "gpu-node-1", "deploy:digits-prod:sample_ms", start=self.now - 60, end=self.now + 1
        )
        self.assertEqual(sorted(p[1] for p in found["points"]), [10.0, 11.0, 12.0, 13.0, 14.0, 20.0])
        recent = stats.recent(Deployment.objects.get(), now=self.now + 1)
        self.assertEqual(recent["sample"]["count"], 6)

    def test_the_first_bad_sample_is_named_and_nothing_is_stored(self):
        good = {"ts": self.now, "latency_ms": 5.0}
        cases = [
            ({"ts": self.now, "latency_ms": float("nan")}, "samples[2]: latency_ms is NaN"),
            ({"ts": self.now, "latency_ms": float("inf")}, "samples[2]: latency_ms is infinite"),
            ({"ts": self.now, "latency_ms": -1}, "samples[2]: latency_ms -1.0 is negative"),
            ({"ts": self.now - 2 * 86400, "latency_ms": 1}, "samples[2]: ts"),
            ({"ts": self.now + 3600, "latency_ms": 1}, "in the future"),
            ({"ts": "yesterday", "latency_ms": 1}, "neither epoch seconds nor ISO 8601"),
        ]
        for bad, message in cases:
            with self.subTest(bad=bad):
                # json.dumps writes NaN and Infinity, which a Python client sends as is.
                response = self.ingest([good, good, bad, {"ts": self.now, "latency_ms": -2}])
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn(message, response.json()["error"])
        self.assertEqual(RawBlock.objects.count(), 0)

    def test_at_most_10000_samples(self):
        response = self.ingest([{"ts": self.now, "latency_ms": 1.0}] * 10_001)
        self.assertEqual(response.status_code, 400)
        self.assertIn("at most 10000", response.json()["error"])
        response = self.ingest([{"ts": self.now, "latency_ms": 1.0}] * 10_000)
        self.assertEqual(response.json(), {"stored": 10_000})

    def test_unknown_deployment(self):
        response = self.ingest([{"ts": self.now, "latency_ms": 1.0}], deployment="nope")
        self.assertEqual(response.status_code, 400)
        self.assertIn("unknown deployment 'nope'", response.json()["error"])

    def test_who_may_send(self):
        viewer = get_user_model().objects.create_user("vic")
        _t, viewer_token = ApiToken.issue(viewer, Role.VIEWER)
        sample = [{"ts": self.now, "latency_ms": 1.0}]
        self.assertEqual(self.ingest(sample, viewer_token).status_code, 403)
        admin = get_user_model().objects.create_superuser("root", password="x")
        _agent, own_node = do_issue_agent_token(admin, "gpu-node-1")
        _agent, other_node = do_issue_agent_token(admin, "gpu-node-2")
        self.assertEqual(self.ingest(sample, own_node).status_code, 202)
        self.assertEqual(self.ingest(sample, other_node).status_code, 403)

    def test_a_session_is_not_enough(self):
        self.client.force_login(self.alice)
        response = self.client.post(
            "/api/ingest/latency",
            json.dumps({"deployment": "digits-prod", "samples": [{"ts": self.now, "latency_ms": 1}]}),
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 401)
