"""Partial sweeps through a real Celery worker: a model that raises at one batch size, and a sweep
cancelled after its first point, both keep the points that were measured."""

from __future__ import annotations

import io
import json
import time

import pytest
import torch
from django.contrib.auth import get_user_model
from django.test import Client
from torch import nn

from dashboard.models import Job, JobStatus
from tests.dashboard.test_registry_benchmark import finished
from tests.dashboard.test_registry_worker import celery_worker, client, settled, upload  # noqa: F401, F811
from tests.engine import test_registry_samples as samples

pytestmark = pytest.mark.django_db(transaction=True)


class BreaksAtEight(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 8:
            raise ValueError("shape mismatch in layer 3")
        return x * 2


def scripted_breaks_at_eight() -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(BreaksAtEight()), buffer)
    return buffer.getvalue()


def submit(api_client: Client, model: str, params: dict) -> int:
    body = {"kind": "benchmark", "model": model, "params": params}
    response = api_client.post("/api/jobs", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_model_that_raises_at_batch_8_keeps_batch_1_and_the_job_succeeds(celery_worker, client) -> None:  # noqa: F811
    body = upload(
        client,
        "m.pt",
        scripted_breaks_at_eight(),
        input_spec=json.dumps(samples.SPEC_784),
        name="breaks-at-8",
    )
    assert settled(body["id"]).status == "ready", "the upload check runs batch 2, which works"
    job = finished(
        submit(client, "breaks-at-8", {"batch_sizes": [1, 8, 2], "iterations": 20, "time_budget_s": 1})
    )

    assert job.status == JobStatus.SUCCEEDED, job.error
    runs = job.result["runs"]
    assert [run["batch_size"] for run in runs] == [1, 8, 2]
    assert runs[0]["error"] is None and runs[0]["latency_ms"]["p50"] > 0, "measured before the failure"
    assert runs[2]["error"] is None, "the sweep went on after it"
    assert "at batch 8" in runs[1]["error"] and "shape mismatch in layer 3" in runs[1]["error_detail"]
    assert job.result["partial"] is True

    listed = client.get("/api/jobs").json()[0]
    assert listed["id"] == job.pk and listed["partial"] is True
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="partial-banner"' in page and '<pre class="error-text">' in page


def test_a_job_where_every_point_fails_is_failed_with_the_reasons(celery_worker, client) -> None:  # noqa: F811
    body = upload(
        client,
        "m.pt",
        scripted_breaks_at_eight(),
        input_spec=json.dumps(samples.SPEC_784),
        name="breaks-at-8",
    )
    settled(body["id"])
    job = finished(submit(client, "breaks-at-8", {"batch_sizes": [8], "iterations": 5, "time_budget_s": 1}))
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("no point succeeded: ") and "at batch 8" in job.error
    assert job.result["runs"][0]["error_detail"], "each point's traceback is kept for the page"


def test_cancelling_a_running_sweep_keeps_the_points_already_measured(celery_worker, client) -> None:  # noqa: F811
    user = get_user_model().objects.get(username="dora")
    # Each point takes its whole 4 s budget (the minimum count cannot be reached), so the cancel
    # lands in batch 256 with time to spare for the worker's once-a-second check.
    job_id = submit(
        client, "TeacherModel", {"batch_sizes": [1, 256, 512], "iterations": 100_000, "time_budget_s": 4}
    )
    deadline = time.monotonic() + 90
    while not Job.objects.get(pk=job_id).step.startswith("batch 256"):
        assert time.monotonic() < deadline, "the sweep never reached batch 256"
        time.sleep(0.05)
    response = client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    while (job := Job.objects.get(pk=job_id)).result is None:
        assert time.monotonic() < deadline, "the worker did not store the measured points"
        time.sleep(0.1)
    assert job.status == JobStatus.CANCELLED and job.error == f"cancelled by {user.username}"
    assert [run["batch_size"] for run in job.result["runs"]] == [1], "batch 1 kept, batch 256 was cut short"
    assert job.result["runs"][0]["latency_ms"]["p50"] > 0
    assert job.result["partial"] is True and job.result["cancelled"] is True
