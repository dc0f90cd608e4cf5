"""Binary encodings of metric history: raw samples and rollup buckets, packed many to a row.

A row per value costs 50 to 100 bytes on disk; packing a series' samples into one blob per hour
brings that to a few bytes a sample (about 3 to 5 on sensor-like data, see bench/history.py).

Raw samples (``encode_samples``): timestamps in integer milliseconds, delta-of-delta coded and
zigzagged (a steady 1 Hz sampler gives near-zero values); values as float32 (7 significant digits:
exact for integers below 2**24, about 4 KiB granularity on 80 GB memory readings), XORed with the
previous value as Gorilla does. Both are byte-shuffled (as Blosc does) so that the constant high
bytes sit together, then zlib-compressed.

Rollup buckets (``encode_buckets``): a fixed number of slots (60 minutes of an hour, 24 hours of
a day), each holding count, sum, min and max; an empty slot has count 0."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

_SAMPLES_V1 = 1
_BUCKETS_V1 = 1
_SAMPLES_HEADER = struct.Struct("<BIq")  # version, count, first timestamp in ms
_BUCKETS_HEADER = struct.Struct("<BH")  # version, slots


class CorruptBlob(ValueError):
    """A stored blob that this code cannot read (unknown version or truncated)."""


def _shuffle(words: np.ndarray) -> bytes:
    """Bytes of 4-byte words, grouped by byte position: byte 0 of every word, then byte 1, ..."""
    return words.view(np.uint8).reshape(-1, 4).T.tobytes()


def _unshuffle(data: bytes, count: int, dtype: type) -> np.ndarray:
    planes = np.frombuffer(data, dtype=np.uint8, count=count * 4).reshape(4, count)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(count)


def encode_samples(ts_ms: np.ndarray, values: np.ndarray, level: int = 6) -> bytes:
    """Pack samples sorted by time. ``ts_ms``: int64 epoch milliseconds; ``values``: floats.

    Consecutive timestamps must lie within 2**31 ms (24 days) of each other."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    count = len(ts)
    if count == 0:
        raise ValueError("no samples to encode")
    deltas = np.diff(ts)
    dod = np.diff(deltas, prepend=np.int64(0)).astype(np.int32)
    zigzag = ((dod << 1) ^ (dod >> 31)).astype(np.uint32)
    words = np.asarray(values, dtype=np.float32).view(np.uint32)
    xored = words.copy()
    xored[1:] ^= words[:-1]
    body = zlib.compress(_shuffle(zigzag) + _shuffle(xored), level)
    return _SAMPLES_HEADER.pack(_SAMPLES_V1, count, int(ts[0])) + body


def encode_sample_rows(ts_ms: np.ndarray, values: np.ndarray, level: int = 6) -> list[bytes]:
    """``encode_samples`` of each row of two (series, samples) arrays, the same bytes, with the
    arithmetic done for all rows at once: a history flush encodes a block for each of a node's
    series, each holding the same few samples, and numpy's per-call cost was most of the work."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    rows, count = ts.shape
    if count == 0:
        raise ValueError("no samples to encode")
    deltas = np.diff(ts, axis=1)
    dod = np.diff(deltas, axis=1, prepend=np.zeros((rows, 1), np.int64)).astype(np.int32)
    zigzag = ((dod << 1) ^ (dod >> 31)).astype(np.uint32)
    words = np.asarray(values, dtype=np.float32).view(np.uint32)
    xored = words.copy()
    xored[:, 1:] ^= words[:, :-1]
    # Each row's bytes as _shuffle lays them out: byte planes of its zigzags, then of its values.
    body = np.concatenate(
        [
            zigzag.view(np.uint8).reshape(rows, count - 1, 4).transpose(0, 2, 1).reshape(rows, -1),
            xored.view(np.uint8).reshape(rows, count, 4).transpose(0, 2, 1).reshape(rows, -1),
        ],
        axis=1,
    )
    firsts = ts[:, 0].tolist()
    return [
        _SAMPLES_HEADER.pack(_SAMPLES_V1, count, firsts[r]) + zlib.compress(body[r].tobytes(), level)
        for r in range(rows)
    ]


def decode_samples(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``encode_samples``: (int64 epoch ms, float32 values)."""
    blob = bytes(blob)  # PostgreSQL hands back a memoryview
    try:
        version, count, first_ms = _SAMPLES_HEADER.unpack_from(blob)
        if version != _SAMPLES_V1:
            raise CorruptBlob(f"unknown sample blob version {version}")
        body = zlib.decompress(blob[_SAMPLES_HEADER.size :])
        zigzag = _unshuffle(body[: (count - 1) * 4], count - 1, np.uint32)
        xored = _unshuffle(body[(count - 1) * 4 :], count, np.uint32)
    except (struct.error, zlib.error) as exc:
        raise CorruptBlob(str(exc)) from exc
    dod = (zigzag >> 1).astype(np.int64) ^ -(zigzag & 1).astype(np.int64)
    ts = np.empty(count, dtype=np.int64)
    ts[0] = first_ms
    ts[1:] = first_ms + np.cumsum(np.cumsum(dod))
    words = np.bitwise_xor.accumulate(xored)
    return ts, words.view(np.float32)


