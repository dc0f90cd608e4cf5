"""/api/models: upload model files to the registry, list, download and delete them.

POST /api/models is multipart/form-data: ``file`` and ``name``, optionally ``format`` (pt2,
torchscript, onnx, safetensors; else detected), ``architecture`` (a zoo name, required for
safetensors), ``input_spec`` (JSON, required where the file does not record it), ``parent_version``
(a version id, for lineage) and ``description``. Django streams a large file to a temporary file
(FILE_UPLOAD_MAX_MEMORY_SIZE only picks memory or disk; DATA_UPLOAD_MAX_MEMORY_SIZE does not count
files), then the action copies it into the store while hashing it.

GET /api/models/<id>/versions/<n>/download streams version n's file; DELETE /api/models/<id>/versions/<n>
and DELETE /api/models/<id> answer 409 while a queued or running job (or the validation) still needs it.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import FileResponse
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.models import ModelVersion, RegisteredModel
from dashboard.registry_actions import (
    MAX_ID,
    ModelInUse,
    do_delete_model,
    do_delete_model_version,
    do_register_upload,
    model_store,
    parse_input_spec,
)
from workers.registry import Rejected

router = Router(tags=["models"])


class ModelVersionOut(Schema):
    id: int
    model_id: int
    name: str
    version: int
    format: str
    architecture: str | None
    input_spec: dict[str, Any]
    sha256: str
    size_bytes: int
    filename: str
    status: str
    status_reason: str | None
    validation: dict[str, Any] | None
    parent_id: int | None
    produced_by: str
    created_at: str
    validated_at: str | None


class ModelOut(Schema):
    id: int
    name: str
    description: str
    created_at: str
    version_count: int
    latest_version: ModelVersionOut | None


class ModelDetailOut(ModelOut):
    versions: list[ModelVersionOut]


@router.post("", response={201: ModelVersionOut, **WRITE_ERRORS})
def upload_model(
    request,
    file: File[UploadedFile],
    name: Form[str],
    format: Form[str | None] = None,
    architecture: Form[str | None] = None,
    input_spec: Form[str | None] = None,
    parent_version: Form[int | None] = None,
    description: Form[str] = "",
):
    """Store a new version of the model called name; it is "validating" until the worker's test
    forward pass answers. Every refusal is a 400 naming the reason, and stores nothing."""
    try:
        version = do_register_upload(
            request.user,
            name=name,
            filename=file.name or "",
            chunks=file.chunks(),
            declared_format=format or None,
            architecture=architecture or None,
            input_spec=parse_input_spec(input_spec),
            parent_version_id=parent_version,
            description=description,
        )
    except Rejected as exc:
        return Status(400, {"error": str(exc)})
    return Status(201, version.to_json())


@router.get("", response={200: list[ModelOut], 401: Error})
def list_models(request):
    """Every registered model with its latest version, by name."""
    return [model.to_json() for model in RegisteredModel.objects.prefetch_related("versions")]


@router.get("/{model_id}", response={200: ModelDetailOut, 401: Error, 404: Error})
def get_model(request, model_id: int):
    """One model with all its versions, newest first."""
    model = RegisteredModel.objects.filter(pk=model_id).first() if _in_range(model_id) else None
    if model is None:
        return Status(404, {"error": f"model {model_id} not found"})
    return model.to_json(with_versions=True)


# What each stored format is on disk: .pt2 and TorchScript files are zip archives; ONNX
# (protobuf) and safetensors have no registered media type, so they download as plain bytes.
_DOWNLOAD_AS = {
    "pt2": (".pt2", "application/zip"),
    "torchscript": (".pt", "application/zip"),
    "onnx": (".onnx", "application/octet-stream"),
    "safetensors": (".safetensors", "application/octet-stream"),
}
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def _in_range(*ids: int) -> bool:
    """Ids past the database's integer (SQLite overflows on them) name nothing: a 404, not a 500."""
    return all(1 <= i <= MAX_ID for i in ids)


def _version(model_id: int, number: int) -> ModelVersion | None:
    if not _in_range(model_id, number):
        return None
    return ModelVersion.objects.select_related("model").filter(model_id=model_id, version=number).first()


@router.get("/{model_id}/versions/{number}/download", response={200: None, 401: Error, 404: Error})
def download_version(request, model_id: int, number: int):
    """The stored file of version number, streamed, as "<name>-v<number>.<ext>" (never the
    uploader's own filename, which could carry a path or header-breaking characters)."""
    version = _version(model_id, number)
    if version is None:
        return Status(404, {"error": f"model {model_id} has no version {number}"})
    path = model_store().path_for(version.sha256)
    if not path.is_file():  # a rejected version's file is deleted; its row stays to say why
        return Status(404, {"error": f"the file of {version.label} is no longer stored ({version.status})"})
    extension, content_type = _DOWNLOAD_AS[version.format]
    filename = f"{_UNSAFE_IN_FILENAME.sub('_', version.model.name)}-v{version.version}{extension}"
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename, content_type=content_type)


@router.delete("/{model_id}/versions/{number}", response={204: None, **WRITE_ERRORS, 404: Error, 409: Error})
def delete_version(request, model_id: int, number: int):
    """Delete one version and its file; 409 while it is validating or a queued/running job uses it."""
    version = _version(model_id, number)
    if version is None:
        return Status(404, {"error": f"model {model_id} has no version {number}"})
    try:
        do_delete_model_version(request.user, version)
    except ModelInUse as exc:
        return Status(409, {"error": str(exc)})
    return Status(204, None)


@router.delete("/{model_id}", response={204: None, **WRITE_ERRORS, 404: Error, 409: Error})
def delete_model(request, model_id: int):
    """Delete a model with every version; 409 while any version is in use."""
    model = RegisteredModel.objects.filter(pk=model_id).first() if _in_range(model_id) else None
    if model is None:
        return Status(404, {"error": f"model {model_id} not found"})
    try:
        do_delete_model(request.user, model)
    except ModelInUse as exc:
        return Status(409, {"error": str(exc)})
    return Status(204, None)
