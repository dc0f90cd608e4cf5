"""Latency from model servers' Prometheus text: recorded Triton, TorchServe and vLLM output served
by a real HTTP server on loopback, two scrapes with increments, and a counter reset."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from workers import scrape

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scrape"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


class MetricsServer:
    """Serves the fixture files in turn on /metrics, one per request (the last one repeats)."""

    def __init__(self, *names: str) -> None:
        self.bodies = [(FIXTURES / name).read_bytes() for name in names]
        self.served = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = outer.bodies[min(outer.served, len(outer.bodies) - 1)]
                outer.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"


@contextmanager
def serving(*names: str) -> Iterator[MetricsServer]:
    server = MetricsServer(*names)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def scrapes(url: str, fmt: str, model: str | None, count: int) -> list[scrape.Outcome]:
    outcomes, previous = [], None
    for _ in range(count):
        outcome = scrape.derive(previous, scrape.read_counters(scrape.fetch(url), fmt, model))
        outcomes.append(outcome)
        previous = outcome.counters
    return outcomes


def test_triton_mean_queue_and_compute_from_counter_deltas() -> None:
    with serving("triton_1.txt", "triton_2.txt") as server:
        first, second = scrapes(server.url, "triton", "resnet", 2)
    assert first.interval is None and first.skipped == "first scrape"
    assert second.interval is not None
    # 500 requests took 7.5 s in all, 1 s queued, 5 s computing.
    assert second.interval.requests == 500
    assert second.interval.stats() == {"mean": 15.0, "queue_mean": 2.0, "compute_mean": 10.0}


def test_triton_model_label_filters_other_models() -> None:
    with serving("triton_1.txt", "triton_2.txt") as server:
        _first, second = scrapes(server.url, "triton", "bert", 2)
    assert second.interval is not None
    assert second.interval.mean_ms == pytest.approx(100.0)  # 10 requests, 1 s


def test_a_counter_reset_skips_the_interval_and_becomes_the_baseline() -> None:
    with serving("triton_1.txt", "triton_3_restart.txt", "triton_3_restart.txt") as server:
        _first, restarted, after = scrapes(server.url, "triton", "resnet", 3)
    assert restarted.interval is None
    assert restarted.skipped is not None and "counter reset" in restarted.skipped
    assert after.interval is None and after.skipped == "no requests"  # never a negative latency


def test_torchserve_mean_from_latency_and_request_counters() -> None:
    with serving("torchserve_1.txt", "torchserve_2.txt") as server:
        _first, second = scrapes(server.url, "torchserve", "digits", 2)
    assert second.interval is not None
    assert second.interval.requests == 300
    assert second.interval.stats() == {"mean": 8.0}


def test_vllm_histogram_mean_and_interpolated_percentiles() -> None:
    with serving("vllm_1.txt", "vllm_2.txt") as server:
        _first, second = scrapes(server.url, "vllm", LLAMA, 2)
    assert second.interval is not None
    stats = second.interval.stats()
    # 100 requests: 50 in (0.3, 0.5] s, 40 in (0.5, 0.8] s, 10 in (0.8, 1.0] s; 55 s in all.
    assert stats["mean"] == pytest.approx(550.0)
    assert stats["p50"] == pytest.approx(500.0)
    assert stats["p95"] == pytest.approx(900.0)
    assert stats["p99"] == pytest.approx(980.0)


def test_histogram_format_finds_the_known_histogram() -> None:
    with serving("vllm_1.txt", "vllm_2.txt") as server:
        _first, second = scrapes(server.url, "histogram", LLAMA, 2)
    assert second.interval is not None and second.interval.p50_ms == pytest.approx(500.0)


def test_histogram_quantile_matches_promql() -> None:
    inf = float("inf")
    buckets = [(1.0, 10.0), (2.0, 20.0), (inf, 30.0)]
    assert scrape.histogram_quantile(0.5, buckets) == pytest.approx(1.5)
    assert scrape.histogram_quantile(0.9, buckets) == 2.0  # in the +Inf bucket: the highest bound
    assert scrape.histogram_quantile(0.5, [(1.0, 0.0), (inf, 0.0)]) is None


def test_what_cannot_be_read_is_a_scrape_error() -> None:
    with serving("torchserve_1.txt") as server:
        with pytest.raises(scrape.ScrapeError, match="nv_inference_request_success"):
            scrape.read_counters(scrape.fetch(server.url), "triton", "resnet")
        with pytest.raises(scrape.ScrapeError, match="could not read"):
            scrape.fetch(server.url.replace("/metrics", "/nothing"))
    with pytest.raises(scrape.ScrapeError, match="not Prometheus text"):
        scrape.read_counters("this is { not prometheus", "triton")
