"""The alert state machine of one rule on one series, as pure functions over plain values.

No Django, no Redis, no clock: the caller passes the time (epoch seconds) and persists what comes
back, so the same code runs in the evaluator, in tests on a fake clock and after a restart from
the rows it saved (an open episode is nothing but an ``Episode``).

States (one episode = from opening until it closes):
    (none) -> pending -> firing -> resolved        the condition held for ``for_s`` then cleared
    (none) -> pending -> inactive                  it cleared before ``for_s``: never fired
    any open -> nodata                             no sample for ``no_data_after_s`` (policy "nodata")
    any open -> error                              the value could not be computed
Firing ends when the value is *recovered* (past ``resolve_threshold``, hysteresis; the threshold
itself when there is none) and then stayed so for ``keep_firing_for_s``. Pending needs the
condition at every evaluation (a value short of the threshold ends it, as in Prometheus); while
firing, values between the two thresholds keep it firing. Repeat notifications fall due every
``repeat_interval_s`` while firing (0: never)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, replace

PENDING = "pending"
FIRING = "firing"
NODATA = "nodata"
ERROR = "error"
RESOLVED = "resolved"
INACTIVE = "inactive"
OPEN = frozenset({PENDING, FIRING, NODATA, ERROR})

# no-data policies
POLICY_NODATA = "nodata"
POLICY_KEEP = "keep"
POLICY_RESOLVE = "resolve"
POLICY_ALERT = "alerting"

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Condition:
    """A rule's condition and timing, in seconds. ``no_data_after_s`` None: never "no data"."""

    op: str
    threshold: float
    resolve_threshold: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    repeat_interval_s: float = 0.0
    no_data: str = POLICY_NODATA
    no_data_after_s: float | None = None

    def breaching(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def recovered(self, value: float) -> bool:
        """Past the resolve threshold, i.e. no longer breaching *it* (the threshold when None)."""
        limit = self.threshold if self.resolve_threshold is None else self.resolve_threshold
        return not OPS[self.op](value, limit)


@dataclass(frozen=True)
class Episode:
    """An open alert: what an Alert row persists. Times are epoch seconds."""

    state: str
    pending_since: float
    value: float | None = None
    started_at: float | None = None  # entered firing (kept through nodata/error: it did fire)
    keep_firing_until: float | None = None  # recovered; resolves at this time unless it breaches again
    next_notify_at: float | None = None
    last_data_at: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Change:
    """One state change: becomes an AlertEvent row and a dispatch.alert_changed call."""

    from_state: str  # "" when the episode opens
    to_state: str
    at: float
    value: float | None
    reason: str


@dataclass(frozen=True)
class Outcome:
    """``episode``: the open episode afterwards (None: none open). ``changes``: in order; an outcome
    may close one episode and open the next (resolved, then pending). ``repeat``: a repeat
    notification is due. ``closed``: the episode as it closed, when one did (to persist it)."""

    episode: Episode | None
    changes: list[Change] = field(default_factory=list)
    repeat: bool = False
    closed: Episode | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.repeat


def _open(cond: Condition, value: float | None, at: float, reason: str) -> Outcome:
    """A new episode for a breaching value: firing at once without ``for_s``, else pending."""
    if cond.for_s <= 0:
        ep = Episode(FIRING, at, value, started_at=at, last_data_at=at, next_notify_at=_next(cond, at))
        return Outcome(ep, [Change("", FIRING, at, value, reason)])
    return Outcome(Episode(PENDING, at, value, last_data_at=at), [Change("", PENDING, at, value, reason)])


def _next(cond: Condition, at: float) -> float | None:
    return at + cond.repeat_interval_s if cond.repeat_interval_s > 0 else None


def _fire(cond: Condition, ep: Episode, at: float, value: float | None, reason: str) -> Outcome:
    fired = replace(
        ep,
        state=FIRING,
        value=value,
        started_at=at if ep.started_at is None else ep.started_at,
        keep_firing_until=None,
        next_notify_at=_next(cond, at),
        error="",
    )
    return Outcome(fired, [Change(ep.state, FIRING, at, value, reason)])


def _close(ep: Episode, to_state: str, at: float, value: float | None, reason: str) -> Outcome:
    closed = replace(ep, state=to_state, value=value, keep_firing_until=None, next_notify_at=None)
    return Outcome(None, [Change(ep.state, to_state, at, value, reason)], closed=closed)


def _fmt(cond: Condition, value: float | None) -> str:
    return f"value {value:g} {cond.op} {cond.threshold:g}" if value is not None else "no value"


def observe(cond: Condition, ep: Episode | None, value: float, at: float) -> Outcome:
    """A new value of the series at ``at``."""
    breaching = cond.breaching(value)
    if ep is None:
        if breaching:
            return _open(cond, value, at, _fmt(cond, value))
        return Outcome(None)
    ep = replace(ep, last_data_at=at)
    if ep.state == PENDING:
        if not breaching:
            return _close(ep, INACTIVE, at, value, f"value {value:g} no longer {cond.op} {cond.threshold:g}")
        if at - ep.pending_since >= cond.for_s:
            return _fire(cond, ep, at, value, f"{_fmt(cond, value)} for {cond.for_s:g} s")
        return Outcome(replace(ep, value=value))
    if ep.state == FIRING:
        if not cond.recovered(value):
            return Outcome(replace(ep, value=value, keep_firing_until=None))
        if cond.keep_firing_for_s <= 0:
            return _close(ep, RESOLVED, at, value, _recovered_reason(cond, value))
        until = ep.keep_firing_until if ep.keep_firing_until is not None else at + cond.keep_firing_for_s
        if at >= until:
            return _close(ep, RESOLVED, at, value, _recovered_reason(cond, value) + " past keep_firing_for")
        return Outcome(replace(ep, value=value, keep_firing_until=until))
    # nodata or error: a value is back
    if not breaching:
        return _close(
            ep,
            RESOLVED if ep.started_at is not None else INACTIVE,
            at,
            value,
            f"data back: {_fmt(cond, value)}",
        )
    if ep.started_at is not None or at - ep.pending_since >= cond.for_s:
        return _fire(cond, ep, at, value, f"data back: {_fmt(cond, value)}")
    return Outcome(
        replace(ep, state=PENDING, value=value), [Change(ep.state, PENDING, at, value, "data back")]
    )


def _recovered_reason(cond: Condition, value: float) -> str:
    limit = cond.threshold if cond.resolve_threshold is None else cond.resolve_threshold
    return f"value {value:g} recovered past {limit:g}"


def fail(cond: Condition, ep: Episode | None, message: str, at: float) -> Outcome:
    """The value could not be computed: an error state of its own, never "resolved"."""
    if ep is None:
        return Outcome(Episode(ERROR, at, None, error=message), [Change("", ERROR, at, None, message)])
    if ep.state == ERROR:
        return Outcome(replace(ep, error=message))
    return Outcome(replace(ep, state=ERROR, error=message), [Change(ep.state, ERROR, at, ep.value, message)])


def tick(cond: Condition, ep: Episode | None, now: float, last_data_at: float | None) -> Outcome:
    """Time passing with no new value: ``for_s`` elapsed, ``keep_firing_for`` expired, no data for
    ``no_data_after_s`` (``last_data_at``: the series' last sample, or when watching began), and
    repeat notifications."""
    stale = (
        cond.no_data_after_s is not None
        and last_data_at is not None
        and now - last_data_at >= cond.no_data_after_s
    )
    if stale:
        out = _no_data(cond, ep, now, last_data_at)
        if out is not None:
            return out
    if ep is None:
        return Outcome(None)
    due = ep.state == PENDING and now - ep.pending_since >= cond.for_s
    if due and (ep.value is None or cond.breaching(ep.value)):  # None: "alerting" on no data
        return _fire(cond, ep, now, ep.value, f"{_fmt(cond, ep.value)} for {cond.for_s:g} s")
    if ep.state == FIRING:
        if ep.keep_firing_until is not None and now >= ep.keep_firing_until:
            return _close(ep, RESOLVED, now, ep.value, "recovered for keep_firing_for")
        if ep.next_notify_at is not None and now >= ep.next_notify_at:
            return Outcome(replace(ep, next_notify_at=now + cond.repeat_interval_s), repeat=True)
    return Outcome(ep)


def _no_data(cond: Condition, ep: Episode | None, now: float, last_data_at: float) -> Outcome | None:
    """The no-data policy; None when it leaves the state to the rest of ``tick``."""
    reason = f"no data for {now - last_data_at:.0f} s"
    policy = cond.no_data
    if policy == POLICY_KEEP:
        return None
    if policy == POLICY_NODATA:
        if ep is None:
            return Outcome(Episode(NODATA, now, None), [Change("", NODATA, now, None, reason)])
        if ep.state in (NODATA, ERROR):
            return Outcome(ep)
        return Outcome(
            replace(ep, state=NODATA, keep_firing_until=None),
            [Change(ep.state, NODATA, now, ep.value, reason)],
        )
    if policy == POLICY_RESOLVE:
        if ep is None:
            return Outcome(None)
        return _close(ep, RESOLVED if ep.started_at is not None else INACTIVE, now, ep.value, reason)
    if policy == POLICY_ALERT:
        if ep is None:
            return _open(cond, None, now, reason)
        if ep.state == FIRING:
            return None  # stays firing; repeats still fall due
        if ep.state == PENDING:
            if now - ep.pending_since >= cond.for_s:
                return _fire(cond, replace(ep, value=None), now, None, reason)
            return Outcome(replace(ep, value=None))
        return _fire(cond, ep, now, None, reason)
    raise ValueError(f"unknown no-data policy {policy!r}")
