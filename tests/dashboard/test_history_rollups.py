"""Rollups hold min/avg/max/count per minute and per hour; compaction merges an hour's raw blocks."""

from __future__ import annotations

import time

import numpy as np

from dashboard.history import query
from dashboard.history.codec import decode_buckets, decode_samples
from dashboard.history.compaction import compact_raw_blocks
from dashboard.history.writer import HistoryWriter
from dashboard.models import RawBlock, RollupBlock
from tests.dashboard.base import BaseTestCase


class RollupsTestCase(BaseTestCase):
    def setUp(self):
        self.hour = (time.time() // 3600 - 2) * 3600  # a whole hour, two hours back
        self.writer = HistoryWriter()

    def write(self, seconds, values, metric="gpu.temperature_c", gpu=0):
        for s, v in zip(seconds, values, strict=True):
            self.writer.add("gpu-node-1", self.hour + s, [(metric, gpu, v)])
        self.assertTrue(self.writer.flush())

    def buckets(self, resolution_s):
        block = RollupBlock.objects.get(resolution_s=resolution_s)
        return block.block_start_s, decode_buckets(block.data)

    def test_minute_and_hour_buckets_hold_min_avg_max_and_count(self):
        self.write(range(180), [float(i % 60 + 10 * (i // 60)) for i in range(180)])
        start, minutes = self.buckets(60)
        self.assertEqual(start, self.hour)
        self.assertEqual(minutes.count[:4].tolist(), [60, 60, 60, 0])
        self.assertEqual(minutes.low[:3].tolist(), [0, 10, 20])
        self.assertEqual(minutes.high[:3].tolist(), [59, 69, 79])
        self.assertEqual((minutes.total[:3] / minutes.count[:3]).tolist(), [29.5, 39.5, 49.5])
        day_start, hours = self.buckets(3600)
        self.assertEqual(day_start, self.hour // 86400 * 86400)
        slot = int(self.hour - day_start) // 3600
        self.assertEqual((hours.count[slot], hours.low[slot], hours.high[slot]), (180, 0, 79))
        self.assertAlmostEqual(hours.total[slot] / hours.count[slot], 39.5)
        self.assertEqual(int(hours.count.sum()), 180)

    def test_buckets_fed_by_several_flushes_and_late_samples_are_the_same(self):
        self.write(range(0, 180, 2), [float(i) for i in range(0, 180, 2)])
        self.write(range(179, 0, -2), [float(i) for i in range(179, 0, -2)])  # late, out of order
        _start, minutes = self.buckets(60)
        self.assertEqual(minutes.count[:3].tolist(), [60, 60, 60])
        self.assertEqual(minutes.low[:3].tolist(), [0, 60, 120])
        self.assertEqual(minutes.high[:3].tolist(), [59, 119, 179])
        self.assertEqual(
            minutes.total[:3].tolist(), [sum(range(0, 60)), sum(range(60, 120)), sum(range(120, 180))]
        )

    def test_the_open_bucket_shows_in_queries_with_the_flush_that_fed_it(self):
        now = time.time()
        # A day of history, so a day's query reads the 1-minute tier (a younger one is read raw).
        self.writer.add("gpu-node-1", now - 86000, [("gpu.temperature_c", 0, 10.0)])
        self.writer.flush()  # apart: the writer's buffer holds at most a few minutes' span
        self.writer.add("gpu-node-1", now - 1, [("gpu.temperature_c", 0, 70.0)])
        self.writer.flush()
        answer = query.series("gpu-node-1", "gpu.temperature_c", 0, start=now - 86400, end=now + 1)
        self.assertEqual(answer["resolution_s"], 60)
        self.assertEqual(answer["points"][-1][1:], [70.0, 70.0, 70.0])

    def test_compaction_merges_an_hours_blocks_into_one_and_keeps_every_sample(self):
        seconds = np.arange(0, 3600, 7)
        values = np.sin(seconds / 100.0) * 50
        for part in np.array_split(np.arange(len(seconds)), 12):
            self.write(seconds[part].tolist(), values[part].tolist())
        self.write([3599.5], [1.0])
        self.write([3.0], [2.0])  # a late flush: its sample lands between others
        self.assertEqual(RawBlock.objects.count(), 14)
        before = query.series(
            "gpu-node-1", "gpu.temperature_c", 0, start=self.hour, end=self.hour + 3600, points=5000
        )

        self.assertEqual(
            compact_raw_blocks(now_s=self.hour + 3660), 0, "an hour just closed waits for late flushes"
        )
        self.assertEqual(compact_raw_blocks(now_s=self.hour + 3600 + 600), 1)
        block = RawBlock.objects.get()
        ts_ms, got = decode_samples(block.data)
        self.assertEqual(block.sample_count, len(seconds) + 2)
        self.assertTrue(np.all(np.diff(ts_ms) > 0))
        self.assertEqual(
            (block.first_ts_ms, block.last_ts_ms), (int(self.hour * 1000), int((self.hour + 3599.5) * 1000))
        )
        after = query.series(
            "gpu-node-1", "gpu.temperature_c", 0, start=self.hour, end=self.hour + 3600, points=5000
        )
        self.assertEqual(after["points"], before["points"])
        self.assertEqual(compact_raw_blocks(now_s=self.hour + 3600 + 600), 0, "nothing left to merge")
