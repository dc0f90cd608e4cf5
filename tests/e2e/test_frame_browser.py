"""What every page shares, in Debian's chromium against the real `perfmon up` (uvicorn): the live
socket's 4401 for a logged-out browser, the login form's error and the not-found page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

CLOSE_CODE = """() => new Promise((resolve) => {
  const socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/live");
  socket.onclose = (event) => resolve({code: event.code, reason: event.reason});
})"""


def test_a_logged_out_browser_sees_close_code_4401(stack, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.url + "/login/")
    closed = page.evaluate(CLOSE_CODE)
    assert closed["code"] == 4401, closed  # not 1006, which is all a refused handshake shows
    assert "log in" in closed["reason"]
    context.close()


def test_a_wrong_password_and_a_missing_model_show_one_clear_message(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 700})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator("main .error, main .errorlist").count() == 1
    page.screenshot(path=str(ARTIFACTS / "login-error.png"))

    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/")
    response = page.goto(stack.url + "/models/987654/")
    assert response.status == 404
    assert "Not found" in page.text_content("#not-found h1")
    assert page.is_visible("header.topbar nav")
    page.screenshot(path=str(ARTIFACTS / "not-found.png"))
    context.close()
