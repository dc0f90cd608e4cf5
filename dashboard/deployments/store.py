"""Writing deployment latency into the history now (not buffered): ingest answers 202 only once
its samples are stored, and a probe or scrape records its few values as it ends."""

from __future__ import annotations

import logging
import threading

import numpy as np

from dashboard.history.writer import HistoryWriter, SeriesKey

log = logging.getLogger(__name__)

# One writer per process keeps the node and series ids it has looked up; the lock keeps requests
# in threads of one process from interleaving on it.
_writer = HistoryWriter()
_lock = threading.Lock()


def write(batch: dict[SeriesKey, tuple[np.ndarray, np.ndarray]]) -> int:
    """Write ``batch`` in one transaction; returns the values written. A failure may come from an
    id the writer had cached (a node deleted since): the writer forgets its ids and this tries
    once more before raising."""
    with _lock:
        try:
            return _writer.write_now(batch)
        except Exception as exc:
            log.info("history: write failed (%s); retrying with fresh ids", exc)
            return _writer.write_now(batch)


def forget_ids() -> None:
    """Drop the cached ids (tests roll back the rows they point at)."""
    with _lock:
        _writer._series_ids.clear()
        _writer._node_ids.clear()
