"""One plain socket to one Redis for the sampler's tick: commands packed here, written in one
``sendall`` and their replies read back with a minimal RESP2 reader.

redis-py's pipeline costs ~0.7 ms of CPU a call when made once a second (its Python layers are cold
in the CPU's caches by then; ~0.1 ms in a tight loop), where the same four commands on a bare socket
cost ~0.25 ms, most of it the two system calls. The sampler makes that call every tick, so this
covers exactly what it needs: ``redis://`` (user, password, database number) and ``unix://`` URLs or
a (host, port); anything else (TLS, sentinels) stays on redis-py (``supports``).

A failure (refused, reset, no answer within ``timeout_s``) closes the socket and raises; the next
call connects again. An error reply raises ``ReplyError`` once every reply has been read, so the
connection stays in step."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

Arg = bytes | str | int | float


class ReplyError(Exception):
    """Redis answered a command with an error (``-ERR ...``)."""


def supports(address: str | tuple[str, int]) -> bool:
    """Whether ``RespPipe`` can open ``address`` (a URL or a (host, port))."""
    if not isinstance(address, str):
        return True
    return urlsplit(address).scheme in ("redis", "unix")


def pack(*args: Arg) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif not isinstance(arg, bytes):
            arg = repr(arg).encode()  # ints and floats as Redis reads them
        out.append(b"$%d\r\n" % len(arg))
        out.append(arg)
        out.append(b"\r\n")
    return b"".join(out)


class RespPipe:
    """``execute([packed command, ...])`` -> the replies, in order (bytes, int, None or lists)."""

    def __init__(self, address: str | tuple[str, int], timeout_s: float) -> None:
        if not supports(address):
            raise ValueError(f"not a redis:// or unix:// address: {address!r}")
        self._address = address
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""

    def execute(self, commands: Sequence[bytes]) -> list:
        if self._sock is None:
            self._connect()
        try:
            assert self._sock is not None
            self._sock.sendall(b"".join(commands))
            replies = [self._reply() for _ in commands]
        except BaseException:
            self.close()
            raise
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return replies

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._buf = None, b""

    # -- internals ---------------------------------------------------------------------------

    def _connect(self) -> None:
        address, setup = self._address, []
        if isinstance(address, str):
            url = urlsplit(address)
            query_db = dict(p.split("=", 1) for p in url.query.split("&") if "=" in p).get("db")
            if url.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: str | tuple[str, int] = unquote(url.path)
                db = query_db or "0"
            else:
                sock = socket.socket(socket.AF_INET6 if ":" in (url.hostname or "") else socket.AF_INET)
                target = (url.hostname or "localhost", url.port or 6379)
                db = url.path.lstrip("/") or query_db or "0"  # as redis-py reads it
            if url.password is not None:
                user = unquote(url.username) if url.username else None
                setup.append(pack("AUTH", *([user] if user else []), unquote(url.password)))
            if db != "0":
                setup.append(pack("SELECT", db))
        else:
            sock = socket.socket(socket.AF_INET)
            target = address
        sock.settimeout(self._timeout_s)
        try:
            sock.connect(target)
            if isinstance(target, tuple):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        self._sock, self._buf = sock, b""
        if setup:
            self.execute(setup)

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 2 :]
                return line
            self._fill()

    def _fill(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self._buf += chunk

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self._buf) < size + 2:
                self._fill()
            data, self._buf = self._buf[:size], self._buf[size + 2 :]
            return data
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._reply() for _ in range(size)]
        raise ConnectionError(f"unexpected reply from Redis: {line[:40]!r}")
