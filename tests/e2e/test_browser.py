"""A person's path through the dashboard in Debian's chromium, driven by Playwright
(never `playwright install`: it downloads a browser of its own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]


def test_a_user_logs_in_watches_the_live_chart_and_runs_a_benchmark(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)

    page.goto(stack.url + "/")
    assert "/login/" in page.url
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")

    page.wait_for_selector("#host-chart")
    # Points drawn (history backfills the chart at once), then a live sample over the WebSocket
    # fills the current figure: the second can come later than the first on a busy machine.
    page.wait_for_function("Number(document.getElementById('host-chart').dataset.points || 0) >= 2")
    page.wait_for_function("/^\\d+(\\.\\d)? %$/.test(document.getElementById('cpu-now').textContent)")
    assert page.text_content("#connection-state") == "live"
    assert re.match(r"\d+(\.\d)? %", page.text_content("#cpu-now"))
    assert "no GPU" in page.text_content("#gpu-status")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.select_option("#id_model", "TeacherModel")
    page.fill("#id_batch_sizes", "1, 16")
    page.fill("#id_iterations", "60")
    page.fill("#id_time_budget_s", "2")
    page.click("#benchmark-form button[type=submit]")

    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    page.wait_for_selector("#result-table", timeout=90_000)
    assert page.text_content("#job-status") == "succeeded"
    p50 = float(page.text_content("#result-table [data-metric=p50]"))
    throughput = float(page.text_content("#result-table [data-metric=throughput]"))
    assert p50 > 0 and throughput > 0
    assert page.get_attribute(".progress", "aria-valuenow") == "100"
    # The sweep is drawn: one latency point per batch size, fed in as the job ended.
    points = page.evaluate(
        "() => Chart.getChart(document.querySelector('#latency-chart')).data.datasets[0].data.length"
    )
    assert points == 2
    page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)
    # p99 can dwarf p50: the latency chart's log-scale checkbox switches its y axis.
    y_type = "() => Chart.getChart(document.querySelector('#latency-chart')).scales.y.type"
    assert page.evaluate(y_type) == "linear"
    page.check("figure[data-chart=latency] input[data-role=log-y]")
    assert page.evaluate(y_type) == "logarithmic"
    page.screenshot(path=str(ARTIFACTS / "job-log-scale.png"), full_page=True)
    page.uncheck("figure[data-chart=latency] input[data-role=log-y]")
    assert page.evaluate(y_type) == "linear"


def test_a_bad_form_submission_shows_the_reason(stack, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.goto(stack.url + "/benchmark/")
    # The browser's own checks would stop the value; remove them to see the server's answer.
    page.fill("#id_batch_sizes", "8, 5000")
    page.click("#benchmark-form button[type=submit]")
    assert "Batch size 5000 is too large: at most 4096" in page.text_content("#benchmark-form")
    context.close()
