"""The model registry's engine: what an uploaded model file is, whether it is safe, where it is stored
and how it is loaded for a forward pass. No Django here: dashboard/registry_actions.py calls it.

Formats: torch.export programs (.pt2), TorchScript (.pt), ONNX (.onnx) and safetensors state dicts
for a zoo architecture. Nothing here ever unpickles a user's file (see pt2.py and torchscript.py for
what loading those formats would otherwise run, and docs/models.md).

  check_upload(path, filename=..., max_bytes=...)   cheap checks, in the web request
  ModelStore(data_dir).stage / commit               content-addressed storage
  validate(path, fmt, architecture, input_spec)     load + test forward pass, in the worker
  load_model(path, fmt, architecture)               a callable model for the harness
"""

from workers.registry.checks import CheckedUpload, check_upload
from workers.registry.detect import FORMAT_LABELS, ModelFormat, detect
from workers.registry.errors import Rejected
from workers.registry.loading import ForwardCheck, load_model, validate
from workers.registry.storage import ModelStore, StagedFile

__all__ = [
    "FORMAT_LABELS",
    "CheckedUpload",
    "ForwardCheck",
    "ModelFormat",
    "ModelStore",
    "Rejected",
    "StagedFile",
    "check_upload",
    "detect",
    "load_model",
    "validate",
]
