"""Redis goes away and comes back: the sampler keeps sampling, the browser's socket stays,
and the samples taken meanwhile arrive as a backfill once Redis answers again."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers

from perfmon.private_redis import PrivateRedis
from tests.dashboard.live_client import (
    receive_until,
    running_sampler,
    watching_node,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis of this test's own, so stopping it disturbs nothing else."""
    redis = PrivateRedis(tmp_path / "redis").start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis.url], "prefix": "outage"},
        }
    }
    channel_layers.backends.clear()
    yield redis
    redis.stop()
    channel_layers.backends.clear()


async def test_samples_taken_while_redis_was_away_arrive_once_it_is_back(own_redis, settings):
    settings.NODE_NAME = "outage-node"
    communicator = await watching_node("outage-node", "dora")
    try:
        async with running_sampler(interval_s=0.2) as daemon:
            before = await receive_until(communicator, lambda m: m.get("type") == "sample")
            own_redis.stop()
            outage_started = time.time()
            await sync_to_async(time.sleep)(2.0)
            assert len(daemon.backlog) >= 5, "samples taken during the outage are kept"
            own_redis.start(port=own_redis.port)

            backfill = await receive_until(communicator, lambda m: m.get("type") == "backfill", timeout_s=30)
            after = await receive_until(communicator, lambda m: m.get("type") == "sample", timeout_s=10)
    finally:
        await communicator.disconnect()

    kept = [sample["ts"] for sample in backfill["samples"]]
    assert kept == sorted(kept) and kept[0] > before["ts"]
    assert any(ts > outage_started + 1.0 for ts in kept), "samples from inside the outage were kept"
    assert after["ts"] > kept[-1], "live samples resume after the backfill"
    assert not daemon.backlog
