"""The alert state machine on a fake clock: every transition a user would be notified of."""

from __future__ import annotations

import pytest

from dashboard.alerting.state import (
    ERROR,
    FIRING,
    INACTIVE,
    NODATA,
    PENDING,
    RESOLVED,
    Condition,
    Episode,
    fail,
    observe,
    tick,
)


class Series:
    """Feeds values and ticks through the machine and records the states it went through."""

    def __init__(self, cond: Condition) -> None:
        self.cond = cond
        self.ep: Episode | None = None
        self.states: list[str] = []
        self.repeats: list[float] = []
        self.last_data_at = 0.0

    def _apply(self, out, at: float) -> None:
        self.states.extend(c.to_state for c in out.changes)
        if out.repeat:
            self.repeats.append(at)
        self.ep = out.episode

    def value(self, at: float, value: float) -> None:
        self.last_data_at = at
        self._apply(observe(self.cond, self.ep, value, at), at)

    def tick(self, at: float) -> None:
        self._apply(tick(self.cond, self.ep, at, self.last_data_at), at)

    @property
    def state(self) -> str:
        return self.ep.state if self.ep else "none"


def test_without_for_it_fires_on_the_first_breaching_value_and_resolves_on_the_first_clear_one():
    s = Series(Condition(">", 50))
    s.value(0, 40)
    assert s.state == "none"
    s.value(1, 60)
    assert s.states == [FIRING] and s.ep.started_at == 1
    s.value(2, 49)
    assert s.states == [FIRING, RESOLVED] and s.ep is None


def test_for_keeps_it_pending_until_the_duration_elapsed_by_data_or_by_the_clock():
    s = Series(Condition(">", 50, for_s=10))
    s.value(0, 60)
    s.value(5, 61)
    assert s.states == [PENDING]
    s.tick(9.9)
    assert s.state == PENDING
    s.tick(10)
    assert s.states == [PENDING, FIRING] and s.ep.started_at == 10 and s.ep.pending_since == 0


def test_a_value_short_of_the_threshold_while_pending_ends_the_episode_without_firing():
    s = Series(Condition(">", 50, for_s=10))
    s.value(0, 60)
    s.value(5, 50)
    s.value(6, 60)
    s.tick(15)
    assert s.states == [PENDING, INACTIVE, PENDING]
    assert s.ep.pending_since == 6  # the timer started again: no partial credit


def test_resolve_threshold_keeps_it_firing_between_the_two_thresholds():
    s = Series(Condition(">", 50, resolve_threshold=45))
    s.value(0, 60)
    s.value(1, 48)
    s.value(2, 46)
    assert s.states == [FIRING]
    s.value(3, 45)
    assert s.states == [FIRING, RESOLVED]


def test_keep_firing_for_holds_a_recovered_alert_and_a_new_breach_restarts_the_window():
    s = Series(Condition(">", 50, keep_firing_for_s=10))
    s.value(0, 60)
    s.value(1, 40)
    s.tick(9)
    s.value(9, 70)  # breaching again: the window starts over from the next recovery
    s.value(10, 40)
    s.tick(19)
    assert s.states == [FIRING]
    s.tick(20)
    assert s.states == [FIRING, RESOLVED]


def test_a_signal_flapping_every_second_fires_once_with_keep_firing_for_and_repeats_per_interval():
    s = Series(Condition(">", 50, keep_firing_for_s=5, repeat_interval_s=60))
    for t in range(0, 300):
        s.value(t, 60 if t % 2 == 0 else 40)
        s.tick(t + 0.5)
    assert s.states == [FIRING]
    assert s.repeats == [60.5, 120.5, 180.5, 240.5]


def test_flapping_without_keep_firing_for_is_an_episode_per_crossing_as_in_prometheus():
    s = Series(Condition(">", 50))
    for t in range(4):
        s.value(t, 60 if t % 2 == 0 else 40)
    assert s.states == [FIRING, RESOLVED, FIRING, RESOLVED]


def test_repeat_interval_zero_never_repeats():
    s = Series(Condition(">", 50))
    s.value(0, 60)
    for t in range(1, 10_000, 100):
        s.value(t, 60)
        s.tick(t)
    assert s.repeats == []


