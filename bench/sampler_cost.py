"""What the sampler daemon really costs: its process's CPU over N ticks in a running stack, per
tick and per value, beside prometheus-node-exporter measured over the same seconds.

For each ``--demo-gpus`` count it starts the real ``perfmon up`` (tests/e2e/stack.py: private Redis,
the database in a fresh data dir, or ``--database-url``) sampling at 1 Hz, finds the sampler child
process, lets it warm up, and then over ``--seconds`` reads with psutil the CPU time (user + system,
all threads) of

  - the sampler process: every tick's probing, Redis sends, heartbeat and history writes, and
  - ``prometheus-node-exporter`` (if on PATH; started here on a free port), scraped over HTTP by this
    script once a second, as Prometheus would at a 1 s interval.

Values per tick are counted where a user gets them, not from the code:

  - history: samples of the node stored in the database with timestamps inside the window, divided
    by the distinct tick timestamps among them (and ticks missing from history are reported);
  - /metrics: the node's series in the stack's Prometheus export (each refreshed every tick);
  - node_exporter: sample lines per scrape.

Prints, for each: CPU ms per tick (per scrape), % of one core, and CPU us per value.

    .venv/bin/python bench/sampler_cost.py [--seconds 120] [--demo-gpus 0 8] [--database-url URL]

The stack's other processes (web, workers, beat) run too, so the figures hold on a machine that is
busy with more than the sampler; only the sampler's own CPU time is counted for perfmon.

With ``--watch`` this script subscribes to the node's live group in the stack's Redis, as a web
process does while a browser has the node's page open: the sampler then scans processes every
10 s rather than every 60 s (the top-processes table is only for that page).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from perfmon.private_redis import free_port  # noqa: E402
from tests.e2e.stack import Stack, cmdline, start_stack_process  # noqa: E402

NODE_EXPORTER = "prometheus-node-exporter"
WARM_UP_S = 15.0  # the first ticks open NVML, register the node, create the history series


@dataclass(frozen=True)
class Cost:
    """CPU seconds a process used over ``seconds`` of wall time for ``ticks`` ticks (or scrapes)."""

    name: str
    cpu_s: float
    seconds: float
    ticks: int
    values_per_tick: float

    @property
    def ms_per_tick(self) -> float:
        return self.cpu_s / max(1, self.ticks) * 1e3

    @property
    def core_percent(self) -> float:
        return self.cpu_s / self.seconds * 100

    @property
    def us_per_value(self) -> float:
        return self.ms_per_tick * 1e3 / self.values_per_tick if self.values_per_tick else float("nan")

    def line(self, what: str) -> str:
        return (
            f"  {self.name:<28} {self.ms_per_tick:6.2f} ms CPU/tick  {self.core_percent:5.2f}% of a core  "
            f"{self.values_per_tick:6.0f} {what:<22} {self.us_per_value:6.2f} us CPU/value"
        )


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def sample_lines(text: str, node: str | None = None) -> int:
    """Sample lines of a Prometheus text exposition (``# HELP``/``# TYPE`` left out); only the
    series labelled with ``node`` (instance, nodename or Hostname) when given."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    if node is None:
        return len(lines)
    marks = (f'instance="{node}"', f'nodename="{node}"', f'Hostname="{node}"', f'node="{node}"')
    return sum(1 for line in lines if any(mark in line for mark in marks))


def start_node_exporter() -> tuple[subprocess.Popen, str] | None:
    binary = shutil.which(NODE_EXPORTER)
    if binary is None:
        return None
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(url)
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    return None


def wait_for_dashboard(stack: Stack, timeout_s: float = 300) -> None:
    """Until the stack's web server answers (its health may stay red on a machine this busy)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise SystemExit(f"perfmon up exited with {stack.process.returncode}:\n{stack.log()}")
        if "dashboard at" in stack.log():
            return
        time.sleep(0.5)
    raise SystemExit(f"the dashboard did not come up within {timeout_s} s:\n{stack.log()}")


def sampler_process(stack: Stack, timeout_s: float = 60) -> psutil.Process:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in stack.descendants():
            if "perfmon.cli sampler" in cmdline(child):
                return child
        time.sleep(0.5)
    raise SystemExit(f"no sampler process in the stack:\n{stack.log()}")


def history_in_window(node: str, start_s: float, end_s: float) -> tuple[int, int]:
    """(values stored, distinct tick timestamps) of ``node``'s raw history inside [start_s, end_s)."""
    import numpy as np

    from dashboard.history.codec import decode_samples
    from dashboard.models import RawBlock

    values = 0
    stamps: set[int] = set()
    lo_ms, hi_ms = int(start_s * 1000), int(end_s * 1000)
    blocks = RawBlock.objects.filter(series__node__name=node, last_ts_ms__gte=lo_ms, first_ts_ms__lt=hi_ms)
    for blob in blocks.values_list("data", flat=True).iterator():
        ts_ms, _ = decode_samples(blob)
        inside = ts_ms[(ts_ms >= lo_ms) & (ts_ms < hi_ms)]
        values += len(inside)
        stamps.update(np.unique(inside).tolist())
    return values, len(stamps)


def newest_history_ms(node: str) -> int:
    from django.db.models import Max

    from dashboard.models import RawBlock

    return RawBlock.objects.filter(series__node__name=node).aggregate(m=Max("last_ts_ms"))["m"] or 0


def watch_node(stack: Stack, node: str):
    """Subscribe to the node's live group as a web process with a browser on the node page would;
    returns the thread reading the messages (stop() it)."""
    import redis

    from dashboard.live import group_for_topic

    url = next(line.rsplit(" ", 1)[-1] for line in stack.log().splitlines() if "private Redis at " in line)
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{f"asgi__group__{group_for_topic(f'node:{node}')}": lambda message: None})
    return pubsub.run_in_thread(sleep_time=0.5, daemon=True)