@dataclass
class Buckets:
    """Aggregates of consecutive time buckets: arrays of equal length, one entry per bucket."""

    count: np.ndarray  # uint32, samples in the bucket (0: empty)
    total: np.ndarray  # float64, sum of the samples
    low: np.ndarray  # float32, min (+inf when empty)
    high: np.ndarray  # float32, max (-inf when empty)

    @classmethod
    def empty(cls, slots: int) -> Buckets:
        return cls(
            count=np.zeros(slots, dtype=np.uint32),
            total=np.zeros(slots, dtype=np.float64),
            low=np.full(slots, np.inf, dtype=np.float32),
            high=np.full(slots, -np.inf, dtype=np.float32),
        )

    def merge_at(self, slots: np.ndarray, other: Buckets) -> None:
        """Fold ``other`` (one entry per index in ``slots``, indices unique) into these slots."""
        self.count[slots] += other.count
        self.total[slots] += other.total
        self.low[slots] = np.minimum(self.low[slots], other.low)
        self.high[slots] = np.maximum(self.high[slots], other.high)


def encode_buckets(buckets: Buckets, level: int = 1) -> bytes:
    slots = len(buckets.count)
    body = (
        buckets.count.astype(np.uint32).tobytes()
        + buckets.total.astype(np.float64).tobytes()
        + buckets.low.astype(np.float32).tobytes()
        + buckets.high.astype(np.float32).tobytes()
    )
    return _BUCKETS_HEADER.pack(_BUCKETS_V1, slots) + zlib.compress(body, level)


def encode_bucket_rows(buckets: Buckets, level: int = 1) -> list[bytes]:
    """``encode_buckets`` of each row of 2-D (rows, slots) buckets: the same bytes, one numpy pass."""
    rows, slots = buckets.count.shape
    body = np.concatenate(
        [
            np.ascontiguousarray(buckets.count, dtype=np.uint32).view(np.uint8).reshape(rows, -1),
            np.ascontiguousarray(buckets.total, dtype=np.float64).view(np.uint8).reshape(rows, -1),
            np.ascontiguousarray(buckets.low, dtype=np.float32).view(np.uint8).reshape(rows, -1),
            np.ascontiguousarray(buckets.high, dtype=np.float32).view(np.uint8).reshape(rows, -1),
        ],
        axis=1,
    )
    header = _BUCKETS_HEADER.pack(_BUCKETS_V1, slots)
    return [header + zlib.compress(body[r].tobytes(), level) for r in range(rows)]


def decode_bucket_rows(blobs: list[bytes], slots: int) -> Buckets:
    """``decode_buckets`` of several blobs of ``slots`` slots each, as 2-D (blobs, slots) buckets."""
    bodies = []
    for blob in blobs:
        blob = bytes(blob)
        try:
            version, stored_slots = _BUCKETS_HEADER.unpack_from(blob)
            if version != _BUCKETS_V1:
                raise CorruptBlob(f"unknown bucket blob version {version}")
            if stored_slots != slots:
                raise CorruptBlob(f"bucket blob holds {stored_slots} slots, not {slots}")
            body = zlib.decompress(blob[_BUCKETS_HEADER.size :])
        except (struct.error, zlib.error) as exc:
            raise CorruptBlob(str(exc)) from exc
        if len(body) != slots * 20:
            raise CorruptBlob(f"bucket blob holds {len(body)} bytes for {slots} slots")
        bodies.append(body)
    table = np.frombuffer(b"".join(bodies), np.uint8).reshape(len(bodies), slots * 20)

    def column(start: int, width: int, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(table[:, start * slots : (start + width) * slots]).view(dtype)

    return Buckets(
        count=column(0, 4, np.uint32),
        total=column(4, 8, np.float64),
        low=column(12, 4, np.float32),
        high=column(16, 4, np.float32),
    )


def decode_buckets(blob: bytes) -> Buckets:
    blob = bytes(blob)
    try:
        version, slots = _BUCKETS_HEADER.unpack_from(blob)
        if version != _BUCKETS_V1:
            raise CorruptBlob(f"unknown bucket blob version {version}")
        body = zlib.decompress(blob[_BUCKETS_HEADER.size :])
        if len(body) != slots * 20:
            raise CorruptBlob(f"bucket blob holds {len(body)} bytes for {slots} slots")
    except (struct.error, zlib.error) as exc:
        raise CorruptBlob(str(exc)) from exc
    # Copies, so that callers may merge into them (frombuffer views are read-only).
    return Buckets(
        count=np.frombuffer(body, np.uint32, slots, 0).copy(),
        total=np.frombuffer(body, np.float64, slots, slots * 4).copy(),
        low=np.frombuffer(body, np.float32, slots, slots * 12).copy(),
        high=np.frombuffer(body, np.float32, slots, slots * 16).copy(),
    )
