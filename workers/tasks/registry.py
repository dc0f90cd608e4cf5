"""The model registry's worker task: the test forward pass of a freshly stored model version."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from dashboard.models import ModelVersion, ModelVersionStatus
from dashboard.registry_actions import do_finish_validation, model_store

log = logging.getLogger(__name__)


@shared_task(name="perfmon.validate_model_version", acks_late=True, max_retries=0)
def validate_model_version(version_id: int) -> str:
    """Load the stored file and run one batch made from its input spec; ready or rejected with the reason."""
    version = ModelVersion.objects.filter(pk=version_id, status=ModelVersionStatus.VALIDATING).first()
    if version is None:  # already decided, or deleted
        return "skipped"
    # Imported here: beat and the maintenance worker import this module too and should not carry torch.
    from workers.registry import Rejected, validate
    from workers.zoo import InputSpec

    path = model_store().path_for(version.sha256)
    if not path.is_file():
        reason = f"the stored file is missing on node {settings.NODE_NAME} (is the data dir shared with this worker?)"
        do_finish_validation(version_id, ModelVersionStatus.REJECTED, reason=reason)
        return "rejected"
    try:
        check = validate(path, version.format, version.architecture, InputSpec.from_json(version.input_spec))
    except Rejected as exc:
        do_finish_validation(version_id, ModelVersionStatus.REJECTED, reason=str(exc))
        return "rejected"
    except Exception as exc:
        log.exception("validating model version %s failed", version_id)
        reason = f"invalid model: {type(exc).__name__}: {exc}"
        do_finish_validation(version_id, ModelVersionStatus.REJECTED, reason=reason)
        return "rejected"
    do_finish_validation(version_id, ModelVersionStatus.READY, validation=check.to_json())
    return "ready"


@shared_task(name="perfmon.fail_interrupted_validations", queue="maintenance")
def fail_interrupted_validations() -> int:
    """Reject versions whose test forward pass died with its worker process, so none stays
    "validating" forever. (A version whose task was never picked up is left alone: its message
    waits in Redis for the next worker.)"""
    from perfmon.celery import app

    rejected = 0
    for version in ModelVersion.objects.filter(status=ModelVersionStatus.VALIDATING).exclude(
        celery_task_id=""
    ):
        if app.AsyncResult(version.celery_task_id).state in {"FAILURE", "REVOKED"}:
            reason = "validation interrupted: the worker running the test forward pass stopped; upload again"
            do_finish_validation(version.pk, ModelVersionStatus.REJECTED, reason=reason)
            rejected += 1
    return rejected
