"""/api/deployments: create, list, detail, promote and roll back, with 400s naming the field."""

from __future__ import annotations

import json
from unittest import mock

from django.contrib.auth import get_user_model

from dashboard.deployments import ingest, store
from dashboard.models import (
    ApiToken,
    Deployment,
    DeploymentChange,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    Role,
    VerificationVerdict,
)
from dashboard.permissions import grant
from tests.dashboard.base import BaseTestCase

SPEC = {"shape": [None, 784], "dtype": "float32"}


def make_versions(name: str = "digits", count: int = 3, status: str = ModelVersionStatus.READY):
    model = RegisteredModel.objects.create(name=name)
    versions, parent = [], None
    for n in range(1, count + 1):
        parent = ModelVersion.objects.create(
            model=model,
            version=n,
            format="torchscript",
            input_spec=SPEC,
            sha256=f"{n:064x}",
            size_bytes=10,
            status=status,
            parent=parent,
            produced_by="upload" if n == 1 else f"optimize job #{n}",
        )
        versions.append(parent)
    return versions


class DeploymentApiTestCase(BaseTestCase):
    def setUp(self):
        store.forget_ids()  # each test rolls back the series the writer would remember
        ingest.forget_lookups()
        self.versions = make_versions()

    def post(self, path: str, body: dict, token: str | None = None):
        return self.client.post(path, json.dumps(body), content_type="application/json", **self.bearer(token))

    def create(self, **overrides):
        body = {
            "name": "digits-prod",
            "model": "digits@2",
            "node": "gpu-node-1",
            "params": {
                "device": "cpu",
                "batch_size": 32,
                "precision": "fp32",
                "threads": 1,
                "runtime": "eager",
            },
            "probe_interval_s": 60,
            "objective_ms": 50,
            "endpoint_url": None,
            "scrape": None,
        }
        body.update(overrides)
        return self.post("/api/deployments", body)


class TestCreate(DeploymentApiTestCase):
    def test_it_creates_a_deployment_of_a_named_version(self):
        response = self.create()
        self.assertEqual(response.status_code, 201, response.content)
        data = response.json()
        self.assertEqual(data["active_version"]["label"], "digits@2")
        self.assertEqual(data["params"]["batch_size"], 32)
        self.assertEqual(data["metrics"]["p95"], "deploy:digits-prod:p95_ms")
        change = DeploymentChange.objects.get()
        self.assertEqual((change.kind, change.to_version_id), ("create", self.versions[1].pk))

    def test_a_bare_name_means_the_newest_ready_version(self):
        ModelVersion.objects.filter(pk=self.versions[2].pk).update(status=ModelVersionStatus.VALIDATING)
        response = self.create(model="digits")
        self.assertEqual(response.json()["active_version"]["label"], "digits@2")

    def test_a_zoo_model_is_registered_as_its_original(self):
        # Its trained weights are cached (test_deployments_zoo_untrained covers when they are not).
        with (
            mock.patch("workers.zoo.ZooEntry.weights_ready", return_value=True),
            mock.patch("dashboard.registry_actions._zoo_original") as original,
        ):
            original.return_value = self.versions[0]
            response = self.create(model="SimpleModel")
        self.assertEqual(response.status_code, 201, response.content)
        request = original.call_args.args[0]
        self.assertEqual((request.model_name, request.owner), ("SimpleModel", self.alice))

    def test_bad_fields_are_named(self):
        cases = [
            ({"name": "Digits Prod"}, "name:"),
            ({"model": "nope@1"}, "model:"),
            ({"model": "digits@9"}, "model:"),
            ({"params": {"batch_size": 5000}}, "params.batch_size:"),
            ({"params": {"precision": "fp8"}}, "params.precision:"),
            ({"params": {"runtime": "tensorrt"}}, "params.runtime:"),
            ({"params": {"colour": "red"}}, "params:"),
            ({"params": {"device": "cuda:0"}}, "node:"),
            ({"probe_interval_s": 1}, "probe_interval_s:"),
            ({"objective_ms": -5}, "objective_ms:"),
            ({"endpoint_url": "ftp://x/y"}, "endpoint_url:"),
            ({"scrape": {"url": "http://h:8002/metrics", "format": "graphite"}}, "scrape.format:"),
            ({"node": "elsewhere"}, "node:"),
        ]
        for overrides, field in cases:
            with self.subTest(overrides=overrides):
                response = self.create(**overrides)
                self.assertEqual(response.status_code, 400, response.content)
                self.assertTrue(response.json()["error"].startswith(field), response.json()["error"])
        self.assertEqual(Deployment.objects.count(), 0)

    def test_an_outside_node_is_fine_without_probes_and_gets_a_node_row(self):
        response = self.create(node="triton-1", probe_interval_s=0)
        self.assertEqual(response.status_code, 201, response.content)
        from dashboard.models import Node

        self.assertIn("no perfmon sampler", Node.objects.get(name="triton-1").gpu_status)

    def test_the_name_is_unique(self):
        self.create()
        response = self.create()
        self.assertEqual(response.status_code, 400)
        self.assertIn("exists already", response.json()["error"])

    def test_a_viewer_may_read_but_not_create(self):
        self.create()
        viewer = get_user_model().objects.create_user("vic")
        _t, token = ApiToken.issue(viewer, Role.VIEWER)
        response = self.post(
            "/api/deployments", {"name": "x", "model": "digits", "node": "gpu-node-1"}, token
        )
        self.assertEqual(response.status_code, 403)
        listed = self.client.get("/api/deployments", **self.bearer(token)).json()
        self.assertEqual([d["name"] for d in listed], ["digits-prod"])


