"""Runs the stack's processes as children of one parent and keeps them running.

A child that dies is restarted after a backoff (0.5 s, doubling up to 10 s), as systemd's
Restart=on-failure or supervisord do, so one crash does not leave the dashboard refusing
connections. A child that keeps dying (RESTART_BURST deaths within RESTART_WINDOW_S) is given up on:
the supervisor names it, stops the rest and exits non-zero, rather than restarting it forever."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

RESTART_BURST = 5
RESTART_WINDOW_S = 60.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    # Set for a process the supervisor watches but did not start (the private Redis): how to start
    # it again; its owner stops it, after the others.
    restart: Callable[[], subprocess.Popen] | None = field(default=None, repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)
    deaths: deque[float] = field(default_factory=deque, repr=False)
    restart_at: float | None = None

    def backoff_s(self) -> float:
        return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (len(self.deaths) - 1))


class Supervisor:
    def __init__(self, env: dict[str, str], log: Callable[[str], None] | None = None) -> None:
        self.env = env
        self.children: list[Child] = []
        self.log = log or (lambda message: print(f"perfmon: {message}", file=sys.stderr, flush=True))
        self._stop_requested: int | None = None

    def add(self, name: str, argv: list[str]) -> None:
        self.children.append(Child(name, argv))

    def watch(self, name: str, process: subprocess.Popen, restart: Callable[[], subprocess.Popen]) -> None:
        """Watch a process started elsewhere; `restart` starts it again and returns the new one."""
        self.children.append(Child(name, [], restart=restart, process=process))

    def start(self) -> None:
        for child in self.children:
            if child.process is None:
                self._spawn(child)

    def _spawn(self, child: Child) -> None:
        if child.restart is not None:
            child.process = child.restart()
            return
        # Own process group: Ctrl-C reaches only us, and we stop the children in order.
        # PERFMON_ROLE: each child names itself to the database by its name here ("web-2", "sampler").
        child.process = subprocess.Popen(
            child.argv,
            env={**self.env, "PERFMON_ROLE": child.name},
            stdin=subprocess.DEVNULL,
            preexec_fn=os.setpgrp,
        )

    def _request_stop(self, signum: int, _frame) -> None:
        self._stop_requested = signum

    def wait(self, on_tick: Callable[[], None] | None = None) -> int:
        """Block until a signal or a child that keeps dying; stop everything; return the exit code."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        code = 0
        while self._stop_requested is None:
            given_up = self._check_children()
            if given_up is not None:
                self.log(
                    f"{given_up.name} died {len(given_up.deaths)} times within {RESTART_WINDOW_S:.0f} s "
                    f"(last exit code {given_up.process.returncode}); giving up and stopping the stack"
                )
                code = 1
                break
            if on_tick:
                on_tick()
            time.sleep(0.2)
        else:
            self.log(f"received {signal.Signals(self._stop_requested).name}, stopping")
        self.stop()
        return code

    def _check_children(self) -> Child | None:
        """Schedule restarts of dead children and run those that are due; the child to give up on, if any."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    try:
                        self._spawn(child)
                    except Exception as exc:  # counts as one more death; the backoff grows
                        self.log(f"could not restart {child.name}: {exc}")
                        child.deaths.append(now)
                        child.restart_at = now + child.backoff_s()
                continue
            if child.process is None or child.process.poll() is None:
                continue
            if child.restart is None:
                # What it left behind in its process group (a Celery worker's pool processes, still
                # measuring) goes too: the job is failed as "worker lost" and must not run on unseen.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGKILL)
            child.deaths.append(now)
            while child.deaths and child.deaths[0] < now - RESTART_WINDOW_S:
                child.deaths.popleft()
            if len(child.deaths) >= RESTART_BURST:
                return child
            delay_s = child.backoff_s()
            self.log(
                f"{child.name} exited unexpectedly with code {child.process.returncode}; "
                f"restarting it in {delay_s:.1f} s"
            )
            child.restart_at = now + delay_s
        return None

    def stop(self, timeout_s: float = 15.0) -> None:
        running = [c for c in self.children if c.restart is None and c.process and c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.name} did not stop in {timeout_s:.0f} s; killing it")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
