"""Metric history: ingest rate, query time and bytes on disk, on SQLite or PostgreSQL.

Prints:
  - ingest: values/s through ``HistoryWriter.add`` + ``flush`` for N simulated 8-GPU nodes (174
    values a tick each, one writer per node flushing every 10 simulated seconds), with flush times
  - compaction: time to merge the closed hours' raw blocks, and bytes per raw sample after it
  - a 30-day history of one 8-GPU node seeded as retention leaves it (raw blocks for the last 48 h,
    1-minute and 1-hour rollups for 30 days): bytes per raw sample, per 1-minute bucket, per node-day
  - query time (median and max of repeats) for 5 min, 8 h, 1 d, 7 d and 30 d at 500 points,
    through ``history.query.series`` and through the HTTP API

Targets (issue 3): ingest >= 20,000 values/s; 30-day query at 500 points < 150 ms; <= 16 bytes a raw
sample on disk.

Runs on a throwaway database and never touches another: SQLite in a temporary directory, or with
DATABASE_URL=postgres://... a database created next to the one named (dropped at the end).

    .venv/bin/python bench/history.py [--nodes 8] [--seconds 600]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/history.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GPU_FIELDS = [
    "utilization_gpu_percent",
    "utilization_memory_percent",
    "memory_used_bytes",
    "memory_free_bytes",
    "memory_total_bytes",
    "temperature_c",
    "power_draw_w",
    "power_limit_w",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "fan_percent",
    "pcie_tx_bytes_per_s",
    "pcie_rx_bytes_per_s",
]
HOST_FIELDS = [
    "cpu_percent",
    "load_avg_1m",
    "load_avg_5m",
    "load_avg_15m",
    "memory_used_bytes",
    "memory_percent",
    "swap_used_bytes",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
] + [f"cpu{i}_percent" for i in range(59)]
# (metric, gpu) of one 8-GPU node: 8 x 13 + 70 = 174 values a tick, 15 million a day.
SERIES = [(f"gpu.{f}", g) for g in range(8) for f in GPU_FIELDS] + [(f"host.{f}", None) for f in HOST_FIELDS]


def signals(n: int, rng: np.random.Generator) -> np.ndarray:
    """n ticks of all SERIES, shaped (n, len(SERIES)), behaving like the readings they name."""
    out = np.empty((n, len(SERIES)))
    walk = lambda step, lo, hi: np.clip(np.cumsum(rng.normal(0, step, n)) + (lo + hi) / 2, lo, hi)  # noqa: E731
    for col, (metric, _gpu) in enumerate(SERIES):
        name = metric.split(".", 1)[1]
        if name in ("utilization_gpu_percent", "utilization_memory_percent", "fan_percent"):
            v = np.round(walk(3, 0, 100))
        elif name == "temperature_c":
            v = np.round(walk(0.2, 35, 85))
        elif name in ("memory_used_bytes", "memory_free_bytes", "swap_used_bytes"):
            steps = np.where(rng.random(n) < 0.01, rng.integers(-500, 500, n), 0)
            v = (
                (20_000 + np.cumsum(steps)).clip(0) * 2**21
                if metric.startswith("gpu")
                else 8e9 + np.cumsum(rng.integers(-64, 64, n)) * 4096
            )
        elif name in ("memory_total_bytes",):
            v = np.full(n, 85_899_345_920.0)
        elif name == "power_limit_w":
            v = np.full(n, 700.0)
        elif name == "power_draw_w":
            v = np.round(walk(4, 60, 700), 3)
        elif name in ("sm_clock_mhz", "mem_clock_mhz"):
            v = (
                np.where(rng.random(n) < 0.9, 1980.0, 1755.0)
                if name == "sm_clock_mhz"
                else np.full(n, 2619.0)
            )
        elif name.endswith("bytes_per_s"):
            v = np.round(np.abs(rng.normal(0, 5e6, n)) * (rng.random(n) < 0.5)) // 1024 * 1024
        elif name.startswith("load_avg"):
            v = np.round(walk(0.05, 0, 64), 2)
        else:  # CPU percentages: psutil gives one decimal
            v = np.round(walk(2, 0, 100), 1)
        out[:, col] = v
    return out


def setup_database() -> tuple[str, callable]:
    """Point Django at a throwaway database; returns (description, cleanup)."""
    url = os.environ.get("DATABASE_URL", "")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon.settings")
    tmp = tempfile.mkdtemp(prefix="perfmon-bench-history-")
    os.environ["PERFMON_DATA_DIR"] = tmp
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # never contacted
    if not url.startswith("postgres"):
        os.environ.pop("DATABASE_URL", None)
        return f"SQLite {__import__('sqlite3').sqlite_version} in {tmp}", lambda: shutil.rmtree(tmp, True)
    import psycopg

    parts = urlsplit(url)
    name = f"perfmon_bench_history_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        version = admin.execute("SHOW server_version").fetchone()[0]
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(tmp, True)

    return f"PostgreSQL {version}, throwaway database {name}", drop


def table_bytes(table: str) -> int:
    """On-disk bytes of a table with its indexes (and TOAST on PostgreSQL)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            return int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = %s "
            "OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s)",
            [table, table],
        )
        return int(cursor.fetchone()[0])


