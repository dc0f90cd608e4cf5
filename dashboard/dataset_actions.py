"""The named writes of labeled data sets: store an uploaded ``.npz`` for a model, after checking it
against the model's input spec and outputs (workers.passes.data.load_npz), and find the one an
optimization job names.

The checks run in the web process, before the file is kept: a refused upload leaves neither a row
nor a file, and the user hears why at once (HTTP 400). Their memory is bounded by
settings.PERFMON_MAX_DATASET_BYTES (the upload and the arrays inflated); the archive is read as the
registry reads model archives (SafeZip), never unpickled."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from dashboard.job_filters import active_jobs_phrase
from dashboard.models import Dataset, Job, ModelVersion, ModelVersionStatus, RegisteredModel
from dashboard.permissions import PermissionDenied, Role, has_role, require
from workers import zoo
from workers.registry import ModelStore, Rejected
from workers.zoo import InputSpec

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-]{0,199}")
MAX_ID = 2**63 - 1


class DatasetRefused(ValueError):
    """An upload or a reference we refuse; the message is fit to show the user as is."""


@dataclass(frozen=True)
class ModelFit:
    """What a data set for a model must match: its input spec and (where known) its class count."""

    name: str  # the registered tree's (or zoo model's) name, without "@N"
    registered: RegisteredModel | None
    input_spec: InputSpec
    num_classes: int | None


def dataset_store() -> ModelStore:
    return ModelStore(settings.DATA_DIR, "datasets")


def dataset_path(dataset: Dataset) -> Path:
    return dataset_store().path_for(dataset.sha256)


def base_name(model: str) -> str:
    """ "SimpleModel@3" -> "SimpleModel": a data set fits every version of a model's tree."""
    return model.rpartition("@")[0] or model


def model_fit(model: str) -> ModelFit:
    """The input spec and class count a data set for ``model`` (a zoo or registered name, perhaps
    "name@N") must match; raises DatasetRefused for a model perfmon does not know."""
    name = base_name((model or "").strip())
    registered = RegisteredModel.objects.filter(name=name).first()
    entry = zoo.ZOO.get(name)
    if entry is not None:
        return ModelFit(name, registered, entry.input_spec, _zoo_classes(name))
    if registered is None:
        raise DatasetRefused(f"unknown model {name!r}: name a zoo model or a registered model")
    version = (
        registered.versions.filter(status=ModelVersionStatus.READY).order_by("-version").first()
        or registered.versions.order_by("-version").first()
    )
    if version is None:
        raise DatasetRefused(f"model {name!r} has no version to fit a data set to")
    return ModelFit(name, registered, InputSpec.from_json(version.input_spec), _version_classes(version))


@functools.cache
def _zoo_classes(name: str) -> int | None:
    """A zoo model's output width, from one forward pass of its seeded build (milliseconds)."""
    import torch

    entry = zoo.get(name)
    with torch.inference_mode():
        out = entry.build()(entry.input_spec.make(2))
    return int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.ndim == 2 else None


def _version_classes(version: ModelVersion) -> int | None:
    """The output width the validation's test forward pass saw; None before it answered."""
    shapes = (version.validation or {}).get("output_shapes") or []
    first = shapes[0] if shapes and isinstance(shapes[0], list) else []
    return int(first[-1]) if len(first) == 2 and isinstance(first[-1], int) else None


def do_upload_dataset(user, *, name: str, model: str, chunks: Iterable[bytes]) -> Dataset:
    """Check an uploaded ``.npz`` against ``model`` and keep it as a Dataset; raises DatasetRefused
    with the reason (nothing kept), PermissionDenied below the operator role."""
    require(user, Role.OPERATOR, "uploading a data set")
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise DatasetRefused(
            "name must be 1-200 characters of letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    fit = model_fit(model)
    from workers.passes.data import InvalidDataset, read_npz

    store = dataset_store()
    limit = settings.PERFMON_MAX_DATASET_BYTES
    try:
        staged = store.stage(chunks, limit)
    except Rejected as exc:
        raise DatasetRefused(f"the file is over the data set limit of {limit:,} bytes") from exc
    try:
        try:
            x, y = read_npz(staged.path, fit.input_spec, fit.num_classes, max_bytes=limit)
        except InvalidDataset as exc:
            raise DatasetRefused(str(exc)) from None
        with transaction.atomic():
            store.commit(staged)
            dataset = Dataset.objects.create(
                name=name,
                model_name=fit.name,
                registered_model=fit.registered,
                sha256=staged.sha256,
                size_bytes=staged.size_bytes,
                samples=len(y),
                num_classes=int(y.max()) + 1,
                input_shape=[int(d) for d in x.shape[1:]],
                owner=user if getattr(user, "pk", None) else None,
            )
    finally:
        store.discard(staged)  # nothing left to discard once committed
    log.info("data set #%s %r for %s uploaded by %s", dataset.pk, name, fit.name, user)
    return dataset


def dataset_for_job(dataset_id: int, model: str) -> Dataset:
    """The data set an optimization names, checked to fit its model's tree; DatasetRefused if not."""
    dataset = Dataset.objects.filter(pk=dataset_id).first() if 1 <= dataset_id <= MAX_ID else None
    if dataset is None:
        raise DatasetRefused(f"data set {dataset_id} does not exist")
    if dataset.model_name != base_name(model):
        raise DatasetRefused(
            f"data set {dataset_id} ({dataset.name}) was uploaded for {dataset.model_name}, not {base_name(model)}"
        )
    if not dataset_path(dataset).is_file():
        raise DatasetRefused(f"the file of data set {dataset_id} is no longer stored")
    return dataset


class DatasetInUse(Exception):
    """A delete refused because a queued or running job still reads the set; the message says which."""


def do_delete_dataset(user, dataset: Dataset) -> None:
    """Delete a data set and, unless another set holds the same bytes, its stored file.

    Only its uploader or an admin may (a set decides what an optimization trains and scores on).
    Refused (DatasetInUse) while a queued or running job names it: the worker would find the
    file gone. Finished jobs keep their results, which name the set by id."""
    require(user, Role.OPERATOR, "deleting a data set")
    if not has_role(user, Role.ADMIN) and (
        dataset.owner_id is None or dataset.owner_id != getattr(user, "pk", None)
    ):
        owner = dataset.owner.username if dataset.owner else "nobody"
        raise PermissionDenied(
            f"data set {dataset.pk} belongs to {owner}: only its uploader or an admin may delete it"
        )
    refuse_if_in_use(dataset)
    pk, sha256 = dataset.pk, dataset.sha256
    with transaction.atomic():
        dataset.delete()
        transaction.on_commit(lambda: remove_files_unless_used([sha256]))
    log.info("data set #%s deleted by %s", pk, getattr(user, "username", user))


def refuse_if_in_use(dataset: Dataset) -> None:
    """Raise DatasetInUse while a queued or running job names the set."""
    users = active_jobs_phrase(Job.objects.filter(params__dataset=dataset.pk))
    if users:
        raise DatasetInUse(
            f"data set {dataset.pk} is in use by {users}; cancel the job or wait for it to finish, then delete"
        )


def remove_files_unless_used(hashes: Iterable[str]) -> None:
    """Remove the stored files of data sets that no remaining set refers to (sets are stored by
    content, so two uploads of one file share it)."""
    store = dataset_store()
    for sha256 in set(hashes):
        if not Dataset.objects.filter(sha256=sha256).exists():
            store.remove(sha256)
