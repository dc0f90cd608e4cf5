"""The optimize and auto_optimize job kinds: apply passes to a model (or search over them), measure
before and after in the same job with the same harness and the same fidelity check, and register
the result as a new model version whose lineage names its parent and the job that made it."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dashboard.kinds.base import RESULT_SCHEMA_VERSION, InvalidJob, JobContext, JobKindSpec, RunOutcome
from workers import zoo
from workers.bench.spec import MAX_BATCH_SIZE, MAX_THREADS

MAX_PASSES = 8
MAX_OPTIMIZE_BATCH_SIZES = 4


class PassRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class OptimizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    passes: list[PassRequest] = Field(min_length=1, max_length=MAX_PASSES)
    batch_sizes: list[int] = Field(default=[32], min_length=1, max_length=MAX_OPTIMIZE_BATCH_SIZES)
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda:\d{1,2})$")
    threads: int = Field(default=1, ge=1, le=MAX_THREADS)
    measure_budget_s: float = Field(default=5.0, gt=0, le=120, allow_inf_nan=False)
    # An uploaded labeled data set (POST /api/datasets) for this model: trains, calibrates, scores.
    dataset: int | None = Field(default=None, ge=1)


class AutoOptimizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    max_accuracy_drop: float = Field(default=0.01, ge=0, le=0.5, allow_inf_nan=False)
    latency_target_ms: float | None = Field(default=None, gt=0, le=600_000, allow_inf_nan=False)
    batch_size: int = Field(default=32, ge=1, le=MAX_BATCH_SIZE)
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda:\d{1,2})$")
    threads: int = Field(default=1, ge=1, le=MAX_THREADS)
    time_budget_s: float = Field(default=600.0, ge=10, le=6 * 3600, allow_inf_nan=False)
    measure_budget_s: float = Field(default=3.0, gt=0, le=60, allow_inf_nan=False)
    dataset: int | None = Field(default=None, ge=1)


def labeled_data_name(model: str) -> str | None:
    """The data set a model's accuracy is measured on: a zoo model's own, or the one of the zoo model
    a registered model is named after (its lineage starts at the zoo original, version 1)."""
    name = model.rpartition("@")[0] or model
    entry = zoo.ZOO.get(name)
    return entry.dataset if entry is not None else None


def has_labeled_data(model: str, params: dict[str, Any]) -> bool:
    """An uploaded data set named in the params, or the zoo's own for the model."""
    return params.get("dataset") is not None or labeled_data_name(model) is not None


def _check_dataset(params: dict[str, Any], model: str) -> None:
    from dashboard.dataset_actions import DatasetRefused, dataset_for_job

    if params.get("dataset") is None:
        return
    try:
        dataset_for_job(params["dataset"], model)
    except DatasetRefused as exc:
        raise InvalidJob(str(exc), "dataset") from None


def _check_batch_sizes(batch_sizes: list[int]) -> None:
    for size in batch_sizes:
        if not 1 <= size <= MAX_BATCH_SIZE:
            raise InvalidJob(f"Batch size {size} is out of range: 1 to {MAX_BATCH_SIZE}", "batch_sizes")


def node_capability(node: str, device: str) -> tuple[int, int] | None:
    """The CUDA compute capability the node's sampler recorded for ``device`` ("cuda:N"), or None
    when the device is the CPU or the node did not say (the pass then checks on the worker)."""
    from dashboard.models import Node

    if not node or not device.startswith("cuda"):
        return None
    index = int(device.partition(":")[2])
    info = Node.objects.filter(name=node).values_list("info", flat=True).first() or {}
    for gpu in info.get("gpus") or []:
        text = gpu.get("compute_capability") if gpu.get("index") == index else None
        major, _, minor = str(text or "").partition(".")
        if major.isdigit() and minor.isdigit():
            return int(major), int(minor)
    return None


def prepare_optimize(params: dict[str, Any], node: str, model: str) -> dict[str, Any]:
    from workers.passes import PASSES, InvalidPassParams, plan

    _check_batch_sizes(params["batch_sizes"])
    _check_dataset(params, model)
    try:
        steps = plan(
            PASSES,
            params["passes"],
            device=params["device"],
            has_labeled_data=has_labeled_data(model, params),
            capability=node_capability(node, params["device"]),
        )
    except InvalidPassParams as exc:
        raise InvalidJob(str(exc), "passes") from None
    # Defaults filled in, so the job page and "run again" show every value the passes used.
    params["passes"] = [{"name": step.decl.name, "params": step.params} for step in steps]
    return params


def prepare_auto(params: dict[str, Any], node: str, model: str) -> dict[str, Any]:
    _check_dataset(params, model)
    return params


# ----------------------------------------------------------------------------------------------
# In the worker


