"""A model's life after upload: download, the jobs that used each version, "benchmark this",
deletion (refused while in use), and validation verdicts pushed to the model's page."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from dashboard.models import Job, JobStatus, ModelVersion, RegisteredModel
from dashboard.permissions import Role, grant
from dashboard.registry_actions import do_finish_validation, do_register_upload, model_store
from tests.dashboard.base import BaseTestCase
from tests.dashboard.live_client import communicator_for, receive_until, subscribe
from tests.engine import test_registry_samples as samples


class ManageTestCase(BaseTestCase):
    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="registry-manage-"))
        self.addCleanup(shutil.rmtree, self.data_dir, ignore_errors=True)
        self.enterContext(override_settings(DATA_DIR=self.data_dir))

    def upload(self, data: bytes, filename: str = "m.onnx", name: str = "digits mlp", **fields):
        body = {"file": SimpleUploadedFile(filename, data), "name": name, **fields}
        response = self.client.post("/api/models", body, **self.bearer())
        self.assertEqual(response.status_code, 201, response.content)
        return response.json()

    def ready(self, data: bytes | None = None, **kwargs) -> ModelVersion:
        version = self.upload(data or samples.onnx_mlp(), **kwargs)
        return do_finish_validation(version["id"], "ready")

    def job_using(self, version: ModelVersion, status: str) -> Job:
        return Job.objects.create(
            kind="benchmark", model_name=version.label.replace(" v", "@"), status=status
        )

    def stored(self, version: ModelVersion) -> bool:
        return model_store().path_for(version.sha256).is_file()


class TestDownload(ManageTestCase):
    def test_it_streams_the_uploaded_bytes_under_a_safe_name(self) -> None:
        data = samples.onnx_mlp()
        version = self.ready(data, filename='../../evil"\r\nX-Injected: 1.onnx')
        response = self.client.get(f"/api/models/{version.model_id}/versions/1/download", **self.bearer())
        self.assertEqual(response.status_code, 200)
        self.assertEqual(b"".join(response.streaming_content), data)
        self.assertEqual(response["Content-Type"], "application/octet-stream")
        self.assertEqual(response["Content-Disposition"], 'attachment; filename="digits_mlp-v1.onnx"')
        self.assertEqual(int(response["Content-Length"]), len(data))

    def test_a_torchscript_file_downloads_as_the_zip_it_is(self) -> None:
        data = samples.torchscript_mlp()
        version = self.ready(data, filename="m.pt", input_spec=json.dumps(samples.SPEC_784))
        response = self.client.get(f"/api/models/{version.model_id}/versions/1/download", **self.bearer())
        self.assertEqual(b"".join(response.streaming_content), data)
        self.assertEqual(response["Content-Type"], "application/zip")
        self.assertIn('filename="digits_mlp-v1.pt"', response["Content-Disposition"])

    def test_missing_versions_and_removed_files_are_404_and_strangers_401(self) -> None:
        version = self.upload(samples.onnx_mlp())
        url = f"/api/models/{version['model_id']}/versions"
        self.assertEqual(self.client.get(f"{url}/9/download", **self.bearer()).status_code, 404)
        do_finish_validation(version["id"], "rejected", reason="forward pass failed")
        response = self.client.get(f"{url}/1/download", **self.bearer())
        self.assertEqual(response.status_code, 404)
        self.assertIn("no longer stored (rejected)", response.json()["error"])
        self.assertEqual(self.client.get(f"{url}/1/download").status_code, 401)


class TestDelete(ManageTestCase):
    def delete(self, path: str):
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.delete(path, **self.bearer())

    def test_a_version_in_use_by_a_queued_or_running_job_is_refused(self) -> None:
        version = self.ready()
        for status in (JobStatus.QUEUED, JobStatus.RUNNING):
            job = self.job_using(version, status)
            response = self.delete(f"/api/models/{version.model_id}/versions/1")
            self.assertEqual(response.status_code, 409)
            self.assertEqual(
                response.json()["error"],
                f"digits mlp v1 is in use by job #{job.pk} ({status}); "
                "cancel the job or wait for it to finish, then delete",
            )
            self.assertTrue(ModelVersion.objects.filter(pk=version.pk).exists())
            self.assertTrue(self.stored(version))
            job.delete()

    def test_a_version_still_validating_is_refused(self) -> None:
        version = self.upload(samples.onnx_mlp())
        response = self.delete(f"/api/models/{version['model_id']}/versions/1")
        self.assertEqual(response.status_code, 409)
        self.assertIn("still being validated", response.json()["error"])

    def test_a_version_only_finished_jobs_used_goes_with_its_file(self) -> None:
        version = self.ready()
        done = self.job_using(version, JobStatus.SUCCEEDED)
        response = self.delete(f"/api/models/{version.model_id}/versions/1")
        self.assertEqual(response.status_code, 204)
        self.assertFalse(ModelVersion.objects.filter(pk=version.pk).exists())
        self.assertFalse(self.stored(version))
        self.assertTrue(Job.objects.filter(pk=done.pk).exists(), "finished jobs keep their results")
        self.assertEqual(
            self.client.get(
                f"/api/models/{version.model_id}/versions/1/download", **self.bearer()
            ).status_code,
            404,
        )

    def test_a_file_another_version_shares_stays(self) -> None:
        data = samples.onnx_mlp()
        first = self.ready(data)
        second = self.ready(data)
        self.assertEqual(self.delete(f"/api/models/{first.model_id}/versions/1").status_code, 204)
        self.assertTrue(self.stored(second))

    def test_a_model_goes_with_all_its_versions_unless_one_is_in_use(self) -> None:
        first = self.ready()
        second = self.ready(
            samples.torchscript_mlp(), filename="m.pt", input_spec=json.dumps(samples.SPEC_784)
        )
        job = self.job_using(second, JobStatus.QUEUED)
        response = self.delete(f"/api/models/{first.model_id}")
        self.assertEqual(response.status_code, 409)
        self.assertIn(f"digits mlp v2 is in use by job #{job.pk}", response.json()["error"])
        self.assertEqual(ModelVersion.objects.count(), 2)
        job.status = JobStatus.FAILED
        job.save()
        self.assertEqual(self.delete(f"/api/models/{first.model_id}").status_code, 204)
        self.assertFalse(RegisteredModel.objects.exists())
        self.assertFalse(self.stored(first) or self.stored(second))
        self.assertEqual(self.delete(f"/api/models/{first.model_id}").status_code, 404)


class TestModelPage(ManageTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(self.alice)

    def test_it_links_benchmark_download_and_the_jobs_of_each_version(self) -> None:
        version = self.ready()
        job = self.job_using(version, JobStatus.SUCCEEDED)
        page = self.client.get(f"/models/{version.model_id}/").content.decode()
        self.assertIn('href="/benchmark/?model=digits%20mlp%401"', page)
        self.assertIn(f'href="/api/models/{version.model_id}/versions/1/download"', page)
        self.assertIn(f'href="/jobs/{job.pk}/"', page)

    def test_a_validating_version_offers_no_benchmark_yet(self) -> None:
        version = self.upload(samples.onnx_mlp())
        page = self.client.get(f"/models/{version['model_id']}/").content.decode()
        self.assertIn('data-role="benchmark" hidden', page)

    def test_deleting_from_the_page_shows_the_refusal_or_goes_back(self) -> None:
        version = self.ready()
        job = self.job_using(version, JobStatus.RUNNING)
        url = f"/models/{version.model_id}/versions/1/delete/"
        refused = self.client.post(url)
        self.assertEqual(refused.status_code, 409)
        self.assertIn(f"in use by job #{job.pk} (running)", refused.content.decode())
        job.delete()
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(url)
        self.assertRedirects(response, f"/models/{version.model_id}/")
        self.assertFalse(ModelVersion.objects.exists())
        response = self.client.post(f"/models/{version.model_id}/delete/")
        self.assertRedirects(response, "/models/")
        self.assertFalse(RegisteredModel.objects.exists())

    def test_delete_is_post_only_and_needs_a_login(self) -> None:
        version = self.ready()
        self.assertEqual(self.client.get(f"/models/{version.model_id}/versions/1/delete/").status_code, 405)
        self.client.logout()
        response = self.client.post(f"/models/{version.model_id}/versions/1/delete/")
        self.assertEqual(response.status_code, 302)
        self.assertTrue(ModelVersion.objects.exists())


class TestInputSpecDefaults(ManageTestCase):
    def test_a_float32_spec_without_low_and_high_is_taken_as_zero_to_one(self) -> None:
        spec = json.dumps({"shape": [None, 784], "dtype": "float32"})
        version = self.upload(samples.torchscript_mlp(), filename="m.pt", input_spec=spec)
        self.assertEqual(
            version["input_spec"], {"shape": [None, 784], "dtype": "float32", "low": 0.0, "high": 1.0}
        )

    def test_the_upload_form_has_a_roomy_input_spec_box_with_an_example(self) -> None:
        self.client.force_login(self.alice)
        page = self.client.get("/models/").content.decode()
        self.assertIn('<textarea name="input_spec" cols="60" rows="5"', page)
        self.assertIn("&quot;dtype&quot;: &quot;float32&quot;", page)


@pytest.mark.django_db(transaction=True)
async def test_a_validation_verdict_reaches_the_model_s_page(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    user = await sync_to_async(get_user_model().objects.create_user)("carol", password="pw-123456789")
    await sync_to_async(grant)(user, Role.OPERATOR)  # uploads
    client = Client()
    await sync_to_async(client.force_login)(user)

    def register() -> ModelVersion:
        return do_register_upload(user, name="live", filename="m.onnx", chunks=[samples.onnx_mlp()])

    # Stored "validating"; with no worker in this test, the verdict comes from the action below.
    version = await sync_to_async(register)()
    communicator = communicator_for(client)
    await communicator.connect()
    await subscribe(communicator, f"model:{version.model_id}")
    await sync_to_async(do_finish_validation)(version.pk, "rejected", reason="shape mismatch")
    message = await receive_until(communicator, lambda m: m.get("type") == "model")
    await communicator.disconnect()
    assert message["event"] == "validated"
    assert (message["model_id"], message["id"], message["status"]) == (
        version.model_id,
        version.pk,
        "rejected",
    )
    assert message["status_reason"] == "shape mismatch"
