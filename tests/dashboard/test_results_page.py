"""The result part of the job page (/jobs/<id>/ and the fragment /jobs/<id>/result/)."""

from __future__ import annotations

import re

from django.utils import timezone

from dashboard.models import Job, JobStatus
from tests.dashboard.base import BaseTestCase


def run(batch_size: int, p50_ms: float, **extra) -> dict:
    return {
        "batch_size": batch_size,
        "latency_ms": {
            "p50": p50_ms,
            "p90": p50_ms * 1.1,
            "p95": p50_ms * 1.2,
            "p99": p50_ms * 1.5,
            "mean": p50_ms * 1.05,
            "std": 0.0125,
            "min": p50_ms * 0.9,
            "max": p50_ms * 3,
        },
        "throughput_per_s": batch_size * 1000 / p50_ms,
        "iterations": 321,
        "peak_memory_bytes": 3 * 1024 * 1024,
        "iqr_ms": 0.0456,
        "stop_reason": "time_budget",
        "times_ms": [p50_ms] * 5,
        **extra,
    }


class ResultPartialTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def job(self, result: dict | None, status: str = JobStatus.SUCCEEDED, **fields) -> Job:
        return Job.objects.create(
            kind="benchmark",
            model_name="SimpleModel",
            params={"batch_sizes": [1, 8, 4096], "iterations": 300, "device": "cpu"},
            status=status,
            node_name="gpu-node-1",
            finished_at=timezone.now(),
            result=result,
            **fields,
        )

    def fragment(self, job: Job) -> str:
        response = self.client.get(f"/jobs/{job.pk}/result/")
        self.assertEqual(response.status_code, 200)
        return response.content.decode()

    def test_every_figure_of_every_run_is_in_the_table(self):
        job = self.job(
            {
                "runs": [run(1, 0.25), run(8, 1.5, unstable=True)],
                "env": {"torch_version": "2.13.0", "cpu_model": "Test CPU", "threads": 2},
            }
        )
        page = self.fragment(job)
        first = re.search(r'<tr data-batch-size="1".*?</tr>', page, re.S).group(0)
        for figure in [
            "0.250",
            "0.275",
            "0.300",
            "0.375",
            "0.263",
            "0.013",
            "0.225",
            "0.750",
            "0.046",
            "4000.0",
        ]:
            self.assertIn(f">{figure}<", first, figure)
        self.assertIn(">321<", first)
        self.assertIn("3.0\xa0MB", first)
        self.assertIn(">time budget ended<", first, "the stop reason in words")
        self.assertNotIn("unstable", first)
        self.assertRegex(first, r'data-metric="p50"[^>]*>0\.250<')
        self.assertRegex(first, r'data-metric="throughput">4000\.0<')
        second = re.search(r'<tr data-batch-size="8".*?</tr>', page, re.S).group(0)
        self.assertIn('class="badge warn small"', second)
        self.assertIn("unstable", second)
        # Raw figures for the charts, unrounded.
        self.assertIn('data-p50="0.25"', first)
        self.assertIn('data-p99="0.375"', first)

    def test_a_failed_point_is_an_error_row(self):
        job = self.job({"runs": [run(1, 0.25), {"batch_size": 4096, "error": "out of memory at batch 4096"}]})
        page = self.fragment(job)
        row = re.search(r'<tr class="run-error".*?</tr>', page, re.S).group(0)
        self.assertIn("4096", row)
        self.assertIn("out of memory at batch 4096", row)
        self.assertEqual(page.count('data-metric="p50"'), 1, "no figures for the failed point")

    def test_charts_downloads_params_and_env_are_shown(self):
        job = self.job(
            {"runs": [run(1, 0.25), run(8, 1.5)], "env": {"torch_version": "2.13.0", "threads": 2}}
        )
        page = self.fragment(job)
        self.assertIn('id="latency-chart"', page)
        self.assertIn('id="throughput-chart"', page)
        self.assertNotIn('id="concurrency-chart"', page)
        self.assertIn(f'href="/jobs/{job.pk}/result.json"', page)
        self.assertIn(f'href="/jobs/{job.pk}/result.csv"', page)
        self.assertIn(f'href="/jobs/compare/?pick={job.pk}"', page)
        params = re.search(r'<dl id="result-params">.*?</dl>', page, re.S).group(0)
        self.assertIn("<dt>Iterations (minimum)</dt><dd>300</dd>", params, "human labels, not raw keys")
        self.assertIn("<dt>Device</dt><dd>cpu</dd>", params)
        env = re.search(r'<dl id="result-env">.*?</dl>', page, re.S).group(0)
        self.assertIn("<dt>PyTorch</dt><dd>2.13.0</dd>", env)
        self.assertIn("<dt>CPU threads</dt><dd>2</dd>", env)

    def test_concurrency_runs_get_a_table_and_a_chart(self):
        concurrency = [
            {"concurrency": 1, "requests_per_s": 900.0, "latency_ms": {"p50": 1.0, "p99": 1.5}},
            {"concurrency": 4, "requests_per_s": 2400.5, "latency_ms": {"p50": 1.6, "p99": 3.25}},
        ]
        page = self.fragment(self.job({"runs": [run(1, 0.25)], "concurrency_runs": concurrency}))
        self.assertIn('id="concurrency-chart"', page)
        table = re.search(r'<table class="results" id="concurrency-table">.*?</table>', page, re.S).group(0)
        self.assertIn(">2400.5<", table)
        self.assertIn(">3.250<", table)
        self.assertIn('data-requests-per-s="2400.5" data-p99="3.25"', table)

    def test_a_result_with_missing_keys_still_renders(self):
        page = self.fragment(self.job({"runs": [{"batch_size": 32, "latency_ms": {"p50": 2.0}}, {}]}))
        row = re.search(r'<tr data-batch-size="32".*?</tr>', page, re.S).group(0)
        self.assertIn(">2.000<", row)
        self.assertIn(">–<", row)
        self.assertIn("not recorded", page)

    def test_the_job_page_includes_the_result(self):
        job = self.job({"runs": [run(1, 0.25)]})
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn('id="result-table"', page)
        self.assertIn('id="latency-chart"', page)

    def test_unfinished_and_failed_jobs_show_no_table(self):
        running = self.job(None, status=JobStatus.RUNNING)
        self.assertNotIn("result-table", self.fragment(running))
        failed = self.job(None, status=JobStatus.FAILED, error="RuntimeError: boom")
        page = self.fragment(failed)
        self.assertIn('<pre class="error-text">RuntimeError: boom</pre>', page, "errors are preformatted")
        self.assertNotIn("Download CSV", page)
