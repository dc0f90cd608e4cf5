"""An uploaded model is benchmarked like a zoo model: by name (newest ready version) or name@version."""

from __future__ import annotations

import json
import time

import pytest

from dashboard.models import Job, JobStatus
from tests.dashboard.test_registry_worker import celery_worker, client, settled, upload  # noqa: F401, F811
from tests.engine import test_registry_samples as samples

pytestmark = pytest.mark.django_db(transaction=True)


def submit(api_client, model: str):
    body = {
        "kind": "benchmark",
        "model": model,
        "params": {"batch_sizes": [1, 4], "iterations": 20, "time_budget_s": 1},
    }
    return api_client.post("/api/jobs", json.dumps(body), content_type="application/json")


def finished(job_id: int, timeout_s: float = 90) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_each_uploaded_format_runs_as_a_benchmark(celery_worker, client) -> None:  # noqa: F811
    spec = json.dumps(samples.SPEC_784)
    uploads = {
        "ts-mlp": upload(client, "m.pt", samples.torchscript_mlp(), input_spec=spec, name="ts-mlp"),
        "onnx-mlp": upload(client, "m.onnx", samples.onnx_mlp(), name="onnx-mlp"),
        "st-mlp": upload(
            client,
            "m.safetensors",
            samples.safetensors_state_dict(),
            architecture="SimpleModel",
            name="st-mlp",
        ),
    }
    for body in uploads.values():
        assert settled(body["id"]).status == "ready"

    jobs = {name: submit(client, name).json()["id"] for name in uploads}
    for name, job_id in jobs.items():
        job = finished(job_id)
        assert job.status == JobStatus.SUCCEEDED, (name, job.error)
        assert job.model_name == f"{name}@1", "the version that ran is recorded"
        assert (job.model_version.model.name, job.model_version.version) == (name, 1), "as a relation too"
        assert job.result["schema"] == 2
        assert [run["batch_size"] for run in job.result["runs"]] == [1, 4]
        assert all(run["latency_ms"]["p50"] > 0 for run in job.result["runs"])
        # An ONNX file runs on ONNX Runtime whatever the default runtime says, and is recorded so.
        expected = "onnxruntime" if name == "onnx-mlp" else "eager"
        assert (job.params["runtime"], job.result["env"]["runtime"]) == (expected, expected), name


def test_models_that_cannot_run_are_refused_up_front(celery_worker, client) -> None:  # noqa: F811
    body = upload(
        client, "m.pt", samples.torchscript_mlp(), input_spec=json.dumps(samples.SPEC_784), name="ts-mlp"
    )
    settled(body["id"])
    for model, message in [
        ("no-such-model", "unknown model 'no-such-model'"),
        ("ts-mlp@7", "model 'ts-mlp' has no version 7"),
        ("ts-mlp@x", "must be a number"),
    ]:
        response = submit(client, model)
        assert response.status_code == 400, model
        assert message in response.json()["error"]
    assert not Job.objects.exists()
