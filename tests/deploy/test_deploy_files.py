"""The deploy files checked without a container engine or a systemd host (this machine has neither
a Docker daemon nor the compose plugin): docker-compose.yml and the systemd units parse, every
command they run is one the perfmon CLI accepts, every PERFMON_* variable they set is one perfmon
reads, and the units restart on failure and read the one environment file. Where systemd-analyze
is installed it verifies the units too."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from perfmon.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ENV_FILE = "/etc/perfmon/perfmon.env"


def perfmon_reads() -> set[str]:
    """Every PERFMON_* name the project's Python code mentions (settings, CLI, env helpers)."""
    names: set[str] = set()
    for path in [*(ROOT / "perfmon").glob("*.py"), *(ROOT / "dashboard").rglob("*.py")]:
        names |= set(re.findall(r"PERFMON_[A-Z0-9_]+", path.read_text()))
    return names


def accepts(argv: list[str]) -> None:
    """The CLI parses argv (a perfmon command without the program name), or the test fails."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_:
        pytest.fail(f"perfmon {shlex.join(argv)} is refused by the CLI (exit {exit_.code})")


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys allowed, so each key maps to a list."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_services_run_perfmon_commands_the_cli_accepts():
    services = compose()["services"]
    assert {"redis", "postgres", "central", "agent"} <= set(services)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    default_cmd = json_list(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    for name in ("central", "agent"):
        command = services[name].get("command", default_cmd)
        assert command[0] == "perfmon", (name, command)
        accepts(command[1:])
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_sets_only_variables_perfmon_reads():
    known = perfmon_reads() | {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "DEBUG"}
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue  # redis and postgres: their images' own variables
        for variable in service.get("environment", {}):
            assert variable in known, f"{name} sets {variable}, which perfmon never reads"


def test_the_dockerfile_copies_what_exists():
    for source in re.findall(r"^COPY (.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M):
        for part in source.split():
            assert (ROOT / part).exists(), part


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_each_unit_restarts_on_failure_reads_the_env_file_and_runs_a_perfmon_command(unit):
    sections = parse_unit(unit)
    service = sections["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["EnvironmentFile"] == [ENV_FILE]
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    for command in service["ExecStart"] + service.get("ExecStartPre", []):
        argv = shlex.split(command)
        assert argv[0] == "/opt/perfmon/.venv/bin/perfmon", command
        if argv[1] != "manage":
            accepts(argv[1:])


def test_there_is_a_unit_for_every_role_of_a_fleet():
    assert {p.stem for p in UNITS} == {
        "perfmon-web",
        "perfmon-beat",
        "perfmon-maintenance",
        "perfmon-evaluator",
        "perfmon-agent",
    }


def test_the_example_env_file_sets_only_variables_perfmon_reads():
    known = perfmon_reads() | {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "DEBUG"}
    text = (DEPLOY / "systemd" / "perfmon.env.example").read_text()
    assigned = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, re.M)
    assert {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "PERFMON_ALLOWED_HOSTS"} <= set(assigned)
    assert set(assigned) <= known, set(assigned) - known


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_units(tmp_path):
    """verify needs the programs to exist: point the units at this checkout's perfmon and a real
    environment file, in a copy."""
    perfmon = ROOT / ".venv" / "bin" / "perfmon"
    if not perfmon.exists():
        pytest.skip(reason="no .venv/bin/perfmon in this checkout (make setup makes it)")
    env_file = tmp_path / "perfmon.env"
    env_file.write_text((DEPLOY / "systemd" / "perfmon.env.example").read_text())
    for unit in UNITS:
        text = unit.read_text().replace("/opt/perfmon/.venv/bin/perfmon", str(perfmon))
        text = text.replace(ENV_FILE, str(env_file)).replace("/opt/perfmon", str(ROOT))
        # The perfmon user need not exist on a test machine.
        text = re.sub(r"^(User|Group)=.*$", "", text, flags=re.M)
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Complaints about the host itself (no systemd running as PID 1, units the host lacks such as
    # postgresql.service) are not about these files: keep only lines that name one of them.
    ours = [line for line in result.stderr.splitlines() if any(u.name in line for u in UNITS)]
    assert ours == [], result.stderr


def json_list(text: str) -> list[str]:
    import json

    return json.loads(text)
