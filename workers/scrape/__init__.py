"""Latency from a model server's Prometheus endpoint (no Django here).

A scrape reads the server's cumulative counters; the latency of the interval between two scrapes
is derived from their differences (Δ):

- NVIDIA Triton (port 8002): mean = Δ``nv_inference_request_duration_us`` / Δ``nv_inference_request_success``,
  with the queue and compute split from ``nv_inference_queue_duration_us`` and
  ``nv_inference_compute_infer_duration_us`` over the same Δcount.
- TorchServe (port 8082, ``metrics_mode: prometheus``): Δ``ts_inference_latency_microseconds`` /
  Δ``ts_inference_requests_total``.
- Histograms (vLLM, Ray Serve, BentoML, KServe): mean = Δ``_sum`` / Δ``_count``; p50/p95/p99 from the
  Δ of each bucket, interpolated linearly inside a bucket as PromQL's ``histogram_quantile`` does.

A counter that went down means the server restarted: that interval is skipped (never a negative
latency) and the new values become the baseline. Series are filtered by the model label."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Histogram:
    """A histogram metric's name and the factor that turns its unit into milliseconds."""

    name: str
    to_ms: float


# Each histogram format: its metric and unit.
HISTOGRAMS: dict[str, Histogram] = {
    "vllm": Histogram("vllm:e2e_request_latency_seconds", 1000.0),
    "ray_serve": Histogram("ray_serve_http_request_latency_ms", 1.0),
    "bentoml": Histogram("bentoml_service_request_duration_seconds", 1000.0),
    "kserve": Histogram("request_predict_seconds", 1000.0),
}
# "histogram": whichever of the known histograms the endpoint exposes.
FORMATS = ("triton", "torchserve", *HISTOGRAMS, "histogram")

# Labels that name the model on each server (Triton "model", TorchServe/vLLM "model_name", Ray
# Serve "deployment", BentoML "endpoint" is per route so it is not a model label).
MODEL_LABELS = ("model", "model_name", "deployment")

_TRITON = {
    "nv_inference_request_success": "count",
    "nv_inference_request_duration_us": "duration_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_infer_duration_us": "compute_us",
}
_TORCHSERVE = {
    "ts_inference_requests": "count",  # ts_inference_requests_total
    "ts_inference_latency_microseconds": "duration_us",
}

Counters = dict[str, float]


class ScrapeError(ValueError):
    """The endpoint could not be read or did not hold the metrics of its format; says which."""


@dataclass(frozen=True)
class Interval:
    """The latency of the requests served between two scrapes, in milliseconds. ``requests``: how
    many; percentiles are None where the format has no buckets."""

    requests: float
    mean_ms: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    queue_mean_ms: float | None = None
    compute_mean_ms: float | None = None

    def stats(self) -> dict[str, float]:
        """stat name (dashboard.deployments.series.STATS) -> value, for the values present."""
        named = {
            "mean": self.mean_ms,
            "p50": self.p50_ms,
            "p95": self.p95_ms,
            "p99": self.p99_ms,
            "queue_mean": self.queue_mean_ms,
            "compute_mean": self.compute_mean_ms,
        }
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class Outcome:
    """One scrape: the counters to keep for the next one, and the interval's latency, or why
    there is none ("first scrape", "counter reset", "no requests")."""

    counters: Counters
    interval: Interval | None
    skipped: str | None = None


