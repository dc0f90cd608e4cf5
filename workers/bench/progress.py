"""Progress reports and cancellation polls for a benchmark whose length is only bounded, not known.

The run is a list of phases (one per batch size, concurrency level, multi-GPU point), each
weighted by its longest possible wall time. Within a phase the fraction is elapsed / that bound;
a phase that ends early jumps to its end, so reports only ever climb. Callbacks are made from the
caller's thread only (client threads never call them): a Django callback keeps its connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Progress callbacks go to the database and a websocket; a few per second is plenty.
PROGRESS_INTERVAL_S = 0.2


class Cancelled(Exception):
    """The caller's ``should_stop()`` returned true; the benchmark stopped early.

    ``result`` is set by ``run_benchmark`` to the points measured before the stop (a
    ``BenchResult`` with ``cancelled=True``), or stays None when raised elsewhere."""

    result: Any = None


class Progress:
    """Reports progress and polls for cancellation, at most every PROGRESS_INTERVAL_S except at phase starts."""

    def __init__(
        self,
        phase_weights_s: list[float],
        on_progress: Callable[[float, str], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self._weights = phase_weights_s
        self._total = max(sum(phase_weights_s), 1e-9)
        self._on_progress = on_progress
        self._should_stop = should_stop
        self._phase = -1
        self._phase_started = 0.0
        self._done_weight = 0.0
        self._last_fraction = 0.0
        self._last_report = float("-inf")
        self._text = ""

    def start_phase(self, text: str) -> None:
        """Close the current phase (if any) and begin the next one; always reports and polls."""
        if self._phase >= 0:
            self._done_weight += self._weights[self._phase]
        self._phase += 1
        self._phase_started = time.monotonic()
        self.step(text, force=True)

    def step(self, text: str | None = None, *, force: bool = False) -> None:
        """Report the current phase's time-based progress; raise ``Cancelled`` if asked to stop."""
        if text is not None:
            self._text = text
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_INTERVAL_S:
            return
        self._last_report = now
        if self._should_stop is not None and self._should_stop():
            raise Cancelled(f"cancelled at {self._text}")
        if self._on_progress is None:
            return
        within = 0.0
        if 0 <= self._phase < len(self._weights):
            # Stop short of the phase's end: only finishing it may claim the whole weight.
            within = min(0.99, (now - self._phase_started) / max(self._weights[self._phase], 1e-9))
            within *= self._weights[self._phase]
        fraction = min((self._done_weight + within) / self._total, 1.0)
        self._last_fraction = max(self._last_fraction, fraction)
        self._on_progress(self._last_fraction, self._text)

    def finish(self) -> None:
        # No cancellation check here: the work is done and its result is worth keeping.
        if self._on_progress is not None:
            self._on_progress(1.0, "done")
