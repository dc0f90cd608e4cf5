"""GET /api/metrics/series/many: several series of one node over one range in one request."""

from __future__ import annotations

import time

from dashboard.history.writer import HistoryWriter
from tests.dashboard.base import BaseTestCase


class ManySeriesTestCase(BaseTestCase):
    def setUp(self):
        now = time.time()
        writer = HistoryWriter()
        for second in range(120):
            writer.add(
                "gpu-node-1",
                now - 120 + second,
                [("host.cpu_percent", None, 10.0 + second % 5), ("gpu.temperature_c", 0, 60.0)],
            )
        assert writer.flush()
        self.window = {"node": "gpu-node-1", "start": int(now - 180), "end": int(now), "points": 50}

    def get(self, **query):
        return self.client.get("/api/metrics/series/many", {**self.window, **query}, **self.bearer())

    def test_it_answers_each_series_in_the_order_asked_and_marks_the_missing_one(self):
        response = self.get(series="gpu.temperature_c:0,host.cpu_percent,gpu.power_draw_w:0")
        self.assertEqual(response.status_code, 200)
        temperature, cpu, power = response.json()["series"]
        self.assertEqual((temperature["metric"], temperature["gpu"]), ("gpu.temperature_c", 0))
        self.assertTrue(all(point[1] == 60.0 for point in temperature["points"]))
        self.assertLessEqual(len(cpu["points"]), 50)
        self.assertTrue(cpu["points"])
        self.assertIn("no history of metric 'gpu.power_draw_w'", power["error"])

    def test_a_bad_request_is_refused_whole(self):
        for query, status, message in [
            ({"series": ""}, 400, "node and series are required"),
            ({"series": "host.cpu_percent:x"}, 400, "is not an integer"),
            ({"series": ",".join(["host.cpu_percent"] * 201)}, 400, "at most 200 series"),
            ({"node": "nowhere", "series": "host.cpu_percent"}, 404, "unknown node 'nowhere'"),
        ]:
            response = self.get(**query)
            self.assertEqual(response.status_code, status, query)
            self.assertIn(message, response.json()["error"])
        self.assertEqual(self.client.get("/api/metrics/series/many").status_code, 401)
