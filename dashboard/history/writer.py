"""Batched ingest of metric samples: buffer in memory, write every few seconds in one transaction.

The sampler calls ``add`` every tick (no database work) and ``maybe_flush`` after it. A flush
writes one small raw block per series (a single multi-row INSERT), and merges the samples into
the 1-minute and 1-hour rollups (one SELECT and one upsert): in the same transaction, or, with
``rollup_every_s``, the samples of that many seconds at once in a transaction of its own. When the
database is locked or away, the samples stay buffered (bounded) and go out with a later flush;
nothing here raises."""

from __future__ import annotations

import logging
import math
import threading
import time
from array import array
from collections.abc import Iterable
from contextlib import contextmanager

import numpy as np
from django.db import connection, transaction

from dashboard.history.bulk import insert_rows
from dashboard.history.codec import encode_sample_rows, encode_samples
from dashboard.history.rollup import merge_rollups
from dashboard.history.tiers import RAW_BLOCK_S
from dashboard.models import MetricSeries, Node, RawBlock
from dashboard.models.history import HOST_DEVICE

log = logging.getLogger(__name__)

SeriesKey = tuple[str, str, int]  # (node name, metric, gpu index or HOST_DEVICE)
Metrics = Iterable[tuple[str, "int | None", float]]

_METRIC_MAX_LEN = MetricSeries._meta.get_field("metric").max_length
_IN_CHUNK = 500


