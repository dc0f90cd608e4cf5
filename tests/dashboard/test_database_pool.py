"""A web process's connection pool, on a real PostgreSQL: its connections carry the process's
application_name, and a request that finds the pool exhausted answers a clean 503 (page and API)
once PERFMON_DB_POOL_TIMEOUT_S has passed, as it does when the database refuses connections.

Run in a Django process of its own with PERFMON_ROLE=web-1 and a pool of one connection, which a
thread holds while the requests are made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

CLIENT = """
import json, threading, django
django.setup()
from django.db import connection
from django.test import Client

held, release = threading.Event(), threading.Event()

def hold():
    # The pool's only connection, taken and kept until released.
    with connection.cursor() as cursor:
        cursor.execute("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        answers["holder application_name"] = cursor.fetchone()[0]
    held.set()
    release.wait()
    connection.close()  # back to the pool

answers = {}
holder = threading.Thread(target=hold)
holder.start()
assert held.wait(60)
client = Client(raise_request_exception=False, HTTP_HOST="localhost")
client.cookies["sessionid"] = "x" * 32  # the session is looked up in the database
for path in ["/", "/api/nodes"]:
    response = client.get(path)
    answers[path] = [response.status_code, response.content.decode()]
release.set()
holder.join()
# Released, the connection serves the next one.
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    answers["after release"] = cursor.fetchone()[0]
print(json.dumps(answers))
"""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's (CI runs it there)")
def test_an_exhausted_pool_answers_503_and_names_its_connections():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "perfmon.settings",
        "PERFMON_ROLE": "web-1",
        "PERFMON_DB_POOL_SIZE": "1",
        "PERFMON_DB_POOL_TIMEOUT_S": "1",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", CLIENT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["holder application_name"].startswith("perfmon web-1@")
    status, body = answers["/"]
    assert status == 503, body[:300]
    assert "The database is unreachable" in body
    status, body = answers["/api/nodes"]
    assert status == 503, body[:300]
    assert "database is unavailable" in json.loads(body)["error"]
    assert answers["after release"] == 1
