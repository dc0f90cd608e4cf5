"""The test forward pass of uploaded models, run by a real Celery worker over the real Redis broker."""

from __future__ import annotations

import json
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from dashboard.models import ModelVersion, ModelVersionStatus, Role
from dashboard.permissions import grant
from dashboard.registry_actions import VALIDATION_QUEUE, model_store
from perfmon.celery import app
from tests.engine import test_registry_samples as samples

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def celery_worker():
    app.control.purge()
    with start_worker(
        app, pool="solo", queues=[VALIDATION_QUEUE], perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield worker


@pytest.fixture
def client(tmp_path):
    user = get_user_model().objects.create_user("dora", password="pw-dora-12345")
    grant(user, Role.OPERATOR)  # submits, cancels or uploads
    client = Client()
    client.force_login(user)
    with override_settings(DATA_DIR=tmp_path):
        yield client


def upload(client: Client, filename: str, data: bytes, **fields) -> dict:
    body = {"file": SimpleUploadedFile(filename, data), "name": fields.pop("name", "mlp"), **fields}
    response = client.post("/api/models", body)
    assert response.status_code == 201, response.content
    return response.json()


def settled(version_id: int, timeout_s: float = 60) -> ModelVersion:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        version = ModelVersion.objects.get(pk=version_id)
        if version.status != ModelVersionStatus.VALIDATING:
            return version
        time.sleep(0.1)
    raise AssertionError(f"version {version_id} still validating after {timeout_s} s")


def test_a_valid_upload_of_each_format_becomes_ready(celery_worker, client) -> None:
    spec = json.dumps(samples.SPEC_784)
    uploads = [
        upload(client, "m.pt", samples.torchscript_mlp(), input_spec=spec),
        upload(client, "m.pt2", samples.exported_mlp()),
        upload(client, "m.onnx", samples.onnx_mlp()),
        upload(client, "m.safetensors", samples.safetensors_state_dict(), architecture="SimpleModel"),
    ]
    for body in uploads:
        version = settled(body["id"])
        assert version.status == ModelVersionStatus.READY, (body["format"], version.status_reason)
        assert version.validation["output_shapes"] == [[2, 10]]
        assert version.validated_at is not None and version.celery_task_id
    detail = client.get(f"/api/models/{uploads[0]['model_id']}").json()
    assert [v["status"] for v in detail["versions"]] == ["ready"] * 4
    assert [v["version"] for v in detail["versions"]] == [4, 3, 2, 1]


def test_an_input_spec_that_does_not_fit_is_rejected_with_the_reason(celery_worker, client) -> None:
    spec = json.dumps({"shape": [None, 100], "dtype": "float32", "low": 0, "high": 1})
    body = upload(client, "m.pt", samples.torchscript_mlp(), input_spec=spec)
    assert model_store().has(body["sha256"])
    version = settled(body["id"])
    assert version.status == ModelVersionStatus.REJECTED
    assert version.status_reason.startswith("input spec does not fit: ")
    assert "(2x100 and 784x256)" in version.status_reason
    assert not model_store().has(body["sha256"]), "a rejected version's file is not kept"
    shown = client.get(f"/api/models/{body['model_id']}").json()["versions"][0]
    assert shown["status"] == "rejected" and shown["status_reason"] == version.status_reason
