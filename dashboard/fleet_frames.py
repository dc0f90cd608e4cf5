"""The "nodes" topic (the fleet overview and the node list), coalesced: one frame a second per
browser, however many nodes beat.

Each node's sampler publishes a small heartbeat every tick to the "nodes" group. Sent on to every
browser one by one, 350 overviews of an 11-node fleet are 3,850 WebSocket frames a second, nearly
all of the web tier's fan-out (bench/load.py). Here one listener per web process (per event loop)
is the group's only member; it gathers the heartbeats that arrive in FRAME_INTERVAL_S and sends
each watching browser one frame {"type": "heartbeats", "beats": [heartbeat, ...]}, oldest first.
The page's live-socket.js hands each beat to its handlers as if it had come alone.

Best effort like every push: a browser whose previous frame is still being written is skipped
(its next frame carries the nodes' next beats)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque

from channels.layers import get_channel_layer

from dashboard.permissions import redact_commands

log = logging.getLogger(__name__)

GROUP = "nodes"
FRAME_INTERVAL_S = 1.0
# A frame's beats: a second of a 1,000-node fleet at 1 Hz; beyond that the oldest are dropped.
MAX_BEATS = 1000

_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FleetFrames] = weakref.WeakKeyDictionary()


def fleet_frames() -> FleetFrames:
    """This event loop's listener (a web process has one loop; tests have one per test)."""
    loop = asyncio.get_running_loop()
    if loop not in _by_loop:
        _by_loop[loop] = FleetFrames()
    return _by_loop[loop]


def frame_text(beat_texts) -> str:
    """The coalesced frame, made from the heartbeats' JSON texts without parsing them again."""
    return '{"type":"heartbeats","beats":[' + ",".join(beat_texts) + "]}"


class FleetFrames:
    def __init__(self) -> None:
        self.watchers: set = set()
        self.beats: deque[str] = deque(maxlen=MAX_BEATS)
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._sending: dict = {}

    async def watch(self, consumer) -> None:
        """Returns once the listener is in the group, so beats sent from then on reach consumer;
        raises as group_add would (Redis away)."""
        self.watchers.add(consumer)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.ensure_future(self._run(self._ready))
        task, ready = self._task, self._ready
        if ready.is_set():
            return
        waiting = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not ready.is_set():
            self.watchers.discard(consumer)
            task.result()  # the listener could not join the group: its error is the consumer's

    def unwatch(self, consumer) -> None:
        self.watchers.discard(consumer)
        self._sending.pop(consumer, None)
        if not self.watchers and self._task is not None:
            # Nobody watches: leave the group rather than receive beats for no one.
            self._task.cancel()
            self._task = None
            self.beats.clear()

    async def _run(self, ready: asyncio.Event) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel(prefix="fleet-frames.")
        await layer.group_add(GROUP, channel)
        ready.set()
        receiving = asyncio.ensure_future(self._receive(layer, channel))
        try:
            while True:
                await asyncio.sleep(FRAME_INTERVAL_S)
                self.flush()
        finally:
            receiving.cancel()
            # Redis away or the loop closing: the subscription goes with them.
            with contextlib.suppress(Exception):
                await layer.group_discard(GROUP, channel)

    async def _receive(self, layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the layer resubscribes when it is back
                log.warning("fleet frames: receive failed (%s: %s)", type(exc).__name__, exc)
                await asyncio.sleep(1)
                continue
            if message.get("type") == "push":
                self.beats.append(message["text"])

    def flush(self) -> None:
        """One frame of the beats gathered since the last, to every watcher not still busy."""
        if not self.beats or not self.watchers:
            return
        text = frame_text(self.beats)
        self.beats.clear()
        # Beats carry no command lines today; should one ever, viewers still never see it, as with
        # every other push (consumers.py). Costs one substring search per frame.
        for_viewers = redact_commands(text)
        for consumer in list(self.watchers):
            busy = self._sending.get(consumer)
            if busy is not None and not busy.done():
                continue
            shown = text if getattr(consumer, "sees_commands", False) else for_viewers
            task = asyncio.ensure_future(consumer.send(text_data=shown))
            task.add_done_callback(_consume_exception)
            self._sending[consumer] = task


def _consume_exception(task: asyncio.Task) -> None:
    # A browser gone mid-send: its disconnect unwatches it; nothing to report here.
    if not task.cancelled():
        task.exception()
