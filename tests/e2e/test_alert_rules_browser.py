"""The whole stack: a rule made in the browser's form fires from the real sampler's data through the
stream and the evaluator that `perfmon up` supervises, and the alerts page shows it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.stack import NODE_NAME, logged_in_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture
def page(stack, browser):
    with logged_in_page(stack, browser) as logged_in:
        yield logged_in


def test_a_rule_made_in_the_form_fires_from_live_samples(stack, page):
    page.goto(stack.url + "/rules/")
    page.fill("#id_name", "memory in use")
    page.select_option("#id_kind", "metric")
    page.fill("#id_metric", "host.memory_percent")
    page.fill("#id_node", NODE_NAME)
    page.select_option("#id_op", ">")
    page.fill("#id_threshold", "0.5")  # any running machine uses more than 0.5% of its memory
    page.fill("#id_for_s", "2")
    page.click("#rule-form button[type=submit]")
    page.wait_for_url(stack.url + "/rules/*/")

    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline:
        page.goto(stack.url + "/alerts/?state=firing")
        if page.locator("#alerts-table").count():
            state = page.locator("#alerts-table tbody tr td.state-firing").first.inner_text()
            break
        time.sleep(1)
    assert state == "firing", stack.log()[-3000:]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "alerts.png"), full_page=True)
    page.locator("#alerts-table tbody tr a").first.click()
    history = page.locator("#events-table").inner_text()
    assert "pending" in history and "firing" in history
    page.screenshot(path=str(ARTIFACTS / "alert.png"), full_page=True)
    page.goto(stack.url + "/rules/")
    page.screenshot(path=str(ARTIFACTS / "rules.png"), full_page=True)
    assert page.script_errors == []
