"""The sampler's batching: one Redis round trip per tick, a database heartbeat every few ticks that
still keeps a live node online, and history that loses no sample across batches and flushes."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import redis
from asgiref.sync import sync_to_async

from dashboard.history.query import series
from dashboard.latest import load_latest
from dashboard.models import Node
from dashboard.sampling import BEAT_EVERY_TICKS, SamplerDaemon
from dashboard.views_nodes import is_online
from tests.dashboard.live_client import receive_until, running_sampler, subscribe, watching_node
from workers.sampler.sample import for_browsers

pytestmark = pytest.mark.django_db(transaction=True)

T0 = 1_800_000_000.0  # epoch seconds of the first fake tick


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def ticks(daemon: SamplerDaemon, count: int, start_s: float = T0):
    """``count`` samples of the daemon's node taken one interval apart from ``start_s``."""
    sample = daemon.sampler.tick()
    return [dataclasses.replace(sample, ts=start_s + i * daemon.interval_s) for i in range(count)]


@pytest.fixture
def daemon():
    clock = FakeClock()
    made = SamplerDaemon(node_name="batch-node", interval_s=1.0, demo_gpus=0, clock=clock)
    made.clock = clock
    yield made
    made.sampler.close()
    made.publisher.close()


def test_the_heartbeat_is_written_every_few_ticks_yet_a_live_node_never_reads_offline(daemon):
    from datetime import UTC, datetime

    samples = ticks(daemon, 30)
    pending = []
    for i, sample in enumerate(samples):
        pending.append(sample)
        if i % BEAT_EVERY_TICKS:
            continue
        daemon.record(pending)
        pending = []
        # At worst the recorder woke almost a tick after this sample, and the next wake is
        # BEAT_EVERY_TICKS ticks later: a page read just before it sees the oldest last_seen.
        read_at = datetime.fromtimestamp(sample.ts + (BEAT_EVERY_TICKS + 0.999) * daemon.interval_s, tz=UTC)
        node = Node.objects.get(name="batch-node")
        assert is_online(node, read_at), (
            f"tick {i}: offline at {(read_at - node.last_seen).total_seconds()} s"
        )

    assert daemon.beats == 15, "one database heartbeat per 2 ticks, not one per tick"
    node = Node.objects.get(name="batch-node")
    # The sampler stops: the node reads offline no later than 3 ticks + 1 s after its last sample.
    last = samples[-1].ts
    assert node.last_seen.timestamp() <= last
    assert not is_online(node, datetime.fromtimestamp(last + node.offline_after_s + 0.01, tz=UTC))


def test_no_sample_is_lost_across_heartbeat_batches_and_history_flushes(daemon):
    daemon.history.flush_every_s = 5.0  # flushes fall inside batches and between them
    samples = ticks(daemon, 23)
    for start in range(0, len(samples), 3):  # batches of 3 do not line up with 5 s flushes
        daemon.clock.now_s += 3.0
        daemon.record(samples[start : start + 3])
    daemon.history.flush()  # what stopping does

    points = series("batch-node", "host.cpu_percent", start=T0 - 1, end=T0 + 30, now=T0 + 30, points=5000)
    assert [round(p[0], 3) for p in points["points"]] == [s.ts for s in samples]
    assert daemon.history.written == sum(len(s.metrics()) for s in samples)


async def test_every_sample_a_browser_received_is_in_history(settings):
    settings.NODE_NAME = "kept-node"
    communicator = await watching_node("kept-node", "gina")
    received = []
    try:
        async with running_sampler(interval_s=0.2) as daemon:
            daemon.history.flush_every_s = 0.5
            while len(received) < 12:
                message = await receive_until(communicator, lambda m: m.get("type") == "sample", timeout_s=20)
                received.append(message["ts"])
        # Stopping drained and flushed everything taken.
    finally:
        await communicator.disconnect()

    points = await sync_to_async(series)(
        "kept-node", "host.cpu_percent", start=received[0] - 1, end=received[-1] + 1, points=5000
    )
    stored = {round(p[0], 3) for p in points["points"]}
    assert {round(ts, 3) for ts in received} <= stored
    beats = daemon.beats
    assert 1 <= beats < len(received), "the heartbeat is not written every tick"


class RoundTrips:
    """Counts writes of commands to a Redis socket made from one thread (redis-py's, which the
    sampler's dashboard.resp_pipe writes through too): a pipeline is one."""

    def __init__(self, monkeypatch, thread: threading.Thread) -> None:
        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(connection, command, check_health=True):
            if threading.current_thread() is thread:
                self.count += 1
            return original(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)


async def test_a_tick_is_one_redis_round_trip_with_latest_sample_and_both_pushes(settings, monkeypatch):
    settings.NODE_NAME = "trip-node"
    communicator = await watching_node("trip-node", "hank")
    await subscribe(communicator, "nodes")
    daemon = await sync_to_async(SamplerDaemon)(interval_s=1.0, demo_gpus=0)
    try:
        assert daemon.publisher.pipelined

        def push_three() -> tuple[int, list[float]]:
            trips = RoundTrips(monkeypatch, threading.current_thread())
            sent = []
            daemon.publisher.ping()  # connect first: the handshake is not a tick's cost
            trips.count = 0
            for _ in range(3):
                sample = daemon.sampler.tick().to_json()
                daemon.push_live({"type": "sample", **for_browsers(sample)}, sample)
                sent.append(sample["ts"])
            return trips.count, sent

        count, sent = await sync_to_async(push_three)()
        assert count == 3, f"{count} Redis round trips for 3 ticks"
        # Samples come at once, heartbeats in the fleet's next coalesced frame (fleet_frames.py).
        samples = [await receive_until(communicator, lambda m: m.get("type") == "sample") for _ in sent]
        beats = [await receive_until(communicator, lambda m: m.get("type") == "heartbeat") for _ in sent]
        assert [m["ts"] for m in samples] == [m["ts"] for m in beats] == sent
        latest = await sync_to_async(load_latest)()
        assert latest["trip-node"]["ts"] == sent[-1], "the latest sample went in the same round trip"
    finally:
        await communicator.disconnect()
        daemon.sampler.close()
        daemon.publisher.close()


async def test_the_process_scan_slows_down_while_no_browser_has_the_node_page_open(settings):
    settings.NODE_NAME = "watched-node"
    daemon = await sync_to_async(SamplerDaemon)(interval_s=1.0, demo_gpus=0)
    communicator = None
    try:

        def push_one() -> bool:
            sample = daemon.sampler.tick().to_json()
            daemon.push_live({"type": "sample", **for_browsers(sample)}, sample)
            return daemon.sampler.processes_watched

        assert await sync_to_async(push_one)() is False, "no web process subscribes to the node"
        communicator = await watching_node("watched-node", "ida")
        assert await sync_to_async(push_one)() is True
        await receive_until(communicator, lambda m: m.get("type") == "sample")
    finally:
        if communicator is not None:
            await communicator.disconnect()
        daemon.sampler.close()
        daemon.publisher.close()
