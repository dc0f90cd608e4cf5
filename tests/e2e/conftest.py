from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """One running `perfmon up` shared by the end-to-end tests that only use it."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = "Debian's chromium is not at /usr/bin/chromium; `make test` installs it where it can"


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never `playwright install`, which downloads its own)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: install Debian's chromium (scripts/ensure-chromium)")
        pytest.skip(reason=NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield CspBypassingBrowser(browser)
        browser.close()


def pytest_terminal_summary(terminalreporter):
    """The fault suite's measured figures (jobs lost, samples missing, recovery times) for the README."""
    faults = sys.modules.get("tests.e2e.test_faults")
    if faults is not None and faults.FAULT_FIGURES:
        terminalreporter.section("fault figures")
        for row in faults.FAULT_FIGURES:
            terminalreporter.write_line(json.dumps(row))


class CspBypassingBrowser:
    """The browser with its pages ignoring the Content-Security-Policy unless a test says otherwise
    (bypass_csp=False, as tests/e2e/test_trust_browser.py does to check the policy): Playwright's
    wait_for_function polls by evaluating strings in the page, which the policy rightly refuses."""

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **options):
        options.setdefault("bypass_csp", True)
        return self._browser.new_context(**options)

    def new_page(self, **options):
        options.setdefault("bypass_csp", True)
        return self._browser.new_page(**options)

    def __getattr__(self, name):
        return getattr(self._browser, name)
