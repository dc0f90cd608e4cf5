"""Starts the real `perfmon up` in a subprocess, as a user would, with its own data dir and
(no REDIS_URL given) its own private Redis."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from perfmon.private_redis import free_port
from scripts.fleet_sim import Fleet, start_fleet

NODE_NAME = "e2e-node"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct-horse-battery-7"


@dataclass
class Stack:
    process: subprocess.Popen
    url: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        return _send(request)

    def post(self, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        return _send(request)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "perfmon.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def database_url(self) -> str:
        """The database the stack uses, for agents joining it."""
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.data_dir / 'perfmon.sqlite3'}"

    def start_fleet(self, nodes: int = 10, gpus: int = 8, prefix: str = "sim-") -> Fleet:
        """`nodes` simulated agents (sampler only, `gpus` simulated GPUs each, 1 Hz) into this stack's
        Redis and database; stop them with the returned Fleet's stop()."""
        log_dir = self.data_dir / "fleet"
        log_dir.mkdir(exist_ok=True)
        return start_fleet(
            self.env["REDIS_URL"],
            self.database_url(),
            nodes=nodes,
            gpus=gpus,
            prefix=prefix,
            log_dir=log_dir,
            env=self.env,
        )

    def login_cookie(self) -> str:
        """A session cookie header for the admin, logged in through the login form as a browser does."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(self.url + "/login/", timeout=30).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": csrf}
        opener.open(
            urllib.request.Request(
                self.url + "/login/",
                data=urllib.parse.urlencode(form).encode(),
                headers={"Referer": self.url + "/login/"},
            ),
            timeout=30,
        )
        return "; ".join(f"{c.name}={c.value}" for c in jar)

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)


def _send(request: urllib.request.Request) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body.startswith(b"{") else {}


def start_stack_process(
    data_dir: Path, port: int | None = None, args: tuple[str, ...] = (), **env_overrides: str
) -> Stack:
    """`perfmon up` (with extra command-line `args`) started, not yet ready (see start_stack)."""
    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        PERFMON_DATA_DIR=str(data_dir),
        PERFMON_ADMIN_USER=ADMIN_USER,
        PERFMON_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PERFMON_SAMPLE_INTERVAL_S="0.5",
        PERFMON_NODE_NAME=NODE_NAME,
        PYTHONUNBUFFERED="1",
    )
    env.update(env_overrides)
    log_path = data_dir / "stack.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "perfmon.cli", "up", "--port", str(port), *args],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Stack(process, f"http://127.0.0.1:{port}", data_dir, env, log_path)


def start_stack(
    data_dir: Path, ready_timeout_s: float = 120, args: tuple[str, ...] = (), **env_overrides: str
) -> Stack:
    stack = start_stack_process(data_dir, args=args, **env_overrides)
    process = stack.process
    # The redis URL the stack chose is in its log; children inherit it, the CLI helpers need it.
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"perfmon up exited with {process.returncode}:\n{stack.log()}")
        status, body = stack.get("/healthz") if "dashboard at" in stack.log() else (0, {})
        if status == 200:
            for line in stack.log().splitlines():
                if "private Redis at " in line:
                    stack.env["REDIS_URL"] = line.rsplit(" ", 1)[-1]
            return stack
        time.sleep(0.5)
    stack.stop(signal.SIGKILL)
    raise AssertionError(f"the stack was not healthy within {ready_timeout_s} s:\n{stack.log()}")


def cmdline(process: psutil.Process) -> str:
    """A process's command line, "" once it has exited or is a zombie not yet reaped."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


@contextlib.contextmanager
def logged_in_page(stack: Stack, browser, **context_options):
    """A page logged in as the stack's admin, its uncaught script errors in ``page.script_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/")
    page.script_errors = errors
    try:
        yield page
    finally:
        context.close()


def trained(stack, token: str, model: str) -> None:
    """Run one small benchmark of ``model``: its job trains the zoo MLP in a worker and caches the
    weights, which creating a deployment of it needs (it never trains inside the request)."""
    status, job = stack.post(
        "/api/jobs",
        {"kind": "benchmark", "model": model, "params": {"batch_sizes": [1], "iterations": 5}},
        token,
    )
    assert status == 201, job
    deadline = time.monotonic() + 300
    while (state := stack.get(f"/api/jobs/{job['id']}", token)[1])["status"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, f"benchmark not done in 300 s: {state}"
        time.sleep(1)
    assert state["status"] == "succeeded", state
