"""The observations feed against the suite's private Redis: what sources publish reaches the stream
the rule evaluator reads, and Redis being away never reaches the caller."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from django.conf import settings

from dashboard.alerting import feed
from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import FakePynvml, h100


@pytest.fixture
def stream():
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(feed.STREAM)
    yield client
    client.delete(feed.STREAM)
    client.close()


def entries(client) -> list[list[feed.Point]]:
    return [feed.decode(fields[b"p"]) for _id, fields in client.xrange(feed.STREAM)]


def test_it_publishes_a_call_as_one_entry_with_every_point(stream):
    feed.publish_observations(
        [("gpu-a", "gpu.temperature_c", 0, 1000.5, 71.0), ("gpu-a", "host.cpu_percent", None, 1000.5, 12.5)]
    )
    feed.publish_observations([("gpu-b", "deploy:digits:sample_ms", None, 1001.0, 42.0)])
    assert entries(stream) == [
        [("gpu-a", "gpu.temperature_c", 0, 1000.5, 71.0), ("gpu-a", "host.cpu_percent", None, 1000.5, 12.5)],
        [("gpu-b", "deploy:digits:sample_ms", None, 1001.0, 42.0)],
    ]


def test_non_finite_values_and_empty_calls_publish_nothing(stream):
    feed.publish_observations([])
    feed.publish_observations([("n", "m", None, 1.0, float("nan")), ("n", "m", None, 2.0, 3.0)])
    assert entries(stream) == [[("n", "m", None, 2.0, 3.0)]]


def test_the_stream_is_trimmed(stream, monkeypatch):
    monkeypatch.setattr(feed, "MAXLEN", 100)
    for i in range(1000):
        feed.publish_observations([("n", "m", None, float(i), 1.0)])
    # Approximate trimming keeps at least MAXLEN and removes whole macro nodes past it.
    assert 100 <= stream.xlen(feed.STREAM) < 1000


def test_redis_away_is_counted_and_never_raises(settings, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    before = feed.dropped
    feed.publish_observations([("n", "m", None, 1.0, 1.0), ("n", "m", None, 2.0, 2.0)])
    assert feed.dropped == before + 2


@pytest.mark.django_db(transaction=True)
def test_the_sampler_daemon_publishes_each_tick(stream, settings, monkeypatch):
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([h100()]))
    settings.NODE_NAME = "feed-node"
    from dashboard.sampling import SamplerDaemon

    daemon = SamplerDaemon(interval_s=0.2, demo_gpus=0)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while stream.xlen(feed.STREAM) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(15)
    points = [p for entry in entries(stream) for p in entry]
    assert len(entries(stream)) >= 2
    assert ("feed-node", "gpu.temperature_c", 0) in {(n, m, g) for n, m, g, _ts, _v in points}
    assert ("feed-node", "host.cpu_percent", None) in {(n, m, g) for n, m, g, _ts, _v in points}
    # Every stored series reaches the rules, the details (CPU time by mode) included.
    assert any(m.startswith("host.cpu_") and m != "host.cpu_percent" for _n, m, _g, _ts, _v in points)
