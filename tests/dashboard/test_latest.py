"""The latest-sample store against the suite's private Redis."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from django.conf import settings

from dashboard.latest import KEY_PREFIX, LATEST_TTL_S, LatestUnavailable, load_latest, store_latest


def closed_port_url() -> str:
    """A Redis URL nothing listens on: a port the OS just handed out and took back."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=KEY_PREFIX + "*"):
        client.delete(key)
    yield client
    for key in client.scan_iter(match=KEY_PREFIX + "*"):
        client.delete(key)
    client.close()


def sample(node: str, cpu_percent: float = 12.5) -> dict:
    return {
        "node": node,
        "ts": time.time(),
        "gpu_status": "ok",
        "host": {"cpu_percent": cpu_percent, "memory_total_bytes": 32 * 2**30},
        "gpus": [{"index": 0, "uuid": "GPU-0", "fan_percent": None}],
    }


def test_it_round_trips_the_latest_sample_of_each_node(client):
    first, second = sample("gpu-a"), sample("gpu-b")
    store_latest(first)
    store_latest(second)
    assert load_latest() == {"gpu-a": first, "gpu-b": second}


def test_a_newer_sample_replaces_the_older_one(client):
    store_latest(sample("gpu-a", cpu_percent=10.0))
    store_latest(sample("gpu-a", cpu_percent=90.0))
    assert load_latest()["gpu-a"]["host"]["cpu_percent"] == 90.0


def test_each_sample_expires_so_a_dead_node_drops_out(client):
    store_latest(sample("gpu-a"))
    assert 0 < client.ttl(KEY_PREFIX + "gpu-a") <= LATEST_TTL_S == 60

    store_latest(sample("gpu-dead"))
    client.pexpire(KEY_PREFIX + "gpu-dead", 1)  # as if its last tick was a minute ago
    time.sleep(0.02)
    assert set(load_latest()) == {"gpu-a"}


def test_it_reads_more_nodes_than_one_batch(client):
    for i in range(620):
        store_latest({"node": f"n{i:03d}", "ts": 1.0})
    latest = load_latest()
    assert len(latest) == 620
    assert latest["n619"] == {"node": "n619", "ts": 1.0}


def test_it_skips_an_unreadable_value(client):
    store_latest(sample("gpu-a"))
    client.set(KEY_PREFIX + "garbage", b"{not json", ex=60)
    assert set(load_latest()) == {"gpu-a"}


def test_it_ignores_a_sample_without_a_node_name(client):
    store_latest({"ts": 1.0, "host": {}})
    assert load_latest() == {}


def test_storing_never_raises_while_redis_is_down(client, settings):
    settings.REDIS_URL = closed_port_url()
    store_latest(sample("gpu-a"))  # logged, not raised: the sampler must keep sampling
    with pytest.raises(LatestUnavailable, match="cannot read the latest samples from Redis"):
        load_latest()


def test_an_outage_is_logged_once_not_every_tick(client, settings, caplog):
    store_latest(sample("gpu-a"))  # Redis up: no outage in progress
    caplog.clear()
    real_url = settings.REDIS_URL
    settings.REDIS_URL = closed_port_url()
    for _ in range(3):
        store_latest(sample("gpu-a"))
    settings.REDIS_URL = real_url
    store_latest(sample("gpu-a"))
    warnings = [r for r in caplog.records if r.name == "dashboard.latest" and r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "again" in caplog.records[-1].getMessage()
    assert set(load_latest()) == {"gpu-a"}
