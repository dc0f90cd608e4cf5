"""The /ws/live WebSocket against the real ASGI app and the real Redis channel layer."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import live
from dashboard.models import Node
from tests.dashboard.live_client import (
    communicator_for,
    receive_until,
    running_sampler,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged_in_client():
    user = get_user_model().objects.create_user("bob", password="builder-123")
    client = Client()
    client.force_login(user)
    return client


async def test_it_closes_the_socket_of_an_anonymous_user_with_4401():
    communicator = communicator_for()
    connected, _ = await communicator.connect()
    # Accepted first: a handshake refused before accept reaches the browser as HTTP 403 (code 1006).
    assert connected
    closing = await communicator.receive_output(timeout=5)
    assert closing["type"] == "websocket.close"
    assert closing["code"] == 4401
    assert "log in" in closing["reason"]


@pytest.mark.parametrize(
    "bad",
    [
        json.dumps({"subscribe": "job:\u00b2"}),  # a digit to str.isdigit(), not to int()
        json.dumps({"subscribe": "job:" + "7" * 5000}),  # past int()'s 4300-digit limit
        '{"subscribe": "node:\\ud800"}',  # a lone surrogate: valid JSON, not valid text
        '{"unsubscribe": "node:\\ud800"}',
        json.dumps({"subscribe": "node:" + "x" * 100_000}),
        "[" * 100_000 + "]" * 100_000,  # deeper than the JSON parser recurses
        "[" * 5_000 + "]" * 5_000,  # short enough to be parsed, still too deep
    ],
    ids=[
        "superscript-digit",
        "5000-digit-id",
        "lone-surrogate",
        "unsubscribe-surrogate",
        "long-topic",
        "100k-deep",
        "5k-deep",
    ],
)
async def test_hostile_messages_get_an_error_frame_and_the_connection_stays(logged_in_client, bad):
    communicator = communicator_for(logged_in_client)
    await communicator.connect()
    await communicator.send_to(text_data=bad)
    if "unsubscribe" in bad:
        await subscribe(communicator, "jobs")  # unsubscribing from nothing answers nothing
    else:
        reply = json.loads(await communicator.receive_from(timeout=5))
        assert reply["type"] == "error"
        assert len(reply["error"]) < 200, "the reply does not echo the whole message back"
        await subscribe(communicator, "jobs")
    await sync_to_async(live.push)("jobs", {"type": "job", "job": {"id": 2}})
    assert json.loads(await communicator.receive_from(timeout=5))["job"] == {"id": 2}
    await communicator.disconnect()


async def test_it_forwards_pushes_for_the_topics_a_user_subscribed_to(logged_in_client):
    communicator = communicator_for(logged_in_client)
    connected, _ = await communicator.connect()
    assert connected
    await subscribe(communicator, "node:gpu-a")

    await sync_to_async(live.push)("node:gpu-b", {"type": "sample", "node": "gpu-b"})
    await sync_to_async(live.push)(
        "node:gpu-a", {"type": "sample", "node": "gpu-a", "host": {"cpu_percent": 12.5}}
    )

    message = json.loads(await communicator.receive_from(timeout=5))
    assert message == {"type": "sample", "node": "gpu-a", "host": {"cpu_percent": 12.5}}, (
        "gpu-b was not subscribed"
    )
    await communicator.disconnect()


async def test_malformed_messages_get_an_error_and_the_connection_stays(logged_in_client):
    communicator = communicator_for(logged_in_client)
    await communicator.connect()
    for bad in [
        "not json",
        "[1, 2]",
        json.dumps({"subscribe": 42}),
        json.dumps({"subscribe": "job:abc"}),
        "{}",
    ]:
        await communicator.send_to(text_data=bad)
        reply = json.loads(await communicator.receive_from(timeout=5))
        assert reply["type"] == "error", bad
    await subscribe(communicator, "jobs")
    await sync_to_async(live.push)("jobs", {"type": "job", "job": {"id": 1}})
    assert json.loads(await communicator.receive_from(timeout=5))["job"] == {"id": 1}
    await communicator.disconnect()


async def test_the_sampler_daemon_feeds_the_browser_and_records_the_heartbeat(logged_in_client, settings):
    settings.NODE_NAME = "node/with odd name"
    communicator = communicator_for(logged_in_client)
    await communicator.connect()
    await subscribe(communicator, "node:node/with odd name")
    await subscribe(communicator, "nodes")
    async with running_sampler(interval_s=0.2):
        first = await receive_until(communicator, lambda m: m.get("type") == "sample")
        second = await receive_until(communicator, lambda m: m.get("type") == "sample")
        heartbeat = await receive_until(communicator, lambda m: m.get("type") == "heartbeat")
    assert first["node"] == "node/with odd name"
    # The node list's feed: just enough to tell the node is alive, not the whole sample.
    assert heartbeat == {
        "type": "heartbeat",
        "node": "node/with odd name",
        "ts": heartbeat["ts"],
        "interval_s": 0.2,
        "gpus": [],
    }
    assert second["ts"] > first["ts"]
    assert 0 <= first["host"]["cpu_percent"] <= 100
    assert 0 < first["host"]["memory_percent"] < 100
    assert first["gpu_status"].startswith("no GPU"), "this machine has no GPU and must say so"

    node = await sync_to_async(Node.objects.get)(name="node/with odd name")
    assert node.is_online
    assert node.info["cpu_count"] >= 1
    assert node.gpu_status.startswith("no GPU")
