"""Optimizations in the jobs list and API list: a headline ("1.3x slower, -1.2% acc, v2 registered"),
and their before/after rows as CSV."""

from __future__ import annotations

import copy
import csv
import io

from django.urls import reverse

from dashboard.models import Job, JobStatus
from dashboard.results.export import OPTIMIZE_CSV_COLUMNS
from tests.dashboard.base import BaseTestCase
from tests.dashboard.test_optimize_form import OPTIMIZE_RESULT

AUTO_RESULT = {
    "kind": "auto_optimize",
    "baseline": {
        "label": "original",
        "backend": "torch eager",
        "latency_ms": {"p50_ms": 1.0, "p99_ms": 1.5, "throughput_per_s": 32000.0},
        "fidelity": {"accuracy": 0.96},
        "size": {"size_bytes": 900000, "params": 235146, "nonzero_params": 235146},
    },
    "candidates": [
        {
            "label": "prune_structured -> ort_quantize_dynamic",
            "backend": "onnxruntime int8",
            "latency_ms": {"p50_ms": 0.4, "p99_ms": 0.6, "throughput_per_s": 80000.0},
            "fidelity": {"accuracy": 0.9571},
            "size": {"size_bytes": 120000, "params": 120000, "nonzero_params": 120000},
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
    "chosen": "prune_structured -> ort_quantize_dynamic",
    "best_effort": None,
    "pareto": ["prune_structured -> ort_quantize_dynamic"],
    "skipped": [],
    "verdict": "chose ...",
    "constraints": {"max_accuracy_drop": 0.01, "latency_target_ms": None, "batch_size": 32},
    "registered": {"model_id": 7, "model": "SimpleModel", "version": 3},
}


class OptimizeHeadlineTests(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def job(self, kind: str = "optimize", result: dict | None = None, **fields) -> Job:
        params = (
            {"batch_sizes": [32], "threads": 1, "device": "cpu"} if kind == "optimize" else {"batch_size": 32}
        )
        return Job.objects.create(
            kind=kind,
            model_name="SimpleModel",
            owner=self.alice,
            status=JobStatus.SUCCEEDED,
            node_name="gpu-node-1",
            params=params,
            result=result if result is not None else OPTIMIZE_RESULT,
            **fields,
        )

    def test_an_optimization_says_how_much_faster_what_accuracy_cost_and_what_was_registered(self):
        job = self.job()
        headline = job.summary_json()["result"]["headline"]
        # 0.66 ms -> 0.88 ms at batch 32: slower, in so many words; accuracy 0.9611 -> 0.95.
        self.assertEqual(headline["text"], "1.3x slower, -1.2% acc, v2 registered")
        self.assertEqual((headline["p50_ms"], headline["p50_batch_size"]), (0.88, 32))
        self.assertEqual(headline["registered_version"], 2)

        auto = self.job("auto_optimize", AUTO_RESULT)
        headline = auto.summary_json()["result"]["headline"]
        self.assertEqual(headline["text"], "2.5x faster, -0.3% acc, v3 registered")
        self.assertEqual(headline["chosen"], "prune_structured -> ort_quantize_dynamic")

    def test_an_auto_search_where_nothing_qualified_says_so(self):
        result = copy.deepcopy(AUTO_RESULT)
        result.update(chosen=None, best_effort="quantize_dynamic", registered=None)
        headline = self.job("auto_optimize", result).summary_json()["result"]["headline"]
        self.assertEqual(headline["text"], "nothing qualified: best effort, 1.2x slower, -1.0% acc")
        self.assertIsNone(headline["chosen"])

    def test_the_jobs_page_and_the_api_list_carry_the_headline(self):
        job = self.job()
        page = self.client.get("/jobs/")
        self.assertContains(
            page, '<span class="muted small opt-headline" data-role="headline"><br>1.3x slower'
        )
        self.assertContains(page, 'data-role="p50">0.880 ms')
        # Optimizations are not offered for the benchmark comparison.
        self.assertNotContains(page, f'id="tick-{job.pk}"')
        listed = self.client.get("/api/jobs", **self.bearer()).json()
        jobs = listed["jobs"] if isinstance(listed, dict) else listed
        [row] = [j for j in jobs if j["id"] == job.pk]
        self.assertEqual(row["result"]["headline"]["text"], "1.3x slower, -1.2% acc, v2 registered")

    def test_the_csv_has_the_before_and_after_rows(self):
        job = self.job()
        response = self.client.get(reverse("dashboard:job-result-csv", args=[job.pk]))
        self.assertEqual(response.status_code, 200)
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        self.assertEqual(tuple(rows[0]), OPTIMIZE_CSV_COLUMNS)
        self.assertEqual([(r["row"], r["role"]) for r in rows], [
            ("original", "before"), ("quantize_dynamic", "after"), ("onnxruntime", "after"),
        ])  # fmt: skip
        before, after, failed = rows
        self.assertEqual(
            (before["p50_ms"], before["accuracy"], before["batch_size"]), ("0.66", "0.9611", "32")
        )
        self.assertEqual((after["p50_ms"], after["speedup"], after["slower"]), ("0.88", "0.75", "true"))
        self.assertEqual(after["accuracy_drop"], str(round((0.9611 - 0.95) / 0.9611, 6)))
        self.assertEqual((failed["p50_ms"], failed["error"]), ("", "Traceback: export failed"))

        auto = self.job("auto_optimize", AUTO_RESULT)
        rows = list(
            csv.DictReader(
                io.StringIO(
                    self.client.get(reverse("dashboard:job-result-csv", args=[auto.pk])).content.decode()
                )
            )
        )
        self.assertEqual([r["role"] for r in rows], ["before", "chosen", "candidate"])
        self.assertEqual(
            (rows[1]["speedup"], rows[1]["qualifies"], rows[1]["batch_size"]), ("2.5", "true", "32")
        )
        self.assertEqual(rows[2]["qualifies"], "false")

    def test_the_result_page_links_the_csv(self):
        job = self.job()
        self.assertContains(self.client.get(f"/jobs/{job.pk}/"), 'id="download-csv"')
