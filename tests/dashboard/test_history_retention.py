"""Retention deletes raw samples after 48 h, 1-minute buckets after 30 days, 1-hour after a year."""

from __future__ import annotations

import time

from django.test import override_settings

from dashboard.history.codec import decode_buckets, decode_samples
from dashboard.history.retention import enforce_retention
from dashboard.history.writer import HistoryWriter
from dashboard.models import MetricSeries, RawBlock, RollupBlock
from tests.dashboard.base import BaseTestCase

HOUR_S, DAY_S = 3600, 86400


class RetentionTestCase(BaseTestCase):
    def setUp(self):
        self.now = time.time()
        writer = HistoryWriter(max_buffered_s=1e9)
        # One sample each at these ages, in hours.
        for age_h in (1, 47, 50, 24 * 29, 24 * 32, 24 * 360, 24 * 370):
            writer.add("gpu-node-1", self.now - age_h * HOUR_S, [("gpu.power_draw_w", 0, float(age_h))])
        writer.add("gpu-node-1", self.now - 400 * DAY_S, [("gpu.fan_percent", 0, 30.0)])
        self.assertTrue(writer.flush())

    def surviving(self):
        """The samples (each valued at its age in hours) each tier still holds: (raw, 1 min, 1 h)."""
        raw = sorted(float(v) for block in RawBlock.objects.all() for v in decode_samples(block.data)[1])
        return (raw, self.rolled_up(60), self.rolled_up(3600))

    def rolled_up(self, resolution_s):
        ages = []
        for block in RollupBlock.objects.filter(resolution_s=resolution_s, series__metric="gpu.power_draw_w"):
            buckets = decode_buckets(block.data)
            ages.extend(buckets.total[buckets.count > 0].tolist())
        return sorted(ages)

    def test_it_deletes_each_tier_past_its_retention_and_keeps_the_rest(self):
        deleted = enforce_retention(now_s=self.now)
        raw, minutes, hours = self.surviving()
        self.assertEqual(raw, [1, 47])
        self.assertEqual(minutes, [1, 47, 50, 24 * 29])
        self.assertEqual(hours, [1, 47, 50, 24 * 29, 24 * 32, 24 * 360])
        self.assertEqual(deleted["raw"], 6)  # one block per sample
        self.assertEqual(deleted["rollup_1m"], 4)
        self.assertEqual(deleted["rollup_1h"], 2)
        # The fan metric has nothing left: its series goes too.
        self.assertEqual(list(MetricSeries.objects.values_list("metric", flat=True)), ["gpu.power_draw_w"])
        self.assertEqual(deleted["series"], 1)

    @override_settings(HISTORY_RETENTION_RAW_H=2, HISTORY_RETENTION_1M_D=1, HISTORY_RETENTION_1H_D=20)
    def test_retention_follows_the_settings(self):
        enforce_retention(now_s=self.now)
        self.assertEqual(self.surviving(), ([1], [1], [1, 47, 50]))

    def test_running_it_again_deletes_nothing_more(self):
        enforce_retention(now_s=self.now)
        self.assertEqual(
            enforce_retention(now_s=self.now), {"raw": 0, "rollup_1m": 0, "rollup_1h": 0, "series": 0}
        )


def test_beat_runs_compaction_and_retention_on_the_maintenance_queue():
    from django.conf import settings

    from perfmon.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("perfmon.compact_metric_history", "perfmon.enforce_retention"):
        assert name in scheduled
        assert app.tasks[name].queue == "maintenance"
