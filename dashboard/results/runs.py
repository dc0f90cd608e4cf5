"""A tolerant reading of Job.result: runs, concurrency runs and the context that makes two
results comparable (device, precision, threads, runtime, environment). Missing or malformed figures
become None, never an error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workers.bench.stats import ci_rel_half_width, is_unstable_ci, median_ci

LATENCY_KEYS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")


def number(value: Any) -> float | None:
    """A finite int or float as float, else None (bools, strings, NaN and infinities are not figures)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    figure = number(value)
    return int(figure) if figure is not None and figure == int(figure) else None


def _ci_from_times(times_ms: Any) -> tuple[float | None, float | None]:
    """Results stored before the harness wrote the CI still carry their raw times: compute it."""
    if not isinstance(times_ms, list):
        return None, None
    figures = [number(t) for t in times_ms]
    ci = median_ci([t for t in figures if t is not None]) if None not in figures else None
    return ci if ci is not None else (None, None)


@dataclass(frozen=True)
class Run:
    """One batch size of a benchmark. ``error`` is set (and the figures None) when that point failed."""

    batch_size: int | None
    latency_ms: dict[str, float | None]
    throughput_per_s: float | None
    iterations: int | None
    peak_memory_bytes: int | None
    iqr_ms: float | None
    ci95_low_ms: float | None
    ci95_high_ms: float | None
    unstable: bool | None
    stop_reason: str
    error: str
    # torch.compile's compiling first call at this batch size (s), outside the latencies; else None.
    compile_s: float | None = None

    @property
    def p50_ms(self) -> float | None:
        return self.latency_ms["p50"]

    @property
    def p99_ms(self) -> float | None:
        return self.latency_ms["p99"]

    @property
    def ci95_ms(self) -> tuple[float, float] | None:
        """The 95% CI of the median (ms), or None when neither stored nor computable."""
        if self.ci95_low_ms is None or self.ci95_high_ms is None:
            return None
        return self.ci95_low_ms, self.ci95_high_ms

    @property
    def ci95_rel_half_width(self) -> float | None:
        """How well the median is known: 0.02 = +/-2%."""
        if self.ci95_ms is None or self.p50_ms is None:
            return None
        return ci_rel_half_width(self.p50_ms, *self.ci95_ms)

    @property
    def too_loose_for_a_verdict(self) -> bool:
        """The stability a verdict needs (workers.bench.stats.is_unstable_ci), judged from the CI
        whatever the stored ``unstable`` says: results stored before the rule carried IQR's flag."""
        return self.p50_ms is None or is_unstable_ci(self.p50_ms, self.ci95_ms)

    @property
    def ok(self) -> bool:
        """A usable measurement: no error and a p50 to compare."""
        return not self.error and self.batch_size is not None and self.p50_ms is not None

    @classmethod
    def from_json(cls, raw: Any) -> Run:
        raw = raw if isinstance(raw, dict) else {}
        latency = raw.get("latency_ms") if isinstance(raw.get("latency_ms"), dict) else {}
        unstable = raw.get("unstable")
        error = raw.get("error")
        ci_low, ci_high = number(raw.get("ci95_low_ms")), number(raw.get("ci95_high_ms"))
        if ci_low is None or ci_high is None:
            ci_low, ci_high = _ci_from_times(raw.get("times_ms"))
        return cls(
            batch_size=_integer(raw.get("batch_size")),
            latency_ms={key: number(latency.get(key)) for key in LATENCY_KEYS},
            throughput_per_s=number(raw.get("throughput_per_s")),
            iterations=_integer(raw.get("iterations")),
            peak_memory_bytes=_integer(raw.get("peak_memory_bytes")),
            iqr_ms=number(raw.get("iqr_ms")),
            ci95_low_ms=ci_low,
            ci95_high_ms=ci_high,
            unstable=unstable if isinstance(unstable, bool) else None,
            stop_reason=str(raw.get("stop_reason") or ""),
            error=str(error) if error else "",
            compile_s=number(raw.get("compile_s")),
        )


