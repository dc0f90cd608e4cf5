from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

import psutil
import pytest

from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import FakePynvml, a10_without_extras, h100
from workers.sampler.loop import Sampler
from workers.sampler.nvml import NvmlUnavailable
from workers.sampler.sample import GpuSample, NodeSample


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


class StubNvml:
    """Stands in for an open Nvml session."""

    def __init__(self, count: int = 1, fail: bool = False) -> None:
        self.count = count
        self.fail = fail
        self.closed = False
        self.warnings: tuple[str, ...] = ()

    def device_count(self) -> int:
        return self.count

    def sample(self) -> tuple[GpuSample, ...]:
        if self.fail:
            raise RuntimeError("bindings blew up")
        return tuple(
            GpuSample(i, f"GPU-{i}", "Fake GPU", 50, 10, 1, 2, 3, 40, 100.0, 300.0, 1500, 5000, None)
            for i in range(self.count)
        )

    def close(self) -> None:
        self.closed = True


class Opener:
    """Fails with ``reason`` until ``succeed`` is set, counting attempts."""

    def __init__(self, reason: str = "no driver") -> None:
        self.reason = reason
        self.attempts = 0
        self.then: StubNvml | None = None

    def __call__(self) -> StubNvml:
        self.attempts += 1
        if self.then is None:
            raise NvmlUnavailable(self.reason)
        return self.then


def test_a_node_without_nvml_still_reports_its_host() -> None:
    sampler = Sampler("n1", nvml_opener=Opener("NVML library not found"))
    before = time.time()
    sample = sampler.tick()
    after = time.time()
    assert sample.node == "n1"
    assert sample.gpus == ()
    assert sample.gpu_status == "no GPU: NVML library not found"
    assert sample.host.memory_total_bytes > 0
    assert before <= sample.ts <= after  # wall-clock seconds, taken during the tick
    assert sample.to_json()["gpus"] == []


def test_it_retries_nvml_only_after_the_retry_interval() -> None:
    clock = FakeClock()
    opener = Opener()
    sampler = Sampler("n1", nvml_opener=opener, nvml_retry_s=60.0, clock=clock)
    assert opener.attempts == 1

    clock.now_s += 30
    sampler.tick()
    assert opener.attempts == 1

    opener.then = StubNvml(count=2)
    clock.now_s += 31
    sample = sampler.tick()
    assert opener.attempts == 2
    assert sample.gpu_status == "ok"
    assert [g.index for g in sample.gpus] == [0, 1]

    sampler.tick()
    assert opener.attempts == 2


def test_zero_devices_means_no_gpu() -> None:
    opener = Opener()
    opener.then = StubNvml(count=0)
    sampler = Sampler("n1", nvml_opener=opener)
    assert sampler.tick().gpu_status == "no GPU"
    assert opener.then.closed


def test_a_failing_gpu_read_does_not_escape_tick() -> None:
    opener = Opener()
    opener.then = StubNvml(fail=True)
    sampler = Sampler("n1", nvml_opener=opener, nvml_retry_s=60.0)
    sample = sampler.tick()
    assert sample.gpus == ()
    assert sample.gpu_status.startswith("no GPU: NVML error")


def _run_in_thread(
    sampler: Sampler, publish: Callable[[NodeSample], None], interval_s: float = 0.1
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=sampler.run, args=(publish, stop, interval_s), daemon=True)
    thread.start()
    return thread, stop


class FakeStop:
    """The loop's stop event on a fake clock: wait(timeout) moves time on instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True

    def wait(self, timeout: float) -> bool:
        self.waits.append(round(timeout, 9))
        if not self._set:
            self.clock.now_s += timeout
        return self._set


def _run_on_fake_clock(
    publish_s: Callable[[int], float], stop_after: int, raises: bool = False
) -> tuple[list, FakeStop]:
    """Run the loop at 0.1 s; publish i takes ``publish_s(i)`` seconds and the stop comes with the
    ``stop_after``-th publish. Returns (the clock at each publish, the stop event)."""
    clock = FakeClock()
    stop = FakeStop(clock)
    at: list[float] = []

    def publish(sample: NodeSample) -> None:
        at.append(round(clock.now_s - 1000.0, 9))
        clock.now_s += publish_s(len(at) - 1)
        if len(at) == stop_after:
            stop.set()
        if raises:
            raise ConnectionError("broker down")

    Sampler("n1", nvml_opener=Opener(), clock=clock).run(publish, stop, 0.1)  # type: ignore[arg-type]
    return at, stop


def test_run_publishes_at_the_interval_without_drifting_and_stops_at_once() -> None:
    # Each publish takes 30 ms: the loop waits the rest of the interval, so ticks stay 0.1 s apart.
    at, stop = _run_on_fake_clock(lambda _i: 0.03, stop_after=6)
    assert at == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert stop.waits[:5] == [0.07] * 5
    # Set during the sixth publish: the loop's wait on the event returns at once, and no 7th tick.
    assert len(stop.waits) == 6 and len(at) == 6


def test_after_a_stall_missed_ticks_are_dropped_not_fired_in_a_burst() -> None:
    at, _ = _run_on_fake_clock(lambda i: 0.35 if i == 1 else 0.0, stop_after=5)
    # The second publish stalls until 0.45: one tick at once, then back on the 0.1 s grid.
    assert at == [0.0, 0.1, 0.45, 0.5, 0.6]


def test_run_stops_when_the_event_is_set_from_another_thread() -> None:
    published: list[NodeSample] = []
    thread, stop = _run_in_thread(Sampler("n1", nvml_opener=Opener()), published.append)
    while not published:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert all(s.node == "n1" for s in published)


def test_run_survives_a_publisher_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="workers.sampler.loop"):
        at, _ = _run_on_fake_clock(lambda _i: 0.0, stop_after=3, raises=True)
    assert at == [0.0, 0.1, 0.2]  # every publish raised, and the loop went on
    assert len([r for r in caplog.records if "failed; carrying on" in r.getMessage()]) == 3
    assert "broker down" in caplog.text


@pytest.mark.parametrize("interval_s", [0.05, 10.5])
def test_run_refuses_intervals_out_of_range(interval_s: float) -> None:
    with pytest.raises(ValueError):
        Sampler("n1", nvml_opener=Opener()).run(lambda s: None, threading.Event(), interval_s)


def test_gpu_warnings_and_process_owners_reach_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    me = os.getpid()
    fake = FakePynvml([h100(procs=[{"pid": me, "used": 1024**3}]), a10_without_extras()])
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    sampler = Sampler("n1")
    first = sampler.tick()
    assert first.gpu_status == "ok"
    assert first.warnings == (
        "GPU 1: persistence mode is off; the first CUDA call after idle pays driver start-up",
    )
    (row,) = first.gpus[0].processes or ()
    assert row.pid == me
    assert row.user == psutil.Process(me).username()
    assert "pytest" in (row.command or "")
    assert row.rss_bytes and row.rss_bytes > 10 * 1024**2
    assert row.cpu_percent is None  # nothing to compare with yet
    time.sleep(0.05)
    second = sampler.tick()
    assert (second.gpus[0].processes or ())[0].cpu_percent is not None

    data = json.loads(json.dumps(second.to_json()))
    assert set(data) == {"node", "ts", "gpu_status", "host", "gpus", "warnings"}
    assert data["warnings"] == list(second.warnings)
    assert data["gpus"][0]["processes"][0]["pid"] == me
    assert data["gpus"][1]["fan_percent"] is None
