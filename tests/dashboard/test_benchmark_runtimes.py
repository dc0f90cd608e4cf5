"""Runtimes as a benchmark option: validation (API and form), what is stored, the job page, the CSV,
"Run again", and verdicts that never compare one runtime with another."""

from __future__ import annotations

import csv
import io
import json

from dashboard.models import Job, JobStatus, ModelVersion, RegisteredModel
from dashboard.results.regressions import record_regressions
from tests.dashboard import test_results_regressions as regressions
from tests.dashboard.base import BaseTestCase
from tests.dashboard.test_pages import field_error

BENCH = {"kind": "benchmark", "model": "SimpleModel"}


def onnx_model(name: str = "digits-onnx") -> str:
    """A ready registered ONNX model; its "name@version"."""
    model = RegisteredModel.objects.create(name=name)
    ModelVersion.objects.create(
        model=model,
        version=1,
        format="onnx",
        input_spec={"shape": [None, 784], "dtype": "float32", "low": 0, "high": 1},
        sha256="0" * 64,
        size_bytes=1,
        status="ready",
    )
    return f"{name}@1"


class RuntimeParamsTestCase(BaseTestCase):
    def post(self, params: dict, model: str = "SimpleModel"):
        body = {**BENCH, "model": model, "params": {"batch_sizes": [8], "iterations": 10, **params}}
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post(
                "/api/jobs", data=json.dumps(body), content_type="application/json", **self.bearer()
            )

    def assert_refused(self, params: dict, message: str, model: str = "SimpleModel"):
        response = self.post(params, model)
        self.assertEqual(response.status_code, 400, response.content)
        self.assertIn(message, response.json()["error"])
        self.assertFalse(Job.objects.exists(), "a refused submission stores nothing")

    def test_bad_runtime_options_are_refused_with_the_reason(self):
        for params, message in [
            ({"runtime": "tvm"}, "Runtime 'tvm' is unknown: eager, torch_compile or onnxruntime"),
            ({"runtime": "torch_compile", "compile_mode": "fast"}, "torch.compile mode must be default"),
            (
                {"compile_mode": "max-autotune"},
                "compile_mode applies to runtime torch_compile only, not eager",
            ),
            ({"runtime": "onnxruntime", "ort_provider": "cuda"}, "cuda provider cannot run on device cpu"),
            ({"runtime": "onnxruntime", "precision": "fp16"}, "precision fp16 is not available"),
            ({"runtime": "onnxruntime", "ort_graph_optimization": "max"}, "graph optimization must be"),
        ]:
            with self.subTest(params=params):
                self.assert_refused(params, message)

    def test_the_chosen_runtimes_options_are_stored_resolved(self):
        self.assertEqual(self.post({"runtime": "torch_compile"}).status_code, 201)
        self.assertEqual(
            (Job.objects.get().params["runtime"], Job.objects.get().params["compile_mode"]),
            ("torch_compile", "default"),
        )
        Job.objects.all().delete()
        self.assertEqual(
            self.post({"runtime": "onnxruntime", "ort_graph_optimization": "basic"}).status_code, 201
        )
        params = Job.objects.get().params
        self.assertEqual(
            (params["runtime"], params["ort_provider"], params["ort_graph_optimization"]),
            ("onnxruntime", "cpu", "basic"),
        )
        self.assertNotIn("compile_mode", params)

    def test_an_onnx_model_runs_on_onnxruntime_and_refuses_torch_compile(self):
        model = onnx_model()
        self.assert_refused({"runtime": "torch_compile"}, "is an ONNX file: it runs on ONNX Runtime", model)
        self.assertEqual(self.post({}, model).status_code, 201)
        self.assertEqual(Job.objects.get().params["runtime"], "onnxruntime", "recorded as what will run")


class RuntimeFormTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def submit(self, **fields):
        data = {"model": "SimpleModel", "batch_sizes": "8", "iterations": 10, "precision": "fp32"}
        data["time_budget_s"] = 10
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post("/benchmark/", {**data, **fields})

    def test_the_form_offers_the_runtimes_and_their_options_with_a_script_not_inline_code(self):
        page = self.client.get("/benchmark/").content.decode()
        self.assertIn('<option value="torch_compile">', page)
        self.assertIn('name="compile_mode"', page)
        self.assertIn('data-runtime="onnxruntime"', page)
        self.assertIn("/static/js/benchmark-form.js", page)
        self.assertNotRegex(page, r"<script>(?!\s*</script>)")

    def test_only_the_chosen_runtimes_options_are_submitted(self):
        # The other runtimes' selects still post their values; they must not make the job invalid.
        response = self.submit(
            runtime="onnxruntime", compile_mode="max-autotune", ort_graph_optimization="extended"
        )
        self.assertEqual(response.status_code, 302, field_error(response, "ort_provider"))
        params = Job.objects.get().params
        self.assertEqual((params["runtime"], params["ort_graph_optimization"]), ("onnxruntime", "extended"))
        self.assertNotIn("compile_mode", params)

    def test_errors_show_beside_the_runtime_option_they_are_about(self):
        response = self.submit(runtime="onnxruntime", ort_provider="cuda")
        self.assertEqual(response.status_code, 400)
        self.assertIn("cuda provider cannot run on device cpu", field_error(response, "ort_provider"))
        response = self.submit(runtime="onnxruntime", precision="bf16")
        self.assertIn("precision bf16 is not available", field_error(response, "precision"))
        self.assertFalse(Job.objects.exists())

    def test_run_again_carries_the_runtime_and_its_options(self):
        job = Job.objects.create(
            kind="benchmark",
            model_name="SimpleModel",
            params={
                "batch_sizes": [8],
                "iterations": 10,
                "runtime": "torch_compile",
                "compile_mode": "max-autotune",
            },
            status=JobStatus.SUCCEEDED,
        )
        form = self.client.get(f"/benchmark/?from={job.pk}").content.decode()
        self.assertIn('<option value="torch_compile" selected>', form)
        self.assertIn('<option value="max-autotune" selected>', form)


