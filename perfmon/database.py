"""DATABASES["default"] from the environment, per process role (see docs/operations.md, "Sizing").

Every PostgreSQL connection carries an application_name naming the perfmon process that holds it
("perfmon web-2@central", "perfmon sampler@gpu-07"), so an operator sees in pg_stat_activity who
holds what.

The web processes take their connections from a bounded pool (Django's psycopg pool), the other
processes keep one persistent connection per thread. Under ASGI Django runs each request in a
thread of its own, so a persistent connection (CONN_MAX_AGE) is opened per request thread and left
behind for its age: under load a web process held dozens and PostgreSQL ran out of
max_connections. The pool caps what a web process holds at PERFMON_DB_POOL_SIZE; a request that
finds it exhausted waits PERFMON_DB_POOL_TIMEOUT_S for one, then fails as a refused connection
does (a 503); while the server is down it fails within a second instead (perfmon/postgresql/).

Kept free of Django imports so it can be tested without configuring Django."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dj_database_url

from perfmon.env import ConfigError, env_int

DEFAULT_POOL_SIZE = 10
# How long the sampler's database thread waits for SQLite's write lock (history, heartbeat) before
# trying again a beat later; 20 s, right for a web request, would let beats pile up behind a lock.
# Set once for the connection, so no statement a beat goes to changing it (short_lock_wait).
SAMPLER_LOCK_WAIT_S = 2
DEFAULT_POOL_TIMEOUT_S = 10
# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an application_name.
APPLICATION_NAME_MAX = 63


def role(environ: Mapping[str, str] = os.environ) -> str:
    """The process's part in the stack: set by the supervisor for each child ("web-1", "sampler",
    "cpu-worker", ...), else the perfmon command that started it."""
    return environ.get("PERFMON_ROLE") or "django"


def is_web(role_name: str) -> bool:
    return role_name == "web" or role_name.startswith("web-")


def application_name(role_name: str, node: str) -> str:
    return f"perfmon {role_name}@{node}"[:APPLICATION_NAME_MAX]


def pool_options(environ: Mapping[str, str] = os.environ) -> dict | None:
    """psycopg_pool.ConnectionPool arguments for a web process, or None where the pool is off
    (PERFMON_DB_POOL_SIZE=0: a connection per request, closed at its end)."""
    size = env_int("PERFMON_DB_POOL_SIZE", DEFAULT_POOL_SIZE, environ)
    timeout = env_int("PERFMON_DB_POOL_TIMEOUT_S", DEFAULT_POOL_TIMEOUT_S, environ)
    if size < 0:
        raise ConfigError(f"PERFMON_DB_POOL_SIZE={size}: expected 0 (no pool) or more")
    if timeout < 1:
        raise ConfigError(f"PERFMON_DB_POOL_TIMEOUT_S={timeout}: expected 1 or more")
    if size == 0:
        return None
    # Two kept open for the next requests; the rest opened on demand and closed after 10 idle minutes.
    return {"min_size": min(2, size), "max_size": size, "timeout": timeout}


def database_settings(data_dir: Path, node: str, environ: Mapping[str, str] = os.environ) -> dict:
    url = environ.get("DATABASE_URL")
    if url and not url.startswith("sqlite"):
        return _postgresql(url, role(environ), node, environ)
    name = dj_database_url.parse(url)["NAME"] if url else data_dir / "perfmon.sqlite3"
    return _sqlite(name, data_dir, role(environ))


def _postgresql(url: str, role_name: str, node: str, environ: Mapping[str, str]) -> dict:
    settings = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    # Django's backend, whose pool answers at once while the server is down (perfmon/postgresql/).
    settings["ENGINE"] = "perfmon.postgresql"
    options = settings.setdefault("OPTIONS", {})
    options.setdefault("application_name", application_name(role_name, node))
    if is_web(role_name):
        pool = pool_options(environ)
        # Persistent connections are per thread, and ASGI gives each request a thread: none kept.
        settings["CONN_MAX_AGE"] = 0
        if pool:
            options["pool"] = pool
    return settings


def _sqlite(name, data_dir: Path, role_name: str = "django") -> dict:
    # The web server, the sampler and the workers write at once: WAL lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock up front (no deadlock on lock upgrade),
    # and the busy timeout makes a writer wait instead of failing with "database is locked".
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        # The sampler touches the database every tick: keep its connection instead of reopening it.
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
        # Tests run workers and consumers in threads beside the test: an in-memory database would
        # share one cache and fail at once with "table is locked" where a file waits its turn.
        "TEST": {"NAME": str(data_dir / "test-perfmon.sqlite3")},
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": SAMPLER_LOCK_WAIT_S if role_name == "sampler" else 20,
        },
    }
