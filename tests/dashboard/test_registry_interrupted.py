"""A version whose test forward pass died with its worker is rejected, not left validating."""

from __future__ import annotations

import uuid

import pytest
from celery.exceptions import WorkerLostError

from dashboard.models import ModelVersion, ModelVersionStatus, RegisteredModel
from perfmon.celery import app
from workers.tasks import fail_interrupted_validations

pytestmark = pytest.mark.django_db


def version_with_task(model: RegisteredModel, number: int, task_id: str) -> ModelVersion:
    return ModelVersion.objects.create(
        model=model,
        version=number,
        format="onnx",
        input_spec={},
        sha256="a" * 64,
        size_bytes=1,
        celery_task_id=task_id,
    )


def test_only_validations_whose_task_failed_are_rejected():
    model = RegisteredModel.objects.create(name="net")
    died, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    # What Celery's prefork pool records in the real result backend when the child process dies.
    app.backend.mark_as_failure(died, WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL)"))
    interrupted = version_with_task(model, 1, died)
    queued = version_with_task(model, 2, waiting)  # no result yet: its message waits for a worker

    assert fail_interrupted_validations() == 1

    interrupted.refresh_from_db()
    queued.refresh_from_db()
    assert interrupted.status == ModelVersionStatus.REJECTED
    assert "validation interrupted" in interrupted.status_reason
    assert queued.status == ModelVersionStatus.VALIDATING
