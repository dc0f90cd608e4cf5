"""Rollups: fold samples into the 1-minute and 1-hour min/avg/max/count buckets.

Done incrementally on every flush (``merge_rollups``), inside the flush's transaction, so that a
closed bucket is complete as soon as its last samples are written and the open bucket shows up in
queries with the flush that fed it. Merging is associative, so samples written late (after a
database outage) land in the right buckets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from django.db import connection

from dashboard.history.bulk import insert_rows
from dashboard.history.codec import Buckets, decode_bucket_rows, encode_bucket_rows
from dashboard.history.tiers import ROLLUP_TIERS, RollupTier
from dashboard.models import RollupBlock

_IN_CHUNK = 500  # ids per IN (...) list: far below every backend's parameter limit


def reduce_by_key(
    keys: np.ndarray, count: np.ndarray, total: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, Buckets]:
    """Combine entries that share a key: (sorted unique keys, one aggregate per key)."""
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
    if len(first) == 0:
        return keys, Buckets(
            np.zeros(0, np.uint32), np.zeros(0), np.zeros(0, np.float32), np.zeros(0, np.float32)
        )
    return keys[first], Buckets(
        count=np.add.reduceat(count[order], first).astype(np.uint32),
        total=np.add.reduceat(total[order], first),
        low=np.minimum.reduceat(low[order], first).astype(np.float32),
        high=np.maximum.reduceat(high[order], first).astype(np.float32),
    )


class _TierBlocks:
    """New aggregates of one tier for many series, one row per touched (series, block)."""

    def __init__(self, tier: RollupTier, series_ids: np.ndarray, ts_s: np.ndarray, values: np.ndarray):
        self.tier = tier
        buckets = np.floor(ts_s / tier.resolution_s).astype(np.int64)
        # One sort for every series at once: the key packs (series, bucket) into 64 bits.
        keys, agg = reduce_by_key(
            (series_ids << 32) | buckets,
            np.ones(len(values), np.uint32),
            values.astype(np.float64),
            values,
            values,
        )
        sids = keys >> 32
        starts = (keys & 0xFFFFFFFF) * tier.resolution_s
        blocks = starts // tier.block_s * tier.block_s
        new_row = np.r_[True, (sids[1:] != sids[:-1]) | (blocks[1:] != blocks[:-1])]
        row_of = np.cumsum(new_row) - 1
        firsts = np.flatnonzero(new_row)
        self.keys = list(zip(sids[firsts].tolist(), blocks[firsts].tolist(), strict=True))
        rows, slots = len(firsts), tier.slots
        self.buckets = Buckets(
            count=np.zeros((rows, slots), np.uint32),
            total=np.zeros((rows, slots), np.float64),
            low=np.full((rows, slots), np.inf, np.float32),
            high=np.full((rows, slots), -np.inf, np.float32),
        )
        at = (row_of, (starts - blocks) // tier.resolution_s)
        self.buckets.count[at] = agg.count
        self.buckets.total[at] = agg.total
        self.buckets.low[at] = agg.low
        self.buckets.high[at] = agg.high

    def merge_stored(self, rows: list[int], blobs: list[bytes]) -> None:
        """Fold the stored blocks (``blobs``) into these rows, all at once."""
        if not rows:
            return
        stored = decode_bucket_rows(blobs, self.tier.slots)
        at, b = np.asarray(rows), self.buckets
        b.count[at] += stored.count  # rows are unique: one stored block per (series, block)
        b.total[at] += stored.total
        b.low[at] = np.minimum(b.low[at], stored.low)
        b.high[at] = np.maximum(b.high[at], stored.high)

    def encoded(self) -> list[bytes]:
        """Each row's blob."""
        return encode_bucket_rows(self.buckets)


def merge_rollups(samples: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> int:
    """Fold each series' new samples (series id -> (ts epoch s, values)) into its rollup blocks.

    Reads the touched blocks (row-locked where the database can), merges in memory and writes them
    back with one upsert per batch; call inside a transaction. Returns the number of blocks written."""
    if not samples:
        return 0
    series_ids = np.concatenate([np.full(len(ts), sid, np.int64) for sid, (ts, _) in samples.items()])
    ts_s = np.concatenate([ts for ts, _ in samples.values()])
    values = np.concatenate([v for _, v in samples.values()]).astype(np.float32)
    tiers = {tier.resolution_s: _TierBlocks(tier, series_ids, ts_s, values) for tier in ROLLUP_TIERS}
    index = {
        (sid, res, start): (tier, row)
        for res, tier in tiers.items()
        for row, (sid, start) in enumerate(tier.keys)
    }
    stored: dict[int, tuple[list[int], list[bytes]]] = {res: ([], []) for res in tiers}
    for sid, res, start, blob in _existing_blocks({start for _sid, _res, start in index}, sorted(samples)):
        found = index.get((sid, res, start))
        if found is not None:
            stored[res][0].append(found[1])
            stored[res][1].append(blob)
    for res, tier in tiers.items():
        tier.merge_stored(*stored[res])
    blobs = {res: tier.encoded() for res, tier in tiers.items()}
    insert_rows(
        RollupBlock,
        ["series", "resolution_s", "block_start_s", "data"],
        [(sid, res, start, blobs[res][row]) for (sid, res, start), (_tier, row) in index.items()],
        conflict_fields=["series", "resolution_s", "block_start_s"],
        update_fields=["data"],
    )
    return len(index)


def _existing_blocks(starts: set[int], series_ids: list[int]) -> Iterable[tuple[int, int, int, bytes]]:
    """(series id, resolution, block start, data) of the stored blocks among (series ids x block
    starts); one query per few hundred series."""
    # Plain SQL: the ORM spent more CPU building this query than the database answering it, on
    # every ingest request (bench/ingest.py --profile).
    table = connection.ops.quote_name(RollupBlock._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    start_list = sorted(starts)
    with connection.cursor() as cursor:
        for i in range(0, len(series_ids), _IN_CHUNK):
            chunk = series_ids[i : i + _IN_CHUNK]
            cursor.execute(
                f"SELECT series_id, resolution_s, block_start_s, data FROM {table}"
                f" WHERE series_id IN ({', '.join(['%s'] * len(chunk))})"
                f" AND block_start_s IN ({', '.join(['%s'] * len(start_list))}){lock}",
                [*chunk, *start_list],
            )
            yield from cursor.fetchall()
