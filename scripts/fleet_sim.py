"""A simulated fleet on one machine: N `perfmon agent --demo-gpus G --name sim-K` processes
sampling into the same Redis and database as a running `perfmon up` (10 nodes x 8 GPUs by
default, each at 1 Hz), for trying the fleet pages, /metrics and load at fleet size without GPUs.

    scripts/fleet-sim --redis redis://127.0.0.1:6379/0 --database postgres://... [--nodes 10 --gpus 8]

The agents run with --no-worker (sampler only): ten Celery workers (two processes each) on a
2-core machine would cost more memory and start-up CPU than the samplers they sit beside, and the
fleet's job load goes to the central stack's workers anyway. --with-worker starts them too.
Ctrl-C stops every agent."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def agent_argv(name: str, gpus: int, redis_url: str, database_url: str | None, worker: bool) -> list[str]:
    argv = [sys.executable, "-m", "perfmon.cli", "agent", "--name", name, "--demo-gpus", str(gpus)]
    argv += ["--redis", redis_url]
    if database_url:
        argv += ["--database", database_url]
    if not worker:
        argv.append("--no-worker")
    return argv


@dataclass
class Fleet:
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path | None = None

    @property
    def names(self) -> list[str]:
        return list(self.processes)

    def exited(self) -> dict[str, int]:
        """The agents that are no longer running, with their exit codes."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def stop(self, timeout_s: float = 60) -> dict[str, int]:
        """SIGINT to every agent (each stops its own children), then wait; the exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes[name] = process.wait()
        return codes


def start_fleet(
    redis_url: str,
    database_url: str | None,
    *,
    nodes: int = 10,
    gpus: int = 8,
    prefix: str = "sim-",
    log_dir: Path | None = None,
    env: dict[str, str] | None = None,
    interval_s: float = 1.0,
    worker: bool = False,
) -> Fleet:
    """Start `nodes` agents named prefix1..prefixN; returns at once (they register on their first tick)."""
    base = {k: v for k, v in (env or os.environ).items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    base.pop("PERFMON_NODE_NAME", None)
    base["PERFMON_SAMPLE_INTERVAL_S"] = str(interval_s)
    base.setdefault("PYTHONUNBUFFERED", "1")
    fleet = Fleet(log_dir=log_dir)
    for number in range(1, nodes + 1):
        name = f"{prefix}{number}"
        out = (log_dir / f"{name}.log").open("w") if log_dir else subprocess.DEVNULL
        fleet.processes[name] = subprocess.Popen(
            agent_argv(name, gpus, redis_url, database_url, worker),
            env=base,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C meant for whoever started the fleet reaches it once,
            # through stop(), and a last-resort SIGKILL takes its children too.
            preexec_fn=os.setpgrp,
        )
    return fleet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--redis", default=os.environ.get("REDIS_URL"), help="the central Redis (env REDIS_URL)"
    )
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL"), help="env DATABASE_URL")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--gpus", type=int, default=8, help="simulated GPUs per node (0 to 16)")
    parser.add_argument("--prefix", default="sim-")
    parser.add_argument("--interval", type=float, default=1.0, help="sampling period in seconds")
    parser.add_argument("--with-worker", action="store_true", help="also a Celery worker per agent")
    parser.add_argument("--log-dir", type=Path, help="one log file per agent (default: discarded)")
    args = parser.parse_args()
    if not args.redis:
        parser.error("give the central Redis with --redis or REDIS_URL")
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    fleet = start_fleet(
        args.redis,
        args.database,
        nodes=args.nodes,
        gpus=args.gpus,
        prefix=args.prefix,
        log_dir=args.log_dir,
        interval_s=args.interval,
        worker=args.with_worker,
    )
    print(
        f"fleet-sim: {args.nodes} agents x {args.gpus} simulated GPUs running (Ctrl-C stops them)", flush=True
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(1.0):
        if dead := fleet.exited():
            print(f"fleet-sim: agents exited: {dead}; stopping the rest", file=sys.stderr, flush=True)
            break
    codes = fleet.stop()
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
