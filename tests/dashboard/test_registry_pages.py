"""The registry's pages: /models/ lists models and takes uploads, /models/<id>/ shows versions and lineage."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from dashboard.models import ModelVersion, RegisteredModel
from tests.dashboard.base import BaseTestCase
from tests.engine import test_registry_samples as samples


class TestModelPages(BaseTestCase):
    def setUp(self) -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="registry-pages-"))
        self.addCleanup(shutil.rmtree, data_dir, ignore_errors=True)
        self.enterContext(override_settings(DATA_DIR=data_dir))
        self.client.force_login(self.alice)

    def post_upload(self, filename: str, data: bytes, **fields):
        body = {"file": SimpleUploadedFile(filename, data), "name": "digits", **fields}
        return self.client.post("/models/", body)

    def test_the_list_offers_the_upload_form_and_the_zoo(self) -> None:
        page = self.client.get("/models/")
        self.assertEqual(page.status_code, 200)
        self.assertContains(page, 'enctype="multipart/form-data"')
        self.assertContains(page, "TinyTransformer")
        self.assertContains(page, "No uploaded models yet")

    def test_an_upload_leads_to_the_model_page(self) -> None:
        response = self.post_upload(
            "m.safetensors", samples.safetensors_state_dict(), architecture="SimpleModel"
        )
        model = RegisteredModel.objects.get(name="digits")
        self.assertRedirects(response, f"/models/{model.pk}/")
        page = self.client.get(f"/models/{model.pk}/")
        self.assertContains(page, "v1")
        self.assertContains(page, "validating")
        self.assertContains(page, "safetensors state dict (SimpleModel)")
        self.assertContains(page, "float32 [batch, 784]")
        self.assertContains(self.client.get("/models/"), f'href="/models/{model.pk}/"')

    def test_a_child_version_links_to_its_parent(self) -> None:
        self.post_upload("m.safetensors", samples.safetensors_state_dict(), architecture="SimpleModel")
        parent = ModelVersion.objects.get()
        spec = json.dumps(samples.SPEC_784)
        self.post_upload(
            "m.pt", samples.torchscript_mlp(), name="scripted", input_spec=spec, parent_version=parent.pk
        )
        child = ModelVersion.objects.get(model__name="scripted")
        page = self.client.get(f"/models/{child.model_id}/")
        self.assertContains(page, f'<a href="/models/{parent.model_id}/">digits v1</a>', html=True)

    def test_a_refused_upload_shows_the_reason_and_stores_nothing(self) -> None:
        marker = Path(tempfile.gettempdir()) / "registry-pages-pwned"
        response = self.post_upload(
            "evil.pt", samples.evil_pickle(marker), input_spec=json.dumps(samples.SPEC_784)
        )
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "wrong format: the extension .pt claims", status_code=400)
        self.assertContains(response, "a Python pickle", status_code=400)
        self.assertFalse(marker.exists())
        self.assertEqual(RegisteredModel.objects.count(), 0)

    def test_the_pages_need_a_login(self) -> None:
        self.client.logout()
        self.assertRedirects(self.client.get("/models/"), "/login/?next=/models/")
        self.assertEqual(self.client.get("/models/1/").status_code, 302)
