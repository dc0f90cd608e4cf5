"""/api/datasets: labeled data sets (a ``.npz`` of ``x`` and ``y``) for a model, used by
optimization jobs that name them (``"dataset": <id>`` in their params).

POST /api/datasets is multipart/form-data: ``file`` (the .npz), ``model`` (a zoo or registered
model's name; "name@N" names the same tree) and ``name``. The file is checked before it is kept:
x float with the model's input shape, y integer labels, one per row, no NaN or inf, labels within
the model's outputs, no pickle, bounded size. Every refusal is a 400 naming the reason.

DELETE /api/datasets/<id> removes a set and its file (its uploader or an admin; 409 while a queued
or running job names it).
"""

from __future__ import annotations

from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.dataset_actions import (
    MAX_ID,
    DatasetInUse,
    DatasetRefused,
    base_name,
    do_delete_dataset,
    do_upload_dataset,
)
from dashboard.models import Dataset

router = Router(tags=["datasets"])


class DatasetOut(Schema):
    id: int
    name: str
    model: str
    model_id: int | None
    sha256: str
    size_bytes: int
    samples: int
    num_classes: int
    input_shape: list[int]
    owner: str | None
    created_at: str


@router.post("", response={201: DatasetOut, **WRITE_ERRORS})
def upload_dataset(request, file: File[UploadedFile], model: Form[str], name: Form[str] = ""):
    """Check the .npz against the model and keep it; 400 with the reason when refused."""
    try:
        dataset = do_upload_dataset(
            request.user, name=name or (file.name or "").rpartition(".")[0], model=model, chunks=file.chunks()
        )
    except DatasetRefused as exc:
        return Status(400, {"error": str(exc)})
    return Status(201, dataset.to_json())


@router.get("", response={200: list[DatasetOut], 401: Error})
def list_datasets(request, model: str | None = None):
    """Every data set, or those of one model's tree (``?model=SimpleModel``), newest first per model."""
    datasets = Dataset.objects.select_related("owner")
    if model:
        datasets = datasets.filter(model_name=base_name(model))
    return [dataset.to_json() for dataset in datasets]


@router.delete("/{dataset_id}", response={204: None, **WRITE_ERRORS, 404: Error, 409: Error})
def delete_dataset(request, dataset_id: int):
    """Delete a data set and its file (uploader or admin); 409 while a queued or running job names it."""
    dataset = Dataset.objects.filter(pk=dataset_id).first() if 1 <= dataset_id <= MAX_ID else None
    if dataset is None:
        return Status(404, {"error": f"data set {dataset_id} not found"})
    try:
        do_delete_dataset(request.user, dataset)
    except DatasetInUse as exc:
        return Status(409, {"error": str(exc)})
    return Status(204, None)
