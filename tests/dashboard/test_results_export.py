"""Downloading a result: /jobs/<id>/result.json and /jobs/<id>/result.csv."""

from __future__ import annotations

import csv
import io
import json

from django.utils import timezone

from dashboard.models import Job, JobStatus
from dashboard.results.export import CSV_COLUMNS
from tests.dashboard.base import BaseTestCase

RESULT = {
    "runs": [
        {
            "batch_size": 1,
            "latency_ms": {
                "p50": 0.123456789,
                "p90": 0.2,
                "p95": 0.25,
                "p99": 0.3,
                "mean": 0.15,
                "std": 0.01,
                "min": 0.1,
                "max": 0.9,
            },
            "throughput_per_s": 8100.523456789,
            "iterations": 400,
            "peak_memory_bytes": 1048576,
            "iqr_ms": 0.02,
            "ci95_low_ms": 0.12,
            "ci95_high_ms": 0.126,
            "unstable": False,
            "stop_reason": "ci_within_2pct",
            "times_ms": [0.1, 0.12, 0.9],
        },
        {"batch_size": 4096, "error": 'out of memory at batch 4096, "cap" 2 GiB'},
        # A run from an older harness: only the figures it knew about.
        {"batch_size": 8, "latency_ms": {"p50": 1.5}, "throughput_per_s": 5333.3},
    ],
    "concurrency_runs": [
        {
            "concurrency": 4,
            "batch_size": 1,
            "requests": 900,
            "requests_per_s": 450.123456,
            "latency_ms": {"p50": 8.87654321, "p90": 9.5, "p95": 9.7, "p99": 12.25, "max": 20.0},
            "error": None,
        },
        {"concurrency": 8, "batch_size": 1, "requests": 0, "error": "out of memory at concurrency 8"},
    ],
    "env": {"torch_version": "2.13.0", "threads": 2},
    "spec": {"batch_sizes": [1, 4096, 8], "device": "cpu", "precision": "bf16"},
}


class ResultExportTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)
        self.job = Job.objects.create(
            kind="benchmark",
            model_name="SimpleModel",
            params={"batch_sizes": [1, 4096, 8], "iterations": 400, "device": "cpu"},
            status=JobStatus.SUCCEEDED,
            node_name="gpu-node-1",
            finished_at=timezone.now(),
            result=RESULT,
        )

    def test_json_export_is_the_stored_result(self):
        response = self.client.get(f"/jobs/{self.job.pk}/result.json")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(json.loads(response.content), self.job.result)
        api = self.client.get(f"/api/jobs/{self.job.pk}").json()["result"]
        self.assertEqual(json.loads(response.content), api)
        self.assertIn(f'filename="perfmon-job-{self.job.pk}.json"', response["Content-Disposition"])

    def test_csv_export_has_a_header_and_one_row_per_run(self):
        response = self.client.get(f"/jobs/{self.job.pk}/result.csv")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertEqual(
            response["Content-Disposition"], f'attachment; filename="perfmon-job-{self.job.pk}.csv"'
        )
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        self.assertEqual(len(rows), 5, "3 batch sizes, then 2 concurrency levels")
        first = rows[0]
        self.assertEqual(first["job_id"], str(self.job.pk))
        self.assertEqual(first["model"], "SimpleModel")
        self.assertEqual(first["node"], "gpu-node-1")
        self.assertEqual(first["device"], "cpu")
        self.assertEqual(first["precision"], "bf16", "the harness's spec says what really ran")
        self.assertEqual(first["batch_size"], "1")
        self.assertEqual(first["threads"], "2", "the thread count the run used")
        self.assertEqual(first["test"], "batch")
        self.assertEqual(first["p50_ms"], "0.1235", "0.1 us is finer than any run-to-run noise")
        self.assertEqual(first["p99_ms"], "0.3")
        self.assertEqual(first["throughput_per_s"], "8100.52")
        self.assertEqual(first["iterations"], "400")
        self.assertEqual(first["peak_memory_bytes"], "1048576")
        self.assertEqual(first["iqr_ms"], "0.02")
        self.assertEqual(first["ci95_high_ms"], "0.126")
        self.assertEqual(first["unstable"], "false")
        self.assertEqual(first["stop_reason"], "ci_within_2pct")
        self.assertEqual(first["error"], "")

    def test_concurrency_levels_have_their_own_rows(self):
        rows = list(
            csv.DictReader(io.StringIO(self.client.get(f"/jobs/{self.job.pk}/result.csv").content.decode()))
        )
        level, failed = rows[3], rows[4]
        self.assertEqual(
            (level["test"], level["concurrency"], level["batch_size"]), ("concurrency", "4", "1")
        )
        self.assertEqual(level["requests_per_s"], "450.12")
        self.assertEqual((level["p50_ms"], level["p99_ms"]), ("8.8765", "12.25"))
        self.assertEqual((level["throughput_per_s"], level["threads"]), ("", "2"))
        self.assertEqual((failed["concurrency"], failed["error"]), ("8", "out of memory at concurrency 8"))
        self.assertEqual(failed["p50_ms"], "")

    def test_csv_header_names_every_column_with_its_unit(self):
        text = self.client.get(f"/jobs/{self.job.pk}/result.csv").content.decode()
        header = text.split("\r\n")[0]
        self.assertEqual(header.split(","), list(CSV_COLUMNS))
        self.assertIn("p50_ms", header)
        self.assertIn("throughput_per_s", header)

    def test_a_failed_point_keeps_its_row_with_the_error_quoted(self):
        text = self.client.get(f"/jobs/{self.job.pk}/result.csv").content.decode()
        # RFC 4180: a field with a comma or a quote is quoted, and its quotes doubled.
        self.assertIn('"out of memory at batch 4096, ""cap"" 2 GiB"', text)
        oom = list(csv.DictReader(io.StringIO(text)))[1]
        self.assertEqual(oom["batch_size"], "4096")
        self.assertEqual(oom["error"], 'out of memory at batch 4096, "cap" 2 GiB')
        self.assertEqual(oom["p50_ms"], "", "no figure, not a made-up 0")

    def test_missing_figures_are_empty_cells(self):
        old = list(
            csv.DictReader(io.StringIO(self.client.get(f"/jobs/{self.job.pk}/result.csv").content.decode()))
        )[2]
        self.assertEqual(old["p50_ms"], "1.5")
        self.assertEqual(old["p90_ms"], "")
        self.assertEqual(old["iterations"], "")
        self.assertEqual(old["unstable"], "")

    def test_a_job_without_a_result_answers_404_with_the_reason(self):
        running = Job.objects.create(kind="benchmark", model_name="SimpleModel", status=JobStatus.RUNNING)
        response = self.client.get(f"/jobs/{running.pk}/result.json")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"error": f"job {running.pk} has no result (running)"})
        response = self.client.get(f"/jobs/{running.pk}/result.csv")
        self.assertContains(response, "has no result (running)", status_code=404)
        self.assertEqual(self.client.get("/jobs/999999/result.csv").status_code, 404)

    def test_exports_need_a_login(self):
        self.client.logout()
        for url in [f"/jobs/{self.job.pk}/result.json", f"/jobs/{self.job.pk}/result.csv"]:
            response = self.client.get(url)
            self.assertEqual(response.status_code, 302, url)
            self.assertTrue(response["Location"].startswith("/login/?next="), url)
