"""The optimization form (/optimize/): built from the pass catalogue, validated like the API, a
refused pass's message placed beside that pass; and the job page showing an optimization's result
through its kind's result template."""

from __future__ import annotations

import json

from dashboard.models import Job, JobStatus
from tests.dashboard.base import BaseTestCase


def form_data(passes: list[dict], model: str = "SimpleModel", **extra) -> dict:
    return {
        "model": model,
        "target": "|cpu",
        "mode": "passes",
        "passes": json.dumps(passes),
        "batch_sizes": "32",
        "threads": "1",
        "measure_budget_s": "0.5",
        **extra,
    }


class OptimizeFormTests(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def pass_errors(self, response) -> dict:
        return response.context["pass_errors"]

    def test_it_offers_every_declared_pass_from_the_catalogue(self):
        response = self.client.get("/optimize/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'src="/static/js/optimize-form.js"')
        self.assertContains(response, 'id="pass-catalogue"')
        from workers.passes import catalogue

        self.assertEqual(response.context["catalogue"], catalogue())
        self.assertContains(response, '<a href="/optimize/">Optimize</a>')

    def test_it_submits_a_pipeline_as_an_optimize_job(self):
        passes = [
            {"name": "prune_structured", "params": {"finetune_epochs": 1}},
            {"name": "onnxruntime", "params": {}},
            {"name": "ort_quantize_dynamic", "params": {}},
        ]
        response = self.client.post("/optimize/", form_data(passes))
        job = Job.objects.get()
        self.assertRedirects(response, f"/jobs/{job.pk}/", fetch_redirect_response=False)
        self.assertEqual(job.kind, "optimize")
        self.assertEqual([p["name"] for p in job.params["passes"]], [p["name"] for p in passes])
        self.assertEqual(job.params["passes"][0]["params"]["finetune_epochs"], 1)
        self.assertEqual(job.params["measure_budget_s"], 0.5)

    def test_auto_takes_the_accuracy_drop_in_percent(self):
        data = {
            "model": "SimpleModel",
            "target": "|cpu",
            "mode": "auto",
            "batch_sizes": "32",
            "threads": "1",
            "max_accuracy_drop_pct": "2",
            "batch_size": "16",
            "time_budget_s": "60",
            "measure_budget_s": "0.3",
        }
        response = self.client.post("/optimize/", data)
        self.assertEqual(response.status_code, 302, response.content[:2000])
        job = Job.objects.get()
        self.assertEqual(job.kind, "auto_optimize")
        self.assertAlmostEqual(job.params["max_accuracy_drop"], 0.02)
        self.assertEqual(job.params["batch_size"], 16)
        self.assertEqual(job.params["time_budget_s"], 60)

    def test_an_unknown_pass_is_refused_beside_that_pass(self):
        passes = [{"name": "onnxruntime", "params": {}}, {"name": "make_it_fast", "params": {}}]
        response = self.client.post("/optimize/", form_data(passes))
        self.assertEqual(response.status_code, 400)
        self.assertEqual(list(self.pass_errors(response)), ["1"])
        self.assertIn("unknown pass 'make_it_fast'", self.pass_errors(response)["1"])
        self.assertContains(response, "make_it_fast", status_code=400)  # in the pass-errors block
        self.assertFalse(Job.objects.exists())

    def test_a_parameter_out_of_range_is_refused_beside_its_pass(self):
        passes = [{"name": "prune_structured", "params": {"amount": 0.99}}]
        response = self.client.post("/optimize/", form_data(passes))
        self.assertEqual(response.status_code, 400)
        message = self.pass_errors(response)["0"]
        self.assertIn("'prune_structured'", message)
        self.assertIn("'amount'", message)
        self.assertIn("outside 0.05 to 0.9", message)
        self.assertFalse(Job.objects.exists())

    def test_distillation_of_a_model_without_a_labeled_data_set_is_refused_beside_it(self):
        passes = [{"name": "onnxruntime", "params": {}}]
        passes = [{"name": "distill", "params": {}}, *passes]
        response = self.client.post("/optimize/", form_data(passes, model="SmallResNet"))
        self.assertEqual(response.status_code, 400)
        self.assertIn("needs a labeled data set", self.pass_errors(response)["0"])
        self.assertFalse(Job.objects.exists())

    def test_a_pass_in_the_wrong_place_is_named(self):
        passes = [{"name": "ort_quantize_dynamic", "params": {}}]  # needs the ONNX export first
        response = self.client.post("/optimize/", form_data(passes))
        self.assertEqual(response.status_code, 400)
        self.assertIn("applies to onnx models", self.pass_errors(response)["0"])

    def test_field_errors_sit_beside_their_field(self):
        response = self.client.post(
            "/optimize/", form_data([{"name": "onnxruntime"}], batch_sizes="32, 99999")
        )
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, 'id="id_batch_sizes-error"', status_code=400)
        self.assertContains(response, "Batch size 99999 is out of range", status_code=400)

    def test_auto_does_not_need_the_hidden_batch_sizes_but_passes_do(self):
        auto = {"model": "SimpleModel", "target": "|cpu", "mode": "auto", "batch_sizes": "", "threads": "1"}
        self.assertEqual(self.client.post("/optimize/", auto).status_code, 302)
        response = self.client.post("/optimize/", form_data([{"name": "onnxruntime"}], batch_sizes=""))
        self.assertContains(response, "Batch sizes: give at least 1 value", status_code=400)

    def test_run_again_of_an_auto_job_opens_auto_with_its_constraints(self):
        job = Job.objects.create(
            kind="auto_optimize",
            model_name="SimpleModel",
            owner=self.alice,
            params={
                "max_accuracy_drop": 0.015,
                "batch_size": 8,
                "device": "cpu",
                "threads": 1,
                "time_budget_s": 60.0,
            },
        )
        form = self.client.get(f"/optimize/?from={job.pk}").context["form"]
        self.assertEqual(form.initial["mode"], "auto")
        self.assertEqual(form.initial["max_accuracy_drop_pct"], 1.5)
        self.assertEqual(form.initial["batch_size"], 8)
        self.assertEqual(form.initial["time_budget_s"], 60.0)

    def test_run_again_fills_the_form_in_from_the_job(self):
        job = Job.objects.create(
            kind="optimize",
            model_name="SimpleModel",
            owner=self.alice,
            params={
                "passes": [{"name": "quantize_dynamic", "params": {"engine": "x86"}}],
                "batch_sizes": [8, 32],
                "device": "cpu",
                "threads": 2,
                "measure_budget_s": 1.5,
            },
        )
        response = self.client.get(f"/optimize/?from={job.pk}")
        form = response.context["form"]
        self.assertEqual(json.loads(form.initial["passes"])[0]["params"], {"engine": "x86"})
        self.assertEqual(form.initial["batch_sizes"], "8, 32")
        self.assertEqual(form.initial["threads"], 2)
        self.assertContains(response, 'id="run-again-note"')


OPTIMIZE_RESULT = {
    "schema": 2,
    "kind": "optimize",
    "batch_sizes": [32],
    "device": "cpu",
    "threads": 1,
    "before": {
        "label": "original",
        "backend": "torch eager",
        "latency_ms": {"32": {"p50": 0.66, "p99": 9.9}},
        "throughput_per_s": {"32": 14416.5},
        "size_bytes": 943253,
        "params": 235146,
        "nonzero_params": 235146,
        "accuracy": 0.9611,
        "agreement": 1.0,
    },
    "steps": [
        {"name": "quantize_dynamic", "ok": True, "seconds": 0.2, "error": None, "notes": []},
        {
            "name": "onnxruntime",
            "ok": False,
            "seconds": 0.1,
            "error": "Traceback: export failed",
            "notes": [],
        },
    ],
    "after": [
        {
            "label": "quantize_dynamic",
            "backend": "torch eager int8",
            "latency_ms": {"32": {"p50": 0.88, "p99": 12.0}},
            "throughput_per_s": {"32": 9000.0},
            "size_bytes": 300000,
            "params": 235146,
            "nonzero_params": 235000,
            "accuracy": 0.9500,
            "agreement": 0.99,
            "speedup": {"32": 0.75},
            "slower": True,
            "notes": ["do not expect this model to run faster"],
        }
    ],
    "registered": {"model_id": 7, "model": "SimpleModel", "version": 2},
}


class OptimizeResultPageTests(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def job(self, **fields) -> Job:
        defaults = {
            "kind": "optimize",
            "model_name": "SimpleModel",
            "owner": self.alice,
            "status": JobStatus.SUCCEEDED,
            "params": {
                "passes": [{"name": "quantize_dynamic", "params": {}}],
                "batch_sizes": [32],
                "threads": 1,
            },
            "result": OPTIMIZE_RESULT,
        }
        return Job.objects.create(**{**defaults, **fields})

    def test_the_job_page_shows_before_after_with_the_slower_pass_in_red_and_the_failed_pass(self):
        job = self.job()
        for url in (f"/jobs/{job.pk}/", f"/jobs/{job.pk}/result/"):
            response = self.client.get(url)
            self.assertContains(response, 'id="before-after-table"')
            self.assertContains(
                response, '<tr data-label="quantize_dynamic" class="slower" data-slower="true">'
            )
            self.assertContains(response, "0.75×")
            self.assertContains(response, "-1.2%")  # accuracy 0.9611 -> 0.95, relative
            self.assertContains(response, "do not expect this model to run faster")
            self.assertContains(
                response, '<pre class="error-text">Traceback: export failed</pre>', html=False
            )
            self.assertContains(response, 'id="pass-latency-chart"')
            self.assertContains(response, 'href="/models/7/" id="registered-link">SimpleModel@2</a>')
            self.assertContains(response, "/benchmark/?model=SimpleModel@2")
            self.assertContains(response, "/optimize/?model=SimpleModel@2")
            self.assertNotContains(response, 'id="result-table"')  # the benchmark's table
        self.assertContains(self.client.get(f"/jobs/{job.pk}/"), f'href="/optimize/?from={job.pk}"')

    def test_an_auto_result_shows_candidates_verdict_and_the_pareto_chart(self):
        result = {
            "kind": "auto_optimize",
            "baseline": {"label": "original", "latency_ms": {"p50_ms": 1.0}, "fidelity": {"accuracy": 0.96}},
            "candidates": [
                {
                    "label": "onnxruntime",
                    "latency_ms": {"p50_ms": 0.5},
                    "fidelity": {"accuracy": 0.96},
                    "qualifies": True,
                    "reasons": [],
                    "steps": [],
                },
                {
                    "label": "quantize_dynamic",
                    "latency_ms": {"p50_ms": 1.2},
                    "fidelity": {"accuracy": 0.95},
                    "qualifies": False,
                    "reasons": ["not faster than the original (1.20x its p50)"],
                    "steps": [],
                },
            ],
            "chosen": "onnxruntime",
            "pareto": ["onnxruntime"],
            "skipped": [],
            "verdict": "chose onnxruntime: 2.00x faster than the original at p50",
            "constraints": {"max_accuracy_drop": 0.01, "latency_target_ms": None, "batch_size": 32},
        }
        job = self.job(
            kind="auto_optimize", params={"max_accuracy_drop": 0.01, "batch_size": 32}, result=result
        )
        response = self.client.get(f"/jobs/{job.pk}/")
        self.assertContains(response, 'id="auto-verdict">chose onnxruntime: 2.00x faster')
        self.assertContains(response, 'id="pareto-chart"')
        self.assertContains(response, "not faster than the original (1.20x its p50)")
        self.assertContains(response, '<span class="badge ok small">chosen</span>')
        chart = json.loads(
            response.content.decode()
            .split('id="pareto-data" type="application/json">')[1]
            .split("</script>")[0]
        )
        self.assertEqual(chart["original"]["p50"], 1.0)
        self.assertEqual([p["label"] for p in chart["points"] if p["pareto"]], ["onnxruntime"])

    def test_the_jobs_list_shows_the_final_models_p50_for_an_optimization(self):
        self.job()
        response = self.client.get("/jobs/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'data-role="p50">0.880 ms')

    def test_comparing_an_optimization_is_refused_in_words_not_an_error_page(self):
        job, other = self.job(), self.job()
        response = self.client.get(f"/jobs/compare/?ids={job.pk},{other.pk}")
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "only benchmarks can be compared", status_code=400)

    def test_benchmark_it_and_optimize_again_pick_the_new_version(self):
        for url in ("/benchmark/?model=SimpleModel@2", "/optimize/?model=SimpleModel@2"):
            response = self.client.get(url)
            self.assertEqual(response.context["form"].initial["model"], "SimpleModel@2")
        # The optimization form offers that exact version even before it is the newest ready one.
        self.assertContains(
            self.client.get("/optimize/?model=SimpleModel@2"), 'value="SimpleModel@2" selected'
        )
