"""The rule evaluator: reads the observations stream as data arrives, runs each point through the
rules that watch its series (an index, so 1,000 rules cost a dict lookup per point), and ticks
once a second for what time alone decides (``for`` elapsed, no data, keep_firing_for, repeats).

State lives in Alert rows. Every state change is one transaction: the Alert row, an AlertEvent
row and dispatch.alert_changed (whose outside work runs after commit). A restart reloads the open
Alert rows as they were, so a pending timer keeps its start and a firing alert is not notified
again before its repeat falls due.

Where to read from after a restart: the last stream id handled is kept in Redis
(``perfmon:evaluator:last_id``, written after each batch's transactions committed), so the data
published while the evaluator was away is still evaluated, at the times it was published, before
the first tick; but never more than REPLAY_MAX_S of it (older data would only make transitions
nobody can act on; the history has it). A batch replayed after a crash between its commit and
the id's write is harmless: the same values against the state they already produced change
nothing."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Count, Max, Sum

from dashboard.alerting import dispatch, feed, state, targets
from dashboard.alerting.state import Condition, Episode, Outcome
from dashboard.models import Alert, AlertEvent, Deployment, Node, Rule

log = logging.getLogger(__name__)

LAST_ID_KEY = "perfmon:evaluator:last_id"
STATS_KEY = "perfmon:evaluator:stats"  # JSON, rewritten every STATS_EVERY_S (bench/rules.py reads it)
STATS_EVERY_S = 5.0
REPLAY_MAX_S = 300.0
TICK_S = 1.0
FLUSH_EVERY_S = 10.0  # open alerts' last value and last data time, in one bulk update
READ_COUNT = 500
# The Alert fields the evaluator owns; it never writes the others (acknowledgement, deployment, ...).
EVALUATOR_FIELDS = [
    "state",
    "is_open",
    "value",
    "pending_since",
    "started_at",
    "resolved_at",
    "keep_firing_until",
    "next_notify_at",
    "last_notified_at",
    "last_data_at",
    "last_eval_at",
    "error",
]


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def episode_of(alert: Alert) -> Episode:
    return Episode(
        state=alert.state,
        pending_since=alert.pending_since.timestamp(),
        value=alert.value,
        started_at=_ts(alert.started_at),
        keep_firing_until=_ts(alert.keep_firing_until),
        next_notify_at=_ts(alert.next_notify_at),
        last_data_at=_ts(alert.last_data_at),
        error=alert.error,
    )


def condition_of(rule: Rule, watch: targets.Watch | None) -> Condition:
    no_data_after = (
        rule.no_data_after_s if rule.no_data_after_s else (watch.no_data_after_s if watch else None)
    )
    return Condition(
        op=rule.op,
        threshold=rule.threshold,
        resolve_threshold=rule.resolve_threshold,
        for_s=rule.for_s,
        keep_firing_for_s=rule.keep_firing_for_s,
        repeat_interval_s=rule.repeat_interval_s,
        no_data=rule.no_data,
        no_data_after_s=no_data_after,
    )


@dataclass
class Series:
    """One series of one rule: its open episode (if any) and what its value is computed from."""

    labels: dict[str, Any]
    fingerprint: str
    episode: Episode | None = None
    alert_id: int | None = None
    last_data_at: float | None = None
    values: deque = field(default_factory=deque)  # (ts, value) for windowed statistics
    dirty: bool = False
    alert: Alert | None = None  # the open episode's row, as last saved


@dataclass
class RuntimeRule:
    rule_id: int
    name: str
    version: tuple
    target_key: str
    cond: Condition
    watch: targets.Watch | None
    error: str
    base_labels: dict[str, Any]
    deployment_id: int | None
    series: dict[str, Series] = field(default_factory=dict)

    def series_for(self, node: str, metric: str) -> tuple[str, dict[str, Any]]:
        """(series id, its labels) for a point; benchmark rules over any model or node have one
        series per model and node."""
        assert self.watch is not None
        if self.watch.kind == "benchmark":
            labels = {"model": metric[len(targets.BENCH_METRIC) :], "node": node}
            return f"{node}|{metric}", labels
        return "", self.watch.labels

    def value(self, series: Series, ts: float, value: float) -> float:
        """The rule's value after one more point of ``series``."""
        watch = self.watch
        assert watch is not None
        if watch.kind != "deployment":
            return value
        values = series.values
        values.append((ts, value))
        if watch.last_n is not None:
            while len(values) > watch.last_n:
                values.popleft()
        else:
            assert watch.window_s is not None
            while values and values[0][0] < ts - watch.window_s:
                values.popleft()
        return statistic(watch.stat, [v for _, v in values])


