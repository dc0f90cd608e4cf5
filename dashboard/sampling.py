"""The sampler daemon's Django side: registers this node, pushes each sample to the browsers
subscribed to it through the Redis channel layer, and records the heartbeat.

The sampling itself is the engine's (workers.sampler); this module only translates.
The tick never waits on Redis or the database: it hands each sample to two threads, one that
writes history and the heartbeat (database only) and one that publishes (Redis only, every call
bounded by a timeout). Redis going away never stops sampling: unsent samples wait in a bounded
backlog (15 minutes) and reach the browsers as one "backfill" when Redis answers again."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection

from dashboard.alerting.feed import count_dropped, sample_points
from dashboard.history.writer import HistoryWriter, short_lock_wait
from dashboard.live import group_for_topic, push_event, push_text
from dashboard.models import Node
from dashboard.sample_json import SampleJson
from dashboard.tick_publisher import TickPublisher
from workers.sampler.fake_nvml import simulate_gpus
from workers.sampler.loop import Sampler
from workers.sampler.node_info import describe_node
from workers.sampler.sample import NodeSample, for_browsers

log = logging.getLogger(__name__)

# Static facts (GPUs, driver, torch) change rarely; re-describe the node this often.
REDESCRIBE_EVERY_S = 60.0
BACKLOG_S = 15 * 60.0
# Backfill goes out in slices so no single channel-layer message grows past a few hundred kB.
BACKFILL_SLICE = 30
# When Redis answers again, the web servers' subscriptions come back over the next second or two;
# Redis pub/sub delivers only to current subscribers, so a backfill sent sooner would reach nobody.
RESUBSCRIBE_GRACE_S = 3.0
PROBE_GROUP = "perfmon.probe"
# One channel-layer send may take this long before the publisher counts Redis as away.
SEND_TIMEOUT_S = 2.0
# The database heartbeat (Node.last_seen) and history intake run every this many ticks, not every
# tick. Node.offline_after_s is 3 ticks + 1 s; a beat every 2 ticks, of the newest sample then
# taken (at most a tick old), leaves last_seen at most 3 ticks old: a live node never reads
# offline, a stopped one still does within 3 ticks + 1 s of its last beat, and the database
# takes half the writes.
BEAT_EVERY_TICKS = 2
# History's raw samples are written every 10 s; their merge into the 1-minute and 1-hour rollups,
# a read and an upsert of every series' open blocks, once a minute: it was a third of the daemon's
# database time. Charts at those resolutions (spans of hours) show the last minute a minute late.
ROLLUP_EVERY_S = 60.0


def fleet_tuples(gpus) -> list[list]:
    """Each GPU of a sample as [index, util %, memory used bytes, memory total bytes, temperature °C,
    power W], None where unread: the fleet overview's tiles from the "nodes" heartbeat. Positional
    so that 10 nodes x 8 GPUs stay a few kB a tick; MIG devices are left to the node page."""
    rows = []
    for gpu in gpus:
        if gpu.get("is_mig_device"):
            continue
        power_w = gpu.get("power_draw_w")
        rows.append(
            [
                gpu.get("index"),
                gpu.get("utilization_gpu_percent"),
                gpu.get("memory_used_bytes"),
                gpu.get("memory_total_bytes"),
                gpu.get("temperature_c"),
                None if power_w is None else round(power_w, 1),
            ]
        )
    return rows


class SamplerDaemon:
    """Samples this node every ``interval_s`` and hands each sample to two threads.

    ``sampler-redis`` sends each tick in one Redis round trip (the latest-sample store and the live
    pushes, see dashboard.tick_publisher). ``sampler-db`` wakes every BEAT_EVERY_TICKS ticks, hands
    the samples taken meanwhile to the history writer (which writes them in batches) and records
    the heartbeat once for them. ``clock`` (monotonic seconds) times those batches; tests move it."""

    def __init__(
        self,
        node_name: str | None = None,
        interval_s: float | None = None,
        demo_gpus: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_name = node_name or settings.NODE_NAME
        self.interval_s = interval_s or settings.SAMPLE_INTERVAL_S
        demo_gpus = settings.DEMO_GPUS if demo_gpus is None else demo_gpus
        if demo_gpus:
            simulate_gpus(demo_gpus)  # before the Sampler opens NVML
            log.info("node %r samples %d simulated GPUs (--demo-gpus), not NVML", self.node_name, demo_gpus)
        self.sampler = Sampler(self.node_name)
        self.group = group_for_topic(f"node:{self.node_name}")
        self.layer = get_channel_layer()
        # Encodes each tick's two texts (push and latest sample), used from the publisher thread only.
        self._json = SampleJson()
        self.publisher = TickPublisher(self.layer, SEND_TIMEOUT_S, dumps=self._json.dumps)
        # Only for a channel layer that cannot be pipelined: one event loop for the daemon's life,
        # since the channel layer keeps its Redis connections per loop.
        self.loop = None if self.publisher.pipelined else asyncio.new_event_loop()
        self.backlog: deque[dict] = deque(maxlen=max(1, int(BACKLOG_S / self.interval_s)))
        # History goes straight to the database in batches; it buffers through database outages
        # itself, so a Redis outage loses nothing from history either.
        self.history = HistoryWriter(rollup_every_s=ROLLUP_EVERY_S)
        self.beat_every_s = BEAT_EVERY_TICKS * self.interval_s
        self.beats = 0  # heartbeats written (tests count them)
        self._clock = clock
        # The database is written from a thread of its own: a lock held elsewhere may delay the
        # heartbeat and history, never the next sample.
        self._to_record: queue.SimpleQueue[NodeSample] = queue.SimpleQueue()
        # Samples for the publisher thread; bounded like the backlog it feeds, oldest dropped first.
        # Each tick's JSON and its points for the alert rules.
        self._to_publish: deque[tuple[dict, list]] = deque(maxlen=self.backlog.maxlen)
        self._publish_wakeup = threading.Event()
        self._described_at = float("-inf")
        self._redis_back_since: float | None = None
        self._touch_sql: str | None = None
        self._reconnect = False

    def run(self, stop: threading.Event) -> None:
        log.info(
            "sampler for node %r every %.2f s; GPUs: %s",
            self.node_name,
            self.interval_s,
            self.sampler.gpu_status,
        )
        recorder = threading.Thread(target=self._record_loop, args=(stop,), name="sampler-db", daemon=True)
        publisher = threading.Thread(
            target=self._publish_loop, args=(stop,), name="sampler-redis", daemon=True
        )
        recorder.start()
        publisher.start()
        try:
            self.sampler.run(self.publish, stop, self.interval_s)
        finally:
            stop.set()
            self._publish_wakeup.set()
            recorder.join(timeout=30)
            # A publisher stuck on a stalled Redis is a daemon thread: it must not delay the exit.
            publisher.join(timeout=SEND_TIMEOUT_S * 3)
            if not publisher.is_alive():
                self.publisher.close()
                if self.loop is not None:
                    self.loop.close()

    def publish(self, sample: NodeSample) -> None:
        """Called by the tick: hands the sample over and returns at once."""
        self._to_record.put(sample)
        self._to_publish.append((sample.to_json(), sample_points(sample)))
        self._publish_wakeup.set()

    def _publish_loop(self, stop: threading.Event) -> None:
        """Latest sample and live pushes to Redis, in order, until stopped."""
        while not stop.is_set():
            self._publish_wakeup.wait(timeout=self.interval_s)
            self._publish_wakeup.clear()
            while self._to_publish and not stop.is_set():
                latest, points = self._to_publish.popleft()
                # Only the newest is worth storing as "latest"; whole: /metrics reads filesystems and
                # per-CPU times from it.
                self.push_live(
                    {"type": "sample", **for_browsers(latest)},
                    None if self._to_publish else latest,
                    observations=points,  # to the alert rules, in the same round trip
                )

    def _record_loop(self, stop: threading.Event) -> None:
        """Heartbeat and history from the samples the loop hands over, every BEAT_EVERY_TICKS ticks,
        until stopped and drained."""
        try:
            # The first sample at once: the node registers (and shows online) on its first tick.
            first = None
            while first is None and not stop.is_set():
                try:
                    first = self._to_record.get(timeout=self.interval_s)
                except queue.Empty:
                    continue
            stopping = stop.is_set()
            # Wake on a fixed schedule, so that a slow write (a locked database) does not push
            # every later beat back.
            due = time.monotonic()
            while True:
                samples = [] if first is None else [first]
                first = None
                while not self._to_record.empty():
                    samples.append(self._to_record.get_nowait())
                self.record(samples)
                if stopping:
                    break
                due = max(due + self.beat_every_s, time.monotonic())
                stopping = stop.wait(due - time.monotonic())
            self.history.flush(final=True)
        finally:
            connection.close()

    def record(self, samples: list[NodeSample]) -> None:
        """Hand ``samples`` (oldest first) to history, record one heartbeat for the newest and flush
        history when its period is due."""
        for sample in samples:
            self.history.add(self.node_name, sample.ts, sample.metrics())
        if samples:
            self.record_heartbeat(samples[-1])
        self.history.maybe_flush(self._clock())

    def push_live(self, payload: dict, latest: dict | None = None, observations: list | None = None) -> None:
        """Publish one sample (and the fleet heartbeat), after any backlog, in one round trip; and
        store ``latest`` as the node's latest sample and append ``observations`` to the alert rules'
        stream in the same trip. While Redis is away the observations are dropped (counted): rules
        see that as no data, and the history keeps every sample."""
        try:
            if self.backlog and not self._ready_to_flush():
                self.backlog.append(payload)  # still waiting: keep the browsers' order intact
                count_dropped(observations)
                return
            messages = []
            for start in range(0, len(self.backlog), BACKFILL_SLICE):
                chunk = [
                    self.backlog[i] for i in range(start, min(start + BACKFILL_SLICE, len(self.backlog)))
                ]
                messages.append(
                    (self.group, push_event({"type": "backfill", "node": self.node_name, "samples": chunk}))
                )
            heartbeat = {
                "type": "heartbeat",
                "node": self.node_name,
                "ts": payload["ts"],
                "interval_s": self.interval_s,
                "gpus": fleet_tuples(payload.get("gpus") or ()),
            }
            messages.append((self.group, push_text(self._json.dumps(payload))))
            messages.append(("nodes", push_event(heartbeat)))
            reached = self.publisher.send(latest, messages, group_send=self._send, observations=observations)
            self.backlog.clear()
            # The sample's PUBLISH says how many web processes have this node's page open; with none,
            # the top-processes table goes nowhere, so the sampler scans processes rarely.
            watchers = reached[-2] if reached and len(reached) >= 2 else None
            self.sampler.processes_watched = watchers is None or watchers > 0
        except Exception as exc:  # Redis away: keep the sample for later, keep sampling
            if not self.backlog:
                log.warning("cannot reach Redis (%s); keeping samples until it answers", exc)
            self._redis_back_since = None
            self.backlog.append(payload)
            count_dropped(observations)

    def _ready_to_flush(self) -> bool:
        """True once Redis has answered for RESUBSCRIBE_GRACE_S; raises while it does not answer."""
        self.publisher.ping(group_send=self._send)
        now = time.monotonic()
        if self._redis_back_since is None:
            self._redis_back_since = now
            log.info("Redis answers again; backfilling %d samples shortly", len(self.backlog))
        return now - self._redis_back_since >= RESUBSCRIBE_GRACE_S

    def _send(self, group: str, event: dict) -> None:
        """One channel-layer ``group_send`` (layers that cannot be pipelined); a stalled Redis
        raises TimeoutError after SEND_TIMEOUT_S."""
        assert self.loop is not None
        self.loop.run_until_complete(
            asyncio.wait_for(self.layer.group_send(group, event), timeout=SEND_TIMEOUT_S)
        )

    def record_heartbeat(self, sample: NodeSample) -> None:
        if self._reconnect:
            close_old_connections()  # drop a connection the database closed, instead of failing forever
        try:
            # A locked database must not hold up history for long: give up as a history flush does.
            with short_lock_wait(self.history.lock_wait_s):
                self._beat(sample)
            self.beats += 1
            self._reconnect = False
        except Exception as exc:  # database locked or away: the next beat tries again
            log.warning("could not record the heartbeat: %s", exc)
            self._reconnect = True

    def _beat(self, sample: NodeSample) -> None:
        # The time of the newest sample, not of the write: what "last seen" means.
        seen = datetime.fromtimestamp(sample.ts, tz=UTC)
        stale = time.monotonic() - self._described_at > REDESCRIBE_EVERY_S
        # A node deleted in the admin while its sampler runs comes back on the next beat.
        if stale or not self._touch(seen, sample.gpu_status):
            self._register(sample, seen)

    def _touch(self, seen: datetime, gpu_status: str) -> bool:
        """``Node.objects.filter(name=...).update(last_seen=..., gpu_status=...)`` as one prepared
        statement: the ORM's query building was most of a beat's CPU. Returns whether the row exists."""
        if self._touch_sql is None:
            ops, meta = connection.ops, Node._meta
            self._touch_sql = (
                f"UPDATE {ops.quote_name(meta.db_table)} SET {ops.quote_name(meta.get_field('last_seen').column)} = %s, "
                f"{ops.quote_name(meta.get_field('gpu_status').column)} = %s "
                f"WHERE {ops.quote_name(meta.get_field('name').column)} = %s"
            )
        with connection.cursor() as cursor:
            cursor.execute(
                self._touch_sql, [connection.ops.adapt_datetimefield_value(seen), gpu_status, self.node_name]
            )
            return cursor.rowcount > 0

    def _register(self, sample: NodeSample, now) -> None:
        info = describe_node(self.node_name, self.sampler.nvml, sample.gpu_status)
        info["sample_interval_s"] = self.interval_s
        Node.objects.update_or_create(
            name=self.node_name, defaults={"info": info, "gpu_status": sample.gpu_status, "last_seen": now}
        )
        self._described_at = time.monotonic()
