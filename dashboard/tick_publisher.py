"""One Redis round trip per sampler tick: the latest-sample store, the live pushes and the alert
rules' observations in one pipeline.

The sampler used to pay, every tick, for a SET through dashboard.latest and two ``group_send`` calls
through the channel layer, each its own round trip and the latter each a trip through an asyncio
event loop. With the channels_redis pub/sub layer (perfmon's), ``group_send`` is one ``PUBLISH`` of
the layer's serialised message on the group's channel, so the same messages can go out in a
pipeline, serialised by the layer itself, beside the SET: one write and one read on the socket.

Other layers (several Redis shards, sentinels, the in-memory layer) keep ``group_send``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard import resp_pipe
from dashboard.alerting.feed import (
    MAXLEN,
    STREAM,
    Point,
    count_published,
    entry_fields,
    publish_observations,
)
from dashboard.latest import LATEST_TTL_S, key_for, store_latest

Event = dict[str, Any]


class TickPublisher:
    """Sends a tick's Redis writes: ``send(latest, [(group, event), ...])`` raises on Redis trouble
    (down, or no answer within ``timeout_s``), and then nothing may have gone out."""

    def __init__(self, layer: Any, timeout_s: float, dumps: Callable[[dict], str] | None = None) -> None:
        self.layer = layer
        # The latest sample's JSON text (the sampler passes one that reuses text it made already).
        self._dumps = dumps or (lambda obj: json.dumps(obj, separators=(",", ":")))
        # The tick's commands in one send on one connection (see dashboard.resp_pipe).
        self._pipe: resp_pipe.RespPipe | None = None
        self._prefix = "asgi"
        # Whether the latest sample goes in the same pipeline (the layer's Redis is REDIS_URL's).
        self._latest_here = False
        address = _single_redis_address(layer)
        if address is not None:
            kwargs = {
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
                # No retries: a stalled Redis must cost one timeout, and the caller keeps the backlog.
                "retry": Retry(NoBackoff(), 0),
            }
            if isinstance(address, str):
                pool = redis.ConnectionPool.from_url(address, **kwargs)
            else:
                pool = redis.ConnectionPool(host=address[0], port=address[1], **kwargs)
            self._pipe = resp_pipe.RespPipe(pool)
            self._prefix = getattr(layer, "_kwargs", {}).get("prefix", "asgi")
            self._latest_here = address == settings.REDIS_URL

    @property
    def pipelined(self) -> bool:
        """True when each ``send`` is a single round trip."""
        return self._pipe is not None

    def send(
        self,
        latest: dict[str, Any] | None,
        messages: list[tuple[str, Event]],
        group_send=None,
        observations: list[Point] | None = None,
    ) -> list[int | None]:
        """Store ``latest`` (NodeSample JSON, or None), publish ``messages`` in order and append
        ``observations`` to the alert rules' stream (dashboard.alerting.feed). Returns, for each
        message, how many subscribers Redis delivered it to (web processes with a browser on the
        group), or None where the layer does not say.

        ``group_send(group, event)`` is used for the messages when the layer cannot be pipelined."""
        if self._pipe is None:
            if latest is not None:
                store_latest(latest)
            for group, event in messages:
                group_send(group, event)
            publish_observations(observations or [])
            return [None] * len(messages)
        return self._send_packed(latest, messages, observations)

    def _after_send(self, latest: dict[str, Any] | None, observations: list[Point] | None) -> None:
        if self._latest_here:
            count_published(observations)
        else:  # a channel layer on another Redis than REDIS_URL: a second trip
            if latest is not None:
                store_latest(latest)
            publish_observations(observations or [])

    def _send_packed(
        self,
        latest: dict[str, Any] | None,
        messages: list[tuple[str, Event]],
        observations: list[Point] | None,
    ) -> list[int | None]:
        assert self._pipe is not None
        commands = []
        if self._latest_here:
            if latest is not None:
                text = self._dumps(latest)
                commands.append(("SET", key_for(latest["node"]), text, "EX", LATEST_TTL_S))
            if observations:
                fields = entry_fields(observations)
                commands.append(
                    ("XADD", STREAM, "MAXLEN", "~", MAXLEN, "*", *(x for kv in fields.items() for x in kv))
                )
        for group, event in messages:
            commands.append(("PUBLISH", f"{self._prefix}__group__{group}", self.layer.serialize(event)))
        replies = self._pipe.execute(commands) if commands else []
        self._after_send(latest, observations)
        return _receivers(replies, messages)

    def ping(self, group_send=None) -> None:
        """Raises unless Redis answers."""
        if self._pipe is None:
            group_send("perfmon.probe", {"type": "probe"})
        else:
            self._pipe.execute([("PING",)])

    def close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()


def _receivers(replies: list, messages: list) -> list[int | None]:
    """The PUBLISH replies (the last ``len(messages)`` of a trip's): subscribers reached."""
    tail = replies[len(replies) - len(messages) :] if messages else []
    return [r if isinstance(r, int) else None for r in tail]


def _single_redis_address(layer: Any) -> str | tuple[str, int] | None:
    """The one Redis the channels_redis pub/sub layer publishes to, or None if it is not that layer
    on a single plain host (then the layer's own ``group_send`` must route the messages)."""
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from channels_redis.utils import decode_hosts

    if type(layer) is not RedisPubSubChannelLayer:
        return None
    kwargs = getattr(layer, "_kwargs", {})
    if getattr(layer, "_args", ()) or set(kwargs) - {"hosts", "prefix"}:
        return None  # options this module does not replicate (on_disconnect hooks, ...)
    hosts = decode_hosts(kwargs.get("hosts"))
    if len(hosts) != 1 or "master_name" in hosts[0]:
        return None
    host = hosts[0]
    if isinstance(host.get("address"), str):
        return host["address"]
    if "host" in host and "port" in host:
        return (host["host"], int(host["port"]))
    return None
