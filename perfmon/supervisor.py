"""Runs the stack's processes as children of one parent and keeps them all-or-nothing:
a child that dies is reported by name and the rest are stopped, so nothing runs half-dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, env: dict[str, str], log: Callable[[str], None] | None = None) -> None:
        self.env = env
        self.children: list[Child] = []
        self.log = log or (lambda message: print(f"perfmon: {message}", file=sys.stderr, flush=True))
        self._stop_requested: int | None = None

    def add(self, name: str, argv: list[str]) -> None:
        self.children.append(Child(name, argv))

    def start(self) -> None:
        for child in self.children:
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            child.process = subprocess.Popen(
                child.argv, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=os.setpgrp
            )

    def _request_stop(self, signum: int, _frame) -> None:
        self._stop_requested = signum

    def wait(self, on_tick: Callable[[], None] | None = None) -> int:
        """Block until a signal or a dead child; stop everything; return the exit code for the stack."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        code = 0
        while self._stop_requested is None:
            dead = next((c for c in self.children if c.process and c.process.poll() is not None), None)
            if dead is not None:
                self.log(
                    f"{dead.name} exited unexpectedly with code {dead.process.returncode}; stopping the stack"
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

    def stop(self, timeout_s: float = 15.0) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
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
