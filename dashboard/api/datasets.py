"""/api/datasets: labeled data sets (a ``.npz`` of ``x`` and ``y``) for a model, used by
optimization jobs that name them (``"dataset": <id>`` in their params).

POST /api/datasets is multipart/form-data: ``file`` (the .npz), ``model`` (a zoo or registered
model's name; "name@N" names the same tree) and ``name``. The file is checked before it is kept:
x float with the model's input shape, y integer labels, one per row, no NaN or inf, labels within
the model's outputs, no pickle, bounded size. Every refusal is a 400 naming the reason.
"""

from __future__ import annotations

from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from dashboard.api.errors import WRITE_ERRORS, Error
from dashboard.dataset_actions import DatasetRefused, base_name, do_upload_dataset
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
