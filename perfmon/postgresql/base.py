"""Django's PostgreSQL backend, with a pool that says "unreachable" at once during an outage.

psycopg_pool's getconn() waits its whole timeout (PERFMON_DB_POOL_TIMEOUT_S, 10 s) for a connection.
That is right when every connection is busy, and wrong when the server is down: every request then
hangs 10 s before its 503, and a client with a 10 s timeout of its own never sees the 503 at all.
Here the pool remembers whether its latest attempt to connect failed (the pool connects in the
background, to refill after a broken connection is thrown away). While it did, a request waits at
most OUTAGE_WAIT_S (the pool keeps trying, and a success ends the outage) and then fails with the
server's own reason; a request already waiting when an outage begins notices within WAIT_SLICE_S.
And the pool tries to reconnect at least every MAX_RECONNECT_DELAY_S, so that it is back within
seconds of the server however long the outage lasted.

Only the pool's construction differs from Django's backend; everything else is inherited."""

from __future__ import annotations

import threading
import time

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg import Connection
from psycopg_pool import ConnectionPool, PoolTimeout
from psycopg_pool.pool import AddConnection

OUTAGE_WAIT_S = 1.0
WAIT_SLICE_S = 0.5
MAX_RECONNECT_DELAY_S = 2.0


class _Outage:
    """The latest connection attempt's failure, or None once one succeeds. Per process: a process
    has one database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.reason = ""

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is None:
                self.since = time.time()
            # psycopg's message spans lines ("... Connection refused\n\tIs the server running ...").
            self.reason = " ".join(str(exc).split())

    def ended(self) -> None:
        with self._lock:
            self.since, self.reason = None, ""


OUTAGE = _Outage()


class OutageTrackingConnection(Connection):
    """The pool's connection class: records whether connecting works."""

    @classmethod
    def connect(cls, *args, **kwargs):
        try:
            conn = super().connect(*args, **kwargs)
        except Exception as exc:
            OUTAGE.failed(exc)
            raise
        OUTAGE.ended()
        return conn


class OutageAwarePool(ConnectionPool):
    def getconn(self, timeout: float | None = None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        outage_deadline = None
        while True:
            now = time.monotonic()
            if OUTAGE.since is None:
                outage_deadline = None
            elif outage_deadline is None:
                outage_deadline = now + OUTAGE_WAIT_S
            if outage_deadline is not None and now >= outage_deadline:
                raise PoolTimeout(f"the database is unreachable: {OUTAGE.reason}")
            if now >= deadline:
                raise PoolTimeout(
                    f"no database connection free within {timeout:g} s: all {self.max_size} of this"
                    " process's are in use (PERFMON_DB_POOL_SIZE, PERFMON_DB_POOL_TIMEOUT_S)"
                )
            end = deadline if outage_deadline is None else min(deadline, outage_deadline)
            try:
                # In slices: an outage that begins while this request waits cuts the wait short.
                return super().getconn(max(min(end - now, WAIT_SLICE_S), 0.01))
            except PoolTimeout:
                continue

    def schedule_task(self, task, delay: float) -> None:
        # The pool retries a failed connection after 1, 2, 4, 8 ... s without bound: after a minute's
        # outage the next try could be half a minute after the server is back. Retry every 2 s at most.
        if isinstance(task, AddConnection):
            delay = min(delay, MAX_RECONNECT_DELAY_S)
        super().schedule_task(task, delay)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        # Django's pool property, building an OutageAwarePool of OutageTrackingConnections.
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets the real mode after getconn
            pool = OutageAwarePool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=ConnectionPool.check_connection if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                connection_class=OutageTrackingConnection,
                **({} if options is True else options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