class HistoryWriter:
    """Buffers samples and writes them in batches.

    ``flush_every_s``: how often ``maybe_flush`` writes. ``max_buffered_s``: while writes fail, how
    far back (in sample time) the buffer reaches; older samples are dropped and counted in
    ``dropped``. ``max_buffered_values`` caps the buffer's size as well (16 bytes a value; the
    default holds 15 minutes of a node sending 2,000 values a second). ``lock_wait_s``: how long a
    flush waits for a database lock before giving up until the next flush, so that a busy database
    stalls the sampler for at most that long."""

    def __init__(
        self,
        flush_every_s: float = 10.0,
        max_buffered_s: float = 900.0,
        max_buffered_values: int = 2_000_000,
        lock_wait_s: float = 2.0,
        rollup_every_s: float | None = None,
    ) -> None:
        self.flush_every_s = flush_every_s
        self.max_buffered_s = max_buffered_s
        self.max_buffered_values = max_buffered_values
        self.lock_wait_s = lock_wait_s
        self.rollup_every_s = rollup_every_s
        self.dropped = 0  # values dropped because the buffer was full
        self.written = 0  # values written to the database
        self.failed_flushes = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._pending: dict[SeriesKey, tuple[array, array]] = {}
        self._buffered = 0
        self._oldest_ts = math.inf
        self._newest_ts = -math.inf
        self._last_attempt: float | None = None
        self._series_ids: dict[SeriesKey, int] = {}
        self._node_ids: dict[str, int] = {}
        self._rejected: set[SeriesKey] = set()
        self._reconnect = False
        # Samples written raw but not yet merged into the rollups (rollup_every_s): series id ->
        # [(epoch seconds, values), ...], and when they were last merged (monotonic seconds).
        self._unrolled: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._unrolled_values = 0
        self._rolled_at: float | None = None

    @property
    def buffered(self) -> int:
        """Values waiting to be written."""
        return self._buffered

    def add(self, node: str, ts: float, metrics: Metrics) -> None:
        """Buffer one tick of ``node`` at ``ts`` (epoch seconds): (metric, GPU index or None, value).

        ``None`` and non-finite values are skipped (a field the device does not support)."""
        try:
            ts = float(ts)
            added = 0
            with self._lock:
                pending = self._pending
                try:
                    for metric, gpu, value in metrics:
                        if value is None:
                            continue
                        value = float(value)
                        if not math.isfinite(value):
                            continue
                        key = (node, metric, HOST_DEVICE if gpu is None else gpu)
                        buf = pending.get(key)
                        if buf is None:
                            if not self._valid_key(key):
                                continue
                            buf = pending[key] = (array("d"), array("d"))
                        buf[0].append(ts)
                        buf[1].append(value)
                        added += 1
                finally:  # a tick that breaks halfway keeps what it had: count it
                    if added:
                        self._buffered += added
                        self._oldest_ts = min(self._oldest_ts, ts)
                        self._newest_ts = max(self._newest_ts, ts)
                        self._enforce_bound()
        except Exception:  # a malformed tick must not take the sampler down
            log.exception("history: could not buffer a sample of node %r", node)

    def maybe_flush(self, now: float | None = None) -> bool:
        """Flush if ``flush_every_s`` has passed since the last attempt (``now``: seconds on a steady
        clock, ``time.monotonic()`` by default). Returns False only when a flush was due and failed."""
        now = time.monotonic() if now is None else now
        if self._last_attempt is None:
            self._last_attempt = now
        if now - self._last_attempt < self.flush_every_s and self._buffered < self.max_buffered_values // 2:
            return True
        self._last_attempt = now
        return self.flush(now=now)

    def flush(self, *, final: bool = False, now: float | None = None) -> bool:
        """Write everything buffered now (``final``: and merge every sample into the rollups, as
        the sampler does on its way out). Returns whether it was written; on failure the samples
        stay buffered for the next flush."""
        try:
            return self._flush_raw()
        finally:
            self._maybe_roll_up(time.monotonic() if now is None else now, force=final)

    def _flush_raw(self) -> bool:
        with self._lock:
            batch, self._pending = self._pending, {}
            count, self._buffered = self._buffered, 0
            oldest, self._oldest_ts = self._oldest_ts, math.inf
            newest, self._newest_ts = self._newest_ts, -math.inf
        if not batch:
            return True
        try:
            self._write(batch)
        except Exception as exc:
            self.failed_flushes += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("history: could not write %d values, keeping them for the next flush: %s", count, exc)
            # The failure may have come from a row someone deleted (a node removed): look ids up again.
            self._series_ids.clear()
            self._node_ids.clear()
            self._reconnect = True
            self._restore(batch, count, oldest, newest)
            return False
        self.written += count
        self.last_error = None
        return True

    def write_now(self, batch: dict[SeriesKey, tuple[np.ndarray, np.ndarray]]) -> int:
        """Write ``batch`` ((node, metric, GPU index or HOST_DEVICE) -> (epoch seconds, values),
        finite values only) now, in one transaction, bypassing the buffer: for a request that must
        answer whether it was stored. Raises what the database raised; then nothing was written."""
        for key in batch:
            if not self._valid_key(key):
                raise ValueError(f"bad series {key!r}")
        try:
            self._write(batch)  # type: ignore[arg-type]  (numpy arrays serve as well as array("d"))
        except Exception:
            self._series_ids.clear()
            self._node_ids.clear()
            self._reconnect = True
            raise
        written = sum(len(ts) for ts, _ in batch.values())
        self.written += written
        return written

    # -- internals ---------------------------------------------------------------------------

    def _valid_key(self, key: SeriesKey) -> bool:
        if key in self._rejected:
            return False
        node, metric, gpu = key
        ok = (
            isinstance(node, str)
            and 0 < len(node) <= 200
            and isinstance(metric, str)
            and 0 < len(metric) <= _METRIC_MAX_LEN
            and isinstance(gpu, int)
            and HOST_DEVICE <= gpu < 32768
        )
        if not ok:
            self._rejected.add(key)  # warn once: the sampler sends the same bad key every tick
            log.warning("history: ignoring series %r (bad node, metric name or GPU index)", key)
        return ok

    def _enforce_bound(self) -> None:
        """Drop the oldest samples once the buffer spans more than ``max_buffered_s`` or holds more
        than ``max_buffered_values``. Trims 10% below the bound so that it runs rarely."""
        over_time = self._newest_ts - self._oldest_ts > self.max_buffered_s
        over_size = self._buffered > self.max_buffered_values
        if not (over_time or over_size):
            return
        cutoff = self._newest_ts - self.max_buffered_s * 0.9
        if over_size:
            all_ts = np.concatenate([np.frombuffer(ts, dtype=np.float64) for ts, _ in self._pending.values()])
            keep = int(self.max_buffered_values * 0.9)
            cutoff = max(cutoff, float(np.partition(all_ts, len(all_ts) - keep)[len(all_ts) - keep]))
            del all_ts
        removed = 0
        for key, (ts_buf, val_buf) in list(self._pending.items()):
            ts = np.frombuffer(ts_buf, dtype=np.float64)
            keep_mask = ts >= cutoff
            kept = int(keep_mask.sum())
            if kept == len(ts):
                continue
            removed += len(ts) - kept
            new_ts = array("d", ts[keep_mask].tobytes())
            new_val = array("d", np.frombuffer(val_buf, dtype=np.float64)[keep_mask].tobytes())
            del ts, keep_mask
            if kept:
                self._pending[key] = (new_ts, new_val)
            else:
                del self._pending[key]
        self._buffered -= removed
        self.dropped += removed
        self._oldest_ts = cutoff
        if removed:
            log.warning(
                "history: buffer full, dropped the %d oldest values (%d so far)", removed, self.dropped
            )

    def _restore(
        self, batch: dict[SeriesKey, tuple[array, array]], count: int, oldest: float, newest: float
    ) -> None:
        """Put a batch that failed back in front of what arrived since."""
        with self._lock:
            for key, (ts_buf, val_buf) in self._pending.items():
                if key in batch:
                    batch[key][0].extend(ts_buf)
                    batch[key][1].extend(val_buf)
                else:
                    batch[key] = (ts_buf, val_buf)
            self._pending = batch
            self._buffered += count
            self._oldest_ts = min(self._oldest_ts, oldest)
            self._newest_ts = max(self._newest_ts, newest)
            self._enforce_bound()

    def _write(self, batch: dict[SeriesKey, tuple[array, array]]) -> None:
        # Encode before taking any lock: the transaction then holds it only for the statements.
        prepared: dict[SeriesKey, tuple[np.ndarray, np.ndarray]] = {}
        for key, (ts_buf, val_buf) in batch.items():
            ts = np.array(ts_buf, dtype=np.float64)
            values = np.array(val_buf, dtype=np.float64)
            if len(ts) > 1 and np.any(ts[1:] < ts[:-1]):
                order = np.argsort(ts, kind="stable")
                ts, values = ts[order], values[order]
            prepared[key] = (ts, values)
        raw = _raw_blocks_of(prepared)

        if self._reconnect and not connection.in_atomic_block:
            # A connection broken by the failure stays broken until closed: start on a fresh one.
            connection.close()
        self._reconnect = False
        with self._transaction():
            ids = self._resolve_series(list(prepared))
            insert_rows(
                RawBlock,
                ["series", "block_start_s", "first_ts_ms", "last_ts_ms", "sample_count", "data"],
                [(ids[key], *block) for key, blocks in raw.items() for block in blocks],
            )
            if self.rollup_every_s is None:
                merge_rollups({ids[key]: arrays for key, arrays in prepared.items()})
        if self.rollup_every_s is not None:
            for key, arrays in prepared.items():
                self._unrolled.setdefault(ids[key], []).append(arrays)
                self._unrolled_values += len(arrays[0])

    @contextmanager
    def _transaction(self):
        """A transaction that waits at most ``lock_wait_s`` for a lock, then fails."""
        with short_lock_wait(self.lock_wait_s), transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # SET takes no bind parameters; the value is our own integer.
                    cursor.execute(f"SET LOCAL lock_timeout = '{int(self.lock_wait_s * 1000)}ms'")
            yield

    def _maybe_roll_up(self, now: float, force: bool = False) -> None:
        """Merge the samples written since the last merge into the rollups, when rollup_every_s
        has passed (or ``force``). On failure they are kept for the next try, up to
        max_buffered_values; beyond that they are given up (the raw samples still hold them)."""
        if not self._unrolled:
            return
        if self._rolled_at is None:
            self._rolled_at = now
        if not force and now - self._rolled_at < self.rollup_every_s:
            return
        self._rolled_at = now
        samples = {}
        for series_id, parts in self._unrolled.items():
            ts = np.concatenate([t for t, _ in parts]) if len(parts) > 1 else parts[0][0]
            values = np.concatenate([v for _, v in parts]) if len(parts) > 1 else parts[0][1]
            samples[series_id] = (ts, values)
        try:
            with self._transaction():
                merge_rollups(samples)
        except Exception as exc:
            self.failed_flushes += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._reconnect = True
            log.warning(
                "history: could not merge %d values into the rollups, trying again: %s",
                self._unrolled_values,
                exc,
            )
            if self._unrolled_values > self.max_buffered_values:
                self._unrolled, self._unrolled_values = {}, 0
                log.warning("history: rollups of the samples since the last merge given up; raw kept")
            return
        self._unrolled, self._unrolled_values = {}, 0

    def _resolve_series(self, keys: list[SeriesKey]) -> dict[SeriesKey, int]:
        """Series ids for these keys, creating the nodes and series not seen before (cached)."""
        missing = [k for k in keys if k not in self._series_ids]
        if missing:
            node_ids = self._resolve_nodes({node for node, _, _ in missing})
            by_id = {node_ids[node]: node for node, _, _ in missing}
            self._load_series(missing, by_id)
            still = [k for k in missing if k not in self._series_ids]
            if still:
                MetricSeries.objects.bulk_create(
                    [MetricSeries(node_id=node_ids[n], metric=m, gpu_index=g) for n, m, g in still],
                    ignore_conflicts=True,  # another writer may have created some meanwhile
                )
                self._load_series(still, by_id)
        return self._series_ids

    def _load_series(self, keys: list[SeriesKey], node_names: dict[int, str]) -> None:
        wanted = set(keys)
        metrics = sorted({m for _, m, _ in keys})
        rows = MetricSeries.objects.filter(node_id__in=list(node_names), metric__in=metrics).values_list(
            "id", "node_id", "metric", "gpu_index"
        )
        for series_id, node_id, metric, gpu in rows:
            key = (node_names[node_id], metric, gpu)
            if key in wanted:
                self._series_ids[key] = series_id

    def _resolve_nodes(self, names: set[str]) -> dict[str, int]:
        missing = sorted(names - self._node_ids.keys())
        if missing:
            found = dict(Node.objects.filter(name__in=missing).values_list("name", "id"))
            if len(found) < len(missing):
                Node.objects.bulk_create(
                    [Node(name=name) for name in missing if name not in found], ignore_conflicts=True
                )
                found = dict(Node.objects.filter(name__in=missing).values_list("name", "id"))
            self._node_ids.update(found)
        return self._node_ids