def _labeled_data(ctx: JobContext, input_spec):
    """The data set the passes train, calibrate and score on: the uploaded one the params name
    (checked again as it is read: the file is the user's), else the zoo's digits, else None."""
    from workers.passes.data import digits_for_model, load_npz

    dataset_id = ctx.job.params.get("dataset")
    if dataset_id is not None:
        from dashboard.dataset_actions import dataset_path
        from dashboard.models import Dataset

        dataset = Dataset.objects.get(pk=dataset_id)
        data = load_npz(
            dataset_path(dataset), input_spec, dataset.num_classes, max_bytes=_max_dataset_bytes()
        )
        return dataclasses.replace(data, name=f"data set #{dataset.pk} {dataset.name}")
    if labeled_data_name(ctx.job.model_name) == "digits":
        return digits_for_model(zoo.get(ctx.job.model_name.rpartition("@")[0] or ctx.job.model_name))
    return None


def _max_dataset_bytes() -> int:
    from django.conf import settings

    return settings.PERFMON_MAX_DATASET_BYTES


def _context(ctx: JobContext, input_spec, device: str, threads: int, total_steps: int):
    from workers.passes.context import PassContext

    data = _labeled_data(ctx, input_spec)
    done = {"steps": 0}

    def on_step(text: str) -> None:
        done["steps"] += 1
        total = context.extra.get("total_steps") or total_steps
        ctx.progress(min(0.99, done["steps"] / max(1, total)), text)

    extra: dict[str, Any] = {"first_batch_size": 1}
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            # plan() refuses passes this GPU is too old for (float8, 2:4) before anything runs.
            extra["compute_capability"] = tuple(torch.cuda.get_device_capability(device))
    context = PassContext(
        input_spec=input_spec,
        device=device,
        threads=threads,
        data=data,
        on_step=on_step,
        should_stop=ctx.should_stop,
        extra=extra,
    )
    return context


def _row(
    label: str, candidate, measured: dict, fidelity: dict, size: dict, baseline_p50: dict | None
) -> dict:
    row = {
        "label": label,
        "backend": candidate.backend if candidate is not None else "torch eager",
        "latency_ms": {str(bs): {"p50": m["p50_ms"], "p99": m["p99_ms"]} for bs, m in measured.items()},
        "throughput_per_s": {str(bs): m["throughput_per_s"] for bs, m in measured.items()},
        **size,
        "accuracy": fidelity.get("accuracy"),
        "accuracy_original": fidelity.get("accuracy_original"),
        "agreement": fidelity.get("agreement"),
        "max_abs_error": fidelity.get("max_abs_error"),
        "mean_abs_error": fidelity.get("mean_abs_error"),
        "fidelity_basis": fidelity.get("basis"),
    }
    if baseline_p50:
        ratios = {bs: baseline_p50[bs] / m["p50_ms"] for bs, m in measured.items() if m["p50_ms"]}
        row["speedup"] = {str(bs): r for bs, r in ratios.items()}
        # Slower than the original at any measured batch size: shown in red with the ratio.
        row["slower"] = any(r < 1.0 for r in ratios.values())
    return row


def _measure_all(
    module, input_spec, batch_sizes: list[int], device: str, threads: int, budget_s: float, should_stop
) -> dict:
    from workers.passes.search import harness_measure

    return {
        bs: harness_measure(input_spec, bs, device, threads, budget_s, should_stop)(module)
        for bs in batch_sizes
    }


def save_artifact(candidate, input_spec, work_dir: Path) -> tuple[Path, str]:
    """The candidate as a file the registry loads without unpickling: the ONNX graph where it runs on
    ONNX Runtime, else TorchScript traced on the model's own input shape. Returns (path, format)."""
    import torch

    work_dir.mkdir(parents=True, exist_ok=True)
    if candidate.form == "onnx" and candidate.onnx_bytes is not None:
        path = work_dir / "model.onnx"
        path.write_bytes(candidate.onnx_bytes)
        return path, "onnx"
    module = candidate.module
    inner = getattr(module, "_orig_mod", module)  # torch.compile's wrapper: save what it compiled
    example = input_spec.make(2, device=next((p.device for p in inner.parameters()), "cpu"))
    with torch.inference_mode():
        traced = torch.jit.trace(inner.eval(), example, check_trace=False)
    path = work_dir / "model.pt"
    torch.jit.save(traced, str(path))
    return path, "torchscript"


def _artifact_info(candidate, input_spec, ctx: JobContext, passes: list[str]) -> dict[str, Any]:
    work_dir = Path(tempfile.mkdtemp(prefix=f"job-{ctx.job.pk}-", dir=_tmp_dir(ctx)))
    try:
        path, fmt = save_artifact(candidate, input_spec, work_dir)
    except Exception as exc:  # a candidate that cannot be saved is still measured and shown
        return {"error": f"could not save the model: {type(exc).__name__}: {exc}"[:500]}
    return {"path": str(path), "format": fmt, "input_spec": input_spec.to_json(), "passes": passes}


