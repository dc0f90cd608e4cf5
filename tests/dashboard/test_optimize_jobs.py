"""Optimization jobs end to end with a real Celery worker: before/after in one job, a failing pass
that does not stop the others, refusals at submission, and the produced model registered with its
lineage and loadable, without pickle, in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from dashboard.models import Job, JobStatus, ModelVersion, ModelVersionStatus
from dashboard.permissions import Role, grant
from perfmon.celery import app

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path):
    user = get_user_model().objects.create_user("olga", password="pw-olga-12345")
    grant(user, Role.OPERATOR)  # submits optimization jobs
    client = Client()
    client.force_login(user)
    with override_settings(DATA_DIR=tmp_path):
        yield client


@pytest.fixture
def worker():
    app.control.purge()
    with start_worker(app, pool="solo", queues=["jobs"], perform_ping_check=False, shutdown_timeout=60) as w:
        yield w


def submit(client: Client, body: dict):
    return client.post("/api/jobs", json.dumps(body), content_type="application/json")


def finished(job_id: int, timeout_s: float = 600) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).step}")


def settled(version: ModelVersion, timeout_s: float = 120) -> ModelVersion:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        version.refresh_from_db()
        if version.status != ModelVersionStatus.VALIDATING:
            return version
        time.sleep(0.2)
    raise AssertionError("the produced version is still validating")


QUICK = {"batch_sizes": [32], "device": "cpu", "threads": 1, "measure_budget_s": 0.5}


def test_an_optimization_measures_each_pass_and_registers_the_result(client, worker, tmp_path) -> None:
    passes = [
        {"name": "prune_structured", "params": {"amount": 0.5, "finetune_epochs": 2}},
        {"name": "onnxruntime"},
        {"name": "ort_quantize_dynamic"},
    ]
    response = submit(
        client, {"kind": "optimize", "model": "SimpleModel", "params": {"passes": passes, **QUICK}}
    )
    assert response.status_code == 201, response.content
    job = finished(response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    result = job.result
    assert result["kind"] == "optimize" and result["schema"] == 2
    assert [row["label"] for row in result["after"]] == [
        "prune_structured",
        "onnxruntime",
        "ort_quantize_dynamic",
    ]
    before, final = result["before"], result["final"]
    for row in (before, final):
        assert row["latency_ms"]["32"]["p50"] > 0 and row["throughput_per_s"]["32"] > 0
        assert row["size_bytes"] > 0 and row["params"] > 0 and 0 <= row["accuracy"] <= 1
    assert final["params"] < 0.6 * before["params"], "structured pruning removed neurons"
    assert final["backend"].startswith("onnxruntime") and "int8" in final["backend"]
    assert final["accuracy_original"] == before["accuracy"]
    assert "slower" in final and "32" in final["speedup"]

    # The zoo model got a registered model of its own name: v1 the original, v2 the result.
    registered = result["registered"]
    assert registered["model"] == "SimpleModel" and registered["version"] == 2
    produced = ModelVersion.objects.get(model__name="SimpleModel", version=2)
    assert produced.produced_by_job_id == job.pk
    assert produced.parent.version == 1 and produced.parent.produced_by == "zoo original"
    assert (
        produced.format == "onnx"
        and "prune_structured -> onnxruntime -> ort_quantize_dynamic" in produced.produced_by
    )
    assert settled(produced).status == ModelVersionStatus.READY, produced.status_reason

    # Downloaded, it loads in a fresh process through the registry (no pickle) and gives the outputs
    # the job measured: same predictions as the job's own accuracy says.
    download = client.get(f"/api/models/{produced.model_id}/versions/2/download")
    assert download.status_code == 200
    path = tmp_path / "downloaded.onnx"
    path.write_bytes(b"".join(download.streaming_content) if download.streaming else download.content)
    code = (
        "import sys; from pathlib import Path; from workers.registry import load_model; "
        "from workers.zoo import get; from workers.zoo.training import evaluate_accuracy; "
        f"m = load_model(Path({str(path)!r}), 'onnx'); print(evaluate_accuracy(m, get('SimpleModel')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(final["accuracy"], abs=1e-9)

    # The new version can be benchmarked and optimized again by name@version.
    again = submit(
        client,
        {"kind": "benchmark", "model": "SimpleModel@2", "params": {"batch_sizes": [4], "time_budget_s": 0.5}},
    )
    assert again.status_code == 201, again.content
    assert finished(again.json()["id"]).status == JobStatus.SUCCEEDED


def test_a_failing_pass_is_reported_and_the_others_still_run(client, worker) -> None:
    # TinyTransformer takes int64 token ids: bf16 conversion of its embedding input fails, and the
    # unstructured pruning before it still stands.
    passes = [
        {"name": "prune_l1_unstructured", "params": {"amount": 0.2}},
        {"name": "half_precision", "params": {"dtype": "bf16"}},
    ]
    response = submit(
        client, {"kind": "optimize", "model": "TinyTransformer", "params": {"passes": passes, **QUICK}}
    )
    assert response.status_code == 201, response.content
    job = finished(response.json()["id"])
    steps = {s["name"]: s for s in job.result["steps"]}
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert steps["prune_l1_unstructured"]["ok"]
    assert any("do not expect this model to run faster" in n for n in job.result["after"][0]["notes"])
    assert job.result["before"]["accuracy"] is None and job.result["before"]["agreement"] == 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"passes": [{"name": "nope"}]}, "unknown pass 'nope'"),
        (
            {"passes": [{"name": "prune_structured", "params": {"amount": 3}}]},
            "pass 'prune_structured', parameter 'amount'",
        ),
        ({"passes": [{"name": "ort_quantize_dynamic"}]}, "applies to onnx models"),
        ({"passes": []}, "passes"),
    ],
)
def test_pipelines_that_cannot_run_are_refused_with_the_reason(client, params, message) -> None:
    response = submit(client, {"kind": "optimize", "model": "SimpleModel", "params": params})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Job.objects.exists()


def test_distillation_without_a_labeled_data_set_is_refused(client) -> None:
    body = {"kind": "optimize", "model": "SmallResNet", "params": {"passes": [{"name": "distill"}]}}
    response = submit(client, body)
    assert response.status_code == 400
    assert "needs a labeled data set" in response.json()["error"]


def test_the_pass_catalogue_is_served(client) -> None:
    passes = {p["name"]: p for p in client.get("/api/passes").json()}
    assert {"prune_structured", "onnxruntime", "ort_quantize_dynamic", "distill", "torch_compile"} <= set(
        passes
    )
    assert passes["distill"]["needs_labeled_data"] is True
