"""`perfmon up` with PERFMON_DEMO_GPUS=2 in Debian's chromium: the simulated GPUs reach the node
page and the dashboard's fleet overview live, labelled "simulated" wherever they show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER, NODE_NAME, start_stack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory):
    """A stack of its own: its sampler reads two simulated GPUs instead of NVML."""
    running = start_stack(tmp_path_factory.mktemp("demo-stack"), PERFMON_DEMO_GPUS="2")
    yield running
    running.stop()


@pytest.fixture
def page(demo_stack, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(demo_stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(demo_stack.url + "/")
    page.script_errors = errors
    yield page
    context.close()


def wait_for_updates(page, selector: str, count: int) -> None:
    page.wait_for_function(
        f"Number(document.querySelector({selector!r}).dataset.updates || 0) >= {count}", timeout=30_000
    )


def test_the_fleet_overview_shows_simulated_gpu_tiles_that_move(demo_stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    node = page.locator(f"#fleet-overview .fleet-node[data-node='{NODE_NAME}']")
    # The node registers with its first heartbeat; a page loaded before that shows no tiles yet.
    for _ in range(30):
        if node.locator(".fleet-tile").count() == 2:
            break
        page.wait_for_timeout(1000)
        page.reload()
    tiles = node.locator(".fleet-tile")
    assert tiles.count() == 2
    assert node.locator(".badge.sim").text_content() == "simulated"
    assert node.locator("[data-role=node-state]").text_content() == "online"
    assert "Simulated H100 80GB" in tiles.first.get_attribute("title")

    tile0 = f"#fleet-overview .fleet-node[data-node='{NODE_NAME}'] .fleet-tile[data-gpu-index='0']"
    seen = set()
    for updates in range(1, 9):
        wait_for_updates(page, tile0, updates)
        figures = tiles.first.locator(".fleet-figures").text_content()
        seen.add(re.sub(r"\s+", " ", figures).strip())
    text = tiles.first.text_content()
    assert re.search(r"\d+\.\d %", text), text
    assert re.search(r"\d+(\.\d)? GiB / 80(\.0)? GiB", text), text
    assert re.search(r"\d+ °C", text) and re.search(r"\d+ W", text), text
    # Simulated readings vary tick to tick (utilization, power, temperature move together).
    assert len(seen) > 1, seen
    wait_for_updates(page, tile0.replace("'0'", "'1'"), 2)
    page.screenshot(path=str(ARTIFACTS / "fleet-overview.png"), full_page=True)
    assert page.script_errors == []


def test_a_simulated_gpu_node_page_is_labelled_and_live(demo_stack, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(demo_stack.url + "/nodes/")
    row = page.locator(f"#node-list tbody tr[data-node='{NODE_NAME}']")
    assert row.locator(".badge.sim").text_content() == "simulated"
    assert "2 × Simulated H100 80GB" in row.text_content()

    page.goto(f"{demo_stack.url}/nodes/{NODE_NAME}/")
    assert page.text_content("#node-simulated") == "simulated GPUs"
    assert page.is_hidden("#gpu-status")
    page.wait_for_function(
        "Number(document.querySelector('[data-gpu-index=\"1\"] canvas.spark').dataset.points || 0) >= 4"
    )
    card = page.locator(".gpu-card[data-gpu-index='0']").first
    assert "Simulated H100 80GB" in card.text_content()
    assert re.match(r"\d+ W / 700 W", card.locator("[data-metric=power_draw_w] .value").text_content())
    # The per-GPU charts are fed live too.
    page.wait_for_function(
        "Number(document.querySelector('canvas[data-chart=\"gpu-util\"]').dataset.points || 0) >= 2"
    )
    page.screenshot(path=str(ARTIFACTS / "node-simulated.png"), full_page=True)
    assert page.script_errors == []
