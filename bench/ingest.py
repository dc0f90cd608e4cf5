"""Latency ingest: can one web process take 1,000 samples/s across 100 deployments?

Sends POST /api/ingest/latency through Django's full request path (middleware, bearer token,
JSON parsing, validation, the synchronous history write, the XADD to the observation stream) in
this process, for 100 deployments each sending one request a second, and prints the CPU seconds
that one simulated second of that load costs. Under 1.0 means one core keeps up; the web server
runs several workers.

    .venv/bin/python bench/ingest.py [--seconds 20] [--per-request 10] [--profile 200]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/ingest.py

Runs on a throwaway database (see bench/history.py) and Redis database 15 (its stream is deleted).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
from bench.history import setup_database  # noqa: E402

DEPLOYMENTS = 100


def run(seconds: int, per_request: int, profile: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from dashboard.alerting import feed
    from dashboard.models import (
        ApiToken,
        Deployment,
        ModelVersion,
        ModelVersionStatus,
        Node,
        RegisteredModel,
        Role,
    )
    from dashboard.permissions import grant

    user = get_user_model().objects.create_user("bench")
    grant(user, Role.OPERATOR)
    _token, raw = ApiToken.issue(user, Role.OPERATOR)
    model = RegisteredModel.objects.create(name="digits")
    version = ModelVersion.objects.create(
        model=model,
        version=1,
        format="torchscript",
        input_spec={"shape": [None, 4], "dtype": "float32"},
        sha256="0" * 64,
        size_bytes=1,
        status=ModelVersionStatus.READY,
    )
    for n in range(10):
        Node.objects.create(name=f"node-{n}")
    names = [f"svc-{i:03d}" for i in range(DEPLOYMENTS)]
    Deployment.objects.bulk_create(
        [
            Deployment(name=name, active_version=version, node_name=f"node-{i % 10}")
            for i, name in enumerate(names)
        ]
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_HOST="127.0.0.1")
    start_ts = time.time() - seconds
    if profile:
        profile_requests(client, names, profile, per_request, start_ts)
    request_ms: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for second in range(seconds):
        for name in names:
            t = start_ts + second
            samples = [{"ts": t + k / per_request, "latency_ms": 10.0 + k} for k in range(per_request)]
            body = json.dumps({"deployment": name, "samples": samples})
            began = time.perf_counter()
            response = client.post("/api/ingest/latency", body, content_type="application/json")
            request_ms.append((time.perf_counter() - began) * 1000.0)
            assert response.status_code == 202, response.content
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    requests = len(request_ms)
    samples_total = requests * per_request
    request_ms.sort()
    print(f"{requests} requests of {per_request} samples ({samples_total} samples, {seconds} simulated s)")
    print(
        f"  per request: p50 {statistics.median(request_ms):.2f} ms, p99 {request_ms[int(0.99 * requests)]:.2f} ms"
    )
    print(
        f"  throughput: {samples_total / wall:,.0f} samples/s, {requests / wall:,.0f} requests/s (one process)"
    )
    rate = DEPLOYMENTS * per_request
    print(
        f"  CPU for one second of {DEPLOYMENTS} deployments x {per_request} samples ({rate}/s):"
        f" {cpu / seconds:.2f} s of this process (wall {wall / seconds:.2f} s; the database's own CPU is apart)"
    )
    print(f"  CPU per request: {cpu / requests * 1000.0:.2f} ms")
    print(f"  observation points not published: {feed.dropped}")
    feed._client().delete(feed.STREAM)


def profile_requests(client, names: list[str], requests: int, per_request: int, start_ts: float) -> None:
    """cProfile over ``requests`` requests (after one warm-up round), and the queries each made."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def send(i: int) -> None:
        t = start_ts + i / len(names)
        samples = [{"ts": t + k / per_request / 1000, "latency_ms": 10.0 + k} for k in range(per_request)]
        body = json.dumps({"deployment": names[i % len(names)], "samples": samples})
        response = client.post("/api/ingest/latency", body, content_type="application/json")
        assert response.status_code == 202, response.content

    for i in range(len(names)):  # warm: every deployment looked up once
        send(i)
    with CaptureQueriesContext(connection) as queries:
        send(0)
    print(f"queries in one request ({len(queries)}):")
    for query in queries:
        print("   ", query["sql"][:150])
    profiler = cProfile.Profile()
    cpu0 = time.process_time()
    profiler.enable()
    for i in range(requests):
        send(i)
    profiler.disable()
    cpu = time.process_time() - cpu0
    print(
        f"profiled {requests} requests: {cpu / requests * 1000.0:.2f} ms CPU each (with cProfile's overhead)"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:  # noqa: C901
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--per-request", type=int, default=10, help="samples each deployment sends a second")
    parser.add_argument("--profile", type=int, default=0, help="first profile this many requests (cProfile)")
    args = parser.parse_args()
    where, cleanup = setup_database()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"database: {where}")
        run(args.seconds, args.per_request, args.profile)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
