from __future__ import annotations

import json

from dashboard.models import Job, JobStatus, Node
from tests.dashboard.base import BaseTestCase

GOOD = {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [32], "iterations": 200}}


class SubmitJobTestCase(BaseTestCase):
    def post(self, body, **headers):
        data = body if isinstance(body, str) else json.dumps(body)
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post("/api/jobs", data=data, content_type="application/json", **headers)

    def test_it_queues_a_benchmark(self):
        response = self.post(GOOD, **self.bearer())
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertEqual(body["status"], "queued")
        job = Job.objects.get(pk=body["id"])
        self.assertEqual((job.kind, job.model_name, job.owner), ("benchmark", "SimpleModel", self.alice))
        self.assertEqual(
            job.params,
            {
                "batch_sizes": [32],
                "iterations": 200,
                "device": "cpu",
                "precision": "fp32",
                "time_budget_s": 10.0,
                "concurrency": [],
                "devices": [],
                "runtime": "eager",
            },
            "stored canonical, with the defaults the worker will use",
        )

    def test_it_accepts_a_session(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.post(GOOD).status_code, 201)

    def test_it_requires_authentication(self):
        response = self.post(GOOD)
        self.assertEqual(response.status_code, 401)
        self.assertIn("authentication required", response.json()["error"])
        self.assertFalse(Job.objects.exists())

    def test_it_rejects_an_unknown_token(self):
        self.assertEqual(self.post(GOOD, **self.bearer("pm_not-a-real-token")).status_code, 401)

    def assert_rejected(self, body, *fragments):
        response = self.post(body, **self.bearer())
        self.assertEqual(response.status_code, 400, response.content)
        error = response.json()["error"]
        for fragment in fragments:
            self.assertIn(fragment, error)
        self.assertFalse(Job.objects.exists(), "a rejected submission must store nothing")

    def test_it_rejects_an_unknown_model(self):
        self.assert_rejected({**GOOD, "model": "ResNet9000"}, "unknown model 'ResNet9000'", "SimpleModel")

    def test_it_rejects_an_unknown_kind(self):
        self.assert_rejected({**GOOD, "kind": "teleport"}, "unknown job kind 'teleport'")

    def test_it_rejects_batch_sizes_out_of_range(self):
        self.assert_rejected(
            {**GOOD, "params": {"batch_sizes": [0]}}, "Batch size 0 is too small: at least 1"
        )
        self.assert_rejected(
            {**GOOD, "params": {"batch_sizes": [8, 5000]}}, "Batch size 5000 is too large: at most 4096"
        )
        self.assert_rejected({**GOOD, "params": {"batch_sizes": []}}, "Batch sizes: give at least 1")

    def test_range_errors_read_like_sentences_not_validator_output(self):
        response = self.post({**GOOD, "params": {"batch_sizes": [5000]}}, **self.bearer())
        self.assertEqual(response.json(), {"error": "Batch size 5000 is too large: at most 4096"})

    def test_it_rejects_iterations_out_of_range(self):
        self.assert_rejected({**GOOD, "params": {"iterations": 0}}, "Iterations 0 is too small: at least 1")
        self.assert_rejected(
            {**GOOD, "params": {"iterations": 100_001}}, "Iterations 100001 is too large: at most 100000"
        )

    def test_it_rejects_wrongly_typed_params(self):
        self.assert_rejected({**GOOD, "params": {"iterations": "many"}}, "Iterations must be a whole number")
        self.assert_rejected({**GOOD, "params": {"batch_sizes": 32}}, "Batch sizes must be a list")
        self.assert_rejected(
            {**GOOD, "params": {"warp_speed": 9, "batch_sizes": [1]}}, "unknown parameter 'warp_speed'"
        )
        self.assert_rejected({**GOOD, "params": {"precision": "fp8"}}, "Precision must be fp32, fp16 or bf16")
        self.assert_rejected({**GOOD, "params": {"concurrency": [0]}}, "Concurrency 0 is too small")

    def test_it_rejects_malformed_json(self):
        self.assert_rejected('{"kind": "benchmark", ', "malformed JSON")

    def test_it_rejects_a_body_missing_fields(self):
        self.assert_rejected({"kind": "benchmark"}, "model")


