"""Live fan-out cost: N browsers watching one node, each sample pushed through the real
channel layer (Redis) and the real ASGI server (uvicorn) to N WebSocket clients.

Prints p50/p99 of the delay from the sample's timestamp to its receipt by each client.
Target (issue 3): p99 under 250 ms at 500 clients on a 2-core machine.

With ``--rounds K`` each client count is run K times over, and the server's RSS is printed with
the clients connected and again once they have all gone: memory that grows with connections and
is held at a high-water mark levels off after the first round; a leak keeps climbing.

    .venv/bin/python bench/ws_fanout.py [--clients 100 500] [--seconds 15] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TS = re.compile(r'"ts": ?([0-9.eE+-]+)')
# A sample as an operator gets it, or as a viewer (command lines hidden, JSON encoded again).
SAMPLE = re.compile(r'\{"type": ?"sample"')
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def session_cookie() -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(username="bench")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


async def run_clients(port: int, cookie: str, clients: int, seconds: float, publish) -> list[float]:
    import websockets

    delays_ms: list[float] = []
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    ready = asyncio.Event()
    connected = 0

    async def client() -> None:
        nonlocal connected
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/live", additional_headers=headers) as socket:
            await socket.send(json.dumps({"subscribe": "node:bench-node"}))
            await socket.recv()  # "subscribed"
            connected += 1
            if connected == clients:
                ready.set()
            while True:
                text = await socket.recv()
                received = time.time()
                # 500 clients share one core with the server here: read only the timestamp, so the
                # figure measures delivery rather than this client's JSON parsing.
                if SAMPLE.match(text):
                    delays_ms.append((received - float(TS.search(text).group(1))) * 1000)

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), timeout=120)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await publish()
        await asyncio.sleep(1.0)  # the sampler's default rate
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return delays_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each client count, RSS after each")
    args = parser.parse_args()

    from perfmon.private_redis import PrivateRedis, free_port

    data_dir = Path(tempfile.mkdtemp(prefix="perfmon-bench-"))
    redis = PrivateRedis(data_dir / "redis").start()
    os.environ.update(
        PERFMON_DATA_DIR=str(data_dir), REDIS_URL=redis.url, DJANGO_SETTINGS_MODULE="perfmon.settings"
    )
    import django

    django.setup()
    from channels.layers import get_channel_layer
    from django.core.management import call_command

    from dashboard.live import push_event
    from workers.sampler.loop import Sampler

    call_command("migrate", verbosity=0)
    cookie = session_cookie()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "perfmon.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws-per-message-deflate",
            "false",
        ],
        env=dict(os.environ),
    )
    sampler = Sampler("bench-node")
    layer = get_channel_layer()

    async def publish() -> None:
        payload = {"type": "sample", **sampler.tick().to_json()}
        await layer.group_send("node.bench-node", push_event(payload))

    try:
        time.sleep(3)
        print(
            f"ws fan-out: one node's 1 Hz samples to N clients, {args.seconds:.0f} s each, {os.cpu_count()} cores"
        )
        import psutil

        server_process = psutil.Process(server.pid)
        mib = 1 << 20
        print(f"  server RSS at the start: {server_process.memory_info().rss / mib:.1f} MiB")
        for clients in args.clients:
            for round_number in range(1, args.rounds + 1):
                peak_rss = [0]

                async def publish_and_watch(peak_rss=peak_rss) -> None:
                    await publish()
                    peak_rss[0] = max(peak_rss[0], server_process.memory_info().rss)

                cpu_before = sum(server_process.cpu_times()[:2])
                delays = asyncio.run(run_clients(port, cookie, clients, args.seconds, publish_and_watch))
                server_cpu_s = sum(server_process.cpu_times()[:2]) - cpu_before
                time.sleep(2.0)  # the server notices every close
                expected = clients * int(args.seconds)
                print(
                    f"  {clients:4d} clients{f' (round {round_number})' if args.rounds > 1 else ''}: "
                    f"{len(delays)} deliveries (~{expected} expected), "
                    f"delay p50 {percentile(delays, 0.5):6.1f} ms, p99 {percentile(delays, 0.99):6.1f} ms, "
                    f"max {max(delays):6.1f} ms, mean {statistics.fmean(delays):6.1f} ms; "
                    f"server CPU {server_cpu_s * 1e6 / max(1, len(delays)):.0f} us per delivery (connects included); "
                    f"server RSS {peak_rss[0] / mib:.1f} MiB connected, "
                    f"{server_process.memory_info().rss / mib:.1f} MiB after they left"
                )
    finally:
        server.terminate()
        server.wait()
        redis.stop()


if __name__ == "__main__":
    main()
