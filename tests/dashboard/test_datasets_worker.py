"""An optimization that names an uploaded data set, run by a real Celery worker: distillation trains
on it, and accuracy before and after is scored on its held-out split (SmallResNet has no data set of
its own, so without the upload it could be neither distilled nor scored)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dashboard.models import Dataset, JobStatus
from tests.dashboard.test_datasets import resnet_data
from tests.dashboard.test_optimize_jobs import client, finished, worker  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_distillation_trains_on_the_uploaded_set_and_accuracy_is_scored_on_it(client, worker) -> None:  # noqa: F811
    # Random images with every class present: what is asserted is where the figures came from.
    rng = np.random.default_rng(3)
    x = rng.random((60, 3, 32, 32), dtype=np.float32)
    labels = np.arange(60) % 10
    upload = client.post(
        "/api/datasets",
        {
            "file": SimpleUploadedFile("s.npz", resnet_data(60, labels=labels, x=x)),
            "model": "SmallResNet",
            "name": "s",
        },
    )
    assert upload.status_code == 201, upload.content
    dataset = Dataset.objects.get()
    params = {
        "passes": [{"name": "distill", "params": {"epochs": 1, "patience": 1}}],
        "batch_sizes": [4],
        "measure_budget_s": 0.3,
        "dataset": dataset.pk,
    }
    response = client.post(
        "/api/jobs",
        json.dumps({"kind": "optimize", "model": "SmallResNet", "params": params}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    job = finished(response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    before, after = job.result["before"], job.result["after"][0]
    basis = f"data set #{dataset.pk} s held-out split"
    assert before["fidelity_basis"] == basis and after["fidelity_basis"] == basis
    # 20% of 60 samples held out: accuracy is a multiple of 1/12.
    for row in (before, after):
        assert row["accuracy"] is not None and round(row["accuracy"] * 12, 6) == int(
            round(row["accuracy"] * 12)
        )
    assert job.result["steps"][0]["ok"], job.result["steps"]
    assert any(note.startswith("student: the teacher at 50% width; 1 epochs") for note in after["notes"])
    page = client.get(f"/jobs/{job.pk}/")
    assert f'<span id="opt-data-basis">{basis}</span>' in page.content.decode()