def _raw_blocks_of(
    prepared: dict[SeriesKey, tuple[np.ndarray, np.ndarray]],
) -> dict[SeriesKey, list[tuple[int, int, int, int, bytes]]]:
    """``_raw_blocks`` of every series. Series whose samples lie within one hour and count the same
    (a node's series after a flush: one sample of each a tick) are encoded together."""
    hour_ms = RAW_BLOCK_S * 1000
    out: dict[SeriesKey, list[tuple[int, int, int, int, bytes]]] = {}
    groups: dict[int, list[tuple[SeriesKey, np.ndarray, np.ndarray]]] = {}
    for key, (ts_s, values) in prepared.items():
        ts_ms = np.round(ts_s * 1000.0).astype(np.int64)
        if len(ts_ms) and int(ts_ms[0]) // hour_ms == int(ts_ms[-1]) // hour_ms:
            groups.setdefault(len(ts_ms), []).append((key, ts_ms, values))
        else:
            out[key] = _raw_blocks(ts_s, values)
    for count, members in groups.items():
        ts_rows = np.stack([ts_ms for _, ts_ms, _ in members])
        blobs = encode_sample_rows(ts_rows, np.stack([values for _, _, values in members]))
        firsts, lasts = ts_rows[:, 0].tolist(), ts_rows[:, -1].tolist()
        for i, (key, _, _) in enumerate(members):
            out[key] = [(firsts[i] // hour_ms * RAW_BLOCK_S, firsts[i], lasts[i], count, blobs[i])]
    return out


def _raw_blocks(ts_s: np.ndarray, values: np.ndarray) -> list[tuple[int, int, int, int, bytes]]:
    """(block_start_s, first_ts_ms, last_ts_ms, sample_count, data) of time-sorted samples, one
    block per hour they touch."""
    ts_ms = np.round(ts_s * 1000.0).astype(np.int64)
    hour_ms = RAW_BLOCK_S * 1000
    first_hour, last_hour = int(ts_ms[0]) // hour_ms, int(ts_ms[-1]) // hour_ms
    if first_hour == last_hour:  # the usual case: a flush's samples lie within one hour
        bounds = [(0, len(ts_ms))]
    else:
        cuts = np.flatnonzero(np.diff(ts_ms // hour_ms)) + 1
        bounds = list(zip([0, *cuts.tolist()], [*cuts.tolist(), len(ts_ms)], strict=True))
    return [
        (
            int(ts_ms[lo]) // hour_ms * RAW_BLOCK_S,
            int(ts_ms[lo]),
            int(ts_ms[hi - 1]),
            hi - lo,
            encode_samples(ts_ms[lo:hi], values[lo:hi]),
        )
        for lo, hi in bounds
    ]


@contextmanager
def short_lock_wait(wait_s: float):
    """On SQLite, wait at most ``wait_s`` for the write lock (settings say 20 s, right for a web
    request, too long for a sampler between two ticks); PostgreSQL uses SET LOCAL lock_timeout."""
    if connection.vendor != "sqlite":
        yield
        return
    normal_ms = int(float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5)) * 1000)
    if normal_ms <= wait_s * 1000:  # the sampler's connection waits this little already
        yield
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {normal_ms}")
        except Exception:  # the connection died: the next one starts with the normal timeout
            pass
