"""Labeled data sets users upload for a model: a ``.npz`` with ``x`` and ``y``, checked against the
model's input spec when it arrives (workers.passes.data.load_npz) and stored under its SHA-256.

Optimization jobs name one (``"dataset": <id>``): distillation and fine-tuning train on its train
split, static quantization calibrates on it, and accuracy is measured on its held-out split."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Dataset(models.Model):
    name = models.CharField(max_length=200)
    # The model it fits: a registered model's name, or a zoo model's (whose registered tree has the
    # same name). registered_model is set when such a registered model exists.
    model_name = models.CharField(max_length=200, db_index=True)
    registered_model = models.ForeignKey(
        "dashboard.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField(help_text="bytes of the stored .npz")
    samples = models.PositiveIntegerField()
    num_classes = models.PositiveIntegerField(help_text="highest label + 1")
    input_shape = models.JSONField(help_text="x's shape less the sample axis")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_name", "-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (for {self.model_name})"

    @property
    def label(self) -> str:
        return f"#{self.pk} {self.name}: {self.samples:,} samples, {self.num_classes} classes"

    def to_json(self) -> dict:
        return {
            "id": self.pk,
            "name": self.name,
            "model": self.model_name,
            "model_id": self.registered_model_id,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "samples": self.samples,
            "num_classes": self.num_classes,
            "input_shape": self.input_shape,
            "owner": self.owner.username if self.owner else None,
            "created_at": self.created_at.isoformat(),
        }
