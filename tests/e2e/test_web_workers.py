"""`perfmon up --web-workers 2`: two ASGI processes share the port, and a browser gets every live
sample and job event whichever of them it is connected to (the Redis channel layer joins them)."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import psutil
import pytest

from tests.e2e.stack import ADMIN_USER, NODE_NAME, cmdline, start_stack

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def two_web_stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("web-workers"), args=("--web-workers", "2"))
    yield running
    running.stop()


class Client(threading.Thread):
    """One /ws/live socket following the node and the jobs list; records what it receives."""

    def __init__(self, socket) -> None:
        super().__init__(daemon=True)
        self.socket = socket
        self.sample_ts: list[float] = []
        self.job_ids: set[int] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                message = json.loads(self.socket.recv(timeout=1))
            except TimeoutError:
                continue
            except Exception:
                return
            if message.get("type") == "sample":
                self.sample_ts.append(message["ts"])
            elif message.get("type") == "job":
                self.job_ids.add(message["job"]["id"])


def server_pid_of(socket, web_pids: list[int]) -> int | None:
    """The web process holding the server end of this client's TCP connection."""
    client_port = socket.socket.getsockname()[1]
    for pid in web_pids:
        for connection in psutil.Process(pid).net_connections(kind="tcp"):
            if connection.raddr and connection.raddr.port == client_port:
                return pid
    return None


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_web_processes_share_the_port(two_web_stack):
    web = [p for p in two_web_stack.descendants() if "perfmon.cli uvicorn" in cmdline(p)]
    assert len(web) == 2, [cmdline(p) for p in two_web_stack.descendants()]
    port = int(two_web_stack.url.rsplit(":", 1)[1])
    for process in web:
        listening = [c for c in process.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.port for c in listening] == [port]


def test_a_client_on_each_web_process_gets_the_same_samples_and_job_events(two_web_stack):
    from websockets.sync.client import connect

    stack = two_web_stack
    web_pids = [p.pid for p in stack.descendants() if "perfmon.cli uvicorn" in cmdline(p)]
    headers = {"Cookie": stack.login_cookie(), "Origin": stack.url}
    ws_url = stack.url.replace("http://", "ws://") + "/ws/live"
    # The kernel picks the process for each new connection (a hash of the client's port): connect
    # until one client sits on each process, closing the extra ones.
    by_pid = {}
    sockets = contextlib.ExitStack()
    clients = []
    try:
        for _ in range(200):
            with contextlib.ExitStack() as attempt:
                socket = attempt.enter_context(connect(ws_url, additional_headers=headers, open_timeout=30))
                pid = wait_for(
                    lambda s=socket: server_pid_of(s, web_pids), 30, "the server end of the socket"
                )
                if pid not in by_pid:
                    by_pid[pid] = socket
                    sockets.push(attempt.pop_all())
            if len(by_pid) == 2:
                break
        assert sorted(by_pid) == sorted(web_pids)

        for socket in by_pid.values():
            for topic in (f"node:{NODE_NAME}", "jobs"):
                socket.send(json.dumps({"subscribe": topic}))
            client = Client(socket)
            client.start()
            clients.append(client)

        # The same live sample (same timestamp) reaches both processes' clients.
        common = wait_for(
            lambda: set(clients[0].sample_ts) & set(clients[1].sample_ts), 60, "a sample seen by both clients"
        )
        assert common
        token = stack.cli("token", ADMIN_USER).stdout.strip()
        status, job = stack.post(
            "/api/jobs",
            {"kind": "benchmark", "model": "StudentModel", "params": {"batch_sizes": [1], "iterations": 5}},
            token,
        )
        assert status == 201, job
        wait_for(lambda: all(job["id"] in c.job_ids for c in clients), 60, "the job event on both clients")
    finally:
        for client in clients:
            client.stopping.set()
            client.join(timeout=5)
        sockets.close()


def test_perfmon_web_on_its_own_serves_the_same_live_feed(stack, tmp_path):
    """`perfmon web`, as a second web host or the systemd unit runs it: only web processes, which
    reach the stack's Redis and database and deliver its sampler's samples."""
    import signal
    import subprocess
    import sys

    from websockets.sync.client import connect

    from perfmon.private_redis import free_port

    port = free_port()
    env = {**stack.env, "DATABASE_URL": stack.database_url()}
    log = (tmp_path / "web.log").open("w")
    web = subprocess.Popen(
        [sys.executable, "-m", "perfmon.cli", "web", "--port", str(port), "--web-workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: web.poll() is None and _answers(url + "/login/"), 120, "perfmon web to answer")
        children = [cmdline(p) for p in psutil.Process(web.pid).children()]
        assert sum("perfmon.cli uvicorn" in c for c in children) == 2, children
        assert not any("celery" in c or "sampler" in c for c in children), children
        second = type(stack)(web, url, stack.data_dir, env, tmp_path / "web.log")
        headers = {"Cookie": second.login_cookie(), "Origin": url}
        with connect(url.replace("http://", "ws://") + "/ws/live", additional_headers=headers) as socket:
            socket.send(json.dumps({"subscribe": f"node:{NODE_NAME}"}))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                message = json.loads(socket.recv(timeout=60))
                if message.get("type") == "sample":
                    assert message["node"] == NODE_NAME
                    break
            else:
                raise AssertionError("no live sample through the second web server")
    finally:
        web.send_signal(signal.SIGINT)
        assert web.wait(timeout=60) == 0, (tmp_path / "web.log").read_text()


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
