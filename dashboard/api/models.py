"""/api/models: upload model files to the registry and list them.

POST /api/models is multipart/form-data: ``file`` and ``name``, optionally ``format`` (pt2,
torchscript, onnx, safetensors; else detected), ``architecture`` (a zoo name, required for
safetensors), ``input_spec`` (JSON, required where the file does not record it), ``parent_version``
(a version id, for lineage) and ``description``. Django streams a large file to a temporary file
(FILE_UPLOAD_MAX_MEMORY_SIZE only picks memory or disk; DATA_UPLOAD_MAX_MEMORY_SIZE does not count
files), then the action copies it into the store while hashing it.
"""

from __future__ import annotations

from typing import Any

from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.models import RegisteredModel
from dashboard.registry_actions import do_register_upload, parse_input_spec
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
    model = RegisteredModel.objects.filter(pk=model_id).first()
    if model is None:
        return Status(404, {"error": f"model {model_id} not found"})
    return model.to_json(with_versions=True)
