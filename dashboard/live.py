"""Channel-layer groups and the messages pushed through them to browsers.

Topics a browser can subscribe to over /ws/live:
  "node:<name>"  live samples of one node
  "job:<id>"     state and progress of one job
  "jobs"         every job's state changes (the jobs list)
  "nodes"        a small heartbeat of every node each tick (the node list, however many nodes),
                 sent to browsers coalesced: a frame a second of every beat (fleet_frames.py)
  "model:<id>"   a registered model's versions changing (validation verdicts, deletions)
  "alerts"       alert toasts (browser channels) and the firing-alert count; every page subscribes
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

_GROUP_SAFE = re.compile(r"[^a-zA-Z0-9\-_.]")
# A push is best effort: a browser that misses one catches up from the database on its next page or
# push, whereas a push that waits on a stalled Redis would hold a request or fail a benchmark.
PUSH_TIMEOUT_S = 2.0
# Log an outage once when it starts, not once per push.
_push_failing = False


def group_for_topic(topic: str) -> str | None:
    """The channel-layer group of a topic, or None if the topic is not one we serve.

    Group names allow only ASCII letters, digits, '-', '_' and '.', under 100 characters; node
    names may hold anything, so unsafe names are replaced and disambiguated with a short hash."""
    kind, _, rest = topic.partition(":")
    if topic in ("jobs", "nodes", "alerts"):
        return topic
    # isdigit() takes "²", which int() refuses, and int() refuses ids past 4300 digits: both
    # raised inside the consumer and dropped the socket. Job ids are short ASCII numbers.
    if kind == "job" and rest.isascii() and rest.isdecimal() and len(rest) <= 18:
        return f"job.{int(rest)}"
    if kind == "model" and rest.isdigit():
        return f"model.{int(rest)}"
    if kind == "node" and rest:
        safe = _GROUP_SAFE.sub("_", rest)[:60]
        if safe != rest:
            safe += "." + hashlib.sha1(rest.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        return f"node.{safe}"
    return None


def push_event(payload: dict) -> dict:
    """The channel-layer event that carries payload to browsers.

    The JSON text is made once here rather than by each of the (possibly hundreds of) consumers."""
    return push_text(json.dumps(payload, separators=(",", ":")))


def push_text(text: str) -> dict:
    """The channel-layer event that carries a payload's JSON ``text`` to browsers."""
    return {"type": "push", "text": text}


def push(topic: str, payload: dict) -> bool:
    """Send a JSON payload to every browser subscribed to topic (from synchronous code).

    Best effort: gives up after PUSH_TIMEOUT_S and never raises for Redis trouble; returns whether
    the push went out."""
    global _push_failing
    group = group_for_topic(topic)
    assert group is not None, topic
    try:
        async_to_sync(_send_bounded)(group, push_event(payload))
    except Exception as exc:  # Redis down, stalled or restarting: the measurement goes on
        if not _push_failing:
            log.warning(
                "live push to %s failed (%s: %s); carrying on without it", topic, type(exc).__name__, exc
            )
        _push_failing = True
        return False
    if _push_failing:
        log.info("live pushes go out again")
        _push_failing = False
    return True


async def _send_bounded(group: str, event: dict) -> None:
    await asyncio.wait_for(get_channel_layer().group_send(group, event), timeout=PUSH_TIMEOUT_S)


def push_job(job) -> None:
    # The summary, not the full result: raw times (up to 10,000 per batch size) stay out of pushes.
    payload = {"type": "job", "job": job.summary_json()}
    push(f"job:{job.pk}", payload)
    push("jobs", payload)
