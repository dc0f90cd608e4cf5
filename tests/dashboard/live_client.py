"""A WebSocket client for /ws/live that talks to the real ASGI app through the real channel layer."""

from __future__ import annotations

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
    """The first message for which predicate(message) is true; fails after timeout_s."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError("no matching message before the timeout")
        message = json.loads(await communicator.receive_from(timeout=remaining))
        if predicate(message):
            return message


async def subscribe(communicator: WebsocketCommunicator, topic: str) -> None:
    await communicator.send_to(text_data=json.dumps({"subscribe": topic}))
    await receive_until(communicator, lambda m: m.get("type") == "subscribed" and m.get("topic") == topic)
