"""A young install: 15 minutes of history asked for over 7 or 30 days shows those 15 minutes at
full detail and says where the history starts, instead of one or two hourly points."""

from __future__ import annotations

import time

from django.test import override_settings

from dashboard.history.retention import enforce_retention
from dashboard.history.writer import HistoryWriter
from tests.dashboard.base import BaseTestCase

DAY_S = 86400
AGE_S = 900


class YoungHistoryTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.now = time.time()
        cls.first_ts = float(int(cls.now) - AGE_S)
        writer = HistoryWriter(max_buffered_s=1e9)
        for second in range(AGE_S):
            ts = cls.first_ts + second
            writer.add("gpu-node-1", ts, [("host.cpu_percent", None, float(second % 50))])
        assert writer.flush()

    def series(self, range_s: float, points: int = 500) -> dict:
        response = self.client.get(
            "/api/metrics/series",
            {
                "node": "gpu-node-1",
                "metric": "host.cpu_percent",
                "start": self.now - range_s,
                "end": self.now,
                "points": points,
            },
            **self.bearer(),
        )
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def test_thirty_days_of_a_fifteen_minute_history_are_its_raw_samples(self):
        body = self.series(30 * DAY_S)
        self.assertEqual((body["resolution_s"], body["tier"]), (1, "raw"))
        self.assertEqual(body["first_ts"], self.first_ts)
        # 900 samples into at most 500 points: 2-second buckets, every one of them present.
        self.assertEqual(body["bucket_s"], 2)
        self.assertEqual(len(body["points"]), AGE_S // 2)
        self.assertGreaterEqual(body["points"][0][0], self.first_ts - 2)
        # The range asked for is still the one answered: the page says where history starts.
        self.assertEqual(body["start"], self.now - 30 * DAY_S)

    def test_seven_days_with_room_for_every_sample_sends_them_one_by_one(self):
        body = self.series(7 * DAY_S, points=1000)
        self.assertEqual((body["resolution_s"], body["bucket_s"]), (1, 0))
        self.assertEqual(len(body["points"]), AGE_S)
        self.assertEqual(body["points"][0][0], self.first_ts)

    def test_the_many_endpoint_carries_the_first_sample_too(self):
        response = self.client.get(
            "/api/metrics/series/many",
            {
                "node": "gpu-node-1",
                "series": "host.cpu_percent",
                "start": self.now - 30 * DAY_S,
                "end": self.now,
            },
            **self.bearer(),
        )
        (body,) = response.json()["series"]
        self.assertEqual((body["first_ts"], body["tier"]), (self.first_ts, "raw"))
        self.assertGreater(len(body["points"]), 100)

    def test_a_range_inside_the_history_reports_the_same_first_sample(self):
        body = self.series(300)
        self.assertEqual(body["first_ts"], self.first_ts)
        self.assertEqual(body["resolution_s"], 1)


class FirstSampleAfterRetentionTestCase(BaseTestCase):
    """Once retention has dropped the raw samples, the first sample is known to its bucket."""

    def setUp(self):
        self.now = time.time()
        self.oldest = self.now - 50 * 3600  # past the 48 h raw retention, inside the 1-minute one
        writer = HistoryWriter(max_buffered_s=1e9)
        for ts in (self.oldest, self.now - 3600):
            writer.add("gpu-node-1", ts, [("host.cpu_percent", None, 5.0)])
        assert writer.flush()
        enforce_retention(now_s=self.now)

    def first_ts(self) -> float:
        response = self.client.get(
            "/api/metrics/series",
            {
                "node": "gpu-node-1",
                "metric": "host.cpu_percent",
                "start": self.now - 30 * DAY_S,
                "end": self.now,
            },
            **self.bearer(),
        )
        return response.json()["first_ts"]

    def test_it_is_the_start_of_its_minute_once_the_raw_sample_is_gone(self):
        self.assertEqual(self.first_ts(), float(int(self.oldest) // 60 * 60))

    @override_settings(HISTORY_RETENTION_1M_D=1)
    def test_it_is_the_start_of_its_hour_once_the_minute_bucket_is_gone(self):
        enforce_retention(now_s=self.now)
        self.assertEqual(self.first_ts(), float(int(self.oldest) // 3600 * 3600))