def _tmp_dir(ctx: JobContext) -> Path:
    path = ctx.data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_optimize(ctx: JobContext) -> RunOutcome:
    from dashboard.models import JobStatus
    from workers.bench.progress import Cancelled
    from workers.passes import PASSES, plan
    from workers.passes.candidate import Candidate
    from workers.passes.fidelity import measure_fidelity
    from workers.passes.pipeline import run_pipeline
    from workers.passes.size import size_report

    params = ctx.job.params
    device, threads, batch_sizes = params["device"], params["threads"], params["batch_sizes"]
    model, input_spec = ctx.load_model(ctx.job.model_name)
    steps = plan(
        PASSES,
        params["passes"],
        device=device,
        has_labeled_data=has_labeled_data(ctx.job.model_name, params),
    )
    pctx = _context(ctx, input_spec, device, threads, total_steps=2 + 3 * len(steps))
    result: dict[str, Any] = {
        "schema": RESULT_SCHEMA_VERSION,
        "kind": "optimize",
        "batch_sizes": batch_sizes,
        "device": device,
        "threads": threads,
        "after": [],
        "steps": [],
    }
    try:
        pctx.step("measuring the original")
        original = Candidate(model.to(device).eval())
        before = _measure_all(
            model, input_spec, batch_sizes, device, threads, params["measure_budget_s"], pctx.should_stop
        )
        baseline_p50 = {bs: m["p50_ms"] for bs, m in before.items()}
        result["before"] = _row(
            "original", original, before, measure_fidelity(model, model, pctx), size_report(original), None
        )
        candidate = original
        for step in steps:
            candidate, (report,) = run_pipeline(candidate, [step], pctx)
            result["steps"].append(report.to_json())
            if not report.ok:
                continue
            pctx.step(f"measuring after {step.decl.title}")
            measured = _measure_all(
                candidate.module,
                input_spec,
                batch_sizes,
                device,
                threads,
                params["measure_budget_s"],
                pctx.should_stop,
            )
            row = _row(
                step.decl.name,
                candidate,
                measured,
                measure_fidelity(model, candidate.module, pctx),
                size_report(candidate),
                baseline_p50,
            )
            row["notes"] = report.to_json()["notes"]
            result["after"].append(row)
    except Cancelled:
        return RunOutcome(JobStatus.CANCELLED, result if result["after"] else None, "cancelled")
    if not result["after"]:
        errors = "; ".join(f"{s['name']}: {s['error']}" for s in result["steps"] if s["error"])
        return RunOutcome(JobStatus.FAILED, result, f"no pass succeeded: {errors}"[:2000])
    result["final"] = result["after"][-1]
    if candidate.passes:
        result["artifact"] = _artifact_info(candidate, input_spec, ctx, list(candidate.passes))
    return RunOutcome(JobStatus.SUCCEEDED, result, "")


def run_auto(ctx: JobContext) -> RunOutcome:
    from dashboard.models import JobStatus
    from workers.bench.progress import Cancelled
    from workers.passes import PASSES
    from workers.passes.search import Constraints, auto_optimize, default_recipes, harness_measure

    params = ctx.job.params
    device, threads = params["device"], params["threads"]
    model, input_spec = ctx.load_model(ctx.job.model_name)
    pctx = _context(ctx, input_spec, device, threads, total_steps=0)
    # The passes known not to pay off for this model are left out, each with its reason in "skipped".
    recipes, left_out = default_recipes(model, pctx)
    pctx.extra["total_steps"] = 4 + 5 * len(recipes)
    measure = harness_measure(
        input_spec, params["batch_size"], device, threads, params["measure_budget_s"], pctx.should_stop
    )
    constraints = Constraints(
        max_accuracy_drop=params["max_accuracy_drop"],
        latency_target_ms=params.get("latency_target_ms"),
        time_budget_s=params["time_budget_s"],
    )
    try:
        search = auto_optimize(model.to(device).eval(), pctx, PASSES, measure, constraints, recipes=recipes)
        search.skipped[:0] = left_out
    except Cancelled:
        return RunOutcome(JobStatus.CANCELLED, None, "cancelled")
    result = {"schema": RESULT_SCHEMA_VERSION, "kind": "auto_optimize", **search.to_json()}
    result["constraints"] = {
        "max_accuracy_drop": constraints.max_accuracy_drop,
        "latency_target_ms": constraints.latency_target_ms,
        "batch_size": params["batch_size"],
    }
    if search.chosen is not None:
        result["artifact"] = _artifact_info(
            search.chosen.candidate, input_spec, ctx, list(search.chosen.candidate.passes)
        )
    return RunOutcome(JobStatus.SUCCEEDED, result, "")


def register_artifact(job) -> None:
    """After success: the produced model becomes a new version of a registered model (a zoo model gets
    one of its own name first, version 1 being the zoo original), with its parent and this job."""
    from dashboard.registry_actions import do_register_produced_version

    artifact = (job.result or {}).get("artifact") or {}
    if artifact.get("path"):
        do_register_produced_version(job, artifact)


OPTIMIZE = JobKindSpec(
    name="optimize",
    title="Optimize",
    params_model=OptimizeParams,
    prepare=prepare_optimize,
    run=run_optimize,
    on_success=register_artifact,
    result_template="dashboard/_optimize_result.html",
)

AUTO_OPTIMIZE = JobKindSpec(
    name="auto_optimize",
    title="Auto-optimize",
    params_model=AutoOptimizeParams,
    prepare=prepare_auto,
    run=run_auto,
    on_success=register_artifact,
    result_template="dashboard/_optimize_result.html",
)
