"""A WebSocket client for /ws/live that talks to the real ASGI app through the real channel layer."""

from __future__ import annotations

import contextlib
import json

from channels.testing import WebsocketCommunicator
from django.conf import settings

from perfmon.asgi import application


def communicator_for(client=None) -> WebsocketCommunicator:
    """A communicator carrying the session cookie of a logged-in django.test.Client (or none)."""
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/live", headers=headers)


async def receive_until(communicator: WebsocketCommunicator, predicate, timeout_s: float = 10.0) -> dict:
    """The first message for which predicate(message) is true; fails after timeout_s.

    A coalesced {"type": "heartbeats"} frame is taken apart as the page's live-socket.js does: its
    beats count as messages of their own, in order."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = communicator.__dict__.setdefault("pending_beats", [])
    while True:
        while pending:
            message = pending.pop(0)
            if predicate(message):
                return message
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError("no matching message before the timeout")
        message = json.loads(await communicator.receive_from(timeout=remaining))
        if message.get("type") == "heartbeats" and not predicate(message):
            pending.extend(message["beats"])
            continue
        if predicate(message):
            return message


async def subscribe(communicator: WebsocketCommunicator, topic: str) -> None:
    await communicator.send_to(text_data=json.dumps({"subscribe": topic}))
    await receive_until(communicator, lambda m: m.get("type") == "subscribed" and m.get("topic") == topic)


async def watching_node(node: str, username: str) -> WebsocketCommunicator:
    """A connected socket of a fresh logged-in user, subscribed to a node's samples."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = await sync_to_async(get_user_model().objects.create_user)(username, password=f"pw-{username}-123")
    client = Client()
    await sync_to_async(client.force_login)(user)
    communicator = communicator_for(client)
    await communicator.connect()
    await subscribe(communicator, f"node:{node}")
    return communicator


@contextlib.asynccontextmanager
async def running_sampler(interval_s: float = 0.2):
    """The real sampler daemon in a thread for the duration of the block."""
    import threading

    from asgiref.sync import sync_to_async

    from dashboard.sampling import SamplerDaemon

    daemon = await sync_to_async(SamplerDaemon)(interval_s=interval_s)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    runner.start()
    try:
        yield daemon
    finally:
        stop.set()
        await sync_to_async(runner.join)(15)