@dataclass(frozen=True)
class ConcurrencyRun:
    """One load level of the concurrency test: N client threads sending single requests."""

    concurrency: int | None
    requests_per_s: float | None
    latency_ms: dict[str, float | None]

    @classmethod
    def from_json(cls, raw: Any) -> ConcurrencyRun:
        raw = raw if isinstance(raw, dict) else {}
        latency = raw.get("latency_ms") if isinstance(raw.get("latency_ms"), dict) else {}
        return cls(
            concurrency=_integer(raw.get("concurrency")),
            requests_per_s=number(raw.get("requests_per_s")),
            latency_ms={key: number(latency.get(key)) for key in LATENCY_KEYS},
        )


def _list(result: Any, key: str) -> list:
    value = result.get(key) if isinstance(result, dict) else None
    return value if isinstance(value, list) else []


def runs_of(result: Any) -> list[Run]:
    """The runs of a result in the order the harness measured them; [] for None or no runs."""
    return [Run.from_json(raw) for raw in _list(result, "runs")]


def concurrency_runs_of(result: Any) -> list[ConcurrencyRun]:
    return [ConcurrencyRun.from_json(raw) for raw in _list(result, "concurrency_runs")]


def _section(result: Any, key: str) -> dict:
    value = result.get(key) if isinstance(result, dict) else None
    return value if isinstance(value, dict) else {}


def device_of(params: Any, result: Any) -> str:
    """Where it ran: "cpu", "cuda:0", or "cuda:0,cuda:1" for a multi-GPU run; the spec the harness
    recorded wins over the submitted params, and a job that names nothing ran on the CPU."""
    params = params if isinstance(params, dict) else {}
    for source in (_section(result, "spec"), params):
        devices = source.get("devices")
        if isinstance(devices, list) and devices:
            return ",".join(str(device) for device in devices)
        if isinstance(source.get("device"), str) and source["device"]:
            return source["device"]
    return "cpu"


def precision_of(params: Any, result: Any) -> str:
    """fp32 / fp16 / bf16; fp32 when nothing says otherwise (the harness's default)."""
    params = params if isinstance(params, dict) else {}
    for source in (_section(result, "spec"), params, _section(result, "env")):
        if isinstance(source.get("precision"), str) and source["precision"]:
            return source["precision"]
    return "fp32"


def threads_of(params: Any, result: Any) -> int | None:
    """The CPU thread count the run used: the one the harness resolved (spec, then env) wins over
    the submitted params, which may omit it (BenchSpec then picks os.cpu_count()); None if unknown."""
    params = params if isinstance(params, dict) else {}
    for source in (_section(result, "spec"), _section(result, "env"), params):
        threads = _integer(source.get("threads"))
        if threads is not None:
            return threads
    return None


def runtime_of(params: Any, result: Any) -> str:
    """How the model ran, with the options that change its speed: "eager", "torch_compile
    (max-autotune)", "onnxruntime (cpu, graph all)". The env the harness recorded wins (an ONNX
    file runs on ONNX Runtime whatever was asked), then its spec, then the submitted params; results
    from before runtimes existed ran eager."""
    params = params if isinstance(params, dict) else {}
    for source in (_section(result, "env"), _section(result, "spec"), params):
        name = source.get("runtime")
        if not isinstance(name, str) or not name:
            continue
        if name == "torch_compile":
            return f"torch_compile ({_text(source.get('compile_mode'), 'default')})"
        if name == "onnxruntime":
            return (
                f"onnxruntime ({_text(source.get('ort_provider'), 'cpu')}, "
                f"graph {_text(source.get('ort_graph_optimization'), 'all')})"
            )
        return name
    return "eager"


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


def env_value(result: Any, key: str) -> str | None:
    """One recorded environment value ("torch_version", "device_name") as text, or None."""
    value = _section(result, "env").get(key)
    return str(value) if value not in (None, "") else None
