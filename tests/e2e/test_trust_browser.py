"""The Content-Security-Policy against the dashboard's own pages in Debian's chromium (no page may
trip it, so every script is a file), the tokens page, and the WebSocket's Origin check on the real
server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER, NODE_NAME

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

# /api/docs joins this list once it is served from the vendored swagger-ui: django-ninja's CDN
# page loads scripts from jsdelivr and runs an inline one, both of which the policy refuses.
PAGES = [
    "/",
    "/nodes/",
    f"/nodes/{NODE_NAME}/",
    "/models/",
    "/benchmark/",
    "/optimize/",
    "/jobs/",
    "/jobs/compare/",
    "/tokens/",
    "/channels/",
]


@pytest.fixture
def page(stack, browser):
    # The policy in force: these tests check the pages under it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=False)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.violations = []
    page.on(
        "console",
        lambda message: (
            page.violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: page.violations.append(f"script error: {error}"))
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/")
    yield page
    context.close()


def test_no_page_trips_the_content_security_policy(stack, page):
    # Also count violations the page sees itself (console text differs between chromium versions).
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    for path in PAGES:
        response = page.goto(stack.url + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        seen = page.evaluate("window.__csp")
        assert seen == [], f"{path}: {seen}"
    assert page.violations == []
    # The scripts ran: the live feed connected through the WebSocket the policy allows.
    page.goto(stack.url + "/")
    # A selector, not wait_for_function: that polls by eval, which the policy refuses.
    page.wait_for_selector("#connection-state[data-state=live]")


def test_a_user_makes_and_revokes_a_token_on_the_tokens_page(stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(stack.url + "/tokens/")
    # A label no token's shown prefix can contain by chance ("ci" matched "pm_CIzT..." once).
    page.fill("#id_label", "nightly-runner")
    page.select_option("#id_role", "viewer")
    page.select_option("#token-form #id_expires", "7d")
    page.click("#token-form button[type=submit]")
    raw = page.text_content("#new-token-value").strip()
    assert raw.startswith("pm_")
    status, _ = stack.get("/api/jobs", token=raw)
    assert status == 200
    status, body = stack.post("/api/jobs", {"kind": "benchmark", "model": "SimpleModel"}, token=raw)
    assert status == 403 and "operator" in body["error"]
    row = page.locator("#tokens-table tbody tr", has_text="nightly-runner")
    assert "viewer" in row.text_content()
    page.screenshot(path=str(ARTIFACTS / "tokens.png"), full_page=True)
    row.locator("button", has_text="Revoke").click()
    page.wait_for_load_state()
    status, body = stack.get("/api/jobs", token=raw)
    assert status == 401


def test_the_real_server_refuses_a_websocket_from_another_origin(stack, page):
    # The sync client: Playwright's sync API already runs an event loop in this thread.
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    url = stack.url.replace("http://", "ws://") + "/ws/live"

    def first_answer(origin: str) -> str:
        try:
            with connect(
                url, origin=origin, additional_headers={"Cookie": f"sessionid={cookie['value']}"}
            ) as socket:
                socket.send(json.dumps({"subscribe": "jobs"}))
                return json.loads(socket.recv(timeout=10))["type"]
        except InvalidStatus as exc:
            return f"refused {exc.response.status_code}"

    assert first_answer("http://evil.example") == "refused 403"
    assert first_answer(stack.url) == "subscribed"