def vacuum(table: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM FULL {table}" if connection.vendor == "postgresql" else "VACUUM")


def median_ms(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def bench_ingest(nodes: int, seconds: int) -> None:
    from dashboard.history.compaction import compact_raw_blocks
    from dashboard.history.writer import HistoryWriter
    from dashboard.models import RawBlock

    rng = np.random.default_rng(1)
    start = (time.time() // 3600 - 3) * 3600 - seconds  # closed hours, so compaction can run after
    names = [m for m, _ in SERIES]
    gpus = [g for _, g in SERIES]
    data = [signals(seconds, rng) for _ in range(nodes)]
    writers = [HistoryWriter(flush_every_s=10.0) for _ in range(nodes)]
    add_s = flush_s = 0.0
    flush_times = []
    for second in range(seconds):
        for n, writer in enumerate(writers):
            ts = start + second + rng.uniform(-0.002, 0.002)
            tick = list(zip(names, gpus, data[n][second].tolist(), strict=True))
            t0 = time.perf_counter()
            writer.add(f"bench-node-{n}", ts, tick)
            t1 = time.perf_counter()
            add_s += t1 - t0
            if second % 10 == n % 10 or second == seconds - 1:
                if not writer.flush():
                    raise SystemExit(f"flush failed: {writer.last_error}")
                flush_times.append((time.perf_counter() - t1) * 1000)
                flush_s += time.perf_counter() - t1
    values = nodes * seconds * len(SERIES)
    print(f"ingest: {nodes} nodes x {len(SERIES)} values x {seconds} ticks = {values:,} values")
    print(f"  add:   {add_s / (nodes * seconds) * 1e6:8.1f} us a tick of {len(SERIES)} values")
    print(
        f"  flush: median {statistics.median(flush_times):.1f} ms, max {max(flush_times):.1f} ms "
        f"({len(flush_times)} flushes of ~{values // len(flush_times):,} values)"
    )
    print(f"  rate:  {values / (add_s + flush_s):,.0f} values/s sustained (target >= 20,000)")
    before = RawBlock.objects.count()
    raw_before = table_bytes("dashboard_rawblock")
    t0 = time.perf_counter()
    merged = compact_raw_blocks(now_s=start + seconds + 7200)
    took = time.perf_counter() - t0
    vacuum("dashboard_rawblock")
    after_bytes = table_bytes("dashboard_rawblock")
    print(
        f"compaction: {before:,} blocks -> {RawBlock.objects.count():,} ({merged:,} series-hours) in {took:.2f} s "
        f"({values / took:,.0f} values/s)"
    )
    print(
        f"  raw bytes/sample on disk: {raw_before / values:.1f} as flushed, {after_bytes / values:.1f} compacted"
    )


def seed_month(rng: np.random.Generator, now: float) -> dict[str, float]:
    """30 days of one 8-GPU node as retention leaves it: raw for 48 h, rollups for 30 days."""
    from dashboard.history.codec import Buckets, encode_buckets, encode_samples
    from dashboard.history.tiers import HOUR, MINUTE
    from dashboard.models import MetricSeries, Node, RawBlock, RollupBlock

    node = Node.objects.create(name="month-node")
    series = MetricSeries.objects.bulk_create(
        [MetricSeries(node=node, metric=m, gpu_index=-1 if g is None else g) for m, g in SERIES]
    )
    series = list(MetricSeries.objects.filter(node=node).order_by("id"))
    hour_now = int(now // 3600 * 3600)
    raw_hours = 48
    raw_start = hour_now - (raw_hours - 1) * 3600  # through the current hour
    samples = 0
    t0 = time.perf_counter()
    # Raw: one compacted block per series per hour, one sample a second with a few ms of jitter.
    for h in range(raw_hours):
        block_start = raw_start + h * 3600
        ts_ms = block_start * 1000 + np.arange(3600) * 1000 + rng.integers(0, 5, 3600)
        values = signals(3600, rng)
        RawBlock.objects.bulk_create(
            [
                RawBlock(
                    series=s,
                    block_start_s=block_start,
                    first_ts_ms=int(ts_ms[0]),
                    last_ts_ms=int(ts_ms[-1]),
                    sample_count=3600,
                    data=encode_samples(ts_ms, values[:, col], level=9),
                )
                for col, s in enumerate(series)
            ],
            batch_size=500,
        )
        samples += 3600 * len(series)
    raw_s = time.perf_counter() - t0
    # Rollups: per-minute aggregates for 30 days, summed into hours.
    t0 = time.perf_counter()
    days = 30
    first_day = (hour_now // 86400 - days + 1) * 86400
    minutes = (hour_now + 3600 - first_day) // 60
    per_minute = signals(minutes, rng)  # the minute's mean; min/max spread around it
    spread = np.abs(rng.normal(0, 2, per_minute.shape))
    minute_rows, hour_rows = [], []
    for col, s in enumerate(series):
        avg = per_minute[:, col]
        low, high = (avg - spread[:, col]).astype(np.float32), (avg + spread[:, col]).astype(np.float32)
        count = np.full(minutes, 60, np.uint32)
        for h in range(minutes // 60):
            sl = slice(h * 60, h * 60 + 60)
            minute_rows.append(
                RollupBlock(
                    series=s,
                    resolution_s=MINUTE.resolution_s,
                    block_start_s=first_day + h * 3600,
                    data=encode_buckets(Buckets(count[sl], avg[sl] * 60, low[sl], high[sl])),
                )
            )
        for d in range(days):
            hours = Buckets.empty(HOUR.slots)
            for h in range(24):
                sl = slice((d * 24 + h) * 60, (d * 24 + h) * 60 + 60)
                if sl.start < minutes:
                    hours.count[h] = count[sl].sum()
                    hours.total[h] = (avg[sl] * 60).sum()
                    hours.low[h], hours.high[h] = low[sl].min(), high[sl].max()
            hour_rows.append(
                RollupBlock(
                    series=s,
                    resolution_s=HOUR.resolution_s,
                    block_start_s=first_day + d * 86400,
                    data=encode_buckets(hours),
                )
            )
        if len(minute_rows) > 20_000:
            RollupBlock.objects.bulk_create(minute_rows, batch_size=1000)
            minute_rows = []
    RollupBlock.objects.bulk_create(minute_rows + hour_rows, batch_size=1000)
    return {
        "raw_samples": samples,
        "raw_s": raw_s,
        "rollup_s": time.perf_counter() - t0,
        "series": len(series),
    }


def bench_month(repeats: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from dashboard.history import query
    from dashboard.models import RollupBlock

    rng = np.random.default_rng(2)
    now = time.time()
    seeded = seed_month(rng, now)
    raw_bytes = table_bytes("dashboard_rawblock")
    rollup_bytes = table_bytes("dashboard_rollupblock")
    minute_buckets = RollupBlock.objects.filter(resolution_s=60).count() * 60
    print(
        f"seeded one 8-GPU node ({seeded['series']} series): {seeded['raw_samples']:,} raw samples (48 h) "
        f"in {seeded['raw_s']:.1f} s, 30 days of 1-min and 1-h rollups in {seeded['rollup_s']:.1f} s"
    )
    print(
        f"  raw:     {raw_bytes / seeded['raw_samples']:.2f} bytes/sample on disk (target <= 16), {raw_bytes / 2**20:.1f} MiB"
    )
    print(
        f"  rollups: {rollup_bytes / minute_buckets:.1f} bytes per 1-minute bucket "
        f"(1-hour buckets included), {rollup_bytes / 2**20:.1f} MiB"
    )
    per_day = raw_bytes / 2 + rollup_bytes / 30
    print(
        f"  storage: {per_day / 2**20:.0f} MiB per node-day written; kept at steady state "
        f"{(raw_bytes + rollup_bytes) / 2**20:.0f} MiB for 48 h raw + 30 d rollups (+ 1-h rollups for a year)"
    )

    ranges = [("5 min", 300), ("8 h", 8 * 3600), ("1 d", 86400), ("7 d", 7 * 86400), ("30 d", 30 * 86400)]
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    client = Client()
    client.force_login(user)
    client.get("/api/metrics/catalog")  # warm up: URL resolution and the API's first-call setup
    for label, span in ranges:
        args = ("month-node", "gpu.utilization_gpu_percent", 3, now - span, now, 500)
        answer = query.series(*args, now=now)
        med, worst = median_ms(lambda a=args: query.series(*a, now=now), repeats)
        params = {
            "node": args[0],
            "metric": args[1],
            "gpu": 3,
            "start": args[3],
            "end": args[4],
            "points": 500,
        }
        http_med, http_worst = median_ms(lambda p=params: client.get("/api/metrics/series", p), repeats)
        print(
            f"query {label:>5} at 500 points: resolution {answer['resolution_s']:>4} s, "
            f"{len(answer['points']):>3} points: {med:6.1f} ms median ({worst:.1f} max); "
            f"HTTP {http_med:6.1f} ms ({http_worst:.1f} max)"
        )
    med, worst = median_ms(
        lambda: query.series("month-node", "host.cpu_percent", None, now - 30 * 86400, now, 5000, now=now),
        repeats,
    )
    print(f"query 30 d at 5000 points (1-min tier): {med:.1f} ms median ({worst:.1f} max)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=8, help="simulated 8-GPU nodes for the ingest run")
    parser.add_argument("--seconds", type=int, default=600, help="simulated seconds of ingest")
    parser.add_argument("--repeats", type=int, default=15, help="repeats of each query")
    args = parser.parse_args()
    where, cleanup = setup_database()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"database: {where}")
        bench_ingest(args.nodes, args.seconds)
        bench_month(args.repeats)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
