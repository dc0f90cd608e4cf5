"""The named writes of the model registry: register an uploaded (or produced) file, finish its validation.

The web form, POST /api/models and (later) optimization jobs call these. An upload is staged in the
data dir while hashed, checked cheaply (workers.registry.check_upload) and only then stored under
its SHA-256 and given a row; a refusal raises workers.registry.Rejected and leaves neither a row nor
a file. The test forward pass runs in a worker task afterwards (validating -> ready / rejected).

Why the "jobs" queue for the forward pass: it loads torch and the whole model and runs it, the same
kind of work as a benchmark, so it waits for the node's job worker rather than running beside a
measurement (where it would skew the timings) or in the light maintenance worker (which must stay
free to reap lost jobs within a minute and does not load torch).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from dashboard import live
from dashboard.dataset_actions import DatasetInUse, refuse_if_in_use, remove_files_unless_used
from dashboard.job_filters import active_jobs_phrase
from dashboard.models import Job, ModelVersion, ModelVersionStatus, RegisteredModel
from dashboard.models.registry import ZOO_ORIGINAL
from dashboard.permissions import PermissionDenied, Role, has_role, require
from workers import zoo
from workers.registry import ModelStore, Rejected, StagedFile, check_upload
from workers.zoo import InputSpec

log = logging.getLogger(__name__)

VALIDATION_QUEUE = "jobs"
MAX_ID = 2**63 - 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-]{0,199}")


def model_store() -> ModelStore:
    return ModelStore(settings.DATA_DIR)


def parse_input_spec(raw: str | None) -> InputSpec | None:
    """The input spec JSON of an upload form, or None when left empty; raises Rejected when malformed."""
    if raw is None or not raw.strip():
        return None
    try:
        parsed = json.loads(raw)
        if parsed is None:  # JSON null, as a client sends an absent optional field: no spec
            return None
        return InputSpec.from_json(parsed)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise Rejected("invalid request", f"input spec: {exc}") from None
    except OverflowError:  # float() of a 400-digit "low"
        raise Rejected("invalid request", "input spec: low and high must be ordinary numbers") from None
    except RecursionError:  # json.loads of thousands of nested brackets
        raise Rejected("invalid request", "input spec: nested too deeply") from None


def do_register_upload(
    user,
    *,
    name: str,
    filename: str,
    chunks: Iterable[bytes],
    declared_format: str | None = None,
    architecture: str | None = None,
    input_spec: InputSpec | None = None,
    parent_version_id: int | None = None,
    description: str = "",
) -> ModelVersion:
    """Store an uploaded file as the next version of the model called name (created if new).

    chunks is the file's content (e.g. UploadedFile.chunks()). Raises Rejected with the reason,
    dashboard.permissions.PermissionDenied for a user who may not add to this model."""
    name = _check_name(name)
    # Refused before a byte is staged: a viewer's upload must cost the server nothing.
    _require_may_add(user, RegisteredModel.objects.filter(name=name).first())
    store = model_store()
    staged = store.stage(chunks, settings.PERFMON_MAX_UPLOAD_BYTES)
    try:
        return _register(
            user,
            staged,
            name=name,
            filename=filename,
            declared_format=declared_format,
            architecture=architecture,
            input_spec=input_spec,
            parent=_parent(parent_version_id),
            produced_by="upload",
            description=description,
        )
    finally:
        store.discard(staged)  # nothing left to discard once committed


def do_register_file(
    user,
    path: Path,
    *,
    name: str,
    produced_by: str,
    parent: ModelVersion | None = None,
    declared_format: str | None = None,
    architecture: str | None = None,
    input_spec: InputSpec | None = None,
    description: str = "",
    as_perfmon: bool = False,
) -> ModelVersion:
    """Register a model file some job wrote (e.g. produced_by="pruning job #12", parent=its input).

    The file is copied into the store and goes through the same checks and validation as an upload.
    ``as_perfmon``: perfmon registers it for an alert rule's action job, whose permission was
    checked when the rule was given its actions; no user's rights apply."""
    name = _check_name(name)
    if not as_perfmon:
        _require_may_add(user, RegisteredModel.objects.filter(name=name).first())
    store = model_store()
    staged = store.stage_file(path, settings.PERFMON_MAX_UPLOAD_BYTES)
    try:
        return _register(
            user,
            staged,
            name=name,
            filename=Path(path).name,
            declared_format=declared_format,
            architecture=architecture,
            input_spec=input_spec,
            parent=parent,
            produced_by=produced_by,
            description=description,
            as_perfmon=as_perfmon,
        )
    finally:
        store.discard(staged)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise Rejected(
            "invalid request",
            "name must be 1-200 characters of letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def _require_may_add(user, model: RegisteredModel | None, action: str = "uploading a model") -> None:
    """Operators upload; only a model's owner (or an admin) adds versions to an existing model.

    Why not every operator: a job names a model, and runs its newest version. Whoever can add a
    version decides what code the owner's next job runs, so that right stays with the owner."""
    require(user, Role.OPERATOR, action)
    if model is None or has_role(user, Role.ADMIN):
        return
    if model.name in zoo.ZOO:
        # The tree of a zoo model's optimized versions: its bare name always runs the zoo model
        # itself, so a version added here changes no one's next job. Any operator may add.
        return
    if model.owner_id is None or model.owner_id != getattr(user, "pk", None):
        owner = model.owner.username if model.owner else "nobody"
        raise PermissionDenied(
            f"model {model.name!r} belongs to {owner}: only its owner or an admin may add versions"
        )


def _parent(parent_version_id: int | None) -> ModelVersion | None:
    if parent_version_id is None:
        return None
    if not 1 <= parent_version_id <= MAX_ID:  # a larger one overflows SQLite's INTEGER
        raise Rejected("invalid request", f"parent version {parent_version_id} does not exist")
    parent = ModelVersion.objects.filter(pk=parent_version_id).first()
    if parent is None:
        raise Rejected("invalid request", f"parent version {parent_version_id} does not exist")
    return parent


def _register(
    user,
    staged: StagedFile,
    *,
    name: str,
    filename: str,
    declared_format: str | None,
    architecture: str | None,
    input_spec: InputSpec | None,
    parent: ModelVersion | None,
    produced_by: str,
    description: str,
    as_perfmon: bool = False,
) -> ModelVersion:
    checked = check_upload(
        staged.path,
        filename=filename,
        max_bytes=settings.PERFMON_MAX_UPLOAD_BYTES,
        declared_format=declared_format,
        architecture=architecture,
        input_spec=input_spec,
    )
    store = model_store()
    new_file = False
    try:
        with transaction.atomic():
            model, created = RegisteredModel.objects.get_or_create(
                name=name, defaults={"owner": user, "description": description}
            )
            if not created and not as_perfmon:  # made by someone else since the early check
                _require_may_add(user, model)
            # Locks the model's row where the database can (PostgreSQL); SQLite's IMMEDIATE
            # transactions already serialize writers. The unique constraint backs both.
            RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
            number = (model.versions.aggregate(top=Max("version"))["top"] or 0) + 1
            new_file = store.commit(staged)
            version = ModelVersion.objects.create(
                model=model,
                version=number,
                format=checked.format.value,
                architecture=checked.architecture,
                input_spec=checked.input_spec.to_json(),
                sha256=staged.sha256,
                size_bytes=staged.size_bytes,
                original_filename=Path(filename).name[:255],
                parent=parent,
                produced_by=produced_by[:200],
                created_by=user,
            )
            transaction.on_commit(lambda: _enqueue_validation(version.pk))
    except BaseException:
        if new_file and not ModelVersion.objects.filter(sha256=staged.sha256).exists():
            store.remove(staged.sha256)
        raise
    return version


def _enqueue_validation(version_id: int) -> None:
    from dashboard.tasknames import VALIDATE_MODEL_VERSION
    from perfmon.celery import app

    try:
        # By name: the Django side never imports workers.tasks (imports flow one way).
        result = app.send_task(VALIDATE_MODEL_VERSION, args=[version_id], queue=VALIDATION_QUEUE)
    except Exception as exc:  # broker down: the version must not sit "validating" forever
        log.exception("could not enqueue the validation of model version %s", version_id)
        do_finish_validation(
            version_id, ModelVersionStatus.REJECTED, reason=f"could not reach the job queue: {exc}"
        )
        return
    ModelVersion.objects.filter(pk=version_id).update(celery_task_id=result.id)


def do_finish_validation(
    version_id: int, status: str, *, reason: str = "", validation: dict | None = None
) -> ModelVersion:
    """Move a validating version to ready or rejected (first writer wins).

    A rejected version keeps its row, so its page shows why, but its file is deleted unless
    another usable version has the same content. The model's page hears of it on "model:<id>"."""
    # One transaction: whoever sees "rejected" no longer finds the file.
    with transaction.atomic():
        changed = ModelVersion.objects.filter(pk=version_id, status=ModelVersionStatus.VALIDATING).update(
            status=status, status_reason=reason, validation=validation, validated_at=timezone.now()
        )
        version = ModelVersion.objects.select_related("model").get(pk=version_id)
        if changed and status == ModelVersionStatus.REJECTED:
            _remove_file_unless_used(version.sha256)
        if changed and version.produced_by_job_id is not None:
            _produced_version_settled(version)
        if changed:
            _active_version_settled(version)
    if changed:
        _push_model(version.model_id, "validated", version.to_json())
    return version


def _produced_version_settled(version: ModelVersion) -> None:
    """A version an alert's action job produced is ready (or rejected): the alert may now promote
    it. Never undoes the verdict."""
    from dashboard.alerting.actions import on_version_settled

    try:
        with transaction.atomic():
            on_version_settled(version)
    except Exception:
        log.exception("model version %s: the alert that produced it could not act on it", version.pk)


def _active_version_settled(version: ModelVersion) -> None:
    """A deployment's active version is ready (or rejected): the alert actions that waited for it
    go on. Never undoes the verdict."""
    from dashboard.alerting.actions import on_active_version_settled

    try:
        with transaction.atomic():
            on_active_version_settled(version)
    except Exception:
        log.exception("model version %s: the alerts waiting for it could not act on it", version.pk)


class ModelInUse(Exception):
    """A delete refused because a job or the validation still needs the file; the message says which."""


def jobs_using(version: ModelVersion):
    """Jobs that ran (or will run) this version: submissions name it "name@version"."""
    return Job.objects.filter(model_name=f"{version.model.name}@{version.version}")


def do_delete_model_version(user, version: ModelVersion) -> None:
    """Delete one version and, unless another usable version shares it, its stored file.

    Refused (ModelInUse) while it is being validated or a queued or running job uses it: the
    worker would find its file gone. Finished jobs keep their results and their "name@version".
    Who may delete: whoever may add versions to the model (its owner, an admin)."""
    _require_may_add(user, version.model, "deleting a model version")
    _refuse_if_in_use(version)
    model_id, number, sha256 = version.model_id, version.version, version.sha256
    with transaction.atomic():
        version.delete()
        transaction.on_commit(lambda: _remove_file_unless_used(sha256))
    log.info("model version %s v%s deleted by %s", model_id, number, getattr(user, "username", user))
    _push_model(model_id, "deleted", {"version": number})


def do_delete_model(user, model: RegisteredModel) -> None:
    """Delete a model with all its versions; refused (ModelInUse) if any version is still in use.
    Only its owner or an admin may."""
    _require_may_add(user, model, "deleting a model")
    versions = list(model.versions.select_related("model"))
    for version in versions:
        _refuse_if_in_use(version)
    for dataset in model.datasets.all():
        try:
            refuse_if_in_use(dataset)
        except DatasetInUse as exc:
            raise ModelInUse(f"{exc} (it belongs to model {model.name!r})") from None
    model_id, hashes = model.pk, {version.sha256 for version in versions}
    # Its data sets go with it (the foreign key cascades); their files must not stay behind.
    dataset_hashes = list(model.datasets.values_list("sha256", flat=True))
    with transaction.atomic():
        model.delete()
        transaction.on_commit(lambda: [_remove_file_unless_used(sha256) for sha256 in hashes])
        transaction.on_commit(lambda: remove_files_unless_used(dataset_hashes))
    log.info("model %s (%s) deleted by %s", model_id, model.name, getattr(user, "username", user))
    _push_model(model_id, "deleted", {"version": None})


def _refuse_if_in_use(version: ModelVersion) -> None:
    if version.status == ModelVersionStatus.VALIDATING:
        raise ModelInUse(f"{version.label} is still being validated; delete it once it is ready or rejected")
    users = active_jobs_phrase(jobs_using(version))
    if users:
        raise ModelInUse(
            f"{version.label} is in use by {users}; cancel the job or wait for it to finish, then delete"
        )


def _remove_file_unless_used(sha256: str) -> None:
    still_used = (
        ModelVersion.objects.filter(sha256=sha256).exclude(status=ModelVersionStatus.REJECTED).exists()
    )
    if not still_used:
        model_store().remove(sha256)


def _push_model(model_id: int, event: str, data: dict) -> None:
    """Tell the model's open pages; a Redis outage must not undo a verdict or a deletion."""
    try:
        live.push(f"model:{model_id}", {"type": "model", "model_id": model_id, "event": event, **data})
    except Exception as exc:
        log.warning("could not push the change of model %s to its pages: %s", model_id, exc)


def do_register_produced_version(job: Job, artifact: dict) -> ModelVersion:
    """Register what an optimization job produced as the next version of the model it optimized,
    with ``parent`` = the version it started from and ``produced_by_job`` = the job.

    A zoo model gets a registered model of its own name on first use, version 1 being the zoo
    original (its trained weights as safetensors), so every optimization of it hangs off one tree.
    The file goes through the same checks and validation as an upload. The job's result then names
    the new version under "registered"; the artifact's temporary directory is removed."""
    import shutil

    path = Path(artifact["path"])
    try:
        parent = job.model_version or _zoo_original(job)
        passes = " -> ".join(artifact.get("passes", []))
        version = do_register_file(
            job.owner,
            path,
            name=parent.model.name,
            produced_by=f"{job.get_kind_display().lower()} job #{job.pk}: {passes}",
            parent=parent,
            declared_format=artifact["format"],
            input_spec=InputSpec.from_json(artifact["input_spec"]),
            # An alert's action job (perfmon's own, or approved by an operator) adds the version
            # as perfmon: the deployment names exact versions, so no one's next job changes.
            as_perfmon=job.alert_id is not None,
        )
        ModelVersion.objects.filter(pk=version.pk).update(produced_by_job=job)
        registered = {"model_id": version.model_id, "model": parent.model.name, "version": version.version}
        result = dict(job.result or {})
        result["registered"] = registered
        result["artifact"] = {k: v for k, v in artifact.items() if k != "path"}
        Job.objects.filter(pk=job.pk).update(result=result)
        job.result = result
        return version
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def _zoo_original(job: Job) -> ModelVersion:
    """Version 1 of the registered model named after a zoo model: the zoo original, created once.

    Two first optimizations of a zoo model may finish at once and both find no original: the
    partial unique constraint "one_zoo_original_per_model" lets one insert win, and the loser's
    IntegrityError (its savepoint rolled back, its file kept for the winner's row) returns the
    winner's version, so both results hang off the same tree."""
    from workers import zoo

    entry = zoo.get(job.model_name)
    existing = _existing_zoo_original(entry.name)
    if existing is not None:
        return existing
    model = entry.build(settings.DATA_DIR / "zoo")
    weights = settings.DATA_DIR / "zoo" / f"{entry.name}.safetensors"
    if not weights.is_file():  # an untrained zoo model: its seeded weights are the original
        from safetensors.torch import save_file

        weights.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a racing job must never stage a half-written file.
        partial = weights.with_name(f".{weights.name}.{os.getpid()}.{threading.get_ident()}")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(partial))
        os.replace(partial, weights)
    try:
        return do_register_file(
            job.owner,
            weights,
            as_perfmon=getattr(job, "alert_id", None) is not None,
            name=entry.name,
            produced_by=ZOO_ORIGINAL,
            declared_format="safetensors",
            architecture=entry.name,
            input_spec=entry.input_spec,
            description=entry.description,
        )
    except IntegrityError:
        winner = _existing_zoo_original(entry.name)
        if winner is None:  # some other constraint: not the race this handles
            raise
        log.info("zoo original of %s registered by a concurrent job; job #%s uses it", entry.name, job.pk)
        return winner


def _existing_zoo_original(name: str) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(model__name=name, produced_by=ZOO_ORIGINAL)
        .select_related("model")
        .first()
    )
