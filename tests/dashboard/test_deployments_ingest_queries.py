"""The database work of one POST /api/ingest/latency once its deployment and series are known:
the token with its user and role in one query, then one transaction that inserts the samples and
folds them into the rollups; nothing is looked up again per request."""

from __future__ import annotations

import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.dashboard.test_deployments_api import DeploymentApiTestCase


class TestIngestQueries(DeploymentApiTestCase):
    def setUp(self):
        super().setUp()
        self.create(probe_interval_s=0)

    def ingest(self, ts: float):
        body = {
            "deployment": "digits-prod",
            "samples": [{"ts": ts, "latency_ms": 5.0 + k} for k in range(10)],
        }
        return self.post("/api/ingest/latency", body)

    def test_a_request_reads_only_the_token_and_the_rollups_it_merges_into(self):
        now = time.time()
        self.assertEqual(self.ingest(now - 2).status_code, 202)  # the deployment and series get known
        with CaptureQueriesContext(connection) as captured:
            response = self.ingest(now - 1)
        self.assertEqual(response.status_code, 202, response.content)
        reads = [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith("SELECT")]
        tables = [sql.split(" FROM ", 1)[1].split()[0].strip('"') for sql in reads]
        # Before: a second query for the user's role (dashboard_userrole) on every request.
        self.assertEqual(tables, ["dashboard_apitoken", "dashboard_rollupblock"], reads)
        self.assertIn("dashboard_userrole", reads[0])  # joined to the token
        inserts = [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith("INSERT")]
        self.assertEqual(len(inserts), 2, inserts)  # the raw block, the rollup blocks (upsert)
