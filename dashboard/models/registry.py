"""The model registry: named models, their numbered versions, and where each version came from.

A version's file lives in the content-addressed store (workers/registry/storage.py) under its
SHA-256; two versions with the same bytes share one file.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# ModelVersion.produced_by of version 1 of a zoo model's registered tree: the zoo model itself.
ZOO_ORIGINAL = "zoo original"


class ModelFileFormat(models.TextChoices):
    PT2 = "pt2", "torch.export program (.pt2)"
    TORCHSCRIPT = "torchscript", "TorchScript (.pt)"
    ONNX = "onnx", "ONNX (.onnx)"
    SAFETENSORS = "safetensors", "safetensors state dict"


class ModelVersionStatus(models.TextChoices):
    VALIDATING = "validating"  # stored; the worker's test forward pass has not answered yet
    READY = "ready"
    REJECTED = "rejected"  # the forward pass failed; status_reason says why


class RegisteredModel(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(default="", blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def latest_version(self) -> ModelVersion | None:
        return self.versions.order_by("-version").first()

    def to_json(self, *, with_versions: bool = False) -> dict:
        """The model as GET /api/models lists it (and GET /api/models/<id> with its versions)."""
        versions = list(self.versions.order_by("-version"))
        data = {
            "id": self.pk,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "version_count": len(versions),
            "latest_version": versions[0].to_json() if versions else None,
        }
        if with_versions:
            data["versions"] = [version.to_json() for version in versions]
        return data


class ModelVersion(models.Model):
    """One uploaded (or produced) file of a model, numbered 1, 2, ... per model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    format = models.CharField(max_length=16, choices=ModelFileFormat.choices)
    architecture = models.CharField(
        max_length=200, default="", blank=True, help_text="zoo architecture of a safetensors state dict"
    )
    input_spec = models.JSONField(help_text='{"shape": [null, ...], "dtype", "low", "high"}')
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    original_filename = models.CharField(max_length=255, default="", blank=True)
    status = models.CharField(
        max_length=16,
        choices=ModelVersionStatus.choices,
        default=ModelVersionStatus.VALIDATING,
        db_index=True,
    )
    status_reason = models.TextField(default="", blank=True, help_text="why it was rejected")
    validation = models.JSONField(null=True, blank=True, help_text="what the test forward pass saw")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    produced_by = models.CharField(
        max_length=200, default="upload", help_text='"upload", "pruning job #12", ...'
    )
    produced_by_job = models.ForeignKey(
        "dashboard.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_versions"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    celery_task_id = models.CharField(max_length=64, default="", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    validated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
            # Two first optimizations of a zoo model at once must not both register its original.
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(produced_by=ZOO_ORIGINAL),
                name="one_zoo_original_per_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.model.name} v{self.version}"

    def to_json(self) -> dict:
        return {
            "id": self.pk,
            "model_id": self.model_id,
            "name": self.model.name,
            "version": self.version,
            "format": self.format,
            "architecture": self.architecture or None,
            "input_spec": self.input_spec,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "filename": self.original_filename,
            "status": self.status,
            "status_reason": self.status_reason or None,
            "validation": self.validation,
            "parent_id": self.parent_id,
            "produced_by": self.produced_by,
            "created_at": self.created_at.isoformat(),
            "validated_at": self.validated_at.isoformat() if self.validated_at else None,
        }
