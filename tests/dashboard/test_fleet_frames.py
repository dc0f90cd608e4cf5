"""The "nodes" topic coalesced: the fleet's heartbeats reach each watching browser as one frame per
FRAME_INTERVAL_S through one listener per process (real ASGI app, real Redis channel layer)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import fleet_frames, live
from tests.dashboard.live_client import communicator_for, receive_until, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged_in_client():
    user = get_user_model().objects.create_user("fleet-watcher", password="builder-123")
    client = Client()
    client.force_login(user)
    return client


def beat(node: str, ts: float) -> dict:
    return {
        "type": "heartbeat",
        "node": node,
        "ts": ts,
        "interval_s": 1.0,
        "gpus": [[0, 50.0, 1, 2, 40, 100.0]],
    }


async def connected(client, *topics: str):
    communicator = communicator_for(client)
    await communicator.connect()
    for topic in topics:
        await subscribe(communicator, topic)
    return communicator


def test_a_frame_is_the_beats_texts_joined_as_they_came():
    texts = [json.dumps(beat("a", 1.0)), json.dumps(beat("b", 2.0))]
    assert json.loads(fleet_frames.frame_text(texts)) == {
        "type": "heartbeats",
        "beats": [beat("a", 1.0), beat("b", 2.0)],
    }


async def test_the_beats_of_many_nodes_come_as_one_frame_to_each_watcher(logged_in_client):
    first = await connected(logged_in_client, "nodes")
    second = await connected(logged_in_client, "nodes")
    node_page = await connected(logged_in_client, "node:n-1")
    frames = fleet_frames.fleet_frames()
    assert frames.watchers and frames._task is not None
    # Pushed right after the subscriptions were confirmed: the listener is already in the group.
    for n in range(1, 6):
        await sync_to_async(live.push)("nodes", beat(f"n-{n}", 100.0 + n))
    for communicator in (first, second):
        frames_seen, beats = 0, []
        while len(beats) < 5:
            frame = json.loads(await communicator.receive_from(timeout=10))
            assert frame["type"] == "heartbeats"
            frames_seen += 1
            beats += frame["beats"]
        assert beats == [beat(f"n-{n}", 100.0 + n) for n in range(1, 6)]
        # One frame, or two where the pushes straddled a flush: never a frame per beat.
        assert frames_seen <= 2
    # A node page's socket is not a fleet watcher.
    assert await node_page.receive_nothing(timeout=fleet_frames.FRAME_INTERVAL_S + 0.5)
    for communicator in (first, second, node_page):
        await communicator.disconnect()
    # Nobody watching: the listener has left the group.
    assert not frames.watchers
    assert frames._task is None


async def test_an_unsubscribed_socket_gets_no_more_frames(logged_in_client):
    watching = await connected(logged_in_client, "nodes")
    leaving = await connected(logged_in_client, "nodes")
    await leaving.send_to(text_data=json.dumps({"unsubscribe": "nodes"}))
    await asyncio.sleep(0.2)  # the unsubscribe has no reply; let it land
    await sync_to_async(live.push)("nodes", beat("n-1", 1.0))
    assert (await receive_until(watching, lambda m: m.get("type") == "heartbeat"))["node"] == "n-1"
    assert await leaving.receive_nothing(timeout=fleet_frames.FRAME_INTERVAL_S + 0.5)
    await watching.disconnect()
    await leaving.disconnect()


async def test_subscribing_twice_watches_once(logged_in_client):
    communicator = await connected(logged_in_client, "nodes", "nodes")
    await sync_to_async(live.push)("nodes", beat("n-1", 1.0))
    frame = json.loads(await communicator.receive_from(timeout=10))
    assert frame["beats"] == [beat("n-1", 1.0)]  # once, not once per subscription
    assert await communicator.receive_nothing(timeout=fleet_frames.FRAME_INTERVAL_S + 0.5)
    await communicator.disconnect()
    assert not fleet_frames.fleet_frames().watchers


async def test_a_viewer_never_sees_a_command_line_a_beat_might_carry():
    class Socket:
        def __init__(self, sees_commands: bool) -> None:
            self.sees_commands, self.sent = sees_commands, []

        async def send(self, text_data: str) -> None:
            self.sent.append(json.loads(text_data))

    frames, operator, viewer = fleet_frames.FleetFrames(), Socket(True), Socket(False)
    frames.watchers.update({operator, viewer})
    frames.beats.append(
        json.dumps({**beat("a", 1.0), "processes": [{"pid": 1, "command": "x --token=s3cret"}]})
    )
    frames.flush()
    await asyncio.sleep(0)  # the sends run as tasks
    assert operator.sent[0]["beats"][0]["processes"][0]["command"] == "x --token=s3cret"
    assert "s3cret" not in json.dumps(viewer.sent)
