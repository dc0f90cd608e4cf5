"""GET /api/metrics/series and /api/metrics/catalog over a real history."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dashboard.history.writer import HistoryWriter
from tests.dashboard.base import BaseTestCase
from workers.sampler import sample

DAY_S = 86400


def temperature(ts: float) -> float:
    return float(40 + int(ts) // 60 % 40)


class SeriesApiTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.now = time.time()
        writer = HistoryWriter(max_buffered_s=1e9)
        # A sample a minute for 30 days, then a sample a second for the last 10 minutes.
        for ts in range(int(cls.now - 30 * DAY_S), int(cls.now - 600), 60):
            writer.add("gpu-node-1", ts, [("gpu.temperature_c", 0, temperature(ts))])
        for ts in range(int(cls.now - 600), int(cls.now)):
            writer.add(
                "gpu-node-1",
                ts,
                [("gpu.temperature_c", 0, temperature(ts)), ("host.cpu_percent", None, 12.5)],
            )
        assert writer.flush()

    def get(self, auth=True, **params):
        headers = self.bearer() if auth else {}
        return self.client.get("/api/metrics/series", params, **headers)

    def series(self, **params):
        response = self.get(node="gpu-node-1", metric="gpu.temperature_c", gpu=0, **params)
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def test_five_minutes_come_from_raw_samples(self):
        body = self.series(start=self.now - 300, end=self.now)
        self.assertEqual(body["resolution_s"], 1)
        self.assertEqual((body["node"], body["metric"], body["gpu"]), ("gpu-node-1", "gpu.temperature_c", 0))
        self.assertEqual(body["unit"], getattr(sample, "METRIC_UNITS", {}).get("gpu.temperature_c", ""))
        self.assertIn(len(body["points"]), (299, 300))
        for ts, avg, low, high in body["points"]:
            self.assertEqual((avg, low, high), (temperature(ts),) * 3)
            self.assertTrue(self.now - 300 <= ts < self.now)

    def test_a_day_comes_from_minute_buckets_within_the_point_cap(self):
        body = self.series(start=self.now - DAY_S, end=self.now)
        self.assertEqual(body["resolution_s"], 60)
        self.assertEqual(body["bucket_s"], 180)  # 1440 minutes into at most 500 points
        self.assertTrue(470 <= len(body["points"]) <= 500, len(body["points"]))
        for _ts, avg, low, high in body["points"]:
            self.assertTrue(40 <= low <= avg <= high <= 79)
        self.assertTrue(any(low < high for _ts, _avg, low, high in body["points"]), "buckets of 3 minutes")

    def test_thirty_days_come_from_hour_buckets(self):
        body = self.series(start=self.now - 30 * DAY_S, end=self.now)
        self.assertEqual(body["resolution_s"], 3600)
        self.assertTrue(355 <= len(body["points"]) <= 361, len(body["points"]))
        _ts, avg, low, high = body["points"][len(body["points"]) // 2]
        self.assertEqual((low, high), (40.0, 79.0))  # a 2-hour bucket sees the whole 40-minute cycle
        self.assertAlmostEqual(avg, 59.5, delta=1.0)

    def test_points_cap_the_answer(self):
        for points in (1, 7, 50):
            body = self.series(start=self.now - DAY_S, end=self.now, points=points)
            self.assertLessEqual(len(body["points"]), points)
            self.assertGreaterEqual(len(body["points"]), points - 1)
        body = self.series(start=self.now - 300, end=self.now, points=10)
        self.assertEqual(len(body["points"]), 10)
        self.assertEqual(body["resolution_s"], 1)

    def test_iso_times_and_the_default_range(self):
        start = datetime.fromtimestamp(self.now - 120, UTC).isoformat().replace("+00:00", "Z")
        body = self.series(start=start, end=datetime.fromtimestamp(self.now, UTC).isoformat())
        self.assertEqual(body["resolution_s"], 1)
        self.assertIn(len(body["points"]), (119, 120))
        body = self.client.get(
            "/api/metrics/series", {"node": "gpu-node-1", "metric": "host.cpu_percent"}, **self.bearer()
        ).json()
        self.assertEqual((body["gpu"], body["resolution_s"]), (None, 1))  # the last hour: raw
        self.assertTrue(all(p[1:] == [12.5, 12.5, 12.5] for p in body["points"]))
        self.assertEqual(body["end"] - body["start"], 3600.0)
        # 600 samples over the last 10 minutes of the hour: more than 500, so averaged, with the
        # buckets sized to those 10 minutes (the series' start), not to the empty hour before.
        self.assertEqual(body["bucket_s"], 2)
        self.assertIn(len(body["points"]), (300, 301))
        self.assertEqual(body["first_ts"], float(int(self.now - 600)))

    def assert_error(self, status, fragment, **params):
        response = self.get(**{"node": "gpu-node-1", "metric": "gpu.temperature_c", "gpu": "0", **params})
        self.assertEqual(response.status_code, status, response.content)
        self.assertIn(fragment, response.json()["error"])

    def test_unknown_node_or_metric_is_a_404_with_the_reason(self):
        self.assert_error(404, "unknown node 'nope'", node="nope")
        self.assert_error(404, "no history of metric 'gpu.nope'", metric="gpu.nope")
        self.assert_error(404, "it has it for GPU 0", gpu="5")
        self.assert_error(404, "host (no gpu given)", gpu="")

    def test_bad_ranges_are_a_400_with_the_reason(self):
        self.assert_error(400, "start must be before end", start=self.now, end=self.now - 10)
        self.assert_error(400, "start must be before end", start=self.now, end=self.now)
        self.assert_error(400, "neither epoch seconds nor an ISO-8601 time", start="yesterday")
        self.assert_error(400, "at most 400 are served", start=self.now - 401 * DAY_S, end=self.now)
        self.assert_error(400, "points=0 is out of range", points=0)
        self.assert_error(400, "points=5001 is out of range", points=5001)
        self.assert_error(400, "points='many' is not an integer", points="many")
        self.assert_error(400, "gpu='first' is not an integer", gpu="first")
        self.assert_error(400, "gpu=-1 is not a GPU index", gpu="-1")
        self.assert_error(400, "not a finite time", end="nan")
        response = self.get(metric="gpu.temperature_c")
        self.assertEqual(response.status_code, 400)
        self.assertIn("node and metric are required", response.json()["error"])

    def test_it_requires_authentication(self):
        response = self.get(auth=False, node="gpu-node-1", metric="gpu.temperature_c", gpu=0)
        self.assertEqual(response.status_code, 401)
        self.assertIn("authentication required", response.json()["error"])
        self.assertEqual(self.client.get("/api/metrics/catalog").status_code, 401)

    def test_the_catalog_lists_nodes_gpus_and_metrics(self):
        body = self.client.get("/api/metrics/catalog", **self.bearer()).json()
        node = next(n for n in body["nodes"] if n["name"] == "gpu-node-1")
        self.assertEqual(node["gpus"], [0])
        self.assertIn("online", node)
        self.assertIn("last_seen", node)
        metrics = {(m["metric"], m["gpu"]) for m in node["metrics"]}
        self.assertEqual(metrics, {("gpu.temperature_c", 0), ("host.cpu_percent", None)})
        self.assertTrue(all(isinstance(m["unit"], str) for m in node["metrics"]))
