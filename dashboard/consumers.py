"""One WebSocket per page at /ws/live; the page subscribes to the topics it shows (see live.py).

Client -> server: {"subscribe": "<topic>"} or {"unsubscribe": "<topic>"}.
Server -> client: {"type": "sample", ...}, {"type": "job", "job": {...}}, {"type": "error", "error": "..."}."""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard.fleet_frames import GROUP as FLEET_GROUP
from dashboard.fleet_frames import fleet_frames
from dashboard.live import group_for_topic
from dashboard.permissions import can_see_command_lines, redact_commands

# 4401 mirrors HTTP 401: the browser's close event tells the page to send the user to log in.
CLOSE_UNAUTHENTICATED = 4401
MAX_SUBSCRIPTIONS = 32
# Pages send only short subscribe messages; anything longer is refused before it is parsed.
MAX_MESSAGE_CHARS = 16 * 1024
MAX_TOPIC_CHARS = 200


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accepting makes the server refuse the handshake with HTTP 403, and the
            # browser then sees only code 1006. Accepting first lets the page read 4401.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="authentication required: log in")
            return
        self.groups_joined: set[str] = set()
        self.sees_commands = await sync_to_async(can_see_command_lines)(user)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", ()):
            await self._leave(group)

    async def _join(self, group: str) -> None:
        # The fleet's heartbeats come coalesced, a frame a second, from the process's one listener.
        if group == FLEET_GROUP:
            await fleet_frames().watch(self)
        else:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _leave(self, group: str) -> None:
        if group == FLEET_GROUP:
            fleet_frames().unwatch(self)
        else:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # A malformed message is answered with an error and otherwise ignored: the page keeps its feed.
        text = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(text) > MAX_MESSAGE_CHARS:
            await self._error(f"message too long ({len(text)} characters; at most {MAX_MESSAGE_CHARS})")
            return
        try:
            message = json.loads(text)
        except RecursionError:
            await self._error("message nested too deeply: send a flat JSON object")
            return
        except ValueError:
            await self._error("messages must be JSON objects")
            return
        if not isinstance(message, dict):
            await self._error("messages must be JSON objects")
            return
        if "subscribe" in message:
            await self._subscribe(message["subscribe"])
        elif "unsubscribe" in message:
            group = self._group(message["unsubscribe"])
            if group in self.groups_joined:
                self.groups_joined.discard(group)
                await self._leave(group)
        else:
            await self._error('expected {"subscribe": topic} or {"unsubscribe": topic}')

    @staticmethod
    def _group(topic: object) -> str | None:
        """The group of a topic sent by a browser, or None for anything we do not serve."""
        if not isinstance(topic, str) or len(topic) > MAX_TOPIC_CHARS:
            return None
        try:
            topic.encode("utf-8")  # a lone surrogate ("\ud800") is valid JSON but not text
        except UnicodeEncodeError:
            return None
        return group_for_topic(topic)

    async def _subscribe(self, topic: object) -> None:
        group = self._group(topic)
        if group is None:
            shown = repr(topic) if len(repr(topic)) <= 80 else repr(topic)[:77] + "..."
            await self._error(
                f"unknown topic {shown}: use node:<name>, job:<id>, model:<id>, jobs, nodes or alerts"
            )
            return
        if group not in self.groups_joined and len(self.groups_joined) >= MAX_SUBSCRIPTIONS:
            await self._error(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
            return
        if group not in self.groups_joined:
            self.groups_joined.add(group)
            await self._join(group)
        await self.send(text_data=json.dumps({"type": "subscribed", "topic": topic}))

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before every message, a thread hop each
        # time; pushes never touch the database, and at hundreds of watchers that hop was a third
        # of the server's CPU (bench/ws_fanout.py). Other messages keep the default.
        if message["type"] == "push":
            text = message["text"]
            await self.send(text_data=text if self.sees_commands else redact_commands(text))
            return
        await super().dispatch(message)

    async def _error(self, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "error": message}))
