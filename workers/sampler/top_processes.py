"""The host's top processes by CPU and by resident memory, like ``top`` sorted two ways.

A full process scan is the dearest thing the host probe does (tens of microseconds per
process), so it runs every ``refresh_s`` seconds and the last table is repeated in between.
On Linux the scan reads ``/proc/<pid>/stat`` directly (one small read per process, about a
third of psutil's cost for the same numbers); elsewhere it goes through psutil. User and command
are looked up only for the few processes that make the table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil

from workers.sampler.process_info import command_of, user_of
from workers.sampler.sample import ProcessRow, TopProcesses

# pid -> (start time as an opaque number, CPU seconds so far, RSS bytes)
_Stats = dict[int, tuple[float, float, int]]

_PROC = "/proc"


def _scan_procfs() -> _Stats:
    clk_tck = os.sysconf("SC_CLK_TCK")
    page_bytes = os.sysconf("SC_PAGE_SIZE")
    stats: _Stats = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            # os.open/os.read, not open(): no buffered file object per process (a third of the scan).
            fd = os.open(f"{_PROC}/{name}/stat", os.O_RDONLY)
            try:
                data = os.read(fd, 4096)
            finally:
                os.close(fd)
            # The command name (field 2) may hold spaces and parentheses: split after the last ")".
            fields = data[data.rfind(b")") + 2 :].split()
            # Fields 14 utime, 15 stime, 22 starttime, 24 rss (proc(5)); fields[0] is field 3.
            cpu_s = (int(fields[11]) + int(fields[12])) / clk_tck
            stats[int(name)] = (float(fields[19]), cpu_s, int(fields[21]) * page_bytes)
        except (OSError, IndexError, ValueError):  # the process ended mid-scan
            continue
    return stats


def _scan_psutil() -> _Stats:
    stats: _Stats = {}
    for proc in psutil.process_iter(["create_time", "cpu_times", "memory_info"]):
        info = proc.info
        if info["cpu_times"] is None or info["memory_info"] is None:
            continue
        cpu_s = info["cpu_times"].user + info["cpu_times"].system
        stats[proc.pid] = (info["create_time"] or 0.0, cpu_s, int(info["memory_info"].rss))
    return stats


def scan_processes() -> _Stats:
    """Start time, CPU seconds and RSS bytes of every process now."""
    return _scan_procfs() if os.path.exists(f"{_PROC}/self/stat") else _scan_psutil()


class TopProcessScanner:
    """Keeps the top ``limit`` processes by CPU % (of one core, since the previous scan) and by RSS.

    The first scan has nothing to compare CPU time with, so its CPU table is empty and the next
    scan comes after ``first_refresh_s`` rather than the full ``refresh_s``. While ``watched`` is
    False (nobody has the node's page open: the table goes nowhere else) it scans only every
    ``idle_refresh_s``; once watched again it scans at the next call if ``refresh_s`` has passed,
    its CPU % then covering the time since the last scan. ``clock`` is monotonic seconds; tests
    move it.
    """

    def __init__(
        self,
        *,
        limit: int = 10,
        refresh_s: float = 5.0,
        first_refresh_s: float = 1.0,
        idle_refresh_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        scan: Callable[[], _Stats] = scan_processes,
    ) -> None:
        self._limit = limit
        self._refresh_s = refresh_s
        self._idle_refresh_s = max(refresh_s, idle_refresh_s)
        self.watched = True
        self._scans = 0
        self._first_refresh_s = min(first_refresh_s, refresh_s)
        self._clock = clock
        self._scan = scan
        self._previous: _Stats | None = None
        self._scanned_at = 0.0
        self._due = float("-inf")
        self._current = TopProcesses()
        # (pid, start) -> (user, command): looked up once per process that makes the table.
        self._names: dict[tuple[int, float], tuple[str | None, str | None]] = {}

    def current(self) -> TopProcesses:
        """The table, rescanned when the refresh interval has passed."""
        now = self._clock()
        due = self._due
        if not self.watched and self._scans >= 2:  # the first CPU table is made all the same
            due = max(due, self._scanned_at + self._idle_refresh_s)
        if now >= due:
            self._refresh(now)
        return self._current

    def _refresh(self, now: float) -> None:
        stats = self._scan()
        self._scans += 1
        previous, elapsed_s = self._previous, now - self._scanned_at
        self._previous, self._scanned_at = stats, now
        self._due = now + (self._refresh_s if previous is not None else self._first_refresh_s)

        cpu_percent: dict[int, float] = {}
        if previous is not None and elapsed_s > 0:
            for pid, (start, cpu_s, _) in stats.items():
                before = previous.get(pid)
                # A PID missing from the previous scan (or reused since) started after it:
                # all its CPU time falls inside the interval.
                before_s = before[1] if before is not None and before[0] == start else 0.0
                cpu_percent[pid] = round(max(0.0, cpu_s - before_s) / elapsed_s * 100.0, 1)
        by_cpu = sorted(cpu_percent, key=cpu_percent.__getitem__, reverse=True)
        by_rss = sorted(stats, key=lambda pid: stats[pid][2], reverse=True)

        names = {key: self._names[key] for key in self._names if stats.get(key[0], (None,))[0] == key[1]}
        self._names = names

        def row(pid: int) -> ProcessRow:
            start, _, rss_bytes = stats[pid]
            key = (pid, start)
            if key in names:
                user, command = names[key]
            else:
                user, command, final = _user_and_command(pid)
                if final:
                    names[key] = user, command
            return ProcessRow(pid, user, command, cpu_percent.get(pid), rss_bytes)

        def rows(ranked: list[int]) -> tuple[ProcessRow, ...]:
            out: list[ProcessRow] = []
            for pid in ranked:
                if len(out) == self._limit:
                    break
                found = row(pid)
                # Exited since the scan (a short-lived process): not one to show; the next fills in.
                if found.command is not None:
                    out.append(found)
            return tuple(out)

        self._current = TopProcesses(by_cpu=rows(by_cpu), by_rss=rows(by_rss))


def _user_and_command(pid: int) -> tuple[str | None, str | None, bool]:
    """Owner, command line and whether that line is final (see ``command_of``)."""
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return None, None, False
    return user_of(proc), *command_of(proc)
