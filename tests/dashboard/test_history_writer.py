"""The history writer batches its writes and survives a locked or vanished database."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import numpy as np
import pytest
from django.db import connection
from django.test import TransactionTestCase
from django.test.utils import CaptureQueriesContext

from dashboard.history.codec import decode_samples
from dashboard.history.query import series
from dashboard.history.writer import HistoryWriter
from dashboard.models import MetricSeries, Node, RawBlock
from tests.dashboard.base import BaseTestCase


def hour_start(hours_ago: int = 1) -> float:
    return (time.time() // 3600 - hours_ago) * 3600.0


def tick(i: int, metrics: int = 50) -> list[tuple[str, int | None, float]]:
    """``metrics`` values: host metrics and the same metrics on GPUs 0..7."""
    return [(f"gpu.metric_{m // 8}", m % 8, float(i * 100 + m)) for m in range(metrics - 2)] + [
        ("host.cpu_percent", None, 12.5 + i),
        ("host.memory_used_bytes", None, 8e9 + i),
    ]


def stored_samples(node: str, metric: str, gpu: int | None) -> tuple[np.ndarray, np.ndarray]:
    series = MetricSeries.objects.get(node__name=node, metric=metric, gpu_index=-1 if gpu is None else gpu)
    parts = [decode_samples(b.data) for b in RawBlock.objects.filter(series=series).order_by("first_ts_ms")]
    if not parts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate([t for t, _ in parts]) / 1000.0, np.concatenate([v for _, v in parts])


class WriterBatchesTestCase(BaseTestCase):
    def test_a_flush_of_100_samples_of_50_metrics_is_a_handful_of_queries(self):
        writer = HistoryWriter()
        base = hour_start()
        for i in range(100):
            writer.add("gpu-node-1", base + i, tick(i))
        self.assertEqual(writer.buffered, 5000)
        with CaptureQueriesContext(connection) as first:
            self.assertTrue(writer.flush())
        # Node and series lookups (first flush only), one INSERT of raw blocks, one read and one
        # upsert of rollups, and the transaction's own statements.
        self.assertLessEqual(len(first.captured_queries), 14, [q["sql"][:80] for q in first.captured_queries])
        self.assertEqual(RawBlock.objects.count(), 50)

        for i in range(100, 200):
            writer.add("gpu-node-1", base + i, tick(i))
        with CaptureQueriesContext(connection) as second:
            self.assertTrue(writer.flush())
        self.assertLessEqual(
            len(second.captured_queries), 8, [q["sql"][:80] for q in second.captured_queries]
        )
        inserts = [q for q in second.captured_queries if q["sql"].startswith("INSERT")]
        self.assertLessEqual(len(inserts), 2, "raw blocks and rollups go in one multi-row INSERT each")

        ts, values = stored_samples("gpu-node-1", "host.cpu_percent", None)
        np.testing.assert_array_equal(ts, base + np.arange(200))
        np.testing.assert_array_equal(values, 12.5 + np.arange(200))
        self.assertEqual((writer.written, writer.buffered, writer.dropped), (10_000, 0, 0))

    def test_it_creates_a_node_it_has_not_seen(self):
        writer = HistoryWriter()
        writer.add("new-node", hour_start(), [("gpu.temperature_c", 3, 61.0)])
        self.assertTrue(writer.flush())
        self.assertTrue(Node.objects.filter(name="new-node").exists())
        self.assertEqual(stored_samples("new-node", "gpu.temperature_c", 3)[1].tolist(), [61.0])

    def test_maybe_flush_writes_only_when_due(self):
        writer = HistoryWriter(flush_every_s=10.0)
        writer.add("gpu-node-1", hour_start(), tick(0))
        writer.maybe_flush(now=100.0)
        writer.maybe_flush(now=109.0)
        self.assertFalse(RawBlock.objects.exists())
        writer.maybe_flush(now=110.0)
        self.assertEqual(RawBlock.objects.count(), 50)

    def test_rollups_merged_once_a_minute_match_rollups_merged_every_flush(self):
        """The sampler's writer merges into the rollups once a minute (rollup_every_s), not on every
        10 s flush; the buckets a chart reads come out the same, a minute late at most."""
        from dashboard.models import RollupBlock

        def minute_chart(node: str) -> list:
            return series(node, "host.cpu_percent", None, start=base, end=base + 300, points=5)["points"]

        every_flush, once_a_minute = HistoryWriter(), HistoryWriter(rollup_every_s=60.0)
        base = hour_start()
        for step in range(30):  # 300 s of samples, flushed every 10 s
            for i in range(step * 10, step * 10 + 10):
                every_flush.add("every-flush", base + i, tick(i, metrics=2))
                once_a_minute.add("once-a-minute", base + i, tick(i, metrics=2))
            self.assertTrue(every_flush.flush(now=1000.0 + step * 10))
            self.assertTrue(once_a_minute.flush(now=1000.0 + step * 10))
            if step == 4:  # 50 s in: raw samples written, not merged yet
                self.assertFalse(RollupBlock.objects.filter(series__node__name="once-a-minute").exists())
                self.assertEqual(len(stored_samples("once-a-minute", "host.cpu_percent", None)[0]), 50)
            if step == 6:  # 60 s since the first flush: merged
                self.assertTrue(RollupBlock.objects.filter(series__node__name="once-a-minute").exists())
        self.assertTrue(once_a_minute.flush(final=True))  # the sampler's last flush merges the rest
        self.assertEqual(minute_chart("once-a-minute"), minute_chart("every-flush"))
        self.assertEqual(len(minute_chart("every-flush")), 5)

    def test_unsupported_and_malformed_values_are_skipped_without_raising(self):
        writer = HistoryWriter()
        ts = hour_start()
        writer.add("gpu-node-1", ts, [("gpu.fan_percent", 0, None), ("gpu.power_draw_w", 0, float("nan"))])
        writer.add("gpu-node-1", ts, None)  # not iterable: logged, not raised
        writer.add("gpu-node-1", ts, [("x" * 500, None, 1.0), ("host.load_avg_1m", "0", 1.0)])
        writer.add("gpu-node-1", ts, [("host.load_avg_1m", None, 0.25)])
        self.assertEqual(writer.buffered, 1)
        self.assertTrue(writer.flush())
        self.assertEqual(MetricSeries.objects.count(), 1)


class WriterBoundTestCase(BaseTestCase):
    def test_the_default_buffer_holds_ten_minutes_of_an_eight_gpu_node(self):
        writer = HistoryWriter()
        metrics = [(f"gpu.m{m}", g, 1.0) for g in range(8) for m in range(14)] + [
            (f"host.m{m}", None, 1.0) for m in range(62)
        ]
        for i in range(600):
            writer.add("gpu-node-1", 1000.0 + i, metrics)
        self.assertEqual((writer.buffered, writer.dropped), (600 * 174, 0))

    def test_beyond_the_bound_the_oldest_samples_are_dropped_and_counted(self):
        writer = HistoryWriter(max_buffered_s=60.0)
        for i in range(200):
            writer.add("gpu-node-1", hour_start() + i, [("host.cpu_percent", None, float(i))])
        self.assertGreater(writer.dropped, 100)
        self.assertEqual(writer.buffered + writer.dropped, 200)
        self.assertTrue(writer.flush())
        ts, _values = stored_samples("gpu-node-1", "host.cpu_percent", None)
        self.assertEqual(ts[-1], hour_start() + 199)
        self.assertGreaterEqual(ts[0], hour_start() + 199 - 60)

    def test_a_value_cap_bounds_the_buffer_too(self):
        writer = HistoryWriter(max_buffered_values=1000)
        for i in range(100):
            writer.add("gpu-node-1", 1000.0 + i, tick(i))  # 5000 values
        self.assertLessEqual(writer.buffered, 1000)
        self.assertEqual(writer.buffered + writer.dropped, 5000)


@contextlib.contextmanager
def write_lock_held_elsewhere():
    """Another connection holds the history tables' write lock until the block exits."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], uri=True, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO dashboard_node (name, info, gpu_status, first_seen, last_seen) "
            "VALUES ('lock-holder', '{}', '', '2025-01-01', '2025-01-01')"
        )
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        import psycopg

        other = psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
        )
        other.execute("LOCK TABLE dashboard_rawblock IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            other.rollback()
            other.close()


class WriterFaultsTestCase(TransactionTestCase):
    def test_samples_written_while_the_database_is_locked_appear_after(self):
        writer = HistoryWriter(lock_wait_s=0.2)
        base = hour_start()
        writer.add("gpu-node-1", base, tick(0))
        with write_lock_held_elsewhere():
            executed: list[str] = []

            def record(execute, sql, params, many, context):
                executed.append(sql)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(record):
                self.assertFalse(writer.flush())
            # A flush must not hang on a lock: it waited lock_wait_s (200 ms), not the 20 s busy
            # timeout the settings give web requests, then restored that for them.
            if connection.vendor == "sqlite":
                self.assertEqual(executed[0], "PRAGMA busy_timeout = 200")
                self.assertEqual(executed[-1], "PRAGMA busy_timeout = 20000")
            else:  # PostgreSQL: a lock timeout local to the flush's transaction, gone with it
                self.assertEqual(executed[0], "SET LOCAL lock_timeout = '200ms'")
            writer.add("gpu-node-1", base + 1, tick(1))
            self.assertEqual(writer.buffered, 100)
            self.assertIn("lock", writer.last_error)
        self.assertFalse(RawBlock.objects.exists())
        writer.add("gpu-node-1", base + 2, tick(2))
        self.assertTrue(writer.flush())
        ts, values = stored_samples("gpu-node-1", "host.cpu_percent", None)
        self.assertEqual(ts.tolist(), [base, base + 1, base + 2])
        self.assertEqual(values.tolist(), [12.5, 13.5, 14.5])
        self.assertEqual((writer.buffered, writer.dropped, writer.failed_flushes), (0, 0, 1))

    @pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs a server whose backend can be killed"
    )
    def test_samples_survive_the_server_dropping_the_connection(self):
        writer = HistoryWriter()
        base = hour_start()
        writer.add("gpu-node-1", base, tick(0))
        self.assertTrue(writer.flush())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        import psycopg

        settings = connection.settings_dict
        with psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            autocommit=True,
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        writer.add("gpu-node-1", base + 1, tick(1))
        # The dead connection is noticed (by Django's health check, or by the failed flush, which
        # keeps the samples); by the next flush at the latest they are written.
        self.assertTrue(writer.flush() or writer.flush())
        self.assertEqual((writer.buffered, writer.dropped), (0, 0))
        ts, _values = stored_samples("gpu-node-1", "host.cpu_percent", None)
        self.assertEqual(ts.tolist(), [base, base + 1])
