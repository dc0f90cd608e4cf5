"""Baselines follow lineage: the first benchmark of an optimized version is judged against its parent
version's latest comparable result (for a zoo original, the zoo model's), and the banner says so."""

from __future__ import annotations

from dashboard.models import ModelVersion, RegisteredModel, Verdict
from dashboard.models.registry import ZOO_ORIGINAL
from dashboard.results.regressions import record_regressions
from tests.dashboard.test_results_regressions import RegressionTestCase

SPEC = {"shape": [None, 784], "dtype": "float32", "low": 0.0, "high": 1.0}


class TestLineageBaselines(RegressionTestCase):
    def setUp(self):
        model = RegisteredModel.objects.create(name="SimpleModel")
        common = {"model": model, "input_spec": SPEC, "sha256": "a" * 64, "size_bytes": 1, "status": "ready"}
        self.v1 = ModelVersion.objects.create(
            version=1, format="safetensors", produced_by=ZOO_ORIGINAL, **common
        )
        self.v2 = ModelVersion.objects.create(
            version=2, format="onnx", parent=self.v1, produced_by="optimize job #1: onnxruntime", **common
        )

    def bench_version(self, version: ModelVersion, p50_by_batch: dict[int, float], **kwargs):
        job = self.bench(p50_by_batch, model=f"SimpleModel@{version.version}", **kwargs)
        job.model_version = version
        job.save(update_fields=["model_version"])
        return job

    def test_an_optimized_version_without_results_is_compared_with_its_parent(self):
        parent_job = self.bench_version(self.v1, {32: 4.0})
        job = self.bench_version(self.v2, {32: 1.0}, env={"runtime": "onnxruntime"})
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.baseline_job, parent_job)
        self.assertEqual(verdict.verdict, "improvement")
        self.assertEqual(verdict.basis["via"], "parent")
        self.assertEqual(verdict.basis["baseline_model"], "SimpleModel@1")
        self.assertEqual(verdict.basis["baseline_runtime"], "eager")

        page = self.page(job)
        self.assertContains(page, "compared with <span")
        self.assertContains(page, "parent SimpleModel@1</span>")
        self.assertContains(page, f'href="/jobs/{parent_job.pk}/"')
        self.assertNotContains(page, "same SimpleModel@2")  # the model is not the same: not claimed

    def test_the_zoo_models_own_results_stand_for_a_zoo_original(self):
        zoo_job = self.bench({32: 4.0}, model="SimpleModel")  # the bare zoo name, no version
        job = self.bench_version(self.v2, {32: 4.1})
        [verdict] = record_regressions(job)
        self.assertEqual((verdict.baseline_job, verdict.verdict), (zoo_job, Verdict.NO_CHANGE))
        self.assertEqual(verdict.parent_label, "SimpleModel@1")

    def test_a_versions_own_earlier_result_wins_over_its_parents(self):
        self.bench_version(self.v1, {32: 4.0})
        own = self.bench_version(self.v2, {32: 1.0})
        job = self.bench_version(self.v2, {32: 1.05})
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.baseline_job, own)
        self.assertNotIn("via", verdict.basis)
        self.assertEqual(verdict.parent_label, "")
        self.assertNotContains(self.page(job), "parent SimpleModel@1")

    def test_batch_sizes_without_an_own_baseline_fall_back_to_the_parent_each(self):
        parent_job = self.bench_version(self.v1, {1: 0.5, 32: 4.0})
        own = self.bench_version(self.v2, {32: 1.0})
        job = self.bench_version(self.v2, {1: 0.2, 32: 1.0})
        verdicts = {v.batch_size: v for v in record_regressions(job)}
        self.assertEqual(verdicts[32].baseline_job, own)
        self.assertEqual(verdicts[1].baseline_job, parent_job)
        self.assertEqual(verdicts[1].parent_label, "SimpleModel@1")

    def test_a_parent_result_that_is_not_comparable_gives_no_verdict(self):
        self.bench_version(self.v1, {32: 4.0}, threads=4)  # another thread count
        self.bench_version(self.v1, {32: 4.0}, node="other-node")
        job = self.bench_version(self.v2, {32: 1.0}, threads=1)
        self.assertEqual(record_regressions(job), [])

    def test_a_version_without_a_parent_has_no_lineage_baseline(self):
        self.bench_version(self.v1, {32: 4.0})
        self.v2.parent = None
        self.v2.save()
        job = self.bench_version(self.v2, {32: 1.0})
        self.assertEqual(record_regressions(job), [])
