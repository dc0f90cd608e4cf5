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
