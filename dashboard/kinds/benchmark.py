"""The benchmark job kind: a latency/throughput/memory sweep of one model with perfmon's harness."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dashboard.kinds.base import RESULT_SCHEMA_VERSION, InvalidJob, JobContext, JobKindSpec, RunOutcome
from workers.bench.spec import (
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MAX_CONCURRENCY_LEVELS,
    MAX_DEVICES,
    MAX_ITERATIONS,
    MAX_SWEEP_POINTS,
    MAX_THREADS,
    MAX_TIME_BUDGET_S,
)

Runtime = Literal["eager", "torch_compile", "onnxruntime"]

BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]


class BenchmarkParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    batch_sizes: list[BatchSize] = Field(default=[32], min_length=1, max_length=MAX_SWEEP_POINTS)
    iterations: int = Field(default=200, ge=1, le=MAX_ITERATIONS)
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda:\d{1,2})$")
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    threads: int | None = Field(default=None, ge=1, le=MAX_THREADS)
    time_budget_s: float = Field(default=10.0, gt=0, le=MAX_TIME_BUDGET_S, allow_inf_nan=False)
    concurrency: list[Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)]] = Field(
        default=[], max_length=MAX_CONCURRENCY_LEVELS
    )
    devices: list[Annotated[str, Field(pattern=r"^cuda:\d{1,2}$")]] = Field(
        default=[], max_length=MAX_DEVICES
    )
    # Flat keys, named after their runtime; the one spec (workers.bench.spec.BenchSpec) refuses the
    # options of a runtime that is not chosen and fills in the chosen one's defaults.
    runtime: Runtime = "eager"
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] | None = None
    ort_provider: Literal["cpu", "cuda"] | None = None
    ort_graph_optimization: Literal["disable", "basic", "extended", "all"] | None = None


def device_of(params: dict[str, Any]) -> str:
    """A multi-GPU job is queued on its first GPU."""
    return (
        params["devices"][0]
        if params.get("devices") and params.get("device", "cpu") == "cpu"
        else params.get("device", "cpu")
    )


def prepare(params: dict[str, Any], node: str, model: str) -> dict[str, Any]:
    """The harness's own checks run against the target node's GPUs, so the user hears now, not
    when a worker takes the job. The runtime options are stored resolved (defaults filled in), so
    the job page and "Run again" say exactly what runs."""
    from dashboard.models import Node
    from workers.bench.spec import BenchSpec

    params["device"] = device_of(params)
    _runtime_of_model(params, model)
    gpus = Node.objects.get(name=node).info.get("gpus", []) if node else []
    try:
        spec = BenchSpec.from_params(params)
        spec.check_supported(cuda_device_count=len(gpus))
    except ValueError as exc:
        raise InvalidJob(str(exc), getattr(exc, "field", "device")) from None
    for key in ("runtime", "compile_mode", "ort_provider", "ort_graph_optimization"):
        if getattr(spec, key) is not None:
            params[key] = getattr(spec, key)
    return params


def _runtime_of_model(params: dict[str, Any], model: str) -> None:
    """An ONNX file cannot run as PyTorch: eager (the default) becomes onnxruntime, as the harness
    would record it anyway, and torch.compile is refused."""
    from dashboard.models import ModelVersion

    name, _, version = model.rpartition("@")
    if not name or not version.isdigit():
        return  # a zoo model
    fmt = ModelVersion.objects.filter(model__name=name, version=int(version)).values_list("format", flat=True)
    if fmt.first() != "onnx":
        return
    if params.get("runtime") == "torch_compile":
        raise InvalidJob(
            f"{model} is an ONNX file: it runs on ONNX Runtime, not torch.compile; choose runtime onnxruntime",
            "runtime",
        )
    params["runtime"] = "onnxruntime"


def outcome_of(result) -> tuple[str, str]:
    """(status, error) of a finished run: succeeded (perhaps partial) when any point measured,
    failed only when none did; the failed job keeps its result so each point's error shows."""
    from dashboard.models import JobStatus

    if result.ok_points:
        return JobStatus.SUCCEEDED, ""
    errors = [point.error for point in (*result.runs, *result.concurrency_runs) if point.error is not None]
    shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
    return JobStatus.FAILED, f"no point succeeded: {shown}" if shown else "no point succeeded"


def _document(result) -> dict[str, Any]:
    return {"schema": RESULT_SCHEMA_VERSION, **result.to_json()}


def run(ctx: JobContext) -> RunOutcome:
    from dashboard.models import JobStatus
    from workers.bench.harness import BenchSpec, Cancelled, run_benchmark

    model, input_spec = ctx.load_model(ctx.job.model_name)
    try:
        result = run_benchmark(
            model,
            input_spec,
            BenchSpec.from_params(ctx.job.params),
            on_progress=ctx.progress,
            should_stop=ctx.should_stop,
        )
    except Cancelled as exc:
        # The points measured before the stop are kept (marked partial), unless there are none.
        kept = _document(exc.result) if exc.result is not None and exc.result.ok_points else None
        return RunOutcome(JobStatus.CANCELLED, kept, "cancelled")
    status, error = outcome_of(result)
    return RunOutcome(status, _document(result), error)


def on_success(job) -> None:
    from dashboard.results.regressions import record_regressions

    record_regressions(job)


KIND = JobKindSpec(
    name="benchmark",
    title="Benchmark",
    params_model=BenchmarkParams,
    device_of=device_of,
    prepare=prepare,
    run=run,
    on_success=on_success,
)
