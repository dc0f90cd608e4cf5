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


def _spin_cpu(seconds: float) -> None:
    """Use ``seconds`` of this process's CPU time, however long a busy machine makes that take."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


# /proc and psutil count CPU time in clock ticks: a reading may lag the precise time by one tick.
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def busy_child() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield child
    child.kill()
    child.wait()


def test_details_name_the_owner_command_and_memory_of_a_pid() -> None:
    details = ProcessDetails()
    me = os.getpid()
    cpu0_s, t0_s = time.process_time(), time.monotonic()
    first = details.lookup([me])[me]
    assert first.user == psutil.Process(me).username()
    assert "pytest" in (first.command or "") or "python" in (first.command or "")
    assert first.rss_bytes == pytest.approx(psutil.Process(me).memory_info().rss, rel=0.2)
    assert first.cpu_percent is None  # psutil's first reading is 0.0 by definition, not a measurement
    # psutil measures from the first lookup to the second; bracket both calls with our own readings
    # so the bounds hold however long the machine keeps this process waiting in between.
    cpu1_s, t1_s = time.process_time(), time.monotonic()
    _spin(0.2)
    cpu2_s, t2_s = time.process_time(), time.monotonic()
    second = details.lookup([me])[me].cpu_percent
    cpu3_s, t3_s = time.process_time(), time.monotonic()
    slack = 2 * TICK_S / (t2_s - t1_s) * 100 + 1
    assert second is not None
    assert (cpu2_s - cpu1_s) / (t3_s - t0_s) * 100 - slack <= second
    assert second <= (cpu3_s - cpu0_s) / (t2_s - t1_s) * 100 + slack


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

    # At least 0.1 s of the child's CPU time between the scans, however busy the machine: over the
    # fake 1 s interval that is at least 10% of a core.
    child = psutil.Process(busy_child.pid)
    used_s = sum(child.cpu_times()[:2])
    while sum(child.cpu_times()[:2]) < used_s + 0.1:
        time.sleep(0.01)
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
    clock = FakeClock()
    scanner = TopProcessScanner(limit=100_000, refresh_s=1.0, first_refresh_s=1.0, clock=clock)
    cpu0_s = time.process_time()
    scanner.current()
    cpu1_s = time.process_time()
    _spin_cpu(0.3)
    clock.now_s += 1.0  # the scans are one (fake) second apart
    cpu2_s = time.process_time()
    table = scanner.current()
    cpu3_s = time.process_time()
    (me,) = [p for p in table.by_cpu if p.pid == os.getpid()]
    # CPU seconds over one second, in percent of one core (not of the machine's cores): ~30%.
    assert (cpu2_s - cpu1_s - TICK_S) * 100 - 0.1 <= (me.cpu_percent or 0)
    assert (me.cpu_percent or 0) <= (cpu3_s - cpu0_s + TICK_S) * 100 + 0.1


def test_the_portable_scan_agrees_with_the_procfs_one() -> None:
    me = os.getpid()
    fast, portable = _scan_procfs()[me], _scan_psutil()[me]
    assert fast[1] == pytest.approx(portable[1], abs=0.1)  # CPU seconds
    assert fast[2] == pytest.approx(portable[2], rel=0.1)  # RSS bytes


def test_while_nobody_watches_the_table_it_is_rescanned_only_every_idle_period() -> None:
    clock = FakeClock()
    scans = []

    def scan() -> dict[int, tuple[float, float, int]]:
        scans.append(clock())
        return {1: (0.0, len(scans), 1024)}

    scanner = TopProcessScanner(
        refresh_s=10.0, first_refresh_s=1.0, idle_refresh_s=60.0, clock=clock, scan=scan
    )
    scanner.watched = False
    scanner.current()  # the first two scans still come at once: a table is there when someone looks
    clock.now_s += 1.0
    scanner.current()
    for _ in range(60):
        clock.now_s += 1.0
        scanner.current()
    assert scans == [1000.0, 1001.0, 1061.0]
    clock.now_s += 15.0
    scanner.watched = True  # a page opened: a scan at once, then every refresh_s
    table = scanner.current()
    assert scans[-1] == 1076.0
    assert table.by_cpu[0].cpu_percent == round(1 / 15 * 100, 1)  # CPU % since the last scan
    clock.now_s += 9.0
    scanner.current()
    clock.now_s += 1.0
    scanner.current()
    assert scans == [1000.0, 1001.0, 1061.0, 1076.0, 1086.0]


def test_a_process_that_exits_between_the_scan_and_its_row_is_left_out() -> None:
    # A short-lived process, the largest by memory at the scan, gone when its row is made: the
    # table shows the next one instead of a row with no command.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = os.getpid()
    stats = {gone.pid: (1.0, 5.0, 10 << 30), me: (2.0, 1.0, 1 << 30), os.getppid(): (3.0, 1.0, 1 << 20)}
    clock = FakeClock()
    scanner = TopProcessScanner(limit=2, refresh_s=1.0, first_refresh_s=1.0, clock=clock, scan=lambda: stats)
    table = scanner.current()
    assert [p.pid for p in table.by_rss] == [me, os.getppid()]
    assert all(p.command for p in table.by_rss)
