"""A labeled data set uploaded from the optimize page: refused with the reason beside the file, then
kept and chosen in the optimization form, under the page's Content-Security-Policy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_optimize_browser import ARTIFACTS, logged_in

pytestmark = [pytest.mark.browser, pytest.mark.stack]


def write_npz(path: Path, labels: np.ndarray) -> Path:
    buffer = io.BytesIO()
    x = np.random.default_rng(0).random((len(labels), 3, 32, 32), dtype=np.float32)
    np.savez(buffer, x=x, y=labels)
    path.write_bytes(buffer.getvalue())
    return path


def test_upload_a_data_set_from_the_optimize_page(stack, browser, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page = logged_in(stack, browser)
    page.goto(stack.url + "/optimize/")
    page.select_option("#id_dataset_model", "SmallResNet")
    page.fill("#id_dataset_name", "shapes-v1")
    page.set_input_files("#id_dataset_file", str(write_npz(tmp_path / "bad.npz", np.full(40, 12))))
    page.click("#dataset-form button[type=submit]")
    error = page.wait_for_selector("#id_dataset_file-error")
    assert "labels must be >= 0 and below 10" in error.inner_text()

    page.select_option("#id_dataset_model", "SmallResNet")
    page.fill("#id_dataset_name", "shapes-v1")
    page.set_input_files("#id_dataset_file", str(write_npz(tmp_path / "good.npz", np.arange(40) % 10)))
    page.click("#dataset-form button[type=submit]")
    page.wait_for_url("**/optimize/?model=SmallResNet&dataset=*")
    chosen = page.locator("#id_dataset option:checked").inner_text()
    assert chosen.startswith("SmallResNet: #") and "shapes-v1: 40 samples, 10 classes" in chosen
    assert page.input_value("#id_model") == "SmallResNet"
    page.screenshot(path=str(ARTIFACTS / "optimize-dataset-upload.png"), full_page=True)
    assert page.violations == []
