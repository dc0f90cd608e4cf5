"""Request security that is not a role check: which hosts we answer to, which Origins may open the
WebSocket, the Content-Security-Policy, and Secure cookies over TLS.

Kept free of Django imports at module level where it can be, so settings.py can use allowed_hosts()."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

LOCAL_NAMES = ["localhost", "127.0.0.1", "[::1]"]
WILDCARD_BINDS = {"0.0.0.0", "::", ""}

# The dashboard's own scripts are files under /static/ and satisfy script-src 'self'; nothing
# inline. Styles keep 'unsafe-inline' for style="" attributes the server renders (a progress bar's
# width); styles cannot run code. connect-src 'self' covers the same-origin ws:/wss: (CSP level 3).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def allowed_hosts(environ: Mapping[str, str] = os.environ) -> list[str]:
    """PERFMON_ALLOWED_HOSTS when set (comma separated, "*" only if you say so); else the names
    this server is bound to and told about: localhost, the --host it listens on and, when that is
    every interface, this machine's name and addresses."""
    told = [h.strip() for h in (environ.get("PERFMON_ALLOWED_HOSTS") or "").split(",") if h.strip()]
    if told:
        return told
    hosts = list(LOCAL_NAMES)
    bound = (environ.get("PERFMON_HOST") or "127.0.0.1").strip()
    if bound in WILDCARD_BINDS:
        hosts += _this_machine()
    else:
        hosts.append(f"[{bound}]" if ":" in bound else bound)
    for origin in (environ.get("PERFMON_CSRF_TRUSTED_ORIGINS") or "").split(","):
        name = urlsplit(origin.strip()).hostname
        if name:
            hosts.append(name)
    return list(dict.fromkeys(hosts))


def _this_machine() -> list[str]:
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        import psutil

        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family == socket.AF_INET:
                    names.append(address.address)
                elif address.family == socket.AF_INET6:
                    names.append(f"[{address.address.split('%')[0]}]")
    except Exception:  # no psutil or no interfaces: the names above still work
        pass
    return [n for n in names if n]


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy to every answer, and marks every cookie Secure when the
    request came over TLS (directly or through a proxy uvicorn trusts), so a deployment behind
    HTTPS needs no setting for it. HSTS comes from Django's SecurityMiddleware (secure requests only)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.is_secure():
            for cookie in response.cookies.values():
                cookie["secure"] = True
        return response


class OriginValidator:
    """ASGI middleware for the WebSocket: refuse the handshake unless its Origin names a host we
    serve (ALLOWED_HOSTS, read on every connection so tests and settings changes apply).

    A missing Origin is refused too: every browser sends one on a WebSocket, and the socket is
    authenticated by the session cookie only (no tokens), so the only clients are browsers."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(_header(scope, b"origin")):
            from channels.security.websocket import WebsocketDenier

            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str | None) -> bool:
    from django.conf import settings
    from django.http.request import validate_host

    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return validate_host(host, settings.ALLOWED_HOSTS) or origin in settings.CSRF_TRUSTED_ORIGINS
