"""The API docs page in Debian's chromium with every request off the perfmon server refused,
as on a machine with no internet."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"


def test_the_api_docs_list_the_endpoints_with_no_internet(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    server = urlsplit(stack.url).netloc
    refused: list[str] = []
    missing: list[str] = []

    def only_the_server(route):
        url = urlsplit(route.request.url)
        if url.netloc == server and url.path == "/api/docs":
            # The Content-Security-Policy that is coming: no inline script may run, nothing from elsewhere.
            response = route.fetch()
            route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})
        elif url.netloc == server:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)

    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/")
    page.click("header nav >> text=API")

    page.wait_for_selector(".opblock-summary-path")
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)")
    assert "/api/jobs" in paths
    assert "/api/jobs/{job_id}" in paths
    assert page.is_visible("header.topbar"), "the docs sit inside perfmon's page frame"
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
    assert refused == [] and errors == [] and missing == []
    context.close()