def fetch(url: str, timeout_s: float = 5.0, max_bytes: int = 8 << 20) -> str:
    """The text of a metrics endpoint; ScrapeError for anything but a 200 with text."""
    try:
        request = urllib.request.Request(url, headers={"Accept": "text/plain"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (http(s) checked on input)
            body = response.read(max_bytes + 1)
    except OSError as exc:
        raise ScrapeError(f"could not read {url}: {exc}") from None
    if len(body) > max_bytes:
        raise ScrapeError(f"{url} answered more than {max_bytes} bytes")
    return body.decode("utf-8", errors="replace")


def _matches(labels: Mapping[str, str], model: str | None) -> bool:
    if model is None:
        return True
    return any(labels.get(label) == model for label in MODEL_LABELS)


def read_counters(text: str, fmt: str, model: str | None = None) -> Counters:
    """The cumulative counters of ``fmt`` in a scrape, summed over the series of ``model`` (all
    series when None). Keys: "count", "duration_us", ... for Triton and TorchServe; "sum",
    "count" and "le:<bound>" for a histogram (plus "metric:<name>" = 1 naming it)."""
    if fmt not in FORMATS:
        raise ScrapeError(f"unknown scrape format {fmt!r}; one of {', '.join(FORMATS)}")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as exc:  # the parser raises ValueError and friends on malformed text
        raise ScrapeError(f"not Prometheus text: {exc}") from None
    samples = [s for family in families for s in family.samples if _matches(s.labels, model)]
    if fmt in ("triton", "torchserve"):
        wanted = _TRITON if fmt == "triton" else _TORCHSERVE
        counters: Counters = {}
        for sample in samples:
            # The parser names a counter's samples "<name>_total" whether or not the text did.
            key = wanted.get(sample.name.removesuffix("_total"))
            if key is not None:
                counters[key] = counters.get(key, 0.0) + float(sample.value)
        if "count" not in counters or "duration_us" not in counters:
            names = " and ".join(k for k, v in wanted.items() if v in ("count", "duration_us"))
            target = f" for model {model!r}" if model else ""
            raise ScrapeError(f"no {names}{target} in the scrape")
        return counters
    candidates = [HISTOGRAMS[fmt]] if fmt in HISTOGRAMS else list(HISTOGRAMS.values())
    names = {s.name for s in samples}
    for histogram in candidates:
        if f"{histogram.name}_count" in names:
            return _histogram_counters(samples, histogram)
    target = f" for model {model!r}" if model else ""
    raise ScrapeError(f"no {' or '.join(h.name for h in candidates)} histogram{target} in the scrape")


def _histogram_counters(samples, histogram: Histogram) -> Counters:
    counters: Counters = {f"metric:{histogram.name}": 1.0, "sum": 0.0, "count": 0.0}
    for sample in samples:
        if sample.name == f"{histogram.name}_sum":
            counters["sum"] += float(sample.value)
        elif sample.name == f"{histogram.name}_count":
            counters["count"] += float(sample.value)
        elif sample.name == f"{histogram.name}_bucket":
            key = f"le:{float(sample.labels['le'])!r}"
            counters[key] = counters.get(key, 0.0) + float(sample.value)
    return counters


def _histogram_of(counters: Counters) -> Histogram | None:
    for histogram in HISTOGRAMS.values():
        if f"metric:{histogram.name}" in counters:
            return histogram
    return None


def derive(previous: Counters | None, current: Counters) -> Outcome:
    """The latency of the interval between two scrapes' counters."""
    if not previous or _histogram_of(previous) != _histogram_of(current):
        return Outcome(current, None, "first scrape")
    if any(current.get(key, 0.0) < value for key, value in previous.items()):
        return Outcome(current, None, "counter reset (the server restarted)")
    delta = {key: value - previous.get(key, 0.0) for key, value in current.items()}
    requests = delta.get("count", 0.0)
    if requests <= 0:
        return Outcome(current, None, "no requests")
    histogram = _histogram_of(current)
    if histogram is None:  # Triton or TorchServe: microsecond counters
        queue, compute = delta.get("queue_us"), delta.get("compute_us")
        interval = Interval(
            requests=requests,
            mean_ms=delta["duration_us"] / requests / 1000.0,
            queue_mean_ms=None if queue is None else queue / requests / 1000.0,
            compute_mean_ms=None if compute is None else compute / requests / 1000.0,
        )
        return Outcome(current, interval)
    buckets = sorted((float(key[3:]), value) for key, value in delta.items() if key.startswith("le:"))
    scale = histogram.to_ms
    interval = Interval(
        requests=requests,
        mean_ms=delta["sum"] / requests * scale,
        p50_ms=_scaled(histogram_quantile(0.50, buckets), scale),
        p95_ms=_scaled(histogram_quantile(0.95, buckets), scale),
        p99_ms=_scaled(histogram_quantile(0.99, buckets), scale),
    )
    return Outcome(current, interval)


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q quantile (0..1) of cumulative buckets [(upper bound, count)] sorted by bound, the
    last being +Inf, as PromQL computes it: linear interpolation inside the bucket holding the
    rank; a rank in the +Inf bucket gives the highest finite bound. None without observations."""
    if not buckets or not math.isinf(buckets[-1][0]):
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            if upper <= 0:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower
