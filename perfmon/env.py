"""Strict parsing of settings from the environment (12-factor), kept free of Django imports
so the command line can use it before Django is configured."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path


class ConfigError(ValueError):
    """A setting in the environment has a value we refuse to guess about."""


def env_bool(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r}: expected true/false, 1/0, yes/no or on/off")


def env_int(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None


def env_list(name: str, default: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The directory holding the SQLite database, the secret key, uploads and the private Redis.

    Resolved to an absolute path once, so that every child process agrees on it."""
    path = Path(environ.get("PERFMON_DATA_DIR") or "var").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret_key(directory: Path, environ: Mapping[str, str] = os.environ) -> str:
    """SECRET_KEY from the environment, else one generated once and kept (mode 0600) in the data dir,
    so sessions survive restarts without anyone having to invent a key."""
    if environ.get("SECRET_KEY"):
        return environ["SECRET_KEY"]
    key_file = directory / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by a sibling process starting at the same moment
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return key_file.read_text().strip()