class TestPromote(DeploymentApiTestCase):
    def setUp(self):
        super().setUp()
        self.create(model="digits@1")

    def test_promote_then_rollback(self):
        response = self.post("/api/deployments/digits-prod/promote", {"version": "digits@3"})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["verdict"], VerificationVerdict.WATCHING)
        self.assertIsNotNone(response.json()["verify_until"])
        detail = self.client.get("/api/deployments/digits-prod", **self.bearer()).json()
        self.assertEqual(detail["active_version"]["label"], "digits@3")
        self.assertEqual([v["label"] for v in detail["lineage"]], ["digits@3", "digits@2", "digits@1"])
        self.assertEqual([c["kind"] for c in detail["changes"]], ["promote", "create"])

        response = self.post("/api/deployments/digits-prod/rollback", {})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["to_version"], "digits@1")
        self.assertEqual(Deployment.objects.get().active_version_id, self.versions[0].pk)

    def test_refusals_say_why(self):
        other = make_versions("other", 1)[0]
        ModelVersion.objects.filter(pk=self.versions[2].pk).update(
            status=ModelVersionStatus.REJECTED, status_reason="forward pass failed"
        )
        cases = [
            ("digits@7", "unknown version"),
            (f"other@{other.version}", "serves digits"),
            ("digits@3", "rejected: forward pass failed"),
            ("digits@1", "already the active version"),
            ("digits", "name@n"),
        ]
        for version, reason in cases:
            with self.subTest(version=version):
                response = self.post("/api/deployments/digits-prod/promote", {"version": version})
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn(reason, response.json()["error"])

    def test_nothing_to_roll_back_to(self):
        response = self.post("/api/deployments/digits-prod/rollback", {})
        self.assertEqual(response.status_code, 400)
        self.assertIn("no earlier version", response.json()["error"])

    def test_unknown_deployment_is_404(self):
        self.assertEqual(self.client.get("/api/deployments/nope", **self.bearer()).status_code, 404)

    def test_a_viewer_cannot_promote(self):
        viewer = get_user_model().objects.create_user("vic")
        grant(viewer, Role.VIEWER)
        _t, token = ApiToken.issue(viewer, Role.VIEWER)
        response = self.post("/api/deployments/digits-prod/promote", {"version": "digits@2"}, token)
        self.assertEqual(response.status_code, 403)

    def test_the_openapi_document_has_the_deployment_endpoints(self):
        doc = self.client.get("/api/openapi.json", **self.bearer()).json()
        for path in ["/api/deployments", "/api/deployments/{name}/promote", "/api/ingest/latency"]:
            statuses = set(doc["paths"][path]["post"]["responses"])
            self.assertLessEqual({"400", "401", "403"}, statuses, path)
