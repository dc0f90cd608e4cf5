"""Host-side facts about given processes (user, command, CPU %, RSS) through psutil.

Used to put a face on the PIDs NVML reports: those are host PIDs, so inside a container
without ``--pid=host`` they are not visible here and their facts read as None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from workers.sampler.redact import redact_argv
from workers.sampler.sample import GpuSample

COMMAND_MAX_CHARS = 200  # a sample goes to every browser each tick; a 10 kB command line must not


@dataclass(frozen=True)
class HostFacts:
    """``cpu_percent`` is of one core (may pass 100), None the first time a PID is seen."""

    user: str | None = None
    command: str | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None


def command_of(proc: psutil.Process) -> tuple[str | None, bool]:
    """The command line as ``ps -o args`` shows it, secrets hidden (see redact.py); kernel threads
    as "[name]". Redacted here, before the sample leaves the node, so no secret reaches Redis,
    the database or a browser.

    The flag says whether the text is final. A process read in the instant between ``execve``
    dropping its old memory and laying out its new arguments has an empty command line too;
    it shows as "[name]" for now and must be read again, not remembered."""
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        cmdline = []
    if cmdline:
        # Redacted before truncation: a cut could leave half a secret no pattern recognises.
        return " ".join(redact_argv(cmdline))[:COMMAND_MAX_CHARS], True
    try:
        return f"[{proc.name()}]"[:COMMAND_MAX_CHARS], _is_kernel_thread(proc)
    except psutil.Error:
        return None, False


def _is_kernel_thread(proc: psutil.Process) -> bool:
    """Kernel threads are kthreadd (PID 2) and its children; only they never get a command line."""
    try:
        return proc.pid == 2 or proc.ppid() == 2
    except psutil.Error:
        return False


def user_of(proc: psutil.Process) -> str | None:
    """The owner's name (its UID as text when the name is unknown, as in a container)."""
    try:
        return proc.username()
    except (psutil.Error, KeyError):
        return None


@dataclass
class _Known:
    proc: psutil.Process
    user: str | None
    command: str | None
    command_final: bool
    primed: bool = False


class ProcessDetails:
    """Looks up PIDs, keeping one ``psutil.Process`` per PID between calls.

    ``psutil.Process.cpu_percent()`` measures since its own previous call, so the object must
    live from one tick to the next; user and command are read once per PID. PIDs not asked
    for in a call are forgotten, which keeps memory flat.
    """

    def __init__(self) -> None:
        self._known: dict[int, _Known] = {}

    def lookup(self, pids: Iterable[int]) -> dict[int, HostFacts]:
        """Facts for each PID; all None for a PID that is gone or not visible from here."""
        wanted = set(pids)
        for pid in list(self._known):
            if pid not in wanted:
                del self._known[pid]
        return {pid: self._facts(pid) for pid in wanted}

    def enrich(self, gpus: tuple[GpuSample, ...]) -> tuple[GpuSample, ...]:
        """``gpus`` with the host facts filled into every per-process row."""
        facts = self.lookup(p.pid for g in gpus for p in (g.processes or ()))
        if not facts:
            return gpus
        return tuple(
            dataclasses.replace(
                g,
                processes=tuple(
                    dataclasses.replace(p, **dataclasses.asdict(facts[p.pid])) for p in g.processes
                ),
            )
            if g.processes
            else g
            for g in gpus
        )

    def _facts(self, pid: int) -> HostFacts:
        known = self._known.get(pid)
        try:
            if known is None or not known.proc.is_running():  # is_running() also catches PID reuse
                proc = psutil.Process(pid)
                known = self._known[pid] = _Known(proc, user_of(proc), *command_of(proc))
            elif not known.command_final:
                known.command, known.command_final = command_of(known.proc)
            with known.proc.oneshot():
                cpu_percent = known.proc.cpu_percent(None)
                rss_bytes = int(known.proc.memory_info().rss)
        except psutil.NoSuchProcess:
            self._known.pop(pid, None)
            return HostFacts()
        except psutil.Error:  # AccessDenied: another user's process on a locked-down host
            return HostFacts(user=known.user, command=known.command) if known else HostFacts()
        # psutil's first cpu_percent() is 0.0 by definition, not a measurement.
        primed, known.primed = known.primed, True
        return HostFacts(known.user, known.command, cpu_percent if primed else None, rss_bytes)