def statistic(stat: str, values: list[float]) -> float:
    if not values:
        raise ValueError("no values in the window")
    if stat == "mean":
        return math.fsum(values) / len(values)
    quantile = {"p50": 0.50, "p95": 0.95, "p99": 0.99}[stat]
    ordered = sorted(values)
    # linear interpolation between closest ranks (numpy's default)
    pos = quantile * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _version(rule: Rule) -> tuple:
    return (
        repr(rule.target),
        rule.op,
        rule.threshold,
        rule.resolve_threshold,
        rule.for_s,
        rule.keep_firing_for_s,
        rule.repeat_interval_s,
        rule.no_data,
        rule.no_data_after_s,
        rule.severity,
        repr(rule.labels),
        rule.name,
    )


class Evaluator:
    """``clock``: epoch seconds (tests pass a fake one). ``redis_client``: for the stream."""

    def __init__(
        self, clock: Callable[[], float] = time.time, redis_client: redis.Redis | None = None
    ) -> None:
        self.clock = clock
        self.redis = redis_client or redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
        self.rules: dict[int, RuntimeRule] = {}
        self.exact: dict[tuple[str, str, int | None], list[RuntimeRule]] = {}
        self.any_node: dict[str, list[RuntimeRule]] = {}
        self.prefixed: list[RuntimeRule] = []
        self.rules_stamp: Any = None
        self.started_at = clock()
        self.last_flush = self.started_at
        self.transitions = 0
        self.points = 0
        self.handled_until = self._saved_id_time()  # when the last stream entry handled was published
        # (point publish time, change time) of the last transitions, for bench/rules.py
        self.lags: deque[float] = deque(maxlen=100_000)

    # ----- rules -----------------------------------------------------------------------------

    def _stamp(self) -> Any:
        agg = Rule.objects.aggregate(n=Count("id"), latest=Max("updated_at"), ids=Sum("id"))
        return (agg["n"], agg["latest"], agg["ids"])

    def load(self) -> None:
        """(Re)load rules and their open alerts. A rule whose target and condition did not change
        keeps its runtime state; an edited rule keeps its open episodes (they meet the new
        condition at the next value) unless its target changed; others are never touched."""
        self.rules_stamp = self._stamp()
        now = self.clock()
        open_alerts: dict[int, list[Alert]] = {}
        for alert in Alert.objects.filter(is_open=True):
            open_alerts.setdefault(alert.rule_id, []).append(alert)
        seen: set[int] = set()
        nodes = {node.name: node for node in Node.objects.all()}
        deployments = {d.name: d for d in Deployment.objects.all()}
        for rule in Rule.objects.filter(enabled=True):
            seen.add(rule.pk)
            old = self.rules.get(rule.pk)
            if old is not None and old.version == _version(rule):
                continue
            runtime = self._compile(rule, nodes, deployments)
            if old is not None and old.target_key == runtime.target_key:
                runtime.series = old.series
            else:
                if old is not None:  # its target changed: the old series' episodes end here
                    self._close_all(old, "rule's target changed")
                    open_alerts.pop(rule.pk, None)
                for alert in open_alerts.get(rule.pk, []):
                    sid = self._sid_of(runtime, alert)
                    runtime.series[sid] = Series(
                        labels=_series_labels(alert.labels),
                        fingerprint=alert.fingerprint,
                        episode=episode_of(alert),
                        alert_id=alert.pk,
                        last_data_at=_ts(alert.last_data_at) or now,
                    )
                if runtime.watch is not None and runtime.watch.kind != "benchmark":
                    runtime.series.setdefault(
                        "",
                        Series(
                            labels=runtime.watch.labels,
                            fingerprint=targets.fingerprint(rule.pk, runtime.watch.labels),
                        ),
                    )
                    if runtime.series[""].last_data_at is None:
                        runtime.series[""].last_data_at = now  # no data yet: count from now
            fresh = runtime.series.get("")
            if (
                runtime.watch is not None
                and runtime.watch.kind == "deployment"
                and fresh
                and not fresh.values
            ):
                self._warm_up(runtime.watch, fresh, now)
            self.rules[rule.pk] = runtime
        gone = set(self.rules) - seen
        if gone:
            still_there = set(Rule.objects.filter(pk__in=gone).values_list("pk", flat=True))
            for rule_id in gone:
                runtime = self.rules.pop(rule_id)
                if rule_id in still_there:  # disabled: close its open alerts, with a row saying why
                    self._close_all(runtime, "rule disabled")
                # deleted: its alerts went with it
        # Open alerts of rules disabled while no evaluator ran.
        for rule_id, alerts in open_alerts.items():
            if rule_id not in seen:
                for alert in alerts:
                    self._close_row(alert, "rule disabled")
        self._index()

    def _warm_up(self, watch: targets.Watch, series: Series, now: float) -> None:
        """A windowed statistic starts from the history, not from nothing: after a restart "mean
        of the last 5" means the last 5 values, not the first one to arrive. Values after the last
        stream entry handled are left to the stream (they are replayed), so none counts twice."""
        from dashboard.history.query import raw_points

        until = self.handled_until if self.handled_until is not None else now
        lookback = watch.window_s if watch.window_s is not None else 48 * 3600.0
        points = sorted(
            point
            for metric in watch.metrics
            for point in raw_points(watch.node or "", metric, None, until - lookback, until + 0.001)
        )
        if watch.last_n is not None:
            points = points[-watch.last_n :]
        series.values.extend(points)

    def _sid_of(self, runtime: RuntimeRule, alert: Alert) -> str:
        if runtime.watch is not None and runtime.watch.kind == "benchmark":
            labels = alert.labels or {}
            return f"{labels.get('node')}|{targets.BENCH_METRIC}{labels.get('model')}"
        return ""

    def _compile(self, rule: Rule, nodes: dict, deployments: dict) -> RuntimeRule:
        error = ""
        watch: targets.Watch | None = None
        try:
            watch = targets.compile_target(rule.target, nodes, deployments)
        except (targets.TargetError, KeyError, TypeError, ValueError) as exc:
            error = str(exc)
        base = {"alertname": rule.name, "severity": rule.severity, **(rule.labels or {})}
        runtime = RuntimeRule(
            rule_id=rule.pk,
            name=rule.name,
            version=_version(rule),
            target_key=repr(rule.target),
            cond=condition_of(rule, watch),
            watch=watch,
            error=error,
            base_labels=base,
            deployment_id=watch.deployment_id if watch else None,
        )
        if error:  # the target cannot be watched (a deleted deployment): an error state, visible
            try:
                labels = targets.series_labels(rule.target)
            except (KeyError, TypeError):
                labels = {}
            runtime.series[""] = Series(labels=labels, fingerprint=targets.fingerprint(rule.pk, labels))
        return runtime

    def _index(self) -> None:
        self.exact, self.any_node, self.prefixed = {}, {}, []
        for runtime in self.rules.values():
            watch = runtime.watch
            if watch is None:
                continue
            if watch.prefix is not None:
                self.prefixed.append(runtime)
            for metric in watch.metrics:
                if watch.node is None or watch.kind == "deployment":
                    self.any_node.setdefault(metric, []).append(runtime)
                else:
                    self.exact.setdefault((watch.node, metric, watch.gpu), []).append(runtime)

    def maybe_reload(self) -> None:
        if self._stamp() != self.rules_stamp:
            self.load()

    # ----- evaluation ------------------------------------------------------------------------

    def handle(self, points: Iterable[feed.Point], at: float, published_at: float | None = None) -> int:
        """Evaluate points that arrived at ``at``; returns the number of state changes."""
        changes = 0
        for node, metric, gpu, ts, value in points:
            self.points += 1
            matched = self.exact.get((node, metric, gpu))
            wildcard = self.any_node.get(metric)
            if matched is None and wildcard is None and not self.prefixed:
                continue
            for runtime in [*(matched or ()), *(wildcard or ())]:
                changes += self._point(runtime, node, metric, ts, value, at, published_at)
            for runtime in self.prefixed:
                watch = runtime.watch
                assert watch is not None and watch.prefix is not None
                if metric.startswith(watch.prefix) and watch.node in (None, node):
                    changes += self._point(runtime, node, metric, ts, value, at, published_at)
        return changes

    def _point(
        self, runtime: RuntimeRule, node: str, metric: str, ts: float, value: float, at: float, published_at
    ) -> int:
        sid, labels = runtime.series_for(node, metric)
        series = runtime.series.get(sid)
        if series is None:
            series = runtime.series[sid] = Series(
                labels=labels, fingerprint=targets.fingerprint(runtime.rule_id, labels)
            )
        if series.last_data_at is None or at > series.last_data_at:
            series.last_data_at = at
        try:
            computed = runtime.value(series, ts, value)
        except Exception as exc:  # a statistic that cannot be computed is an error state, not silence
            return self._apply(runtime, series, state.fail(runtime.cond, series.episode, str(exc), at), at)
        out = state.observe(runtime.cond, series.episode, computed, at)
        if not out.changes and not out.repeat:
            if out.episode is not None:
                series.dirty = True
            series.episode = out.episode
            return 0
        n = self._apply(runtime, series, out, at)
        if n and published_at is not None:
            self.lags.append(self.clock() - published_at)
        return n

    def tick(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        changes = 0
        for runtime in list(self.rules.values()):
            for series in list(runtime.series.values()):
                if runtime.error:
                    if series.episode is None or series.episode.state != state.ERROR:
                        changes += self._apply(
                            runtime, series, state.fail(runtime.cond, series.episode, runtime.error, now), now
                        )
                    continue
                out = state.tick(runtime.cond, series.episode, now, series.last_data_at)
                if out.changes or out.repeat:
                    changes += self._apply(runtime, series, out, now)
        if now - self.last_flush >= FLUSH_EVERY_S:
            self.flush()
            self.last_flush = now
        return changes

    # ----- persistence -----------------------------------------------------------------------

    def _apply(self, runtime: RuntimeRule, series: Series, out: Outcome, at: float) -> int:
        """Persist one outcome: each change is a transaction with its Alert row, its AlertEvent
        row and dispatch; a repeat updates next_notify_at together with dispatch.alert_repeat."""
        for change in out.changes:
            closing = change.to_state in (state.RESOLVED, state.INACTIVE)
            ep = out.closed if closing else out.episode
            assert ep is not None
            try:
                with transaction.atomic():
                    alert = self._row(runtime, series, ep, change, closing)
                    event = AlertEvent.objects.create(
                        alert=alert,
                        from_state=change.from_state,
                        to_state=change.to_state,
                        value=change.value,
                        reason=change.reason[:500],
                        at=_dt(change.at),
                    )
                    self._dispatch(lambda alert=alert, event=event: dispatch.alert_changed(alert, event))
            except IntegrityError as exc:  # another evaluator opened it: take the rows as they are
                log.error("rule %s: could not record %s: %s; reloading", runtime.name, change.to_state, exc)
                self.rules.pop(runtime.rule_id, None)
                self.rules_stamp = None
                return 0
            series.alert_id = None if closing else alert.pk
            series.alert = None if closing else alert
            self.transitions += 1
        if out.repeat and out.episode is not None and series.alert_id is not None:
            with transaction.atomic():
                alert = Alert.objects.select_for_update().get(pk=series.alert_id)
                alert.next_notify_at = _dt(out.episode.next_notify_at)
                alert.last_notified_at = _dt(at)
                alert.save(update_fields=["next_notify_at", "last_notified_at"])
                self._dispatch(lambda alert=alert: dispatch.alert_repeat(alert))
        series.episode = out.episode
        series.dirty = False
        return len(out.changes) + int(out.repeat)

    def _dispatch(self, call: Callable[[], None]) -> None:
        """Run a dispatch call in a savepoint: a failing notifier or action loses its own writes
        and is logged, never the state change."""
        try:
            with transaction.atomic():
                call()
        except Exception:
            log.exception("dispatching an alert change failed (the state change is kept)")

    def _row(
        self, runtime: RuntimeRule, series: Series, ep: Episode, change: state.Change, closing: bool
    ) -> Alert:
        if change.from_state == "" or series.alert_id is None:
            alert = Alert(
                rule_id=runtime.rule_id,
                fingerprint=series.fingerprint,
                labels={**runtime.base_labels, **series.labels},
                deployment_id=runtime.deployment_id,
            )
        elif series.alert is not None and series.alert.pk == series.alert_id:
            alert = series.alert  # this process is the only writer of an open alert's state
        else:
            alert = Alert.objects.get(pk=series.alert_id)
        alert.state = change.to_state
        alert.is_open = not closing
        alert.value = change.value if change.value is not None else ep.value
        alert.pending_since = _dt(ep.pending_since)
        alert.started_at = _dt(ep.started_at)
        alert.keep_firing_until = _dt(ep.keep_firing_until)
        alert.next_notify_at = _dt(ep.next_notify_at)
        alert.last_data_at = _dt(series.last_data_at)
        alert.last_eval_at = _dt(change.at)
        alert.error = ep.error
        if change.to_state == state.FIRING:
            alert.last_notified_at = _dt(change.at)
        if closing:
            alert.resolved_at = _dt(change.at)
        if alert.pk is None:
            alert.save()
        else:  # only the evaluator's fields: an ack (or notify's bookkeeping) made meanwhile stays
            alert.save(update_fields=EVALUATOR_FIELDS)
        return alert

    def _close_all(self, runtime: RuntimeRule, reason: str) -> None:
        now = self.clock()
        for series in runtime.series.values():
            if series.episode is not None and series.alert_id is not None:
                to = state.RESOLVED if series.episode.started_at is not None else state.INACTIVE
                out = Outcome(
                    None,
                    [state.Change(series.episode.state, to, now, series.episode.value, reason)],
                    closed=series.episode,
                )
                self._apply(runtime, series, out, now)

    def _close_row(self, alert: Alert, reason: str) -> None:
        now = self.clock()
        to = state.RESOLVED if alert.started_at is not None else state.INACTIVE
        with transaction.atomic():
            from_state = alert.state
            alert.state, alert.is_open, alert.resolved_at = to, False, _dt(now)
            alert.next_notify_at = None
            alert.save()
            event = AlertEvent.objects.create(
                alert=alert, from_state=from_state, to_state=to, value=alert.value, reason=reason, at=_dt(now)
            )
            self._dispatch(lambda: dispatch.alert_changed(alert, event))

    def flush(self) -> None:
        """Last value and data time of open alerts whose state did not change (one bulk update)."""
        rows = []
        for runtime in self.rules.values():
            for series in runtime.series.values():
                if series.dirty and series.alert_id is not None and series.episode is not None:
                    rows.append(
                        Alert(
                            pk=series.alert_id,
                            value=series.episode.value,
                            last_data_at=_dt(series.last_data_at),
                            last_eval_at=_dt(series.last_data_at),
                            keep_firing_until=_dt(series.episode.keep_firing_until),
                        )
                    )
                    series.dirty = False
        if rows:
            Alert.objects.bulk_update(
                rows, ["value", "last_data_at", "last_eval_at", "keep_firing_until"], batch_size=500
            )

    # ----- the stream ------------------------------------------------------------------------

    def _saved_id_time(self) -> float | None:
        try:
            saved = self.redis.get(LAST_ID_KEY)
        except redis.RedisError:
            return None
        return int(saved.decode().split("-")[0]) / 1000.0 if saved else None

    def start_id(self) -> str:
        """Where to resume: after the last id handled, but no further back than REPLAY_MAX_S."""
        floor_ms = int((self.clock() - REPLAY_MAX_S) * 1000)
        try:
            saved = self.redis.get(LAST_ID_KEY)
        except redis.RedisError:
            saved = None
        if saved:
            saved_id = saved.decode()
            if int(saved_id.split("-")[0]) >= floor_ms:
                return saved_id
        return f"{floor_ms}-0" if saved else "$"

    def read_once(self, last_id: str, block_ms: int) -> str:
        """Read and evaluate one batch from the stream; returns the id to continue after."""
        reply = self.redis.xread({feed.STREAM: last_id}, count=READ_COUNT, block=block_ms)
        if not reply:
            return last_id
        now = self.clock()
        # One transaction for the batch (each change still has its own savepoint): a commit per
        # state change would bound the evaluator to the database's fsync rate.
        with transaction.atomic():
            for entry_id, fields in reply[0][1]:
                published = float(fields.get(b"t", now))
                at = min(published, now)
                self.handle(feed.decode(fields[b"p"]), at, published_at=published)
                last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        self.redis.set(LAST_ID_KEY, last_id)
        # A rule loaded from now on warms up from the history up to here (see _warm_up).
        self.handled_until = int(last_id.split("-")[0]) / 1000.0
        return last_id

    def stats(self) -> dict[str, Any]:
        """Points read, state changes, and the lag from publishing a point to the state change it
        caused (milliseconds, over the last 100,000 changes)."""
        lags = sorted(self.lags)

        def pct(q: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 2) if lags else None

        return {
            "rules": len(self.rules),
            "points": self.points,
            "transitions": self.transitions,
            "lag_n": len(lags),
            "lag_p50_ms": pct(0.50),
            "lag_p99_ms": pct(0.99),
            "lag_max_ms": round(lags[-1] * 1000, 2) if lags else None,
            "cpu_s": time.process_time(),
            "at": self.clock(),
        }

    def run(self, stop: threading.Event) -> None:
        self.load()
        # A restart: open alerts resume; the data published meanwhile is evaluated first.
        last_id = self.start_id()
        if last_id == "$":
            # "$" is resolved by Redis at each call: pin it to the current last entry instead.
            info = self.redis.xinfo_stream(feed.STREAM) if self.redis.exists(feed.STREAM) else None
            last_id = info["last-generated-id"].decode() if info else "0-0"
        log.info("evaluator: %d rules, reading %s after %s", len(self.rules), feed.STREAM, last_id)
        next_tick = self.clock()
        next_stats = next_tick + STATS_EVERY_S
        while not stop.is_set():
            try:
                wait_ms = max(1, int((next_tick - self.clock()) * 1000))
                last_id = self.read_once(last_id, min(wait_ms, int(TICK_S * 1000)))
                if self.clock() >= next_tick:
                    close_old_connections()
                    self.maybe_reload()
                    with transaction.atomic():
                        self.tick()
                    next_tick = self.clock() + TICK_S
                if self.clock() >= next_stats:
                    self.redis.set(STATS_KEY, json.dumps(self.stats()))
                    next_stats = self.clock() + STATS_EVERY_S
            except (redis.RedisError, OSError) as exc:
                log.warning("evaluator: Redis unavailable (%s); retrying", exc)
                stop.wait(1.0)
            except Exception:
                log.exception("evaluator: evaluation failed; continuing")
                close_old_connections()
                stop.wait(1.0)
        self.flush()


def _series_labels(labels: dict[str, Any] | None) -> dict[str, Any]:
    keys = {"node", "metric", "gpu", "deployment", "stat", "window", "model"}
    return {k: v for k, v in (labels or {}).items() if k in keys}
