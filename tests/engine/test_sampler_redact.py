"""Secrets on command lines are hidden before a sample leaves the node."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from workers.sampler.process_info import ProcessDetails
from workers.sampler.redact import redact_argv, redact_command_line
from workers.sampler.top_processes import _user_and_command

TOKEN = "pm_Zx81kLmn0pQrsTuvWxyz0123456789abcdefGHIJ"


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (
            ["curl", "-H", f"Authorization: Bearer {TOKEN}", "http://c/api/jobs"],
            ["curl", "-H", "Authorization: Bearer ***", "http://c/api/jobs"],
        ),
        (
            ["curl", "-H", "Authorization:", "Bearer", TOKEN],
            ["curl", "-H", "Authorization:", "Bearer", "***"],
        ),
        (["curl", "--header=Authorization: s3cr3t"], ["curl", "--header=Authorization: ***"]),
        (["app", "--password=hunter2", "--user", "bob"], ["app", "--password=***", "--user", "bob"]),
        (["app", "--db-password", "hunter2", "-v"], ["app", "--db-password", "***", "-v"]),
        (["app", "--api-key", "k-123", "--port", "80"], ["app", "--api-key", "***", "--port", "80"]),
        (
            ["env", "DB_PASSWORD=x1", "HF_TOKEN=hf_abc", "python"],
            ["env", "DB_PASSWORD=***", "HF_TOKEN=***", "python"],
        ),
        (["psql", "postgres://bob:s3cret@db:5432/x"], ["psql", "postgres://bob:***@db:5432/x"]),
        (["worker", "redis://:pw@redis:6379/0"], ["worker", "redis://:***@redis:6379/0"]),
        (["x", "host=db user=bob password=pw"], ["x", "host=db user=bob password=***"]),
        (["x", "https://h/p?access_token=abc&page=2"], ["x", "https://h/p?access_token=***&page=2"]),
        (["x", '{"api_key": "abc", "n": 1}'], ["x", '{"api_key": "***", "n": 1}']),
        (["x", f"--notify={TOKEN}"], ["x", "--notify=pm_***"]),
        (["x", "ghp_abcdefghijklmnopqrstuvwxyz0123"], ["x", "***"]),
        (["mysql", "-u", "root", "-pSecret"], ["mysql", "-u", "root", "-p***"]),
        (["redis-cli", "-a", "pw", "ping"], ["redis-cli", "-a", "***", "ping"]),
    ],
)
def test_secret_values_are_hidden_and_names_kept(argv, shown) -> None:
    assert redact_argv(argv) == shown


def test_ordinary_command_lines_are_left_alone() -> None:
    for argv in [
        ["perfmon", "agent", "--redis", "redis://central:6379/0", "--name", "gpu-a"],
        ["python", "train.py", "--max-tokens", "512", "--lr=0.1", "--tokenizer", "bpe"],
        ["postgres: bob perfmon 127.0.0.1(5432) idle"],
        ["[kworker/0:1]"],
    ]:
        assert redact_argv(argv) == argv


def test_a_joined_command_line_is_redacted_too() -> None:
    line = f"curl -H Authorization: Bearer {TOKEN} --password hunter2 http://c/"
    assert redact_command_line(line) == "curl -H Authorization: Bearer *** --password *** http://c/"


def test_a_real_process_reaches_the_sample_with_its_secrets_hidden() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "--password=hunter2",
            f"Authorization: Bearer {TOKEN}",
        ]
    )
    try:
        _wait_for_argv(child.pid)
        # Both paths a command line takes into a sample: the top-processes table and GPU process rows.
        for command in [
            _user_and_command(child.pid)[1],
            ProcessDetails().lookup([child.pid])[child.pid].command,
        ]:
            assert command is not None
            assert "hunter2" not in command and TOKEN[3:] not in command
            assert "--password=*** Authorization: Bearer ***" in command
    finally:
        child.kill()
        child.wait()


def _wait_for_argv(pid: int) -> None:
    """Popen returns once exec has closed the child's descriptors, a moment before the kernel
    lays out the new argv: until then /proc/<pid>/cmdline is empty."""
    deadline = time.monotonic() + 30
    while not psutil.Process(pid).cmdline():
        assert time.monotonic() < deadline, "the child never showed a command line"
        time.sleep(0.01)


def test_a_process_read_mid_exec_is_read_again_once_its_argv_appears(monkeypatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--token=abc123"])
    try:
        _wait_for_argv(child.pid)
        real_cmdline = psutil.Process.cmdline
        monkeypatch.setattr(psutil.Process, "cmdline", lambda self: [])
        details = ProcessDetails()
        assert _user_and_command(child.pid)[2] is False  # not final: the top table asks again next scan
        assert details.lookup([child.pid])[child.pid].command.startswith("[")
        monkeypatch.setattr(psutil.Process, "cmdline", real_cmdline)
        command = details.lookup([child.pid])[child.pid].command
        assert "time.sleep(60) --token=***" in command
    finally:
        child.kill()
        child.wait()
