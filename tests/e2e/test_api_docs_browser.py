"""The API docs page in Debian's chromium with every request off the perfmon server refused,
as on a machine with no internet."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

# What the coming Content-Security-Policy forbids that concerns this page: any script not served as a file.
CSP = "script-src 'self'"
# Every violation of it, as the page itself sees them.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


def test_the_api_docs_list_the_endpoints_with_no_internet(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    server = urlsplit(stack.url).netloc
    refused: list[str] = []
    missing: list[str] = []

    def only_the_server(route):
        url = urlsplit(route.request.url)
        if url.netloc == server and url.path == "/api/docs":
            # Served with the Content-Security-Policy that is coming. (A page Playwright fulfils loses
            # its local origin, so Chromium's local-network checks refuse its live socket: not checked here.)
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
    page.add_init_script(RECORD_VIOLATIONS)
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
    assert page.evaluate("window.cspViolations") == []
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
    assert refused == [] and errors == [] and missing == []
    context.close()
