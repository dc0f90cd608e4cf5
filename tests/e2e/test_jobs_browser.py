"""The jobs list and job page in the browser: filter the list, tick two jobs to compare, run a job
again from its page with the form filled in, and cancel a running sweep (after confirming) that
keeps the batch size it already measured."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
QUICK = {"batch_sizes": [1, 8], "iterations": 20, "time_budget_s": 1}

pytestmark = [pytest.mark.browser, pytest.mark.stack]


def wait_until_finished(stack, job_id: int, token: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = stack.get(f"/api/jobs/{job_id}?raw=0", token)[1]
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s} s:\n{stack.log()[-3000:]}")


def submit(stack, token: str, model: str, params: dict) -> int:
    status, body = stack.post("/api/jobs", {"kind": "benchmark", "model": model, "params": params}, token)
    assert status == 201, body
    return body["id"]


def test_filter_the_jobs_list_tick_two_to_compare_and_run_one_again(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    token = stack.cli("token", "admin").stdout.strip()
    first = submit(stack, token, "SimpleModel", QUICK)
    second = submit(stack, token, "SimpleModel", QUICK)
    student = submit(stack, token, "StudentModel", {**QUICK, "precision": "bf16", "threads": 1})
    for job_id in (first, second, student):
        assert wait_until_finished(stack, job_id, token)["status"] == "succeeded"

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-state")

    # Filter by model: the StudentModel job leaves the list.
    page.goto(stack.url + "/jobs/")
    page.select_option("#job-filters select[name=model]", "SimpleModel")
    page.click("#job-filters button[type=submit]")
    page.wait_for_url("**/jobs/?*model=SimpleModel*")
    shown = {
        int(v)
        for v in page.eval_on_selector_all("#jobs-table tbody tr", "rows => rows.map(r => r.dataset.jobId)")
    }
    assert {first, second} <= shown and student not in shown
    p50 = page.text_content(f'tr[data-job-id="{first}"] [data-role=p50]')
    assert p50.strip().endswith("@1") and float(p50.split()[0]) > 0, p50
    assert "/s" in page.text_content(f'tr[data-job-id="{first}"] [data-role=throughput]')

    # Tick two jobs: the compare button comes alive and opens the comparison.
    assert page.is_disabled("#compare-ticked")
    page.check(f"#tick-{first}")
    assert page.is_disabled("#compare-ticked"), "one job is not a comparison"
    page.check(f"#tick-{second}")
    assert page.is_enabled("#compare-ticked")
    assert page.text_content("#compare-ticked") == "Compare 2 ticked jobs"
    page.screenshot(path=str(ARTIFACTS / "jobs-list.png"), full_page=True)
    page.click("#compare-ticked")
    page.wait_for_selector("#compare-table")
    assert "/jobs/compare/?" in page.url and f"ids={second}" in page.url and f"ids={first}" in page.url

    # Run again: the form opens filled in with the job's model, node and parameters.
    page.goto(f"{stack.url}/jobs/{student}/")
    page.click("#run-again")
    page.wait_for_selector("#run-again-note")
    assert page.input_value("#id_model") == "StudentModel"
    assert page.input_value("#id_target") == "|cpu"
    assert page.input_value("#id_batch_sizes") == "1, 8"
    assert page.input_value("#id_iterations") == "20"
    assert page.input_value("#id_precision") == "bf16"
    assert page.input_value("#id_threads") == "1"
    assert float(page.input_value("#id_time_budget_s")) == 1.0
    page.screenshot(path=str(ARTIFACTS / "jobs-run-again.png"), full_page=True)

    # A range error shows beside its field, in words.
    page.fill("#id_batch_sizes", "1, 5000")
    page.click("#benchmark-form button[type=submit]")
    page.wait_for_selector('.field-error[data-field="batch_sizes"]')
    assert "Batch size 5000 is too large: at most 4096" in page.text_content(
        '.field-error[data-field="batch_sizes"]'
    )
    assert page.query_selector("#form-errors") is None
    page.screenshot(path=str(ARTIFACTS / "jobs-form-error.png"), full_page=True)
    page.close()


def test_cancel_asks_first_and_keeps_the_measured_batch_size(stack, browser):
    token = stack.cli("token", "admin").stdout.strip()
    # Each point runs its whole 4 s budget (the minimum count is out of reach).
    job_id = submit(
        stack,
        token,
        "TeacherModel",
        {"batch_sizes": [1, 256, 512], "iterations": 100_000, "time_budget_s": 4},
    )

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(stack.url + "/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-state")
    page.goto(f"{stack.url}/jobs/{job_id}/")
    page.wait_for_function(
        "() => document.getElementById('job-step').textContent.startsWith('batch 256')", timeout=90_000
    )

    # Saying no to the confirmation leaves the job running.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#job-cancel button")
    time.sleep(1.5)
    assert stack.get(f"/api/jobs/{job_id}?raw=0", token)[1]["status"] == "running"

    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.click("#job-cancel button")
    page.wait_for_selector("#partial-banner", timeout=60_000)
    assert "points were measured" in messages[0] or "kept" in messages[0], messages
    assert "after 1 of 3 batch sizes" in page.text_content("#partial-banner")
    assert page.locator("#result-table tbody tr[data-batch-size]").count() == 1
    assert page.text_content("#job-status") == "cancelled"
    job = stack.get(f"/api/jobs/{job_id}?raw=0", token)[1]
    assert job["status"] == "cancelled" and job["partial"] is True
    assert [run["batch_size"] for run in job["result"]["runs"]] == [1]
    page.screenshot(path=str(ARTIFACTS / "jobs-cancelled-partial.png"), full_page=True)

    page.goto(f"{stack.url}/jobs/987654/")
    assert "Job #987654 not found" in page.text_content("#job-not-found")
    page.close()
