"""The `perfmon` command line.

perfmon up      the whole stack on this machine: web server(s), sampler, Celery workers and beat
perfmon agent   a GPU node joining a central perfmon: sampler and Celery worker
perfmon web     only the web server(s), for a central node run by systemd or a second web host
perfmon beat    only Celery beat (the periodic tasks: retention, sweeps); run exactly one per fleet
perfmon maintenance  only the maintenance worker (orphaned-job sweeps, retention, notifications)
perfmon evaluator  only the alert rule evaluator; run exactly one per fleet
perfmon token   print a new API token for a user (--role, --expires), or for an agent node (--agent)
perfmon manage  Django's management commands (migrate, createsuperuser, ...)
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The command line; tests/deploy checks every command the deploy files run against it."""
    parser = argparse.ArgumentParser(
        prog="perfmon", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole stack on this machine")
    up.add_argument("--port", type=int, default=int(os.environ.get("PERFMON_PORT", "8000")))
    up.add_argument(
        "--host",
        default=os.environ.get("PERFMON_HOST", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1; 0.0.0.0 to serve other machines)",
    )
    up.add_argument(
        "--data-dir", help="where the database, secret key and private Redis live (default ./var)"
    )
    web = commands.add_parser("web", help="run only the web server processes (ASGI), N of them")
    web.add_argument("--port", type=int, default=int(os.environ.get("PERFMON_PORT", "8000")))
    web.add_argument("--host", default=os.environ.get("PERFMON_HOST", "127.0.0.1"))
    web.add_argument("--data-dir")
    for command in (up, web):
        command.add_argument(
            "--web-workers",
            type=_web_worker_count,
            default=_web_worker_count(os.environ.get("PERFMON_WEB_WORKERS", "1")),
            metavar="N",
            help="N web server processes sharing the port (SO_REUSEPORT) and one Redis channel layer "
            "(env PERFMON_WEB_WORKERS, default 1)",
        )

    agent = commands.add_parser("agent", help="run the sampler and a Celery worker on a GPU node")
    agent.add_argument("--redis", help="the central Redis (env REDIS_URL)")
    agent.add_argument("--database", help="the central database (env DATABASE_URL)")
    agent.add_argument("--name", help="node name (env PERFMON_NODE_NAME, default: hostname)")
    agent.add_argument("--data-dir")
    agent.add_argument(
        "--no-worker",
        action="store_true",
        help="sample only: start no Celery worker, so this node takes no jobs (a monitored-only node, "
        "or many simulated nodes on one machine)",
    )
    for command in (up, agent):
        command.add_argument(
            "--demo-gpus",
            type=_demo_gpu_count,
            metavar="N",
            help="sample N simulated GPUs instead of NVML, labelled 'simulated' (env PERFMON_DEMO_GPUS)",
        )

    token = commands.add_parser("token", help="print a new API token for a user or an agent node")
    token.add_argument("username", nargs="?", help="the user the token acts as")
    token.add_argument(
        "--role",
        choices=["viewer", "operator", "admin"],
        help="what the token may do, at most the user's role (default: the user's role)",
    )
    token.add_argument("--expires", help="30d, 12h, 2w, a date like 2027-01-31, or never (default)")
    token.add_argument("--label", default="", help="what the token is for, shown on the tokens page")
    token.add_argument(
        "--agent", metavar="NODE", help="a token of its own for the agent node NODE (instead of a user)"
    )
    token.add_argument("--data-dir")

    for name, text in (
        ("beat", "run only Celery beat"),
        ("maintenance", "run only the maintenance worker"),
        ("evaluator", "run only the alert rule evaluator (one per fleet)"),
    ):
        commands.add_parser(name, help=text).add_argument("--data-dir")
    commands.add_parser("sampler", help="(internal) run only the sampler daemon")
    uvicorn = commands.add_parser("uvicorn", help="(internal) one web server process on a shared port")
    uvicorn.add_argument("--host", required=True)
    uvicorn.add_argument("--port", type=int, required=True)
    manage = commands.add_parser("manage", help="Django management commands", add_help=False)
    manage.add_argument("args", nargs=argparse.REMAINDER)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Names this process (and, through the supervisor, each child) in the database's
    # pg_stat_activity; a supervised child already has its own (perfmon/database.py).
    os.environ.setdefault("PERFMON_ROLE", args.command)
    if getattr(args, "demo_gpus", None) is not None:
        os.environ["PERFMON_DEMO_GPUS"] = str(args.demo_gpus)  # the sampler child reads it from settings
    if getattr(args, "data_dir", None):
        os.environ["PERFMON_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    handler = {
        "up": cmd_up,
        "agent": cmd_agent,
        "token": cmd_token,
        "sampler": cmd_sampler,
        "manage": cmd_manage,
        "web": cmd_web,
        "beat": cmd_beat,
        "maintenance": cmd_maintenance,
        "evaluator": cmd_evaluator,
        "uvicorn": cmd_uvicorn,
    }
    return handler[args.command](args)


def _demo_gpu_count(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 16:
        raise argparse.ArgumentTypeError(f"give 0 to 16 simulated GPUs, not {text!r}")
    return int(text)


def _web_worker_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"give 1 to 64 web server processes, not {text!r}")
    return int(text)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon.settings")
    import django

    django.setup()


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _node_name() -> str:
    from django.conf import settings

    return settings.NODE_NAME


def _gpu_count() -> int:
    from workers.sampler.nvml import Nvml, NvmlUnavailable

    try:
        nvml = Nvml.open()
    except NvmlUnavailable:
        return 0
    try:
        return nvml.device_count()
    finally:
        nvml.close()


def _add_job_workers(stack) -> None:
    """One worker of concurrency 1 per device of this node: its CPU, and each GPU."""
    from dashboard.queues import worker_layout

    for worker_name, queues in worker_layout(_node_name(), _gpu_count()):
        stack.add(worker_name.partition("@")[0] + "-worker", _worker_argv(queues, worker_name))


def _worker_argv(queues: str, name: str, concurrency: int = 1, pool: str = "prefork") -> list[str]:
    """`name` is the full Celery worker name; "%h" style expansion is not used so names stay predictable."""
    return _python(
        "-m",
        "celery",
        "-A",
        "perfmon",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
        "-l",
        "INFO",
    )


def cmd_up(args: argparse.Namespace) -> int:
    from perfmon.env import data_dir
    from perfmon.private_redis import PrivateRedis
    from perfmon.supervisor import Supervisor

    directory = data_dir()
    os.environ["PERFMON_DATA_DIR"] = str(directory)
    # The web server's settings derive the allowed hosts from the address it is bound to.
    os.environ["PERFMON_HOST"] = args.host
    redis = None
    if not os.environ.get("REDIS_URL"):
        redis = PrivateRedis(directory / "redis").start()
        os.environ["REDIS_URL"] = redis.url
        print(f"perfmon: no REDIS_URL set, started a private Redis at {redis.url}", flush=True)
    try:
        _setup_django()
        _prepare_database()
        from django.db import connections

        connections.close_all()  # the supervisor itself needs no database connection from here on

        stack = Supervisor(env=dict(os.environ))
        _add_web_servers(stack, args.host, args.port, args.web_workers)
        stack.add("sampler", _python("-m", "perfmon.cli", "sampler"))
        stack.add("evaluator", _evaluator_argv())  # alert rules
        _add_job_workers(stack)
        # Maintenance (orphaned-job sweeps) has its own worker so a long benchmark cannot delay it.
        stack.add("maintenance", _maintenance_argv())
        stack.add("beat", _beat_argv())
        if redis:
            # Watched too: a private Redis that dies is started again on the same port, from its
            # append-only file, so queued jobs survive and every client reconnects to the same URL.
            stack.watch("redis", redis.process, restart=lambda: redis.start(port=redis.port).process)
        stack.start()
        wildcard = args.host in ("0.0.0.0", "::")
        probe = f"http://{'127.0.0.1' if wildcard else args.host}:{args.port}/login/"
        url = f"http://{'localhost' if wildcard or args.host == '127.0.0.1' else args.host}:{args.port}/"
        announced = False

        def announce_when_ready() -> None:
            nonlocal announced
            if not announced and _answers(probe):
                announced = True
                print(f"perfmon: dashboard at {url}  (Ctrl-C stops everything)", flush=True)

        return stack.wait(on_tick=announce_when_ready)
    finally:
        if redis:
            redis.stop()


def _add_web_servers(stack, host: str, port: int, count: int) -> None:
    """`count` ASGI processes on one port. Each binds its own socket with SO_REUSEPORT, so the
    kernel spreads new connections across them (by a hash of the client's address and port) and a
    process that dies or restarts leaves the others serving; no parent holds the socket, so the
    processes can equally run under separate systemd units. Live samples reach every process
    through the Redis channel layer, so a browser gets them whichever process it is connected to."""
    for number in range(1, count + 1):
        name = "web" if count == 1 else f"web-{number}"
        stack.add(name, _python("-m", "perfmon.cli", "uvicorn", "--host", host, "--port", str(port)))


def _maintenance_argv() -> list[str]:
    # It also sends notifications ("notify" queue), in a few threads so a slow receiver never holds
    # up the sweeps or another delivery.
    return _worker_argv("maintenance,notify", f"maintenance@{_node_name()}", concurrency=4, pool="threads")


def _beat_argv() -> list[str]:
    from django.conf import settings

    schedule = str(settings.DATA_DIR / "celerybeat-schedule")
    return _python("-m", "celery", "-A", "perfmon", "beat", "-l", "INFO", "-s", schedule)


def cmd_web(args: argparse.Namespace) -> int:
    """The web tier alone: migrations are the operator's step (`perfmon manage migrate`), so that
    several web hosts restarting at once never race to apply them."""
    from perfmon.supervisor import Supervisor

    os.environ["PERFMON_HOST"] = args.host  # the allowed hosts derive from the bound address
    _setup_django()
    stack = Supervisor(env=dict(os.environ))
    _add_web_servers(stack, args.host, args.port, args.web_workers)
    stack.start()
    print(
        f"perfmon web: {args.web_workers} web server process(es) on {args.host}:{args.port} (Ctrl-C stops)",
        flush=True,
    )
    return stack.wait()


def cmd_beat(args: argparse.Namespace) -> int:
    _setup_django()
    argv = _beat_argv()
    os.execv(argv[0], argv)  # systemd then supervises celery itself and signals it directly
    return 1  # not reached


def cmd_maintenance(args: argparse.Namespace) -> int:
    _setup_django()
    argv = _maintenance_argv()
    os.execv(argv[0], argv)
    return 1  # not reached


def cmd_evaluator(args: argparse.Namespace) -> int:
    _setup_django()
    argv = _evaluator_argv()
    os.execv(argv[0], argv)
    return 1  # not reached


def _evaluator_argv() -> list[str]:
    return _python("-m", "perfmon.cli", "manage", "evaluator")


def cmd_uvicorn(args: argparse.Namespace) -> int:
    """One ASGI process serving on a socket of its own bound with SO_REUSEPORT (see _add_web_servers)."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Linux lets only sockets of the same user share a port this way: another user cannot take
    # a share of perfmon's connections.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    config = uvicorn.Config(
        "perfmon.asgi:application",
        host=args.host,
        port=args.port,
        lifespan="off",
        access_log=False,
        # Compressing each of hundreds of small live frames costs more CPU than it saves.
        ws_per_message_deflate=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True  # 503 while workers warm up still means the server answers
    except OSError:
        return False
    return True


def _prepare_database() -> None:
    """Migrations, static files and the first admin user."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return
    username = os.environ.get("PERFMON_ADMIN_USER") or "admin"
    password = os.environ.get("PERFMON_ADMIN_PASSWORD")
    generated = secrets.token_urlsafe(12)
    users.objects.create_superuser(username=username, email="", password=password or generated)
    if password:
        print(
            f"perfmon: created admin user {username!r} with the password from PERFMON_ADMIN_PASSWORD",
            flush=True,
        )
    else:
        print(
            f"perfmon: created admin user {username!r} with password {generated}  (shown once; change it in /admin/)",
            flush=True,
        )


def cmd_agent(args: argparse.Namespace) -> int:
    from perfmon.supervisor import Supervisor

    if args.redis:
        os.environ["REDIS_URL"] = args.redis
    if args.database:
        os.environ["DATABASE_URL"] = args.database
    if args.name:
        os.environ["PERFMON_NODE_NAME"] = args.name
    if not os.environ.get("REDIS_URL"):
        print("perfmon agent: give the central Redis with --redis or REDIS_URL", file=sys.stderr)
        return 2
    _setup_django()
    stack = Supervisor(env=dict(os.environ))
    stack.add("sampler", _python("-m", "perfmon.cli", "sampler"))
    if not args.no_worker:
        _add_job_workers(stack)
    stack.start()
    doing = "sampling only (--no-worker)" if args.no_worker else "sampling and taking jobs"
    print(f"perfmon agent: node {_node_name()!r} {doing} (Ctrl-C stops)", flush=True)
    return stack.wait()


def cmd_token(args: argparse.Namespace) -> int:
    _setup_django()
    from django.contrib.auth import get_user_model

    from dashboard.permissions import PermissionDenied
    from dashboard.token_actions import BadTokenRequest, do_issue_agent_token, do_issue_token, parse_expiry

    try:
        expires_at = parse_expiry(args.expires)
        if args.agent:
            if args.username or args.role:
                raise BadTokenRequest("--agent makes a token for a node: give no username or --role")
            # Whoever runs this has the server's shell and database: the CLI acts as an admin.
            _token, raw = do_issue_agent_token(_CliAdmin(), args.agent, expires_at=expires_at)
        else:
            if not args.username:
                raise BadTokenRequest("give a username, or --agent NODE")
            user = get_user_model().objects.filter(username=args.username).first()
            if user is None:
                print(f"perfmon token: no user named {args.username!r}", file=sys.stderr)
                return 2
            _token, raw = do_issue_token(user, role=args.role, expires_at=expires_at, label=args.label)
    except (BadTokenRequest, PermissionDenied) as exc:
        print(f"perfmon token: {exc}", file=sys.stderr)
        return 2
    print(raw)
    return 0


class _CliAdmin:
    """The actor behind the command line: its user has the server's shell, so it may do what an admin may."""

    pk = None
    is_active = True
    is_authenticated = True
    is_superuser = True


def cmd_sampler(args: argparse.Namespace) -> int:
    import signal
    import threading

    _setup_django()
    from dashboard.sampling import SamplerDaemon

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    SamplerDaemon().run(stop)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["perfmon manage", *args.args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
