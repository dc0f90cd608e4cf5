"""/jobs/compare/: two to eight succeeded benchmarks side by side, ratios to the first."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from django.utils import timezone

from dashboard.models import Job, JobStatus
from dashboard.results.compare import compare_jobs
from tests.dashboard.base import BaseTestCase


def run(batch_size: int, p50_ms: float, p99_ms: float, throughput_per_s: float) -> dict:
    return {
        "batch_size": batch_size,
        "latency_ms": {"p50": p50_ms, "p99": p99_ms},
        "throughput_per_s": throughput_per_s,
        "iterations": 100,
    }


class CompareTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)
        self.minute = 0
        self.base = self.bench([run(1, 2.0, 4.0, 500.0), run(8, 4.0, 8.0, 2000.0)])
        # 0.82x p50 and 1.25x p99 at batch 1; batch 8 within 2%; batch 32 only here.
        self.other = self.bench(
            [run(1, 1.64, 5.0, 610.0), run(8, 4.04, 8.0, 1990.0), run(32, 9.0, 12.0, 3500.0)]
        )

    def bench(self, runs: list[dict], status: str = JobStatus.SUCCEEDED, kind: str = "benchmark") -> Job:
        self.minute += 1
        return Job.objects.create(
            kind=kind,
            model_name="SimpleModel",
            params={"batch_sizes": [r["batch_size"] for r in runs], "iterations": 100, "device": "cpu"},
            status=status,
            node_name="gpu-node-1",
            finished_at=timezone.now() - timedelta(minutes=60 - self.minute),
            result={"runs": runs, "env": {"threads": 2, "torch_version": "2.13.0"}} if runs else None,
        )

    def compare(self, query: str):
        return self.client.get("/jobs/compare/?" + query)

    def assert_refused(self, query: str, reason: str):
        response = self.compare(query)
        self.assertContains(response, reason, status_code=400)
        self.assertContains(response, 'id="compare-error"', status_code=400)
        self.assertNotContains(response, 'id="compare-table"', status_code=400)

    def test_ratios_are_against_the_first_job(self):
        comparison = compare_jobs([self.base, self.other])
        self.assertEqual([row.batch_size for row in comparison.rows], [1, 8, 32])
        baseline_cell, cell = comparison.rows[0].cells
        self.assertTrue(baseline_cell.is_baseline)
        self.assertIsNone(baseline_cell.p50_ratio)
        self.assertAlmostEqual(cell.p50_ratio, 0.82)
        self.assertEqual(cell.p50_verdict, "better")
        self.assertAlmostEqual(cell.p99_ratio, 1.25)
        self.assertEqual(cell.p99_verdict, "worse")
        self.assertAlmostEqual(cell.throughput_ratio, 1.22)
        self.assertEqual(cell.throughput_verdict, "better", "more samples/s is better")
        same = comparison.rows[1].cells[1]
        self.assertAlmostEqual(same.p50_ratio, 1.01)
        self.assertEqual(same.p50_verdict, "same")
        self.assertEqual(same.throughput_verdict, "same")
        only_other = comparison.rows[2].cells
        self.assertIsNone(only_other[0].run)
        self.assertIsNone(only_other[1].p50_ratio, "no baseline figure, no ratio")

    def test_the_page_shows_each_jobs_figures_and_colored_ratios(self):
        response = self.compare(f"ids={self.base.pk},{self.other.pk}")
        self.assertEqual(response.status_code, 200)
        page = response.content.decode()
        row = re.search(r'<tr data-batch-size="1">.*?</tr>', page, re.S).group(0)
        self.assertIn("2.000", row)
        self.assertIn("1.640", row)
        self.assertRegex(row, r'class="ratio better" data-ratio="p50"[^>]*>0\.82x<')
        self.assertRegex(row, r'class="ratio worse" data-ratio="p99"[^>]*>1\.25x<')
        self.assertRegex(row, r'class="ratio better" data-ratio="throughput"[^>]*>1\.22x<')
        row32 = re.search(r'<tr data-batch-size="32">.*?</tr>', page, re.S).group(0)
        self.assertIn("not measured", row32)
        self.assertIn("baseline", page)
        self.assertIn("/static/vendor/chart.umd.min.js", page)
        self.assertIn("/static/js/compare-charts.js", page)
        charts = json.loads(
            re.search(r'id="compare-data" type="application/json">(.*?)</script>', page).group(1)
        )
        self.assertEqual(charts["batch_sizes"], [1, 8, 32])
        self.assertEqual([job["job_id"] for job in charts["jobs"]], [self.base.pk, self.other.pk])
        self.assertEqual(
            charts["jobs"][1]["points"][0],
            {"batch_size": 1, "p50_ms": 1.64, "p99_ms": 5.0, "throughput_per_s": 610.0},
        )

    def test_the_first_id_is_the_baseline_and_the_picker_can_sort_oldest_first(self):
        page = self.compare(f"ids={self.other.pk},{self.base.pk}").content.decode()
        self.assertIn(f"Ratios are against the baseline, job #{self.other.pk}", page)
        self.assertIn(">1.22x<", page)  # 2.0 / 1.64
        page = self.compare(f"ids={self.other.pk}&ids={self.base.pk}&order=oldest-first").content.decode()
        self.assertIn(f"Ratios are against the baseline, job #{self.base.pk}", page)

    def test_refusals_answer_400_with_the_reason(self):
        running = self.bench([], status=JobStatus.RUNNING)
        failed = self.bench([], status=JobStatus.FAILED)
        all_oom = self.bench([{"batch_size": 8, "error": "out of memory at batch 8"}])
        ok = f"{self.base.pk},{self.other.pk}"
        self.assert_refused("ids=", "pick at least 2 jobs to compare (got 0)")
        self.assert_refused(f"ids={self.base.pk}", "pick at least 2 jobs to compare (got 1)")
        self.assert_refused(f"ids={self.base.pk},x", "&#x27;x&#x27; is not a job number")
        self.assert_refused(f"ids={ok},-3", "&#x27;-3&#x27; is not a job number")
        self.assert_refused(f"ids={ok},{self.base.pk}", f"job {self.base.pk} is listed twice")
        self.assert_refused(f"ids={ok},999999", "job 999999 does not exist")
        self.assert_refused(f"ids={ok},{running.pk}", f"job {running.pk} is running; only succeeded")
        self.assert_refused(f"ids={ok},{failed.pk}", f"job {failed.pk} is failed; only succeeded")
        self.assert_refused(f"ids={ok},{all_oom.pk}", f"job {all_oom.pk} has no successful run")
        self.assert_refused(
            "ids=" + ",".join(str(i) for i in range(1, 10)), "at most 8 jobs can be compared at once (got 9)"
        )

    def test_without_ids_it_shows_the_picker_of_succeeded_benchmarks(self):
        running = self.bench([], status=JobStatus.RUNNING)
        response = self.compare(f"pick={self.other.pk}")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'id="compare-picker"')
        self.assertContains(response, f'name="ids" value="{self.base.pk}"')
        self.assertContains(response, f'name="ids" value="{self.other.pk}" id="pick-{self.other.pk}" checked')
        self.assertNotContains(response, f'value="{running.pk}"')
        self.assertNotContains(response, 'id="compare-table"')

    def test_it_needs_a_login(self):
        self.client.logout()
        response = self.compare(f"ids={self.base.pk},{self.other.pk}")
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith("/login/?next="))
