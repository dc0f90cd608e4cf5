"""Pages answer 503 "the database is unreachable" when the database refuses connections, as the API
does, instead of a bare 500 (the session middleware failing to load the session).

The refusing database is a real one: a Django process whose DATABASE_URL names a port where a
socket is bound but not listening, so every connection attempt is refused."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CLIENT = """
import json, django
django.setup()
from django.test import Client
client = Client(raise_request_exception=False, HTTP_HOST="localhost")
client.cookies["sessionid"] = "x" * 32  # a well-formed key: the session is looked up in the database
answers = {}
for path in ["/", "/nodes/", "/login/", "/api/nodes"]:
    response = client.get(path)
    answers[path] = [response.status_code, response.content.decode()]
from django.db import OperationalError, connection
try:
    connection.ensure_connection()
except OperationalError as exc:
    answers["why"] = str(exc)
print(json.dumps(answers))
"""


def pages_with_a_refusing_database(**extra_env: str) -> dict[str, list]:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
        port = closed.getsockname()[1]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "perfmon.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/perfmon",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        done = subprocess.run(
            [sys.executable, "-c", CLIENT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "process",
    [
        {"PERFMON_ROLE": "django"},
        # A web process takes its connections from a pool. However long it would wait for a busy
        # connection, it gives up on a server that refuses at once and says so.
        {"PERFMON_ROLE": "web-1", "PERFMON_DB_POOL_TIMEOUT_S": "600"},
    ],
    ids=["connection per thread", "web process pool"],
)
def test_pages_say_the_database_is_unreachable(process):
    answers = pages_with_a_refusing_database(**process)
    for path in ["/", "/nodes/", "/login/"]:
        status, body = answers[path]
        assert status == 503, (path, body[:300])
        assert "The database is unreachable" in body
        assert "Server Error" not in body
    # The API keeps its own JSON 503.
    status, body = answers["/api/nodes"]
    assert status == 503
    assert "database is unavailable" in json.loads(body)["error"]
    # The reason is the server's, not "no connection free" after the pool's timeout.
    assert "Connection refused" in answers["why"], answers["why"]
