"""Small builders shared by the alerting tests."""

from __future__ import annotations

from dashboard.models import Deployment, ModelVersion, RegisteredModel


def deployment(name: str = "digits-prod", node: str = "gpu-a", **fields) -> Deployment:
    model, _ = RegisteredModel.objects.get_or_create(name=f"{name}-model")
    version = ModelVersion.objects.create(
        model=model,
        version=model.versions.count() + 1,
        format="onnx",
        input_spec={"shape": [None, 784], "dtype": "float32", "low": 0, "high": 1},
        sha256="0" * 64,
        size_bytes=1,
        status="ready",
    )
    return Deployment.objects.create(name=name, node_name=node, active_version=version, **fields)
