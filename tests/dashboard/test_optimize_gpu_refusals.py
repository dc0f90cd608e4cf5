"""GPU-only passes at submission: the API and the form refuse them with a 400 that names the pass
and the reason where the node has no GPU, and where its GPU is too old for the pass's kernels."""

from __future__ import annotations

import json

from dashboard.models import Job, Node
from tests.dashboard.base import BaseTestCase
from tests.dashboard.test_optimize_form import form_data

GPU_ONLY = ("torchao_int8_weight_only", "torchao_int8_dynamic", "torchao_float8", "sparsity_2_4")


class GpuPassRefusalTests(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def submit(self, passes: list[dict], device: str = "cpu", node: str | None = None):
        body = {"kind": "optimize", "model": "SimpleModel", "params": {"passes": passes, "device": device}}
        if node is not None:
            body["node"] = node
        return self.client.post(
            "/api/jobs", json.dumps(body), content_type="application/json", **self.bearer()
        )

    def gpu_node(self, name: str, capability: str | None) -> Node:
        gpu = {"index": 0, "name": "NVIDIA A100-SXM4-80GB", "compute_capability": capability}
        return Node.objects.create(name=name, gpu_status="ok", info={"cpu_count": 16, "gpus": [gpu]})

    def assert_refused(self, response, *parts: str) -> None:
        self.assertEqual(response.status_code, 400, response.content)
        error = response.json()["error"]
        for part in parts:
            self.assertIn(part, error)
        self.assertFalse(Job.objects.exists())

    def test_each_gpu_pass_is_refused_on_a_cpu_naming_the_pass(self):
        for name in GPU_ONLY:
            with self.subTest(name):
                self.assert_refused(
                    self.submit([{"name": name}]), f"pass '{name}' needs a CUDA GPU", "is cpu"
                )

    def test_cuda_graphs_and_the_ort_cuda_provider_are_refused_on_a_cpu(self):
        compile_ = {"name": "torch_compile", "params": {"mode": "reduce-overhead"}}
        self.assert_refused(self.submit([compile_]), "'reduce-overhead' needs a CUDA GPU")
        ort = {"name": "onnxruntime", "params": {"provider": "cuda"}}
        self.assert_refused(
            self.submit([ort]), "pass 'onnxruntime', parameter 'provider': 'cuda' needs a CUDA GPU"
        )

    def test_a_gpu_pass_on_a_node_without_a_gpu_is_refused(self):
        response = self.submit([{"name": "sparsity_2_4"}], device="cuda:0", node=self.node.name)
        self.assert_refused(response, "has no GPU 0 (it has no GPU)")

    def test_float8_on_a_gpu_older_than_ada_is_refused_and_int8_is_taken(self):
        self.gpu_node("a100-node", "8.0")
        response = self.submit([{"name": "torchao_float8"}], device="cuda:0", node="a100-node")
        self.assert_refused(response, "pass 'torchao_float8' needs a GPU of compute capability 8.9", "is 8.0")
        response = self.submit(
            [{"name": "sparsity_2_4"}, {"name": "torchao_int8_dynamic"}], device="cuda:0", node="a100-node"
        )
        self.assertEqual(response.status_code, 201, response.content)
        job = Job.objects.get()
        self.assertEqual((job.params["device"], job.target_node), ("cuda:0", "a100-node"))
        self.assertEqual(job.params["passes"][1]["params"], {"dtype": "bf16", "compile": True})

    def test_float8_is_taken_on_a_hopper_gpu_and_where_the_node_did_not_record_its_capability(self):
        self.gpu_node("h200-node", "9.0")
        self.gpu_node("old-sampler-node", None)  # checked by the worker against the GPU it has
        for node in ("h200-node", "old-sampler-node"):
            with self.subTest(node):
                response = self.submit([{"name": "torchao_float8"}], device="cuda:0", node=node)
                self.assertEqual(response.status_code, 201, response.content)

    def test_the_form_puts_the_refusal_beside_the_gpu_pass(self):
        passes = [
            {"name": "prune_structured", "params": {}},
            {"name": "torchao_int8_weight_only", "params": {}},
        ]
        response = self.client.post("/optimize/", form_data(passes))
        self.assertEqual(response.status_code, 400)
        self.assertEqual(list(response.context["pass_errors"]), ["1"])
        self.assertIn(
            "pass 'torchao_int8_weight_only' needs a CUDA GPU", response.context["pass_errors"]["1"]
        )
        self.assertFalse(Job.objects.exists())

    def test_the_api_lists_where_each_gpu_pass_runs(self):
        passes = {p["name"]: p for p in self.client.get("/api/passes", **self.bearer()).json()}
        self.assertEqual(passes["torchao_float8"]["devices"], ["cuda"])
        self.assertEqual(passes["torchao_float8"]["min_compute_capability"], "8.9")
        self.assertEqual(passes["torchao_float8"]["needs_package"], "torchao")
        self.assertIsNone(passes["onnxruntime"]["min_compute_capability"])
        provider = next(p for p in passes["onnxruntime"]["params"] if p["name"] == "provider")
        self.assertEqual(provider["choice_devices"], {"cuda": ["cuda"]})