def measure(args: argparse.Namespace, data_dir: Path, demo_gpus: int, peer) -> None:
    node = f"bench-{demo_gpus}gpu"
    env = {"PERFMON_SAMPLE_INTERVAL_S": "1.0", "PERFMON_NODE_NAME": node, "PERFMON_DEMO_GPUS": str(demo_gpus)}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    stack = start_stack_process(data_dir, **env)
    children: list[psutil.Process] = []
    try:
        wait_for_dashboard(stack)
        children = stack.descendants()
        sampler = sampler_process(stack)
        watcher = watch_node(stack, node) if args.watch else None
        time.sleep(WARM_UP_S)
        exporter = psutil.Process(peer[0].pid) if peer else None

        start_wall, start_epoch = time.monotonic(), time.time()
        sampler_start = cpu_seconds(sampler)
        exporter_start = cpu_seconds(exporter) if exporter else 0.0
        scrapes, exporter_samples = 0, 0
        next_scrape = start_wall
        while time.monotonic() - start_wall < args.seconds:
            if peer:
                exporter_samples += sample_lines(get(peer[1]))
                scrapes += 1
            next_scrape += 1.0
            time.sleep(max(0.0, next_scrape - time.monotonic()))
        sampler_cpu = cpu_seconds(sampler) - sampler_start
        exporter_cpu = (cpu_seconds(exporter) - exporter_start) if exporter else 0.0
        seconds, end_epoch = time.monotonic() - start_wall, time.time()
        if watcher is not None:
            watcher.stop()

        served = sample_lines(get(stack.url + "/metrics"), node)
        # History is flushed in batches: wait until a sample from after the window is stored.
        deadline = time.monotonic() + 60
        while newest_history_ms(node) < end_epoch * 1000 and time.monotonic() < deadline:
            time.sleep(1.0)
        stored, ticks = history_in_window(node, start_epoch, end_epoch)
    finally:
        children = children or stack.descendants()
        stack.stop()
        for child in children:  # a stack that never came up may leave its children behind
            if child.is_running():
                child.kill()

    expected = int(round(seconds))
    print(
        f"\n{demo_gpus} simulated GPUs, {seconds:.0f} s at 1 Hz ({psutil.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})"
        f"{', node page watched' if args.watch else ''}:"
    )
    perfmon = Cost("perfmon sampler", sampler_cpu, seconds, ticks, stored / max(1, ticks))
    print(perfmon.line("values stored/tick"))
    print(Cost("  same, per value served", sampler_cpu, seconds, ticks, served).line("series on /metrics"))
    print(
        f"  {'':<28} history: {ticks} ticks of ~{expected} stored ({max(0, expected - ticks)} missing), "
        f"{stored} values"
    )
    if peer:
        ne = Cost(
            "prometheus-node-exporter", exporter_cpu, seconds, scrapes, exporter_samples / max(1, scrapes)
        )
        print(ne.line("samples/scrape"))
        if ne.us_per_value == ne.us_per_value:
            print(
                f"  perfmon / node_exporter CPU per value: {perfmon.us_per_value / ne.us_per_value:.2f} (stored), "
                f"{perfmon.ms_per_tick * 1e3 / served / ne.us_per_value:.2f} (served)"
            )
    else:
        print(f"  ({NODE_EXPORTER} not on PATH: no peer measured)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="measured window per run (after warm-up)"
    )
    parser.add_argument("--demo-gpus", type=int, nargs="+", default=[0, 8], help="one run per count")
    parser.add_argument("--database-url", help="e.g. postgresql://postgres@127.0.0.1/bench (default: SQLite)")
    parser.add_argument(
        "--watch", action="store_true", help="as if a browser had the node's page open (see above)"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="perfmon-sampler-cost-"))
    os.environ["PERFMON_DATA_DIR"] = str(data_dir)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon.settings")
    import django

    django.setup()

    peer = start_node_exporter()
    try:
        for count in args.demo_gpus:
            measure(args, data_dir, count, peer)
    finally:
        if peer:
            peer[0].send_signal(signal.SIGTERM)
            peer[0].wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
