"""Labeled data sets: POST /api/datasets checks a .npz against the model before keeping it, GET lists
them, the optimize page uploads one, and optimization jobs name one ("dataset": <id>)."""

from __future__ import annotations

import io
import json

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from dashboard.models import ApiToken, Dataset, Job, Role
from dashboard.permissions import grant
from tests.dashboard.base import BaseTestCase


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def resnet_data(n: int = 40, labels: np.ndarray | None = None, **changes) -> bytes:
    """n samples shaped for SmallResNet (3x32x32 floats; 10 outputs)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.random((n, 3, 32, 32), dtype=np.float32),
        "y": rng.integers(0, 10, n) if labels is None else labels,
    }
    return npz(**{**arrays, **changes})


class DatasetTestCase(BaseTestCase):
    def setUp(self):
        import tempfile
        from pathlib import Path

        self._tmp = tempfile.TemporaryDirectory()
        self.data_dir = Path(self._tmp.name)
        self.settings_override = override_settings(DATA_DIR=self.data_dir)
        self.settings_override.enable()

    def tearDown(self):
        self.settings_override.disable()
        self._tmp.cleanup()

    def upload(self, data: bytes, model: str = "SmallResNet", name: str = "mine", token: str | None = None):
        body = {"file": SimpleUploadedFile("set.npz", data), "model": model, "name": name}
        return self.client.post("/api/datasets", body, **self.bearer(token))

    def stored_files(self) -> list:
        return [p for p in (self.data_dir / "datasets").rglob("*") if p.is_file()]


class TestUploadApi(DatasetTestCase):
    def test_it_keeps_a_valid_data_set_and_lists_it(self):
        response = self.upload(resnet_data(50), name="cifar-ish")
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(body["model"], "SmallResNet")
        self.assertEqual(body["samples"], 50)
        self.assertEqual(body["input_shape"], [3, 32, 32])
        self.assertEqual(body["owner"], "alice")
        self.assertEqual(len(self.stored_files()), 1)

        listed = self.client.get("/api/datasets", **self.bearer()).json()
        self.assertEqual([d["id"] for d in listed], [body["id"]])
        self.assertEqual(self.client.get("/api/datasets?model=SimpleModel", **self.bearer()).json(), [])
        # "name@N" names the same tree as the bare name.
        self.assertEqual(len(self.client.get("/api/datasets?model=SmallResNet@2", **self.bearer()).json()), 1)

    def test_it_refuses_what_does_not_fit_and_keeps_nothing(self):
        nan_x = np.random.default_rng(1).random((20, 3, 32, 32), dtype=np.float32)
        nan_x[3, 0, 0, 0] = np.nan
        cases = {
            "not an .npz": b"just some bytes that are not a zip",
            "the model takes [N, 3, 32, 32]": resnet_data(x=np.zeros((20, 784), dtype=np.float32)),
            "no NaN or inf": resnet_data(20, x=nan_x),
            "below 10 (the model's outputs); found 0 to 10": resnet_data(20, labels=np.arange(20) % 11),
            "labels must be >= 0": resnet_data(20, labels=np.arange(20) - 1),
            "expected one label per row of x": resnet_data(20, labels=np.zeros(19, dtype=np.int64)),
            "y must be integer class labels": resnet_data(20, labels=np.zeros(20, dtype=np.float32)),
            "arrays named x and y": npz(inputs=np.zeros((20, 3, 32, 32), dtype=np.float32)),
            "x must be floats, not object": resnet_data(20, x=np.array([None] * 20, dtype=object)),
        }
        for reason, data in cases.items():
            with self.subTest(reason):
                response = self.upload(data)
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn(reason, response.json()["error"])
        self.assertEqual(Dataset.objects.count(), 0)
        self.assertEqual(self.stored_files(), [])

    def test_it_refuses_an_unknown_model_a_bad_name_and_a_file_over_the_limit(self):
        self.assertIn("unknown model 'Nope'", self.upload(resnet_data(), model="Nope").json()["error"])
        self.assertIn("name must be", self.upload(resnet_data(), name="../etc").json()["error"])
        with override_settings(PERFMON_MAX_DATASET_BYTES=10_000):
            response = self.upload(resnet_data())
        self.assertEqual(response.status_code, 400)
        self.assertIn("over the data set limit of 10,000 bytes", response.json()["error"])
        self.assertEqual(Dataset.objects.count(), 0)

    def test_a_viewer_may_list_but_not_upload(self):
        from django.contrib.auth import get_user_model

        viewer = get_user_model().objects.create_user("victor")
        grant(viewer, Role.VIEWER)
        _token, secret = ApiToken.issue(viewer, Role.VIEWER)
        self.assertEqual(self.upload(resnet_data(), token=secret).status_code, 403)
        self.assertEqual(self.client.get("/api/datasets", **self.bearer(secret)).status_code, 200)
        self.assertEqual(Dataset.objects.count(), 0)


class TestJobsNameADataSet(DatasetTestCase):
    def submit(self, model: str, params: dict, kind: str = "optimize"):
        body = {"kind": kind, "model": model, "params": params}
        with self.captureOnCommitCallbacks(execute=False):  # no broker needed: nothing is sent
            return self.client.post(
                "/api/jobs", json.dumps(body), content_type="application/json", **self.bearer()
            )

    def test_distillation_needs_labeled_data_and_takes_an_uploaded_set(self):
        distill = {"passes": [{"name": "distill", "params": {"epochs": 1}}], "batch_sizes": [4]}
        refused = self.submit("SmallResNet", distill)
        self.assertEqual(refused.status_code, 400)
        self.assertIn("'distill' needs a labeled data set", refused.json()["error"])
        self.assertIn("POST /api/datasets", refused.json()["error"])

        dataset = self.upload(resnet_data()).json()["id"]
        accepted = self.submit("SmallResNet", {**distill, "dataset": dataset})
        self.assertEqual(accepted.status_code, 201, accepted.content)
        self.assertEqual(Job.objects.get(pk=accepted.json()["id"]).params["dataset"], dataset)

    def test_it_refuses_a_missing_data_set_or_another_models(self):
        dataset = self.upload(resnet_data()).json()["id"]
        quick = {"passes": [{"name": "quantize_dynamic"}], "batch_sizes": [4]}
        other = self.submit("SimpleModel", {**quick, "dataset": dataset})
        self.assertEqual(other.status_code, 400)
        self.assertIn("was uploaded for SmallResNet, not SimpleModel", other.json()["error"])
        missing = self.submit("SmallResNet", {**quick, "dataset": dataset + 99})
        self.assertIn(f"data set {dataset + 99} does not exist", missing.json()["error"])
        auto = self.submit("SimpleModel", {"dataset": dataset}, kind="auto_optimize")
        self.assertEqual(auto.status_code, 400)
        self.assertIn("was uploaded for SmallResNet", auto.json()["error"])
        self.assertEqual(
            self.submit("SmallResNet", {"dataset": dataset}, kind="auto_optimize").status_code, 201
        )


class TestDelete(DatasetTestCase):
    def delete(self, dataset_id: int, token: str | None = None):
        return self.client.delete(f"/api/datasets/{dataset_id}", **self.bearer(token))

    def test_the_uploader_deletes_a_set_and_its_file_goes_once_no_set_shares_it(self):
        data = resnet_data()
        first, second = self.upload(data, name="a").json()["id"], self.upload(data, name="b").json()["id"]
        self.assertEqual(len(self.stored_files()), 1)  # stored by content: one file for both
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(self.delete(first).status_code, 204)
        self.assertEqual(len(self.stored_files()), 1)  # the other set still reads it
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(self.delete(second).status_code, 204)
        self.assertEqual(self.stored_files(), [])
        self.assertEqual(self.client.get("/api/datasets", **self.bearer()).json(), [])
        missing = self.delete(second)
        self.assertEqual(
            (missing.status_code, missing.json()["error"]), (404, f"data set {second} not found")
        )

    def test_another_operator_may_not_delete_it_and_a_queued_job_keeps_it(self):
        from django.contrib.auth import get_user_model

        bob = get_user_model().objects.create_user("bob")
        grant(bob, Role.OPERATOR)
        _token, bob_secret = ApiToken.issue(bob, Role.OPERATOR)
        dataset = self.upload(resnet_data()).json()["id"]
        refused = self.delete(dataset, token=bob_secret)
        self.assertEqual(refused.status_code, 403)
        self.assertIn("belongs to alice", refused.json()["error"])

        job = Job.objects.create(
            kind="optimize", model_name="SmallResNet", params={"dataset": dataset}, owner=self.alice
        )
        in_use = self.delete(dataset)
        self.assertEqual(in_use.status_code, 409)
        self.assertIn(f"in use by job #{job.pk} (queued)", in_use.json()["error"])
        self.assertEqual(len(self.stored_files()), 1)

    def test_deleting_a_model_takes_its_data_sets_files_too(self):
        from dashboard.models import RegisteredModel

        model = RegisteredModel.objects.create(name="SmallResNet", owner=self.alice)
        dataset = self.upload(resnet_data()).json()["id"]
        self.assertEqual(Dataset.objects.get(pk=dataset).registered_model, model)
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(self.client.delete(f"/api/models/{model.pk}", **self.bearer()).status_code, 204)
        self.assertEqual(Dataset.objects.count(), 0)
        self.assertEqual(self.stored_files(), [])


class TestOptimizePageUpload(DatasetTestCase):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.alice)

    def post(self, data: bytes, model: str = "SmallResNet"):
        body = {
            "dataset_model": model,
            "dataset_name": "page-set",
            "dataset_file": SimpleUploadedFile("s.npz", data),
        }
        return self.client.post("/optimize/datasets/", body)

    def test_an_upload_from_the_page_comes_back_chosen_in_the_form(self):
        response = self.post(resnet_data())
        dataset = Dataset.objects.get()
        self.assertRedirects(response, f"/optimize/?model=SmallResNet&dataset={dataset.pk}")
        page = self.client.get(response["Location"])
        self.assertContains(
            page, f'<option value="{dataset.pk}" selected>SmallResNet: #{dataset.pk} page-set'
        )

    def test_a_refused_upload_shows_the_reason_beside_the_file(self):
        response = self.post(resnet_data(20, labels=np.full(20, 12)))
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "labels must be &gt;= 0 and below 10", status_code=400)
        self.assertContains(response, 'id="id_dataset_file-error"', status_code=400)
        self.assertEqual(Dataset.objects.count(), 0)
