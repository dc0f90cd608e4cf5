"""POST /api/deployments of a zoo model never trains it inside the web request (a minute of CPU
or more on a loaded machine): without its trained weights on this server, a 400 says how to get
them; with them (or for a model that is never trained), the zoo original is registered at once."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from unittest import mock

from django.test import override_settings

from dashboard.models import Deployment, ModelVersion
from tests.dashboard.base import BaseTestCase
from workers import zoo
from workers.zoo import training

BODY = {
    "name": "digits-prod",
    "node": "gpu-node-1",
    "params": {"device": "cpu", "batch_size": 1, "precision": "fp32", "threads": 1, "runtime": "eager"},
    "probe_interval_s": 0,
}


class ZooDeploymentTestCase(BaseTestCase):
    def setUp(self):
        self.data_dir = Path(tempfile.mkdtemp(prefix="zoo-deploy-"))
        self.addCleanup(shutil.rmtree, self.data_dir, ignore_errors=True)
        self.enterContext(override_settings(DATA_DIR=self.data_dir))
        # Training in the request is the bug: make it loud (and quick) if it happens.
        self.enterContext(
            mock.patch.object(training, "train", side_effect=AssertionError("trained in a request"))
        )

    def create(self, model: str):
        body = json.dumps({**BODY, "model": model})
        return self.client.post("/api/deployments", body, content_type="application/json", **self.bearer())

    def test_an_untrained_zoo_model_is_refused_with_what_to_do(self):
        response = self.create("SimpleModel")
        self.assertEqual(response.status_code, 400, response.content)
        error = response.json()["error"]
        self.assertTrue(error.startswith("model: SimpleModel is not trained on this server yet"), error)
        self.assertIn("benchmark", error)
        self.assertFalse(Deployment.objects.exists())
        self.assertFalse(ModelVersion.objects.exists())
        self.assertFalse((self.data_dir / "zoo" / "SimpleModel.safetensors").exists())

    def test_a_trained_zoo_model_is_registered_as_its_original(self):
        entry = zoo.get("SimpleModel")
        recipe = json.dumps(training.RECIPE, sort_keys=True)
        # Weights as a benchmark or optimization job leaves them (seeded ones stand in here).
        training._save_atomically(
            entry.build(), self.data_dir / "zoo" / "SimpleModel.safetensors", {"recipe": recipe}
        )
        response = self.create("SimpleModel")
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["active_version"]["label"], "SimpleModel@1")

    def test_a_model_that_is_never_trained_is_registered_at_once(self):
        response = self.create("SmallResNet")
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["active_version"]["label"], "SmallResNet@1")