@pytest.mark.parametrize("op,low,high", [("<", 10, 5), ("<=", 10, 10)])
def test_below_comparators(op, low, high):
    s = Series(Condition(op, low, resolve_threshold=12))
    s.value(0, 11)
    s.value(1, high)
    s.value(2, 11.5)
    assert s.states == [FIRING]
    s.value(3, 12.5)  # past the resolve threshold (for "<=": no longer <= 12)
    assert s.states == [FIRING, RESOLVED]


def test_no_data_policy_nodata_opens_a_nodata_state_and_data_back_resolves_it():
    s = Series(Condition(">", 50, no_data="nodata", no_data_after_s=30))
    s.value(0, 60)
    s.tick(29)
    assert s.state == FIRING
    s.tick(30)
    assert s.states == [FIRING, NODATA] and s.ep.started_at == 0
    s.tick(100)
    assert s.states == [FIRING, NODATA]  # once per gap
    s.value(101, 40)
    assert s.states == [FIRING, NODATA, RESOLVED]


def test_no_data_from_nothing_is_a_nodata_episode_that_never_fired():
    s = Series(Condition(">", 50, no_data="nodata", no_data_after_s=30))
    s.tick(30)
    assert s.states == [NODATA]
    s.value(31, 10)
    assert s.states == [NODATA, INACTIVE]


def test_no_data_then_a_breaching_value_fires_again_when_it_had_fired():
    s = Series(Condition(">", 50, for_s=60, no_data="nodata", no_data_after_s=30))
    s.value(0, 60)
    s.value(60, 60)
    s.tick(90)
    s.value(95, 70)
    assert s.states == [PENDING, FIRING, NODATA, FIRING]


def test_no_data_policy_keep_leaves_the_state_alone():
    s = Series(Condition(">", 50, no_data="keep", no_data_after_s=30))
    s.value(0, 60)
    s.tick(1000)
    assert s.states == [FIRING]


def test_no_data_policy_resolve_closes_the_episode():
    s = Series(Condition(">", 50, no_data="resolve", no_data_after_s=30))
    s.value(0, 60)
    s.tick(30)
    assert s.states == [FIRING, RESOLVED]
    s.tick(60)
    assert s.states == [FIRING, RESOLVED]


def test_no_data_policy_alerting_fires_after_for():
    s = Series(Condition(">", 50, for_s=20, no_data="alerting", no_data_after_s=30))
    s.tick(30)
    assert s.states == [PENDING]
    s.tick(49)
    assert s.states == [PENDING]
    s.tick(50)
    assert s.states == [PENDING, FIRING] and s.ep.value is None


def test_an_evaluation_error_is_its_own_state_and_never_resolves_a_firing_alert():
    cond = Condition(">", 50)
    out = observe(cond, None, 60, 0)
    out = fail(cond, out.episode, "division by zero", 1)
    assert [c.to_state for c in out.changes] == [ERROR]
    assert out.episode.started_at == 0 and out.episode.error == "division by zero"
    again = fail(cond, out.episode, "still broken", 2)
    assert again.changes == []  # one notification per error episode, not per evaluation
    back = observe(cond, again.episode, 70, 3)
    assert [c.to_state for c in back.changes] == [FIRING] and back.episode.error == ""


def test_an_error_from_nothing_then_a_clear_value_closes_it_as_inactive():
    cond = Condition(">", 50)
    out = fail(cond, None, "deployment gone", 0)
    assert out.episode.state == ERROR
    back = observe(cond, out.episode, 10, 1)
    assert back.episode is None and [c.to_state for c in back.changes] == [INACTIVE]


def test_a_restored_pending_episode_keeps_its_timer():
    cond = Condition(">", 50, for_s=60)
    saved = observe(cond, None, 70, 0).episode  # what an Alert row holds
    restored = Episode(**saved.__dict__)  # the evaluator restarted at t=40
    assert tick(cond, restored, 40, 40).episode.state == PENDING
    out = tick(cond, restored, 60, 40)
    assert [c.to_state for c in out.changes] == [FIRING]


def test_a_restored_firing_episode_is_not_notified_again_before_its_repeat():
    cond = Condition(">", 50, repeat_interval_s=3600)
    saved = observe(cond, None, 70, 0).episode
    out = observe(cond, saved, 71, 100)
    assert out.changes == [] and not out.repeat
    assert tick(cond, out.episode, 3599, 100).repeat is False
    assert tick(cond, out.episode, 3600, 3600).repeat is True
