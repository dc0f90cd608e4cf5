"""Loaded with `-p` before Django is configured: gives the test run its own data dir and, unless
REDIS_URL is set, its own Redis, so the suite passes on a machine with no Redis running and
never touches a Redis someone else is using."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from perfmon.private_redis import PrivateRedis

_data_dir = Path(tempfile.mkdtemp(prefix="perfmon-test-"))
atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("PERFMON_DATA_DIR", str(_data_dir))

if not os.environ.get("REDIS_URL"):
    _redis = PrivateRedis(_data_dir / "redis").start()
    atexit.register(_redis.stop)
    os.environ["REDIS_URL"] = _redis.url
