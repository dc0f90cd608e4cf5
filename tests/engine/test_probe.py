"""A deployment probe: a short harness run with the deployment's params, and HTTP round trips."""

from __future__ import annotations

import pytest

from tests.engine.test_scrape import serving
from workers import zoo
from workers.probe import measure, probe_spec, time_endpoint


def test_a_probe_measures_the_served_batch_size_within_its_budget() -> None:
    entry = zoo.get("SimpleModel")
    params = {"device": "cpu", "batch_size": 4, "precision": "fp32", "threads": 1, "runtime": "eager"}
    spec = probe_spec(params, budget_s=1.0)
    assert (spec.batch_sizes, spec.threads, spec.time_budget_s) == ((4,), 1, 1.0)
    stats = measure(entry.build(None), entry.input_spec, params, budget_s=1.0)
    assert set(stats) == {"p50", "p95", "p99", "mean"}
    assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"]


def test_round_trips_are_timed_and_an_absent_server_is_an_error() -> None:
    with serving("torchserve_1.txt") as server:
        stats = time_endpoint(server.url, requests=5)
        missing = time_endpoint(server.url.replace("/metrics", "/404"), requests=2)  # an answer all the same
    assert 0 < stats["e2e_p50"] <= stats["e2e_p95"] <= stats["e2e_p99"]
    assert missing["e2e_p50"] > 0
    with pytest.raises(OSError, match="no answer"):
        time_endpoint("http://127.0.0.1:9/", requests=1, timeout_s=1.0)
