"""A real HTTP server on loopback that records what webhooks POST to it, for the notification tests."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from perfmon.private_redis import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class Receiver:
    port: int
    # The status of each answer in turn; the last one repeats (e.g. [503, 503, 200]).
    codes: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextlib.contextmanager
def receiver(codes: list[int] | None = None, port: int | None = None) -> Iterator[Receiver]:
    """Serve on 127.0.0.1:port (a free one by default) until the block ends."""
    state = Receiver(port or free_port(), list(codes or [200]))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                code = state.codes.pop(0) if len(state.codes) > 1 else state.codes[0]
                state.received.append(
                    Received(self.path, dict(self.headers.items()), json.loads(raw or b"null"))
                )
            body = b'{"ok": true}' if code < 400 else b"receiver says no"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
