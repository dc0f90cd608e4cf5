"""Regression flags: a benchmark's p50 against the previous comparable result."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from dashboard.models import Job, JobStatus, Regression
from dashboard.results.regressions import record_regressions
from tests.dashboard.base import BaseTestCase

START = timezone.now() - timedelta(days=1)


def run(batch_size: int, p50_ms: float) -> dict:
    return {
        "batch_size": batch_size,
        "latency_ms": {"p50": p50_ms, "p90": p50_ms, "p95": p50_ms, "p99": p50_ms * 1.2},
        "throughput_per_s": batch_size * 1000 / p50_ms,
        "iterations": 100,
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
        status=JobStatus.SUCCEEDED,
        result=None,
    ) -> Job:
        """A finished benchmark, each one a minute after the previous."""
        self.minute += 1
        params = {"batch_sizes": list(p50_by_batch), "iterations": 100, "device": device}
        if precision:
            params["precision"] = precision
        runs = [run(b, p50) for b, p50 in p50_by_batch.items()]
        return Job.objects.create(
            kind="benchmark",
            model_name=model,
            params=params,
            status=status,
            node_name=node,
            created_at=START + timedelta(minutes=self.minute),
            finished_at=START + timedelta(minutes=self.minute, seconds=30),
            result=result or {"runs": runs, "env": {}},
        )

    def test_a_p50_more_than_10_percent_worse_is_recorded(self):
        baseline = self.bench({8: 2.0})
        job = self.bench({8: 2.3})
        flagged = record_regressions(job)
        self.assertEqual(len(flagged), 1)
        regression = Regression.objects.get(job=job)
        self.assertEqual(regression.batch_size, 8)
        self.assertEqual(regression.baseline_job, baseline)
        self.assertEqual(regression.baseline_p50_ms, 2.0)
        self.assertEqual(regression.p50_ms, 2.3)
        self.assertAlmostEqual(regression.ratio, 1.15)
        self.assertAlmostEqual(regression.percent_slower, 15.0)
        self.assertEqual(regression.threshold, 0.10)
        self.assertTrue(job.regressions.exists())

    def test_5_percent_worse_is_not_a_regression(self):
        self.bench({8: 2.0})
        job = self.bench({8: 2.1})
        self.assertEqual(record_regressions(job), [])
        self.assertFalse(job.regressions.exists())

    def test_faster_is_never_a_regression(self):
        self.bench({8: 2.0})
        self.assertEqual(record_regressions(self.bench({8: 1.0})), [])

    def test_the_first_result_has_nothing_to_compare_with(self):
        self.assertEqual(record_regressions(self.bench({8: 5.0})), [])

    def test_only_the_same_model_node_device_precision_and_batch_size_count(self):
        self.bench({8: 2.0})  # the comparable one, oldest
        # Newer, much faster results that differ in exactly one respect: none may be the baseline.
        self.bench({8: 0.5}, model="TeacherModel")
        self.bench({8: 0.5}, node="gpu-node-2")
        self.bench({8: 0.5}, device="cuda:0")
        self.bench({8: 0.5}, precision="bf16")
        self.bench({32: 0.5})  # same everything but the batch size
        job = self.bench({8: 2.1})  # +5% against the comparable one
        self.assertEqual(record_regressions(job), [])

    def test_an_explicit_fp32_matches_a_job_that_named_no_precision(self):
        self.bench({8: 2.0})
        job = self.bench({8: 3.0}, precision="fp32")
        self.assertEqual(len(record_regressions(job)), 1)

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
        self.bench({}, result={"runs": [{"batch_size": 8, "error": "out of memory at batch 8"}]})
        job = self.bench({8: 3.0})
        [regression] = record_regressions(job)
        self.assertEqual(regression.baseline_job, older)

    def test_each_batch_size_is_judged_on_its_own(self):
        self.bench({1: 1.0, 8: 2.0, 32: 6.0})
        job = self.bench({1: 1.5, 8: 2.05, 32: 9.0})
        flagged = record_regressions(job)
        self.assertEqual([r.batch_size for r in flagged], [1, 32])

    @override_settings(PERFMON_REGRESSION_THRESHOLD=0.25)
    def test_the_threshold_comes_from_the_settings(self):
        self.bench({8: 2.0})
        self.assertEqual(record_regressions(self.bench({8: 2.4})), [])  # +20% < 25%
        job = self.bench({8: 3.2})  # +33% against the previous 2.4
        [regression] = record_regressions(job)
        self.assertEqual(regression.threshold, 0.25)

    def test_recording_twice_keeps_one_flag_per_batch_size(self):
        self.bench({8: 2.0})
        job = self.bench({8: 3.0})
        record_regressions(job)
        record_regressions(job)
        self.assertEqual(Regression.objects.filter(job=job).count(), 1)

    def test_jobs_that_did_not_succeed_are_not_judged(self):
        self.bench({8: 2.0})
        failed = self.bench({8: 9.0}, status=JobStatus.FAILED)
        self.assertEqual(record_regressions(failed), [])

    def test_the_job_page_shows_a_banner_naming_batch_baseline_and_percent(self):
        baseline = self.bench({8: 2.0})
        job = self.bench({8: 2.3})
        record_regressions(job)
        self.client.force_login(self.alice)
        page = self.client.get(f"/jobs/{job.pk}/result/")
        self.assertContains(page, 'id="regression-banner"')
        self.assertContains(page, "batch 8")
        self.assertContains(page, "+15.0%")
        self.assertContains(page, f'href="/jobs/{baseline.pk}/"')
        self.assertContains(page, f"/jobs/compare/?ids={baseline.pk},{job.pk}")
        self.assertNotContains(self.client.get(f"/jobs/{baseline.pk}/result/"), 'id="regression-banner"')

    def test_deleting_the_baseline_keeps_the_flag(self):
        baseline = self.bench({8: 2.0})
        job = self.bench({8: 3.0})
        record_regressions(job)
        baseline.delete()
        self.client.force_login(self.alice)
        page = self.client.get(f"/jobs/{job.pk}/result/")
        self.assertContains(page, "+50.0%")
        self.assertContains(page, "since deleted")
