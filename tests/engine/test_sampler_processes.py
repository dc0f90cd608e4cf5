"""Host facts about processes: the GPU process rows' owners and the top-processes table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from workers.sampler.process_info import ProcessDetails
from workers.sampler.top_processes import TopProcessScanner, _scan_procfs, _scan_psutil


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def busy_child() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield child
    child.kill()
    child.wait()


def test_details_name_the_owner_command_and_memory_of_a_pid() -> None:
    details = ProcessDetails()
    me = os.getpid()
    first = details.lookup([me])[me]
    assert first.user == psutil.Process(me).username()
    assert "pytest" in (first.command or "") or "python" in (first.command or "")
    assert first.rss_bytes == pytest.approx(psutil.Process(me).memory_info().rss, rel=0.2)
    assert first.cpu_percent is None  # psutil's first reading is 0.0 by definition, not a measurement
    cpu0_s, t0_s = time.process_time(), time.monotonic()
    _spin(0.2)
    expected = (time.process_time() - cpu0_s) / (time.monotonic() - t0_s) * 100
    assert details.lookup([me])[me].cpu_percent == pytest.approx(expected, abs=20)


def test_a_pid_that_is_gone_reads_as_all_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    facts = ProcessDetails().lookup([child.pid])[child.pid]
    assert (facts.user, facts.command, facts.cpu_percent, facts.rss_bytes) == (None, None, None, None)


def test_top_table_finds_a_busy_process_and_refreshes_only_every_few_seconds(
    busy_child: subprocess.Popen[bytes],
) -> None:
    clock = FakeClock()
    scans = []

    def scan() -> dict[int, tuple[float, float, int]]:
        scans.append(clock())
        return _scan_procfs()

    # Room for 50 rows: other busy processes on a shared machine must not crowd the child out.
    scanner = TopProcessScanner(limit=50, refresh_s=5.0, first_refresh_s=1.0, clock=clock, scan=scan)
    # The scanner was made after the child started: first scan has no CPU baseline yet.
    first = scanner.current()
    assert first.by_cpu == ()
    assert 0 < len(first.by_rss) <= 50
    rss = [p.rss_bytes or 0 for p in first.by_rss]
    assert rss == sorted(rss, reverse=True)
    assert all(p.command for p in first.by_rss)

    time.sleep(0.3)
    clock.now_s += 1.0
    table = scanner.current()
    busy = [p for p in table.by_cpu if p.pid == busy_child.pid]
    assert busy, [(p.pid, p.command, p.cpu_percent) for p in table.by_cpu]
    assert "while True" in (busy[0].command or "")
    assert (busy[0].cpu_percent or 0) > 5

    busy_child.kill()
    busy_child.wait()
    clock.now_s += 4.9
    assert scanner.current() is table  # repeated, not rescanned
    clock.now_s += 0.1
    assert busy_child.pid not in [p.pid for p in scanner.current().by_cpu]
    assert scans == [1000.0, 1001.0, 1006.0]


def test_cpu_percent_is_of_one_core_over_the_interval() -> None:
    # Every process listed, so a busy shared machine cannot push this one off the table.
    scanner = TopProcessScanner(limit=100_000, refresh_s=0.2, first_refresh_s=0.2)
    scanner.current()
    cpu0_s, t0_s = time.process_time(), time.monotonic()
    _spin(0.3)
    expected = (time.process_time() - cpu0_s) / (time.monotonic() - t0_s) * 100
    (me,) = [p for p in scanner.current().by_cpu if p.pid == os.getpid()]
    assert me.cpu_percent == pytest.approx(expected, abs=15)
    assert expected > 5  # the spin did run


def test_the_portable_scan_agrees_with_the_procfs_one() -> None:
    me = os.getpid()
    fast, portable = _scan_procfs()[me], _scan_psutil()[me]
    assert fast[1] == pytest.approx(portable[1], abs=0.1)  # CPU seconds
    assert fast[2] == pytest.approx(portable[2], rel=0.1)  # RSS bytes
