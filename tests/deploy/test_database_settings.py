"""The database settings each perfmon process derives from its environment: PostgreSQL connections
named after the process holding them, a bounded pool for the web processes only, and each child
of the supervisor told its role."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from perfmon.database import APPLICATION_NAME_MAX, database_settings
from perfmon.env import ConfigError
from perfmon.supervisor import Supervisor

PG = "postgres://perfmon@db.example:5432/perfmon"


def settings_for(tmp_path: Path, **environ: str) -> dict:
    return database_settings(tmp_path, "gpu-07", {"DATABASE_URL": PG, **environ})


def test_each_role_names_its_connections(tmp_path):
    for role in ("sampler", "cpu-worker", "web-2", "evaluator"):
        options = settings_for(tmp_path, PERFMON_ROLE=role)["OPTIONS"]
        assert options["application_name"] == f"perfmon {role}@gpu-07"
    # A process started outside perfmon's command line (a test, a shell) still says it is perfmon.
    assert settings_for(tmp_path)["OPTIONS"]["application_name"] == "perfmon django@gpu-07"


def test_the_name_fits_what_postgresql_keeps(tmp_path):
    name = database_settings(tmp_path, "n" * 100, {"DATABASE_URL": PG, "PERFMON_ROLE": "sampler"})["OPTIONS"][
        "application_name"
    ]
    assert len(name) == APPLICATION_NAME_MAX
    assert name.startswith("perfmon sampler@nnn")


def test_an_application_name_in_the_url_wins(tmp_path):
    settings = database_settings(
        tmp_path, "gpu-07", {"DATABASE_URL": PG + "?application_name=mine", "PERFMON_ROLE": "web"}
    )
    assert settings["OPTIONS"]["application_name"] == "mine"


@pytest.mark.parametrize("role", ["web", "web-1", "web-12"])
def test_web_processes_take_connections_from_a_bounded_pool(tmp_path, role):
    settings = settings_for(
        tmp_path, PERFMON_ROLE=role, PERFMON_DB_POOL_SIZE="6", PERFMON_DB_POOL_TIMEOUT_S="3"
    )
    assert settings["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 6, "timeout": 3}
    # Django refuses a pool beside persistent connections.
    assert settings["CONN_MAX_AGE"] == 0


def test_the_pool_defaults(tmp_path):
    settings = settings_for(tmp_path, PERFMON_ROLE="web-1")
    assert settings["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 10}
    assert (
        settings_for(tmp_path, PERFMON_ROLE="web", PERFMON_DB_POOL_SIZE="1")["OPTIONS"]["pool"]["min_size"]
        == 1
    )


def test_pool_size_0_means_a_connection_per_request(tmp_path):
    settings = settings_for(tmp_path, PERFMON_ROLE="web-1", PERFMON_DB_POOL_SIZE="0")
    assert "pool" not in settings["OPTIONS"]
    assert settings["CONN_MAX_AGE"] == 0


@pytest.mark.parametrize(
    "role", ["sampler", "cpu-worker", "maintenance", "beat", "evaluator", "webhook", "up"]
)
def test_other_processes_keep_a_persistent_connection_per_thread(tmp_path, role):
    settings = settings_for(tmp_path, PERFMON_ROLE=role, PERFMON_DB_POOL_SIZE="4")
    assert "pool" not in settings["OPTIONS"]
    assert settings["CONN_MAX_AGE"] == 60


@pytest.mark.parametrize(
    "environ",
    [
        {"PERFMON_DB_POOL_SIZE": "-1"},
        {"PERFMON_DB_POOL_SIZE": "ten"},
        {"PERFMON_DB_POOL_TIMEOUT_S": "0"},
    ],
)
def test_bad_pool_settings_are_refused(tmp_path, environ):
    with pytest.raises(ConfigError):
        settings_for(tmp_path, PERFMON_ROLE="web-1", **environ)


def test_sqlite_has_neither_pool_nor_application_name(tmp_path):
    settings = database_settings(tmp_path, "gpu-07", {"PERFMON_ROLE": "web-1"})
    assert settings["ENGINE"] == "django.db.backends.sqlite3"
    assert "pool" not in settings["OPTIONS"]
    assert "application_name" not in settings["OPTIONS"]


def test_the_sampler_waits_for_sqlites_lock_as_long_as_its_history_writer_does(tmp_path):
    from dashboard.history.writer import HistoryWriter

    def lock_wait_s(role: str) -> float:
        return database_settings(tmp_path, "gpu-07", {"PERFMON_ROLE": role})["OPTIONS"]["timeout"]

    # Set once for its connection, so no heartbeat or flush changes it (short_lock_wait does nothing).
    assert lock_wait_s("sampler") == HistoryWriter().lock_wait_s
    assert lock_wait_s("web-1") == lock_wait_s("cpu-worker") == 20  # a request may wait its turn


def test_postgresql_uses_perfmons_backend_with_its_outage_aware_pool(tmp_path):
    assert settings_for(tmp_path, PERFMON_ROLE="web-1")["ENGINE"] == "perfmon.postgresql"


def test_the_supervisor_gives_each_child_its_name_as_its_role(tmp_path):
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['PERFMON_ROLE'])"
    stack = Supervisor(env={"PERFMON_ROLE": "up"}, log=lambda _message: None)
    for name in ("web-2", "sampler"):
        stack.add(name, [sys.executable, "-c", script, str(tmp_path / name)])
    stack.start()
    for child in stack.children:
        child.process.wait(timeout=60)
    assert (tmp_path / "web-2").read_text() == "web-2"
    assert (tmp_path / "sampler").read_text() == "sampler"
