"""Verdicts: a benchmark's p50 against the previous like-for-like result, judged with the medians' CIs."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from dashboard.models import Job, JobStatus, Regression
from dashboard.results.regressions import record_regressions
from tests.dashboard.base import BaseTestCase

START = timezone.now() - timedelta(days=1)
ENV = {"torch_version": "2.5.1+cpu", "device_name": "AMD EPYC 7B13", "threads": 16}


def run(batch_size: int, p50_ms: float, ci_rel: float | None = 0.01, unstable: bool = False) -> dict:
    """One batch size as the harness stores it; ``ci_rel`` is the CI half-width (0.01 = +/-1%)."""
    return {
        "batch_size": batch_size,
        "latency_ms": {"p50": p50_ms, "p90": p50_ms, "p95": p50_ms, "p99": p50_ms * 1.2},
        "throughput_per_s": batch_size * 1000 / p50_ms,
        "iterations": 100,
        "ci95_low_ms": None if ci_rel is None else p50_ms * (1 - ci_rel),
        "ci95_high_ms": None if ci_rel is None else p50_ms * (1 + ci_rel),
        "unstable": unstable,
    }


class RegressionTestCase(BaseTestCase):
    minute = 0

    def bench(
        self,
        p50_by_batch: dict[int, float],
        *,
        model="SimpleModel",
        node="gpu-node-1",
        device="cpu",
        precision=None,
        threads=None,
        ci_rel=0.01,
        env=None,
        status=JobStatus.SUCCEEDED,
        result=None,
        runs=None,
    ) -> Job:
        """A finished benchmark, each one a minute after the previous. ``threads`` is what was asked;
        the stored spec and env carry the resolved count (16 when none was asked), as the harness's."""
        self.minute += 1
        params = {"batch_sizes": list(p50_by_batch), "iterations": 100, "device": device}
        if precision:
            params["precision"] = precision
        if threads is not None:
            params["threads"] = threads
        resolved = threads if threads is not None else 16
        runs = runs or [run(b, p50, ci_rel) for b, p50 in p50_by_batch.items()]
        env = {**ENV, "threads": resolved, **(env or {})}
        return Job.objects.create(
            kind="benchmark",
            model_name=model,
            params=params,
            status=status,
            node_name=node,
            created_at=START + timedelta(minutes=self.minute),
            finished_at=START + timedelta(minutes=self.minute, seconds=30),
            result=result or {"runs": runs, "env": env, "spec": {**params, "threads": resolved}},
        )

    def page(self, job: Job):
        self.client.force_login(self.alice)
        return self.client.get(f"/jobs/{job.pk}/result/")

    def test_a_clear_regression_is_recorded_with_its_baseline_basis_and_reason(self):
        baseline = self.bench({8: 2.0})
        job = self.bench({8: 2.3})
        [regression] = record_regressions(job)
        self.assertEqual(regression.verdict, "regression")
        self.assertEqual(regression.batch_size, 8)
        self.assertEqual(regression.baseline_job, baseline)
        self.assertEqual((regression.baseline_p50_ms, regression.p50_ms), (2.0, 2.3))
        self.assertAlmostEqual(regression.ci95_low_ms, 2.277)
        self.assertAlmostEqual(regression.baseline_ci95_high_ms, 2.02)
        self.assertAlmostEqual(regression.percent_slower, 15.0)
        self.assertEqual(regression.threshold, 0.10)
        self.assertEqual(
            regression.basis,
            {
                "model": "SimpleModel",
                "node": "gpu-node-1",
                "device": "cpu",
                "precision": "fp32",
                "threads": 16,
                "runtime": "eager",
                "torch_version": "2.5.1+cpu",
                "device_name": "AMD EPYC 7B13",
            },
        )
        self.assertIn("do not overlap", regression.reason)
        self.assertEqual(Regression.objects.get(job=job), regression)

    def test_the_banner_shows_what_was_compared_and_why(self):
        baseline = self.bench({8: 2.0})
        job = self.bench({8: 2.3})
        record_regressions(job)
        page = self.page(job)
        self.assertContains(page, 'id="regression-banner"')
        self.assertContains(page, "batch 8: regression")
        self.assertContains(page, "+15.0%")
        self.assertContains(page, f'href="/jobs/{baseline.pk}/">job #{baseline.pk}</a>')
        self.assertContains(
            page,
            "same SimpleModel, node gpu-node-1, cpu, fp32, 16 threads, eager, torch 2.5.1+cpu, AMD EPYC 7B13",
        )
        self.assertContains(page, "p50 2.300 ms [CI 2.277–2.323]")
        self.assertContains(page, "vs 2.000 ms [CI 1.980–2.020]")
        self.assertContains(page, "the 95% CIs of the medians do not overlap")
        self.assertContains(page, f"/jobs/compare/?ids={baseline.pk},{job.pk}")
        self.assertNotContains(self.page(baseline), 'class="verdict-banner')
        self.client.force_login(self.alice)
        listing = self.client.get("/jobs/")
        self.assertContains(listing, 'data-role="regression"', count=1)

    def test_threads_default_then_threads_1_is_not_compared(self):
        # The reported case: SimpleModel at 1, 8, 32 with the default threads (resolved to 16 and
        # unstable by the old IQR flag), then the same with threads = 1, slower per call.
        first = self.bench({1: 0.030, 8: 0.050, 32: 0.100})
        second = self.bench({1: 0.031, 8: 0.0595, 32: 0.126}, threads=1)  # +19% / +26%
        self.assertEqual(record_regressions(second), [])
        self.assertNotContains(self.page(second), 'class="verdict-banner')
        # Asking for 16 explicitly is the same resolved count as the default: compared with the first.
        third = self.bench({8: 0.080}, threads=16)
        [verdict] = record_regressions(third)
        self.assertEqual((verdict.baseline_job, verdict.verdict), (first, "regression"))

    def test_a_job_that_recorded_no_threads_is_not_compared_with_one_that_did(self):
        self.bench({8: 2.0}, result={"runs": [run(8, 2.0)], "env": {}})
        self.assertEqual(record_regressions(self.bench({8: 3.0})), [])

    @override_settings(PERFMON_REGRESSION_THRESHOLD=0.05)
    def test_a_difference_beyond_the_threshold_with_overlapping_cis_is_inconclusive(self):
        self.bench({8: 2.0}, runs=[{**run(8, 2.0), "ci95_low_ms": 1.94, "ci95_high_ms": 2.06}])
        # +7%, each median known to within +/-5%, but 2.05 < 2.06: the CIs overlap.
        job = self.bench({8: 2.14}, runs=[{**run(8, 2.14), "ci95_low_ms": 2.05, "ci95_high_ms": 2.22}])
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.verdict, "inconclusive")
        self.assertIn("overlap", verdict.reason)
        page = self.page(job)
        self.assertNotContains(page, 'id="regression-banner"')
        self.assertContains(page, "batch 8: inconclusive")
        self.client.force_login(self.alice)
        listing = self.client.get("/jobs/")
        self.assertNotContains(listing, 'data-role="regression"')
        self.assertContains(listing, 'data-role="inconclusive"')

    def test_an_unstable_baseline_makes_the_verdict_inconclusive(self):
        self.bench({8: 2.0}, ci_rel=0.08)  # median known to +/-8% only
        job = self.bench({8: 3.0})
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.verdict, "inconclusive")
        self.assertIn("the baseline is unstable (95% CI ±8.0%, over ±5%)", verdict.reason)
        self.assertContains(self.page(job), "the baseline is unstable")

    def test_an_unstable_new_run_is_inconclusive_too(self):
        self.bench({8: 2.0})
        [verdict] = record_regressions(self.bench({8: 3.0}, ci_rel=None))  # too few samples for a CI
        self.assertEqual(verdict.verdict, "inconclusive")
        self.assertIn("this run is unstable (no 95% CI", verdict.reason)

    def test_an_old_result_without_a_ci_is_judged_from_its_stored_times(self):
        tight = [2.0 + 0.001 * (i % 7) for i in range(60)]
        old = {**run(8, 2.0, ci_rel=None), "times_ms": tight}
        baseline = self.bench({8: 2.0}, runs=[old])
        [verdict] = record_regressions(self.bench({8: 3.0}))
        self.assertEqual((verdict.baseline_job, verdict.verdict), (baseline, "regression"))
        self.assertGreaterEqual(verdict.baseline_ci95_low_ms, 2.0)

    def test_within_the_threshold_is_no_change(self):
        self.bench({8: 2.0})
        job = self.bench({8: 2.1})
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.verdict, "no_change")
        self.assertEqual(job.flagged_verdict, "")
        page = self.page(job)
        self.assertNotContains(page, 'id="regression-banner"')
        self.assertContains(page, "batch 8: no change")

    def test_clearly_faster_is_an_improvement_never_a_regression(self):
        self.bench({8: 2.0})
        [verdict] = record_regressions(self.bench({8: 1.0}))
        self.assertEqual(verdict.verdict, "improvement")

    def test_the_first_result_has_nothing_to_compare_with(self):
        self.assertEqual(record_regressions(self.bench({8: 5.0})), [])

    def test_only_like_for_like_results_count(self):
        self.bench({8: 2.0})  # the comparable one, oldest
        # Newer, much faster results that differ in exactly one respect: none may be the baseline.
        self.bench({8: 0.5}, model="TeacherModel")
        self.bench({8: 0.5}, node="gpu-node-2")
        self.bench({8: 0.5}, device="cuda:0")
        self.bench({8: 0.5}, precision="bf16")
        self.bench({8: 0.5}, threads=1)
        self.bench({8: 0.5}, env={"torch_version": "2.6.0+cpu"})
        self.bench({8: 0.5}, env={"device_name": "Intel Xeon"})
        self.bench({32: 0.5})  # same everything but the batch size
        job = self.bench({8: 2.1})  # +5% against the comparable one
        [verdict] = record_regressions(job)
        self.assertEqual(verdict.verdict, "no_change")

    def test_another_version_of_a_registered_model_is_not_compared(self):
        self.bench({8: 2.0}, model="resnet-small@1")
        self.assertEqual(record_regressions(self.bench({8: 3.0}, model="resnet-small@2")), [])
        [verdict] = record_regressions(self.bench({8: 4.0}, model="resnet-small@2"))
        self.assertEqual(verdict.verdict, "regression")

    def test_an_explicit_fp32_matches_a_job_that_named_no_precision(self):
        self.bench({8: 2.0})
        job = self.bench({8: 3.0}, precision="fp32")
        self.assertEqual([v.verdict for v in record_regressions(job)], ["regression"])

    def test_the_baseline_is_the_most_recent_earlier_succeeded_job(self):
        self.bench({8: 4.0})  # older: against it the new job would look faster
        previous = self.bench({8: 2.0})
        self.bench({8: 0.5}, status=JobStatus.FAILED)  # failed jobs never count
        job = self.bench({8: 2.5})
        self.bench({8: 0.5})  # finished after the job: not "previous"
        [regression] = record_regressions(job)
        self.assertEqual(regression.baseline_job, previous)
        self.assertAlmostEqual(regression.percent_slower, 25.0)

    def test_a_failed_point_is_skipped_for_the_one_before(self):
        older = self.bench({8: 2.0})
        self.bench({8: 1.0}, runs=[{"batch_size": 8, "error": "out of memory at batch 8"}])
        job = self.bench({8: 3.0})
        [regression] = record_regressions(job)
        self.assertEqual(regression.baseline_job, older)

    def test_each_batch_size_is_judged_on_its_own(self):
        self.bench({1: 1.0, 8: 2.0, 32: 6.0})
        job = self.bench({1: 1.5, 8: 2.05, 32: 9.0})
        verdicts = record_regressions(job)
        self.assertEqual(
            [(v.batch_size, v.verdict) for v in verdicts],
            [(1, "regression"), (8, "no_change"), (32, "regression")],
        )

    @override_settings(PERFMON_REGRESSION_THRESHOLD=0.25)
    def test_the_threshold_comes_from_the_settings(self):
        self.bench({8: 2.0})
        self.assertEqual(record_regressions(self.bench({8: 2.4}))[0].verdict, "no_change")  # +20% < 25%
        job = self.bench({8: 3.2})  # +33% against the previous 2.4
        [regression] = record_regressions(job)
        self.assertEqual((regression.verdict, regression.threshold), ("regression", 0.25))

    def test_recording_twice_keeps_one_verdict_per_batch_size(self):
        self.bench({8: 2.0})
        job = self.bench({8: 3.0})
        record_regressions(job)
        record_regressions(job)
        self.assertEqual(Regression.objects.filter(job=job).count(), 1)

    def test_jobs_that_did_not_succeed_are_not_judged(self):
        self.bench({8: 2.0})
        failed = self.bench({8: 9.0}, status=JobStatus.FAILED)
        self.assertEqual(record_regressions(failed), [])

    def test_the_api_lists_regressions_apart_from_other_verdicts(self):
        self.bench({1: 1.0, 8: 2.0})
        job = self.bench({1: 1.5, 8: 2.05})
        record_regressions(job)
        body = self.client.get(f"/api/jobs/{job.pk}", **self.bearer()).json()
        self.assertEqual([r["batch_size"] for r in body["regressions"]], [1])
        self.assertEqual([v["verdict"] for v in body["verdicts"]], ["regression", "no_change"])
        self.assertEqual(body["verdicts"][0]["baseline_ci95_ms"], [0.99, 1.01])

    def test_deleting_the_baseline_keeps_the_flag(self):
        baseline = self.bench({8: 2.0})
        job = self.bench({8: 3.0})
        record_regressions(job)
        baseline.delete()
        page = self.page(job)
        self.assertContains(page, "+50.0%")
        self.assertContains(page, "since deleted")
