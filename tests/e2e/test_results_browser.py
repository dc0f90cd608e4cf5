"""A finished sweep in the browser: the result table and its charts on the job page (loaded with
the page, and arriving live), then two jobs side by side on the compare page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SWEEP = {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [1, 8, 32], "iterations": 40}}

pytestmark = [pytest.mark.browser, pytest.mark.stack]

# How many points the Chart.js instance on a canvas holds, per dataset (null: no chart there).
CHART_POINTS = """selector => {
  const canvas = document.querySelector(selector);
  const chart = canvas && window.Chart ? window.Chart.getChart(canvas) : undefined;
  return chart ? chart.data.datasets.map((d) => d.data.filter((v) => v !== null).length) : null;
}"""


def wait_until_finished(stack, job_id: int, token: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = stack.get(f"/api/jobs/{job_id}", token)[1]
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s} s:\n{stack.log()[-3000:]}")


def test_a_sweep_is_charted_and_two_jobs_are_compared(stack, browser):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    ARTIFACTS.mkdir(exist_ok=True)
    token = stack.cli("token", "admin").stdout.strip()
    ids = []
    # The first sweep runs longer, so the second is still queued when its page opens.
    for iterations in (1500, 40):
        sweep = {**SWEEP, "params": {**SWEEP["params"], "iterations": iterations}}
        status, body = stack.post("/api/jobs", sweep, token)
        assert status == 201, body
        ids.append(body["id"])
    first, second = ids

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-state")

    # The second job waits behind the first on the node's one CPU worker: open its page now, so
    # that its result arrives over the WebSocket (job-detail.js inserts it and asks for the charts).
    page.goto(f"{stack.url}/jobs/{second}/")
    assert page.get_attribute("#job", "data-finished") == "false", "the page must open before the job ends"
    assert wait_until_finished(stack, first, token)["status"] == "succeeded"
    page.wait_for_selector("#result-table", timeout=120_000)
    assert page.text_content("#job-status") == "succeeded"
    assert page.evaluate("() => Boolean(window.Chart && window.perfmonJobCharts)"), (
        "job.html must load vendor/chart.umd.min.js and js/job-charts.js before js/job-detail.js"
    )
    try:
        page.wait_for_function(f"({CHART_POINTS})('#latency-chart') !== null", timeout=10_000)
    except PlaywrightTimeoutError:
        pytest.fail(
            "job-detail.js must call window.perfmonJobCharts.render(container) after inserting the result"
        )
    assert page.evaluate(CHART_POINTS, "#latency-chart") == [3, 3, 3], "p50, p95 and p99 at 3 batch sizes"
    assert page.evaluate(CHART_POINTS, "#throughput-chart") == [3]

    # The first job, opened after it finished: the result and its charts come with the page.
    page.goto(f"{stack.url}/jobs/{first}/")
    rows = page.locator("#result-table tbody tr[data-batch-size]")
    assert rows.count() == 3
    assert float(page.text_content("#result-table [data-metric=p50]")) > 0
    assert float(page.text_content("#result-table [data-metric=throughput]")) > 0
    assert page.evaluate(CHART_POINTS, "#latency-chart") == [3, 3, 3]
    assert page.evaluate(CHART_POINTS, "#throughput-chart") == [3]
    latency_scale = page.evaluate(
        "() => Chart.getChart(document.querySelector('#latency-chart')).scales.x.type"
    )
    assert latency_scale == "logarithmic", "1 to 32 is spaced on a log axis"
    page.screenshot(path=str(ARTIFACTS / "results-job.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#download-csv")
    assert download.value.suggested_filename == f"perfmon-job-{first}.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith(
        "job_id,model,node,device,precision,threads,test,batch_size,concurrency,p50_ms"
    )
    assert len(lines) == 4

    # The compare page, reached through the picker.
    page.click("#compare-link")
    page.wait_for_selector("#compare-picker")
    page.check(f"#pick-{second}")
    page.click("#compare-picker button[type=submit]")
    page.wait_for_selector("#compare-table")
    assert f"ids={first}" in page.url or f"ids={second}" in page.url
    ratios = page.locator("#compare-table [data-ratio=p50]")
    assert ratios.count() == 3, "one p50 ratio per batch size for the second job"
    for text in ratios.all_text_contents():
        assert text.endswith("x") and float(text[:-1]) > 0
    assert page.evaluate(CHART_POINTS, "#compare-latency-chart") == [3, 3, 3, 3], "p50 and p99 of 2 jobs"
    assert page.evaluate(CHART_POINTS, "#compare-throughput-chart") == [3, 3]
    page.screenshot(path=str(ARTIFACTS / "results-compare.png"), full_page=True)
    # The overlaid p50 lines sit on the floor under p99: the log-scale checkbox lifts them.
    page.check("figure[data-chart=latency] input[data-role=log-y]")
    y_type = "() => Chart.getChart(document.querySelector('#compare-latency-chart')).scales.y.type"
    assert page.evaluate(y_type) == "logarithmic"

    page.goto(f"{stack.url}/jobs/compare/?ids={first}")
    assert "pick at least 2 jobs" in page.text_content("#compare-error")
    page.close()
