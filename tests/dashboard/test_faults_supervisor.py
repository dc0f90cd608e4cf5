"""The supervisor restarts a child that dies, with backoff, and gives up (naming it) only when the
child keeps dying within the window. Real processes; backoffs shortened so the test stays quick."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from perfmon import supervisor
from perfmon.supervisor import Supervisor


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(supervisor, "BACKOFF_FIRST_S", 0.05)
    monkeypatch.setattr(supervisor, "BACKOFF_MAX_S", 0.2)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_keeps_dying_is_given_up_on_and_named(monkeypatch):
    messages: list[str] = []
    stack = Supervisor(env={}, log=messages.append)
    stack.add("flaky", python("import sys; sys.exit(3)"))
    stack.add("steady", python("import time; time.sleep(60)"))
    stack.start()
    monkeypatch.setattr("signal.signal", lambda *_args: None)
    assert stack.wait() == 1
    restarts = [m for m in messages if m.startswith("flaky exited unexpectedly with code 3; restarting")]
    assert len(restarts) == supervisor.RESTART_BURST - 1
    assert f"flaky died {supervisor.RESTART_BURST} times within" in messages[-1]
    steady = stack.children[1].process
    assert steady.poll() is not None, "the rest of the stack was stopped"


def test_a_child_that_dies_once_is_restarted_and_the_stack_runs_on(monkeypatch, tmp_path):
    marker = tmp_path / "died-once"
    # Dies on its first start only, like a worker killed once.
    code = f"import pathlib, sys, time\np = pathlib.Path({str(marker)!r})\nif not p.exists():\n    p.touch(); sys.exit(1)\ntime.sleep(60)"
    messages: list[str] = []
    stack = Supervisor(env={}, log=messages.append)
    stack.add("worker", python(code))
    stack.start()
    first = stack.children[0].process
    for _ in range(100):  # up to ~20 s: the supervisor loop ticks every 0.2 s
        if stack._check_children() is not None:
            pytest.fail("gave up on a child that died once")
        current = stack.children[0].process
        if current is not first and current.poll() is None:
            break
        threading.Event().wait(0.2)
    else:
        pytest.fail(f"the child was not restarted: {messages}")
    assert len(messages) == 1 and messages[0].startswith("worker exited unexpectedly with code 1; restarting")
    stack.stop()
    assert current.poll() is not None


def test_a_watched_process_is_started_again_by_its_owner():
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        started.append(subprocess.Popen(python("import time; time.sleep(60)")))
        return started[-1]

    stack = Supervisor(env={}, log=lambda _m: None)
    stack.watch("redis", start(), restart=start)
    started[0].kill()
    started[0].wait()
    for _ in range(100):
        stack._check_children()
        if len(started) == 2:
            break
        threading.Event().wait(0.1)
    assert len(started) == 2 and started[1].poll() is None
    stack.stop()
    assert started[1].poll() is None, "its owner stops it, after the rest"
    started[1].kill()
    started[1].wait()
