"""History on a young install in Debian's chromium against the real `perfmon up` (the stack is
minutes old): the 30-day range draws the minutes that exist and says where history starts, and
the dashboard's live chart opens with the last minutes already drawn."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.stack import NODE_NAME, logged_in_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

# Epoch seconds of the drawn points of a canvas's first dataset, and where they land in pixels.
DRAWN = """(canvas) => {
  const chart = Chart.getChart(canvas);
  const data = chart.data.datasets[0].data.filter((p) => p.y !== null);
  return { xs: data.map((p) => p.x), px: data.map((p) => chart.scales.x.getPixelForValue(p.x)),
           left: chart.chartArea.left, right: chart.chartArea.right };
}"""


@pytest.fixture
def page(stack, browser):
    with logged_in_page(stack, browser) as page:
        yield page


def _span_s(url: str) -> float:
    query = parse_qs(urlsplit(url).query)
    try:
        return float(query["end"][0]) - float(query["start"][0])
    except (KeyError, ValueError):
        return 0.0


def wait_for_history(page, stack, metric: str, older_than_s: float = 0) -> dict:
    """Poll the series API (as the logged-in page) until the sampler's history writer, which
    flushes every few seconds, has stored points of ``metric`` older than ``older_than_s``."""
    deadline = time.monotonic() + 60
    while True:
        now = time.time()
        answer = page.request.get(
            stack.url + "/api/metrics/series",
            params={"node": NODE_NAME, "metric": metric, "start": now - 3600, "end": now},
        ).json()
        points = answer.get("points") or []
        if points and points[0][0] < now - older_than_s:
            return answer
        assert time.monotonic() < deadline, f"no history of {metric} after 60 s: {answer}"
        time.sleep(1)


def test_thirty_days_of_a_young_install_draw_its_minutes_and_say_where_history_starts(stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    wait_for_history(page, stack, "host.cpu_percent")
    page.goto(f"{stack.url}/nodes/{NODE_NAME}/")
    with page.expect_response(
        # The 30-day request itself, not the page's own first load that may answer after the click.
        lambda r: (
            "/api/metrics/series/many" in r.url
            and "host.cpu_percent" in r.url
            and _span_s(r.url) > 29 * 86400
        )
    ) as info:
        page.click("button[data-range='2592000']")
    answer = next(s for s in info.value.json()["series"] if s.get("metric") == "host.cpu_percent")
    # Minutes of history asked for over 30 days: the finest tier, and where it starts.
    assert answer["tier"] in ("raw", "1m") and answer["resolution_s"] in (1, 60)
    assert answer["first_ts"] > answer["start"]
    page.wait_for_function(
        "document.getElementById('node-charts').dataset.loading === 'false'"
        " && document.querySelector('canvas[data-chart=\"host-cpu\"]').dataset.source === 'history'"
    )
    status = page.text_content("#range-status")
    assert status.startswith("last 30 days") and "history starts at " in status, status
    drawn = page.eval_on_selector("canvas[data-chart=host-cpu]", DRAWN)
    assert drawn["xs"], "the 30-day chart drew nothing"
    # The chart shows the span that exists across its width, not squeezed into the last pixel.
    if len(drawn["xs"]) > 1:
        assert max(drawn["px"]) - min(drawn["px"]) > (drawn["right"] - drawn["left"]) / 2
    assert all(drawn["left"] - 1 <= px <= drawn["right"] + 1 for px in drawn["px"])
    page.screenshot(path=str(ARTIFACTS / "node-30d-young.png"), full_page=True)

    # Back to a range inside the history: no note.
    page.click("button[data-range='live']")
    assert "history starts" not in page.text_content("#range-status")
    assert page.script_errors == []


def test_the_dashboard_live_chart_opens_with_the_last_minutes_from_history(stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    wait_for_history(page, stack, "host.cpu_percent", older_than_s=5)
    opened_s = time.time()
    with page.expect_response(lambda r: "/api/metrics/series/many" in r.url) as info:
        page.goto(stack.url + "/")
    assert info.value.status == 200
    # Points from before the page opened: backfilled, not waited for over the socket.
    page.wait_for_function(
        "(openedS) => { const d = Chart.getChart(document.getElementById('host-chart')).data.datasets[0].data;"
        " return d.length >= 2 && d[0].x < openedS - 2; }",
        arg=opened_s,
    )
    drawn = page.eval_on_selector("#host-chart", DRAWN)
    assert len(drawn["xs"]) >= 2 and min(drawn["xs"]) < opened_s - 2
    assert "Samples received" not in page.text_content("main")
    assert page.text_content("#host-chart-status").startswith("Last 5 minutes, live")
    page.screenshot(path=str(ARTIFACTS / "dashboard-backfilled.png"), full_page=True)
    assert page.script_errors == []
