"""A model's page in Debian's chromium against the real `perfmon up`: upload through the form,
validation finishing live on the page, "Benchmark this", download and delete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.stack import logged_in_page
from tests.engine import test_registry_samples as samples

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture
def page(stack, browser):
    with logged_in_page(stack, browser, accept_downloads=True) as page:
        yield page


def test_a_model_validates_live_then_downloads_and_deletes(stack, page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    data = samples.onnx_mlp()
    model_file = tmp_path / "digits.onnx"
    model_file.write_bytes(data)

    page.goto(stack.url + "/models/")
    box = page.locator("#id_input_spec").bounding_box()
    assert box["height"] > 80, "the input spec box has room for a few lines of JSON"
    page.screenshot(path=str(ARTIFACTS / "models-upload.png"), full_page=True)
    page.fill("#id_name", "browser digits")
    page.set_input_files("#id_file", str(model_file))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(re.compile(r"/models/\d+/$"))
    row = page.locator("#versions-table tbody tr[data-version='1']")
    # The stack's worker runs the test forward pass; the verdict reaches the page without a reload.
    page.wait_for_function(
        "document.querySelector(\"#versions-table tr[data-version='1']\").dataset.status === 'ready'",
        timeout=120_000,
    )
    assert row.locator("[data-role=status]").text_content() == "ready"
    benchmark = row.locator("[data-role=benchmark]")
    assert benchmark.is_visible()
    assert benchmark.get_attribute("href") == "/benchmark/?model=browser%20digits%401"
    page.screenshot(path=str(ARTIFACTS / "model-detail.png"), full_page=True)

    with page.expect_download() as info:
        row.locator("[data-role=download]").click()
    download = info.value
    assert download.suggested_filename == "browser_digits-v1.onnx"
    assert Path(download.path()).read_bytes() == data

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-role=delete]").click()
    page.wait_for_selector("#versions-table tbody tr[data-version='1']", state="detached")
    assert "No versions left." in page.text_content("#versions-table")
    assert page.script_errors == []
