"""Rule evaluation under load: 1,000 rules against 10 nodes x 8 GPUs sampled at 1 Hz and 100
deployments ingesting 1,000 latency samples/s in all, published straight into the observations
stream as the sampler and ingest do (one XADD per node tick and per deployment batch).

Prints:
  - the lag from a point's publication to the state change it caused, p50/p99/max (target p99 < 1 s)
  - the evaluator process's CPU share of one core, and the points it read per second
  - flapping: a signal crossing its threshold every second for ``--flap-seconds``, on a rule with
    keep_firing_for 5 s and repeat_interval 10 s, in an in-process evaluator whose dispatch counts
    notifications: at most one per repeat_interval (1 firing + a repeat every 10 s)

The evaluator runs as `perfmon manage evaluator` in a process of its own, on a throwaway SQLite
database and a private Redis (nothing shared is touched).

    .venv/bin/python bench/rules.py [--seconds 60] [--flap-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NODES, GPUS, DEPLOYMENTS = 10, 8, 100
GPU_METRICS = [
    "temperature_c",
    "utilization_gpu_percent",
    "utilization_memory_percent",
    "power_draw_w",
    "memory_used_bytes",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "fan_percent",
    "pcie_tx_bytes_per_s",
    "pcie_rx_bytes_per_s",
    "memory_free_bytes",
]  # 11 x 80 GPUs = 880 rules
HOST_METRICS = ["cpu_percent", "memory_percent"]  # 20 rules
SAMPLES_PER_DEPLOYMENT_S = 10  # 100 deployments x 10 = 1,000 samples/s; 100 rules
START = 0.0


def setup() -> tuple[str, object]:
    tmp = tempfile.mkdtemp(prefix="perfmon-bench-rules-")
    os.environ["PERFMON_DATA_DIR"] = tmp
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "perfmon.settings"
    from perfmon.private_redis import PrivateRedis

    redis_server = PrivateRedis(Path(tmp) / "redis").start()
    os.environ["REDIS_URL"] = redis_server.url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    def cleanup() -> None:
        redis_server.stop()
        shutil.rmtree(tmp, True)

    return tmp, cleanup


def world() -> None:
    from dashboard.models import Deployment, ModelVersion, Node, RegisteredModel, Rule

    for n in range(NODES):
        Node.objects.create(
            name=f"node-{n}", info={"gpus": [{"index": g} for g in range(GPUS)], "sample_interval_s": 1.0}
        )
    model = RegisteredModel.objects.create(name="bench-model")
    version = ModelVersion.objects.create(
        model=model, version=1, format="onnx", input_spec={}, sha256="0" * 64, size_bytes=1, status="ready"
    )
    for d in range(DEPLOYMENTS):
        Deployment.objects.create(name=f"dep-{d}", node_name=f"node-{d % NODES}", active_version=version)
    rules = []
    for n in range(NODES):
        for g in range(GPUS):
            for metric in GPU_METRICS:
                rules.append(
                    Rule(
                        name=f"{metric} n{n} g{g}",
                        target={"metric": f"gpu.{metric}", "node": f"node-{n}", "gpu": g},
                        threshold=50,
                        repeat_interval_s=3600,
                    )
                )
        for metric in HOST_METRICS:
            rules.append(
                Rule(
                    name=f"{metric} n{n}",
                    target={"metric": f"host.{metric}", "node": f"node-{n}", "gpu": None},
                    threshold=50,
                )
            )
    for d in range(DEPLOYMENTS):
        rules.append(
            Rule(
                name=f"slow dep-{d}",
                target={"deployment": f"dep-{d}", "stat": "p95", "window": "30s"},
                threshold=50,
            )
        )
    Rule.objects.bulk_create(rules)
    print(f"{len(rules)} rules, {NODES} nodes x {GPUS} GPUs, {DEPLOYMENTS} deployments")


def level(phase: float, t: float) -> float:
    """A signal around the threshold 50, noisy: below it until ``phase`` seconds into the run, then
    crossing it every 30 s (30 s above, 30 s below). Phases spread the first crossings over the
    first minute, as a fleet's would be, instead of opening 1,000 alerts in the first second."""
    elapsed = t - START - phase
    above = elapsed >= 0 and (elapsed % 60) < 30
    return (60.0 if above else 40.0) + random.uniform(-5, 5)


