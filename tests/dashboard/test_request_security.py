"""Request security: the WebSocket's Origin, the allowed hosts, the CSP and Secure cookies."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import live
from dashboard.models import Role
from dashboard.permissions import HIDDEN_COMMAND, grant
from perfmon.asgi import application
from perfmon.security import allowed_hosts
from tests.dashboard.live_client import communicator_for, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged_in_client():
    user = get_user_model().objects.create_user("wendy", password="pw-wendy-123")
    client = Client()
    client.force_login(user)
    return client


def socket_with_origin(client: Client, origin: bytes | None) -> WebsocketCommunicator:
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"host", b"testserver"), (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    if origin is not None:
        headers.append((b"origin", origin))
    return WebsocketCommunicator(application, "/ws/live", headers=headers)


@pytest.mark.parametrize("origin", [b"http://evil.example", b"null", None, b"http://testserver.evil.example"])
async def test_the_websocket_refuses_a_foreign_or_missing_origin_even_with_a_session(
    logged_in_client, origin
):
    connected, _code = await socket_with_origin(logged_in_client, origin).connect()
    assert not connected


async def test_the_websocket_accepts_its_own_origin(logged_in_client):
    communicator = socket_with_origin(logged_in_client, b"http://testserver")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


async def test_a_viewer_gets_no_command_lines_and_an_operator_does(logged_in_client):
    frame = {
        "type": "sample",
        "node": "n1",
        "host": {"top_processes": {"by_cpu": [{"pid": 7, "command": "train --token=abc"}]}},
    }
    viewer = communicator_for(logged_in_client)
    await viewer.connect()
    await subscribe(viewer, "node:n1")
    operator_user = await sync_to_async(get_user_model().objects.create_user)(
        "oscar", password="pw-oscar-123"
    )
    await sync_to_async(grant)(operator_user, Role.OPERATOR)
    operator_client = Client()
    await sync_to_async(operator_client.force_login)(operator_user)
    operator = communicator_for(operator_client)
    await operator.connect()
    await subscribe(operator, "node:n1")

    await sync_to_async(live.push)("node:n1", frame)
    seen_by_viewer = json.loads(await viewer.receive_from(timeout=5))
    seen_by_operator = json.loads(await operator.receive_from(timeout=5))
    assert seen_by_viewer["host"]["top_processes"]["by_cpu"][0]["command"] == HIDDEN_COMMAND
    assert seen_by_operator["host"]["top_processes"]["by_cpu"][0]["command"] == "train --token=abc"
    await viewer.disconnect()
    await operator.disconnect()


def test_allowed_hosts_default_to_what_the_server_is_bound_to():
    assert "*" not in allowed_hosts({})
    assert allowed_hosts({}) == ["localhost", "127.0.0.1", "[::1]"]
    assert "10.1.2.3" in allowed_hosts({"PERFMON_HOST": "10.1.2.3"})
    assert "perfmon.example.org" in allowed_hosts(
        {"PERFMON_CSRF_TRUSTED_ORIGINS": "https://perfmon.example.org"}
    )
    assert allowed_hosts({"PERFMON_ALLOWED_HOSTS": "a.example, b.example"}) == ["a.example", "b.example"]


def test_an_unknown_host_header_is_refused(client):
    assert client.get("/healthz", HTTP_HOST="evil.example").status_code == 400


def test_pages_carry_a_csp_without_inline_script(client):
    csp = client.get("/login/")["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in csp


def test_cookies_are_secure_and_hsts_is_sent_over_tls(client):
    get_user_model().objects.create_user("tina", password="pw-tina-12345")
    response = client.post("/login/", {"username": "tina", "password": "pw-tina-12345"}, secure=True)
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["secure"] is True
    assert response.cookies[settings.SESSION_COOKIE_NAME]["httponly"] is True
    assert "max-age=" in client.get("/login/", secure=True)["Strict-Transport-Security"]
    plain = Client().get("/login/")
    assert "Strict-Transport-Security" not in plain
