"""POST /api/models and GET /api/models: safe uploads, rejections that store nothing, versions and lineage."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from dashboard.models import ModelVersion, RegisteredModel
from dashboard.registry_actions import do_finish_validation, do_register_file
from tests.dashboard.base import BaseTestCase
from tests.engine import test_registry_samples as samples

SPEC_JSON = json.dumps(samples.SPEC_784)


class RegistryTestCase(BaseTestCase):
    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="registry-"))
        self.addCleanup(shutil.rmtree, self.data_dir, ignore_errors=True)
        self.enterContext(override_settings(DATA_DIR=self.data_dir))
        self.marker = self.data_dir / "pwned"

    def upload(self, filename: str, data: bytes, name: str = "digits-mlp", **fields):
        body = {"file": SimpleUploadedFile(filename, data), "name": name, **fields}
        return self.client.post("/api/models", body, **self.bearer())

    def stored_files(self) -> list[Path]:
        return [p for p in (self.data_dir / "models").rglob("*") if p.is_file()]

    def assert_refused(self, response, reason: str) -> str:
        self.assertEqual(response.status_code, 400, response.content)
        error = response.json()["error"]
        self.assertTrue(error.startswith(f"{reason}: "), error)
        self.assertEqual(RegisteredModel.objects.count(), 0)
        self.assertEqual(ModelVersion.objects.count(), 0)
        self.assertEqual(self.stored_files(), [])
        self.assertFalse(self.marker.exists(), "the malicious pickle ran")
        return error


class TestValidUploads(RegistryTestCase):
    def test_each_format_is_stored_by_its_sha256_and_awaits_validation(self) -> None:
        cases = [
            ("m.pt", samples.torchscript_mlp(), {"input_spec": SPEC_JSON}, "torchscript"),
            ("m.pt2", samples.exported_mlp(), {}, "pt2"),
            ("m.onnx", samples.onnx_mlp(), {}, "onnx"),
            (
                "m.safetensors",
                samples.safetensors_state_dict(),
                {"architecture": "SimpleModel"},
                "safetensors",
            ),
        ]
        for filename, data, fields, fmt in cases:
            with self.subTest(fmt=fmt):
                response = self.upload(filename, data, name=f"mlp-{fmt}", **fields)
                self.assertEqual(response.status_code, 201, response.content)
                body = response.json()
                digest = hashlib.sha256(data).hexdigest()
                self.assertEqual(body["status"], "validating")
                self.assertEqual(body["format"], fmt)
                self.assertEqual(
                    (body["version"], body["sha256"], body["size_bytes"]), (1, digest, len(data))
                )
                self.assertEqual(body["input_spec"], {**samples.SPEC_784, "low": 0.0, "high": 1.0})
                self.assertEqual(body["produced_by"], "upload")
                self.assertEqual((self.data_dir / "models" / digest[:2] / digest).read_bytes(), data)

    def test_a_file_over_django_s_in_memory_limit_streams_through_a_temporary_file(self) -> None:
        data = samples.safetensors_state_dict("PerformanceTestModel")
        # Over Django's 2.5 MB FILE_UPLOAD_MAX_MEMORY_SIZE (and DATA_UPLOAD_MAX_MEMORY_SIZE).
        self.assertGreater(len(data), 2_621_440)
        response = self.upload("big.safetensors", data, architecture="PerformanceTestModel")
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["size_bytes"], len(data))

    def test_uploading_the_same_bytes_again_adds_a_version_but_not_a_file(self) -> None:
        first = self.upload("m.onnx", samples.onnx_mlp()).json()
        second = self.upload("again.onnx", samples.onnx_mlp()).json()
        self.assertEqual((first["version"], second["version"]), (1, 2))
        self.assertEqual(first["sha256"], second["sha256"])
        self.assertEqual(len(self.stored_files()), 1)

    def test_versions_count_up_per_name(self) -> None:
        self.upload("m.onnx", samples.onnx_mlp(), name="a")
        self.upload("m.safetensors", samples.safetensors_state_dict(), name="a", architecture="SimpleModel")
        other = self.upload("m.onnx", samples.onnx_mlp(), name="b").json()
        self.assertEqual(other["version"], 1)
        model_a = RegisteredModel.objects.get(name="a")
        detail = self.client.get(f"/api/models/{model_a.pk}", **self.bearer()).json()
        self.assertEqual([v["version"] for v in detail["versions"]], [2, 1])
        self.assertEqual([v["format"] for v in detail["versions"]], ["safetensors", "onnx"])

    def test_the_parent_version_is_recorded_as_lineage(self) -> None:
        parent = self.upload(
            "m.safetensors", samples.safetensors_state_dict(), architecture="SimpleModel"
        ).json()
        child = self.upload("m.onnx", samples.onnx_mlp(), name="mlp-onnx", parent_version=parent["id"]).json()
        self.assertEqual(child["parent_id"], parent["id"])
        self.assertEqual(ModelVersion.objects.get(pk=child["id"]).parent.label, "digits-mlp v1")

    def test_a_job_s_output_is_registered_with_what_produced_it(self) -> None:
        parent = self.upload(
            "m.safetensors", samples.safetensors_state_dict(), architecture="SimpleModel"
        ).json()
        produced = self.data_dir / "pruned.safetensors"
        produced.write_bytes(samples.safetensors_state_dict("StudentModel"))
        version = do_register_file(
            self.alice,
            produced,
            name="digits-mlp",
            produced_by="pruning job #12",
            parent=ModelVersion.objects.get(pk=parent["id"]),
            architecture="StudentModel",
        )
        self.assertEqual((version.version, version.produced_by), (2, "pruning job #12"))
        self.assertEqual(version.parent_id, parent["id"])
        self.assertTrue(produced.exists(), "the job's own file is copied, not moved")


class TestFinishingValidation(RegistryTestCase):
    def test_a_rejected_version_s_file_goes_unless_a_usable_version_shares_it(self) -> None:
        first = self.upload("m.onnx", samples.onnx_mlp()).json()
        second = self.upload("m.onnx", samples.onnx_mlp()).json()
        do_finish_validation(first["id"], "ready", validation={"output_shapes": [[2, 10]]})
        do_finish_validation(second["id"], "rejected", reason="input spec does not fit: boom")
        self.assertEqual(len(self.stored_files()), 1, "the ready version still needs the file")

        lone = self.upload(
            "m.safetensors", samples.safetensors_state_dict(), architecture="SimpleModel"
        ).json()
        do_finish_validation(lone["id"], "rejected", reason="input spec does not fit: boom")
        self.assertEqual(len(self.stored_files()), 1)
        self.assertEqual(
            ModelVersion.objects.get(pk=lone["id"]).status_reason, "input spec does not fit: boom"
        )

    def test_the_first_verdict_wins(self) -> None:
        version = self.upload("m.onnx", samples.onnx_mlp()).json()
        do_finish_validation(version["id"], "ready")
        after = do_finish_validation(version["id"], "rejected", reason="late")
        self.assertEqual((after.status, after.status_reason), ("ready", ""))
        self.assertEqual(len(self.stored_files()), 1)


class TestMaliciousUploads(RegistryTestCase):
    def test_a_raw_pickle_as_pt(self) -> None:
        response = self.upload("evil.pt", samples.evil_pickle(self.marker), input_spec=SPEC_JSON)
        error = self.assert_refused(response, "wrong format")
        self.assertIn("a Python pickle", error)

    def test_a_pickle_as_safetensors(self) -> None:
        response = self.upload(
            "evil.safetensors", samples.evil_pickle(self.marker), architecture="SimpleModel"
        )
        self.assert_refused(response, "wrong format")

    def test_a_data_pkl_zip_named_like_torchscript_or_pt2(self) -> None:
        for filename in ("evil.pt", "evil.pt2"):
            with self.subTest(filename=filename):
                data = samples.torch_save_archive(samples.evil_pickle(self.marker))
                error = self.assert_refused(self.upload(filename, data), "wrong format")
                self.assertIn("torch.save checkpoint", error)

    def test_a_torchscript_archive_with_a_malicious_data_pkl(self) -> None:
        data = samples.torchscript_with_evil_data_pkl(self.marker)
        error = self.assert_refused(self.upload("evil.pt", data, input_spec=SPEC_JSON), "unsafe content")
        self.assertIn("io.open", error)

    def test_torchscript_that_would_write_a_file_while_loading(self) -> None:
        data = samples.torchscript_writing_on_load(self.marker)
        self.assert_refused(self.upload("evil.pt", data, input_spec=SPEC_JSON), "unsafe content")

    def test_a_pt2_with_pickled_weights_or_sample_inputs(self) -> None:
        for data in (
            samples.pt2_with_pickled_weight(self.marker),
            samples.pt2_with_evil_sample_inputs(self.marker),
            samples.pt2_with_sympy_payload(self.marker),
            samples.pt2_with_code_in_a_parameter_name(self.marker),
        ):
            self.assert_refused(self.upload("evil.pt2", data), "unsafe content")


class TestRejections(RegistryTestCase):
    def test_truncated_files_of_each_format(self) -> None:
        cases = [
            ("m.pt", samples.torchscript_mlp(), {"input_spec": SPEC_JSON}),
            ("m.pt2", samples.exported_mlp(), {}),
            ("m.onnx", samples.onnx_mlp(), {}),
            ("m.safetensors", samples.safetensors_state_dict(), {"architecture": "SimpleModel"}),
        ]
        for filename, data, fields in cases:
            with self.subTest(filename=filename):
                response = self.upload(filename, data[: len(data) * 2 // 3], **fields)
                self.assert_refused(response, "truncated")

    def test_a_png_or_text_renamed_onnx(self) -> None:
        png = b"\x89PNG\r\n\x1a\n" + bytes(100)
        error = self.assert_refused(self.upload("cat.onnx", png), "wrong format")
        self.assertEqual(
            error,
            "wrong format: the extension .onnx claims an ONNX model (.onnx), but the content is a PNG image",
        )
        error = self.assert_refused(self.upload("notes.onnx", b"hello\n"), "wrong format")
        self.assertIn("a text file", error)

    def test_a_declared_format_that_the_content_contradicts(self) -> None:
        response = self.upload("m.bin", samples.exported_mlp(), format="onnx")
        error = self.assert_refused(response, "wrong format")
        self.assertIn('the format field "onnx" claims an ONNX model', error)
        self.assertIn("the content is a torch.export program", error)

    @override_settings(PERFMON_MAX_UPLOAD_BYTES=1000)
    def test_a_file_over_the_size_limit(self) -> None:
        error = self.assert_refused(self.upload("m.onnx", samples.onnx_mlp()), "too large")
        self.assertIn("1000 bytes", error)

    def test_an_input_spec_that_does_not_fit_the_graph(self) -> None:
        spec = json.dumps({"shape": [None, 28, 28], "dtype": "float32", "low": 0, "high": 1})
        error = self.assert_refused(
            self.upload("m.onnx", samples.onnx_mlp(), input_spec=spec), "input spec does not fit"
        )
        self.assertIn("[null, 784]", error)

    def test_malformed_requests(self) -> None:
        cases = [
            ({"input_spec": "{not json"}, "invalid request: input spec"),
            (
                {"input_spec": json.dumps({"shape": [784], "dtype": "float32", "low": 0, "high": 1})},
                "invalid request",
            ),
            ({"name": "../etc"}, "invalid request: name"),
            ({"parent_version": "999"}, "invalid request: parent version 999 does not exist"),
            ({"format": "keras"}, "wrong format: unknown format 'keras'"),
        ]
        for fields, start in cases:
            with self.subTest(fields=fields):
                name = fields.pop("name", "ok-name")
                response = self.upload("m.onnx", samples.onnx_mlp(), name=name, **fields)
                error = self.assert_refused(response, start.split(":")[0])
                self.assertTrue(error.startswith(start), error)

    def test_missing_fields_answer_400_not_500(self) -> None:
        response = self.client.post("/api/models", {"name": "x"}, **self.bearer())
        self.assertEqual(response.status_code, 400)
        self.assertIn("file", response.json()["error"])
        response = self.client.post(
            "/api/models", {"file": SimpleUploadedFile("m.onnx", b"x")}, **self.bearer()
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("name", response.json()["error"])


class TestReading(RegistryTestCase):
    def test_the_list_shows_each_model_with_its_latest_version(self) -> None:
        self.upload("m.onnx", samples.onnx_mlp(), name="b-model")
        self.upload("m.onnx", samples.onnx_mlp(), name="a-model")
        self.upload(
            "m.safetensors", samples.safetensors_state_dict(), name="a-model", architecture="SimpleModel"
        )
        models = self.client.get("/api/models", **self.bearer()).json()
        self.assertEqual([m["name"] for m in models], ["a-model", "b-model"])
        self.assertEqual(models[0]["version_count"], 2)
        self.assertEqual(models[0]["latest_version"]["format"], "safetensors")

    def test_unknown_models_are_404_and_strangers_401(self) -> None:
        response = self.client.get("/api/models/4242", **self.bearer())
        self.assertEqual((response.status_code, response.json()), (404, {"error": "model 4242 not found"}))
        self.assertEqual(self.client.get("/api/models").status_code, 401)
        response = self.client.post("/api/models", {"file": SimpleUploadedFile("m.onnx", samples.onnx_mlp())})
        self.assertEqual(response.status_code, 401)
        self.assertEqual(self.stored_files(), [])