class GetJobTestCase(BaseTestCase):
    def test_it_shows_a_job(self):
        job = Job.objects.create(
            kind="benchmark", model_name="SimpleModel", params={"batch_sizes": [1], "iterations": 5}
        )
        body = self.client.get(f"/api/jobs/{job.pk}", **self.bearer()).json()
        expected = {
            "id",
            "kind",
            "model",
            "status",
            "progress",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        }
        self.assertTrue(expected <= body.keys(), body.keys())
        self.assertEqual(
            (body["id"], body["status"], body["model"]), (job.pk, JobStatus.QUEUED, "SimpleModel")
        )

    def test_it_answers_404_for_a_missing_job(self):
        response = self.client.get("/api/jobs/999999", **self.bearer())
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"error": "job 999999 not found"})

    def test_it_requires_authentication(self):
        self.assertEqual(self.client.get("/api/jobs/1").status_code, 401)

    def test_the_openapi_schema_lists_the_job_endpoints(self):
        schema = self.client.get("/api/openapi.json", **self.bearer()).json()
        self.assertIn("/api/jobs", schema["paths"])
        self.assertIn("/api/jobs/{job_id}", schema["paths"])


class RoutingTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.gpu_node = Node.objects.create(
            name="gpu-node-2", gpu_status="ok", info={"gpus": [{"index": 0, "name": "H100"}, {"index": 1}]}
        )

    def submit(self, node=None, device=None):
        params = {"batch_sizes": [1], "iterations": 5, **({"device": device} if device else {})}
        body = {"kind": "benchmark", "model": "SimpleModel", "params": params, "node": node}
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post(
                "/api/jobs", json.dumps(body), content_type="application/json", **self.bearer()
            )

    def test_a_job_for_any_node_goes_to_the_shared_queue(self):
        job = Job.objects.get(pk=self.submit().json()["id"])
        self.assertEqual((job.queue, job.target_node), ("jobs", ""))

    def test_a_job_goes_to_its_nodes_cpu_or_gpu_queue(self):
        cpu = Job.objects.get(pk=self.submit(node="gpu-node-1").json()["id"])
        gpu = Job.objects.get(pk=self.submit(node="gpu-node-2", device="cuda:1").json()["id"])
        self.assertEqual(cpu.queue, "node.gpu-node-1.cpu")
        self.assertEqual(
            (gpu.queue, gpu.target_node, gpu.params["device"]),
            ("node.gpu-node-2.gpu1", "gpu-node-2", "cuda:1"),
        )

    def test_it_refuses_targets_that_do_not_exist(self):
        for node, device, message in [
            ("nowhere", None, "unknown node 'nowhere'; known nodes: gpu-node-1, gpu-node-2"),
            (None, "cuda:0", "needs a node"),
            ("gpu-node-1", "cuda:0", "node 'gpu-node-1' has no GPU 0 (it has no GPU)"),
            ("gpu-node-2", "cuda:7", "has no GPU 7 (it has GPUs 0, 1)"),
            ("gpu-node-2", "tpu:0", 'Device must be "cpu" or "cuda:N", not \'tpu:0\''),
        ]:
            response = self.submit(node=node, device=device)
            self.assertEqual(response.status_code, 400, (node, device))
            self.assertIn(message, response.json()["error"])
        self.assertFalse(Job.objects.exists())

    def test_several_gpus_need_a_node_that_has_them(self):
        body = {
            "kind": "benchmark",
            "model": "SimpleModel",
            "node": "gpu-node-1",
            "params": {"batch_sizes": [1], "iterations": 5, "devices": ["cuda:0", "cuda:1"]},
        }
        with self.captureOnCommitCallbacks(execute=False):
            refused = self.client.post(
                "/api/jobs", json.dumps(body), content_type="application/json", **self.bearer()
            )
            accepted = self.client.post(
                "/api/jobs",
                json.dumps({**body, "node": "gpu-node-2"}),
                content_type="application/json",
                **self.bearer(),
            )
        self.assertEqual(refused.status_code, 400)
        self.assertIn("has no GPU 0", refused.json()["error"])
        self.assertEqual(accepted.status_code, 201)
        self.assertEqual(Job.objects.get().queue, "node.gpu-node-2.gpu0", "queued on its first GPU")

    def test_the_nodes_endpoint_lists_nodes_with_their_state(self):
        nodes = self.client.get("/api/nodes", **self.bearer()).json()
        self.assertEqual([node["name"] for node in nodes], ["gpu-node-1", "gpu-node-2"])
        self.assertEqual(nodes[1]["info"]["gpus"][0]["name"], "H100")
