"""The evaluator against the real stream and database, on a fake clock: state changes become rows
and dispatch calls, and a restart neither resets a pending timer nor notifies a firing alert again."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from dashboard.alerting import dispatch, feed
from dashboard.alerting.evaluator import LAST_ID_KEY, REPLAY_MAX_S, Evaluator
from dashboard.models import Alert, AlertEvent, Node, Rule
from tests.dashboard.alerting_world import deployment as make_deployment

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stream():
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(feed.STREAM, LAST_ID_KEY)
    yield client
    client.delete(feed.STREAM, LAST_ID_KEY)
    client.close()


@pytest.fixture
def dispatched(monkeypatch):
    calls: list[tuple[str, int, str]] = []
    monkeypatch.setattr(
        dispatch, "alert_changed", lambda alert, event: calls.append(("changed", alert.pk, event.to_state))
    )
    monkeypatch.setattr(
        dispatch, "alert_repeat", lambda alert: calls.append(("repeat", alert.pk, alert.state))
    )
    return calls


@pytest.fixture
def node():
    return Node.objects.create(name="gpu-a", info={"gpus": [{"index": 0}], "sample_interval_s": 1.0})


def temp_rule(**overrides) -> Rule:
    fields = {
        "name": "hot gpu",
        "target": {"metric": "gpu.temperature_c", "node": "gpu-a", "gpu": 0},
        "op": ">",
        "threshold": 80,
        "for_s": 60,
        "repeat_interval_s": 3600,
        "no_data_after_s": 3600,
    }
    return Rule.objects.create(**(fields | overrides))


def temp(value: float, ts: float) -> feed.Point:
    return ("gpu-a", "gpu.temperature_c", 0, ts, value)


def test_it_goes_pending_then_firing_with_a_row_per_change_and_one_dispatch_each(node, dispatched):
    rule = temp_rule()
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    t0 = clock.now
    ev.handle([temp(85, t0)], t0)
    ev.handle([("gpu-a", "gpu.temperature_c", 1, t0, 99)], t0)  # another GPU: not this rule's
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "pending" and alert.is_open and alert.labels["alertname"] == "hot gpu"
    clock.now = t0 + 30
    ev.handle([temp(86, clock.now)], clock.now)
    clock.now = t0 + 60
    ev.tick()
    alert.refresh_from_db()
    assert alert.state == "firing" and alert.started_at is not None
    assert alert.pending_since.timestamp() == t0
    assert [e.to_state for e in AlertEvent.objects.filter(alert=alert)] == ["pending", "firing"]
    assert dispatched == [("changed", alert.pk, "pending"), ("changed", alert.pk, "firing")]


def test_a_restart_during_pending_keeps_the_timer(node, dispatched, stream):
    temp_rule()
    clock = Clock()
    t0 = clock.now
    first = Evaluator(clock=clock)
    first.load()
    first.handle([temp(85, t0)], t0)
    # restarted 40 s later: a new process, nothing but the rows and the stream
    clock.now = t0 + 40
    second = Evaluator(clock=clock)
    second.load()
    second.tick()
    assert Alert.objects.get().state == "pending"
    clock.now = t0 + 60
    second.handle([temp(84, clock.now)], clock.now)
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.pending_since.timestamp() == t0
    assert [c[2] for c in dispatched] == ["pending", "firing"]


def test_a_restart_during_firing_neither_resets_nor_notifies_again(node, dispatched, stream):
    temp_rule(for_s=0, repeat_interval_s=600)
    clock = Clock()
    t0 = clock.now
    first = Evaluator(clock=clock)
    first.load()
    first.handle([temp(90, t0)], t0)
    assert [c[2] for c in dispatched] == ["firing"]
    for restart_at in (t0 + 10, t0 + 20):
        clock.now = restart_at
        ev = Evaluator(clock=clock)
        ev.load()
        ev.handle([temp(91, clock.now)], clock.now)
        ev.tick()
    assert [c[2] for c in dispatched] == ["firing"]
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.started_at.timestamp() == t0
    clock.now = t0 + 600
    ev.handle([temp(91, clock.now)], clock.now)
    ev.tick()
    assert dispatched[-1] == ("repeat", alert.pk, "firing")
    # the repeat is persisted: another restart does not repeat again
    ev = Evaluator(clock=clock)
    ev.load()
    ev.tick()
    assert len(dispatched) == 2


def test_it_reads_the_stream_and_resumes_after_the_last_id_on_restart(node, dispatched, stream):
    temp_rule(for_s=0)
    clock = Clock(time.time())  # stream ids are Redis' clock
    feed.publish_observations([temp(70, clock.now)])
    ev = Evaluator(clock=clock)
    ev.load()
    assert ev.start_id() == "$"  # never ran: only what comes next
    last = ev.read_once("0-0", block_ms=10)
    feed.publish_observations([temp(95, clock.now)])
    # stopped before reading that; a new process picks it up from the saved id
    ev2 = Evaluator(clock=clock)
    ev2.load()
    assert ev2.start_id() == last
    ev2.read_once(last, block_ms=10)
    assert Alert.objects.get().state == "firing"
    assert [c[2] for c in dispatched] == ["firing"]
    # down for longer than REPLAY_MAX_S: resumes no further back than that
    clock.now += REPLAY_MAX_S + 60
    ev3 = Evaluator(clock=clock)
    assert ev3.start_id() == f"{int((clock.now - REPLAY_MAX_S) * 1000)}-0"


def test_no_data_after_three_sampling_intervals_is_its_own_state(node, dispatched):
    temp_rule(for_s=0, no_data_after_s=None)
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    clock.now += 9
    ev.tick()
    assert not Alert.objects.exists()
    clock.now += 1  # 10 s floor (3 x 1 s would be too eager)
    ev.tick()
    assert Alert.objects.get().state == "nodata"
    ev.handle([temp(20, clock.now)], clock.now)
    assert Alert.objects.get().state == "inactive"


def test_a_rule_whose_deployment_is_gone_is_in_error_not_silent(node, dispatched):
    deployment = make_deployment()
    rule = Rule.objects.create(
        name="slow",
        target={"deployment": "digits-prod", "stat": "mean", "window": "last_5"},
        op=">",
        threshold=50,
    )
    deployment.delete()
    ev = Evaluator(clock=Clock())
    ev.load()
    ev.tick()
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "error" and alert.error == "unknown deployment 'digits-prod'"


def test_deployment_mean_of_the_last_n_values(node, dispatched):
    make_deployment()
    Rule.objects.create(
        name="slow",
        target={"deployment": "digits-prod", "stat": "mean", "window": "last_5"},
        op=">",
        threshold=50,
    )
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    for i, latency in enumerate([40, 40, 40, 40, 100]):  # mean 52
        ev.handle([("gpu-a", "deploy:digits-prod:mean_ms", None, clock.now + i, latency)], clock.now + i)
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.value == pytest.approx(52)
    assert alert.labels["deployment"] == "digits-prod"


def test_editing_one_rule_leaves_the_others_alone(node, dispatched):
    Node.objects.filter(pk=node.pk).update(info={"gpus": [{"index": 0}, {"index": 1}]})
    a = temp_rule(name="a")
    b = temp_rule(name="b", target={"metric": "gpu.temperature_c", "node": "gpu-a", "gpu": 1})
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    ev.handle([temp(85, clock.now), ("gpu-a", "gpu.temperature_c", 1, clock.now, 85)], clock.now)
    t0 = clock.now
    clock.now += 30
    Rule.objects.filter(pk=a.pk).update(threshold=82, updated_at=timezone.now())
    ev.maybe_reload()
    clock.now = t0 + 60
    ev.tick()
    states = {alert.rule_id: (alert.state, alert.pending_since.timestamp()) for alert in Alert.objects.all()}
    assert states == {a.pk: ("firing", t0), b.pk: ("firing", t0)}


def test_disabling_a_rule_closes_its_open_alert(node, dispatched):
    rule = temp_rule(for_s=0)
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    ev.handle([temp(85, clock.now)], clock.now)
    Rule.objects.filter(pk=rule.pk).update(enabled=False, updated_at=timezone.now())
    ev.maybe_reload()
    alert = Alert.objects.get()
    assert alert.state == "resolved" and not alert.is_open


@pytest.mark.django_db(transaction=True)
def test_the_running_evaluator_follows_the_stream_and_stops_when_told(stream, dispatched):
    Node.objects.create(name="gpu-a", info={"gpus": [{"index": 0}]})
    temp_rule(for_s=0)
    evaluator = Evaluator()
    stop = threading.Event()
    runner = threading.Thread(target=evaluator.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not Alert.objects.filter(state="firing").exists() and time.monotonic() < deadline:
            feed.publish_observations([temp(95, time.time())])
            time.sleep(0.2)
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert Alert.objects.get().state == "firing"
    assert [c[2] for c in dispatched] == ["firing"]


def test_deleting_a_rule_drops_it_and_an_ack_survives_later_changes(node, dispatched):
    gone = temp_rule(name="gone", for_s=0)
    kept = temp_rule(
        name="kept", for_s=0, keep_firing_for_s=0, target={"metric": "host.cpu_percent", "node": "gpu-a"}
    )
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    ev.handle([temp(85, clock.now), ("gpu-a", "host.cpu_percent", None, clock.now, 95)], clock.now)
    gone.delete()
    ev.maybe_reload()
    assert gone.pk not in ev.rules and kept.pk in ev.rules
    alert = Alert.objects.get(rule=kept)
    Alert.objects.filter(pk=alert.pk).update(acked_at=timezone.now())  # an operator acknowledges
    ev.handle([("gpu-a", "host.cpu_percent", None, clock.now + 1, 10)], clock.now + 1)
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.acked_at is not None


def test_a_restarted_evaluator_computes_last_n_from_the_history_not_from_nothing(node, dispatched, stream):
    from dashboard.history.writer import HistoryWriter

    make_deployment()
    Rule.objects.create(
        name="slow",
        target={"deployment": "digits-prod", "stat": "mean", "window": "last_5"},
        op=">",
        threshold=50,
        resolve_threshold=45,
    )
    clock = Clock(time.time())
    writer = HistoryWriter()
    for i, latency in enumerate([80, 80, 80, 80]):  # four slow probes stored before the restart
        writer.add("gpu-a", clock.now - 40 + i * 10, [("deploy:digits-prod:mean_ms", None, float(latency))])
    writer.flush()
    ev = Evaluator(clock=clock)
    ev.load()
    ev.handle([("gpu-a", "deploy:digits-prod:mean_ms", None, clock.now, 10.0)], clock.now)
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.value == pytest.approx(66)  # (4 x 80 + 10) / 5, not 10


def test_a_rule_added_long_after_a_restart_warms_up_from_recent_history(node, dispatched, stream):
    from dashboard.history.writer import HistoryWriter

    make_deployment()
    clock = Clock(time.time())
    stream.set(LAST_ID_KEY, f"{int((clock.now - 100) * 1000)}-0")  # restarted; resumes 100 s back
    ev = Evaluator(clock=clock)
    ev.load()
    writer = HistoryWriter()
    points = [("gpu-a", "deploy:digits-prod:mean_ms", None, clock.now - 40 + i * 10, 80.0) for i in range(4)]
    for point in points:  # four slow probes, stored and published while no rule watched them
        writer.add("gpu-a", point[3], [(point[1], None, point[4])])
    writer.flush()
    feed.publish_observations(points)
    ev.read_once(f"{int((clock.now - 100) * 1000)}-0", block_ms=10)
    Rule.objects.create(
        name="slow",
        target={"deployment": "digits-prod", "stat": "mean", "window": "last_5"},
        op=">",
        threshold=50,
        resolve_threshold=45,
    )
    ev.maybe_reload()
    ev.handle([("gpu-a", "deploy:digits-prod:mean_ms", None, clock.now, 10.0)], clock.now)
    alert = Alert.objects.get()
    # the last five are the four probes handled since the restart and this one, not 10 alone
    assert alert.state == "firing" and alert.value == pytest.approx(66)


def test_changing_a_rules_target_closes_its_alert_and_watches_the_new_series(node, dispatched):
    Node.objects.filter(pk=node.pk).update(info={"gpus": [{"index": 0}, {"index": 1}]})
    rule = temp_rule(for_s=0)
    clock = Clock()
    ev = Evaluator(clock=clock)
    ev.load()
    ev.handle([temp(85, clock.now)], clock.now)
    new_target = {"metric": "gpu.temperature_c", "node": "gpu-a", "gpu": 1}
    Rule.objects.filter(pk=rule.pk).update(target=new_target, updated_at=timezone.now())
    ev.maybe_reload()
    old = Alert.objects.get()
    assert (old.state, old.is_open) == ("resolved", False)
    ev.handle([("gpu-a", "gpu.temperature_c", 1, clock.now + 1, 90)], clock.now + 1)
    new = Alert.objects.get(is_open=True)
    assert new.pk != old.pk and new.labels["gpu"] == "1" and new.state == "firing"