class RuntimeResultTestCase(BaseTestCase):
    """The job page, the CSV and the verdicts read the runtime the harness recorded."""

    minute = 0
    bench = regressions.RegressionTestCase.bench  # a finished benchmark, a minute after the last

    def runtime_bench(self, p50: float, runtime: str, **options):
        job = self.bench({8: p50})
        job.params = {**job.params, "runtime": runtime, **options}
        job.result["spec"] = {**job.result["spec"], "runtime": runtime, **options}
        job.result["env"] = {**job.result["env"], "runtime": runtime, **options}
        job.save()
        return job

    def test_verdicts_never_compare_eager_with_onnxruntime_or_compile_modes_with_each_other(self):
        self.bench({8: 2.0})  # eager, with no runtime recorded: a result from before runtimes
        ort = self.runtime_bench(0.5, "onnxruntime", ort_provider="cpu", ort_graph_optimization="all")
        self.assertEqual(record_regressions(ort), [], "4x faster than eager, but not like for like")
        compiled = self.runtime_bench(0.4, "torch_compile", compile_mode="default")
        self.assertEqual(record_regressions(compiled), [])
        autotuned = self.runtime_bench(0.3, "torch_compile", compile_mode="max-autotune")
        self.assertEqual(record_regressions(autotuned), [])
        # Another graph level is another configuration too.
        basic = self.runtime_bench(0.6, "onnxruntime", ort_provider="cpu", ort_graph_optimization="basic")
        self.assertEqual(record_regressions(basic), [])

        [verdict] = record_regressions(
            self.runtime_bench(1.0, "onnxruntime", ort_provider="cpu", ort_graph_optimization="all")
        )
        self.assertEqual((verdict.baseline_job, verdict.verdict), (ort, "regression"))
        self.assertEqual(verdict.basis["runtime"], "onnxruntime (cpu, graph all)")
        [verdict] = record_regressions(self.bench({8: 2.05}))
        self.assertEqual(verdict.verdict, "no_change", "eager still compares with eager")

    def test_an_onnx_file_asked_to_run_eager_compares_as_the_onnxruntime_run_it_was(self):
        ort = self.runtime_bench(0.5, "onnxruntime", ort_provider="cpu", ort_graph_optimization="all")
        job = self.bench({8: 1.0})  # the spec says eager (an older submission) ...
        job.result["env"].update(
            {"runtime": "onnxruntime", "ort_provider": "cpu", "ort_graph_optimization": "all"}
        )
        job.save()  # ... the env says what ran
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.baseline_job, ort)

    def test_the_job_page_and_the_csv_say_which_runtime_ran_and_its_compile_time(self):
        job = self.runtime_bench(0.4, "torch_compile", compile_mode="reduce-overhead")
        job.result["runs"][0]["compile_s"] = 12.34
        job.result["compile_s"] = 12.34
        job.save()
        self.client.force_login(self.alice)
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn('id="job-runtime">torch_compile (reduce-overhead)</span>', page)
        self.assertIn("compiled in 12.3 s, not timed", page)
        rows = list(
            csv.DictReader(io.StringIO(self.client.get(f"/jobs/{job.pk}/result.csv").content.decode()))
        )
        self.assertEqual(
            (rows[0]["runtime"], rows[0]["compile_s"]), ("torch_compile (reduce-overhead)", "12.34")
        )
        eager = self.bench({8: 2.0}, runs=[regressions.run(8, 2.0)])
        self.assertIn('id="job-runtime">eager</span>', self.client.get(f"/jobs/{eager.pk}/").content.decode())
        # Side by side, the compare page says which column ran on which runtime.
        compared = self.client.get(f"/jobs/compare/?ids={eager.pk},{job.pk}").content.decode()
        self.assertIn(
            "<tr><th>runtime</th><td>eager</td><td>torch_compile (reduce-overhead)</td></tr>", compared
        )
