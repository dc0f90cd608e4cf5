"""Runtimes in the browser, under the real Content-Security-Policy: the form shows only the chosen
runtime's options, an ONNX Runtime benchmark runs on the real worker, its page names the runtime,
and "Run again" brings the runtime and its options back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER
from tests.e2e.test_jobs_browser import wait_until_finished

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]


def test_choose_onnxruntime_run_it_and_run_it_again(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    token = stack.cli("token", "admin").stdout.strip()
    # The policy is enforced here: the show/hide script must work from its static file.
    page = browser.new_page(viewport={"width": 1280, "height": 1100}, bypass_csp=False)
    page.set_default_timeout(30_000)
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-state")

    page.goto(stack.url + "/benchmark/")
    assert page.input_value("#id_runtime") == "eager"
    assert not page.is_visible("#id_compile_mode") and not page.is_visible("#id_ort_graph_optimization")
    page.select_option("#id_runtime", "torch_compile")
    assert page.is_visible("#id_compile_mode") and not page.is_visible("#id_ort_provider")
    page.select_option("#id_runtime", "onnxruntime")
    assert page.is_visible("#id_ort_provider") and page.is_visible("#id_ort_graph_optimization")
    assert not page.is_visible("#id_compile_mode")

    page.select_option("#id_model", "SimpleModel")
    page.fill("#id_batch_sizes", "1, 8")
    page.fill("#id_iterations", "20")
    page.fill("#id_time_budget_s", "1")
    page.select_option("#id_ort_graph_optimization", "extended")
    page.screenshot(path=str(ARTIFACTS / "runtimes-form.png"), full_page=True)
    page.click("#benchmark-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    job = wait_until_finished(stack, job_id, token)
    assert job["status"] == "succeeded", job
    page.reload()
    assert page.text_content("#job-runtime") == "onnxruntime (cpu, graph extended)"
    page.screenshot(path=str(ARTIFACTS / "runtimes-job.png"), full_page=True)

    page.click("#run-again")
    page.wait_for_selector("#run-again-note")
    assert page.input_value("#id_runtime") == "onnxruntime"
    assert page.input_value("#id_ort_graph_optimization") == "extended"
    assert page.is_visible("#id_ort_graph_optimization") and not page.is_visible("#id_compile_mode")
    page.close()
