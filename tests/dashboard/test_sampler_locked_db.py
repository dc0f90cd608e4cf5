"""A locked database never stops the sampler: live samples keep flowing and history catches up."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async

from dashboard.history.query import series
from tests.dashboard.live_client import (
    receive_until,
    running_sampler,
    watching_node,
)
from tests.dashboard.test_history_writer import write_lock_held_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)


async def test_samples_keep_flowing_while_the_database_is_locked(settings):
    settings.NODE_NAME = "locked-node"
    communicator = await watching_node("locked-node", "frank")
    lock = write_lock_held_elsewhere()
    try:
        async with running_sampler(interval_s=0.2) as daemon:
            daemon.history.flush_every_s = 0.5  # try to write during the lock, not only after it
            await receive_until(communicator, lambda m: m.get("type") == "sample")
            await sync_to_async(lock.__enter__)()
            locked_at = time.time()
            received = []
            while time.time() - locked_at < 3.0:
                received.append(
                    await receive_until(communicator, lambda m: m.get("type") == "sample", timeout_s=5)
                )
            await sync_to_async(lock.__exit__)(None, None, None)
            unlocked_at = time.time()
            await sync_to_async(time.sleep)(1.0)
    finally:
        await communicator.disconnect()

    # 15 ticks in 3 s; ticks that wait on the lock are dropped, never more than a few.
    assert len(received) >= 8, f"only {len(received)} samples reached the browser during the lock"
    gaps = [b["ts"] - a["ts"] for a, b in zip(received, received[1:], strict=False)]
    assert max(gaps) < 1.5, f"the sampler stalled for {max(gaps):.1f} s"
    points = await sync_to_async(series)("locked-node", "host.cpu_percent", start=locked_at, end=unlocked_at)
    assert len(points["points"]) >= 8, "samples taken during the lock reached history afterwards"
