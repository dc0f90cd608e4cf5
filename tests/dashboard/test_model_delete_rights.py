"""Deleting models: only the owner or an admin may, and ids past the database's range are a 404."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from dashboard.models import ModelVersion, RegisteredModel, Role
from dashboard.permissions import grant
from tests.dashboard.base import BaseTestCase


class DeleteRightsTestCase(BaseTestCase):
    def setUp(self):
        bob = get_user_model().objects.create_user("bob", password="builder-42")
        grant(bob, Role.OPERATOR)
        self.model = RegisteredModel.objects.create(name="bobs-model", owner=bob)
        ModelVersion.objects.create(
            model=self.model,
            version=1,
            format="onnx",
            input_spec={},
            sha256="0" * 64,
            size_bytes=1,
            status="ready",
        )

    def test_another_operator_cannot_delete_someone_elses_model_or_version(self):
        for path in [f"/api/models/{self.model.pk}/versions/1", f"/api/models/{self.model.pk}"]:
            response = self.client.delete(path, **self.bearer())
            self.assertEqual(response.status_code, 403, path)
            self.assertIn("belongs to bob", response.json()["error"])
        self.assertTrue(ModelVersion.objects.filter(model=self.model, version=1).exists())

    def test_ids_past_the_database_integer_are_not_found(self):
        huge = 10**30
        for method, path in [
            ("get", f"/api/models/{huge}"),
            ("get", f"/api/models/{huge}/versions/1/download"),
            ("get", f"/api/models/{self.model.pk}/versions/{huge}/download"),
            ("delete", f"/api/models/{huge}/versions/{huge}"),
            ("delete", f"/api/models/{huge}"),
        ]:
            response = getattr(self.client, method)(path, **self.bearer())
            self.assertEqual(response.status_code, 404, path)