def publish_load(seconds: float) -> int:
    from dashboard.alerting.feed import publish_observations

    global START
    START = time.time()
    phases = {
        key: random.uniform(0, 60) for key in range(NODES * (GPUS * len(GPU_METRICS) + 2) + DEPLOYMENTS)
    }
    start = time.time()
    sent = 0
    tick = 0
    while time.time() - start < seconds:
        now = time.time()
        key = 0
        for n in range(NODES):
            points = []
            for g in range(GPUS):
                for metric in GPU_METRICS:
                    points.append((f"node-{n}", f"gpu.{metric}", g, now, level(phases[key], now)))
                    key += 1
            for metric in HOST_METRICS:
                points.append((f"node-{n}", f"host.{metric}", None, now, level(phases[key], now)))
                key += 1
            publish_observations(points)
            sent += len(points)
        for d in range(DEPLOYMENTS):
            batch = [
                (f"node-{d % NODES}", f"deploy:dep-{d}:sample_ms", None, now, level(phases[key], now))
                for _ in range(SAMPLES_PER_DEPLOYMENT_S)
            ]
            key += 1
            publish_observations(batch)
            sent += len(batch)
        tick += 1
        time.sleep(max(0.0, start + tick - time.time()))
    return sent


def main_run(seconds: float) -> None:
    import psutil
    import redis
    from django.conf import settings

    from dashboard.alerting.evaluator import STATS_KEY
    from dashboard.models import AlertEvent

    client = redis.Redis.from_url(settings.REDIS_URL)
    evaluator = subprocess.Popen(
        [sys.executable, "-m", "perfmon.cli", "manage", "evaluator"], cwd=ROOT, env=dict(os.environ)
    )
    proc = psutil.Process(evaluator.pid)
    try:
        deadline = time.time() + 120
        while client.get(STATS_KEY) is None and time.time() < deadline:  # rules loaded, loop running
            time.sleep(0.2)
        cpu0, wall0 = sum(proc.cpu_times()[:2]), time.time()
        sent = publish_load(seconds)
        time.sleep(6)  # let the last stats land
        cpu1, wall1 = sum(proc.cpu_times()[:2]), time.time()
        stats = json.loads(client.get(STATS_KEY) or b"{}")
    finally:
        evaluator.terminate()
        evaluator.wait(30)
    print(f"published {sent} points in {seconds:.0f} s ({sent / seconds:.0f}/s)")
    print(
        f"evaluator read {stats.get('points')} points; {stats.get('transitions')} state changes "
        f"({AlertEvent.objects.count()} AlertEvent rows)"
    )
    print(
        f"lag publish -> state change: p50 {stats.get('lag_p50_ms')} ms, p99 {stats.get('lag_p99_ms')} ms, "
        f"max {stats.get('lag_max_ms')} ms over {stats.get('lag_n')} changes (target p99 < 1000 ms)"
    )
    print(f"evaluator CPU: {100 * (cpu1 - cpu0) / (wall1 - wall0):.1f}% of one core")


def flap_run(seconds: float) -> None:
    import redis
    from django.conf import settings

    from dashboard.alerting import dispatch
    from dashboard.alerting.evaluator import LAST_ID_KEY, Evaluator
    from dashboard.alerting.feed import STREAM, publish_observations
    from dashboard.models import Rule

    Rule.objects.all().delete()
    redis.Redis.from_url(settings.REDIS_URL).delete(STREAM, LAST_ID_KEY)  # the load run's leftovers
    Rule.objects.create(
        name="flappy",
        target={"metric": "gpu.temperature_c", "node": "node-0", "gpu": 0},
        threshold=50,
        keep_firing_for_s=5,
        repeat_interval_s=10,
    )
    sent: list[str] = []
    dispatch.alert_changed = lambda alert, event: sent.append(event.to_state)
    dispatch.alert_repeat = lambda alert: sent.append("repeat")
    stop = threading.Event()
    evaluator = Evaluator()
    runner = threading.Thread(target=evaluator.run, args=(stop,))
    runner.start()
    time.sleep(1)
    start = time.time()
    i = 0
    while time.time() - start < seconds:
        publish_observations([("node-0", "gpu.temperature_c", 0, time.time(), 60.0 if i % 2 == 0 else 40.0)])
        i += 1
        time.sleep(max(0.0, start + i - time.time()))
    stop.set()
    runner.join(30)
    allowed = 1 + int(seconds // 10)
    print(
        f"flapping every second for {seconds:.0f} s (keep_firing_for 5 s, repeat_interval 10 s): "
        f"{len(sent)} notifications {sent} (at most {allowed})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--flap-seconds", type=float, default=30)
    args = parser.parse_args()
    _tmp, cleanup = setup()
    try:
        world()
        main_run(args.seconds)
        flap_run(args.flap_seconds)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
