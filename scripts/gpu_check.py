"""What perfmon's GPU code does on a real GPU, checked in one go and written down as a report.

Run through ``scripts/gpu-check`` on a node with an NVIDIA GPU (made for one H100/H200, under 8 minutes):

1. every test marked ``gpu`` (pytest ``-m gpu``);
2. the sampler's NVML reading against ``nvidia-smi --query-gpu=...`` taken at the same moment, idle and
   while a matmul loop keeps GPU 0 busy (utilization, memory used/total, temperature, power, SM clock);
3. the harness on CUDA against ``torch.utils.benchmark`` on the same model in the same process;
4. an out-of-memory batch sweep: the failing batch is an error, the next batch runs, memory is given back;
5. the GPU optimization passes (fp16, bf16, torch.compile with CUDA graphs, ONNX Runtime's CUDA provider,
   structured pruning + fp16) on TeacherModel at batch 256, each measured with the harness against the
   original with its fidelity, plus auto-optimize's choice;
6. the GPU-only passes (torchao int8 weight-only, int8 dynamic and float8, 2:4 sparsity, torch.compile
   reduce-overhead / CUDA graphs, ONNX Runtime's CUDA provider) on SimpleModel at batch 256, each with
   the backend and tensor types that ran; one refused for this GPU's compute capability or a missing
   package is listed with its reason.

Writes ``gpu-report.md`` and ``gpu-report.json`` to ``--out`` and exits 0 when every check passed, 1 when
one failed, 2 when there is no GPU to check (the report then says so; nothing else is attempted).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMI_FIELDS = (
    "index",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "clocks.sm",
)
MIB = 1024 * 1024


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def nvidia_smi_rows() -> dict[int, dict[str, float | None]]:
    """``nvidia-smi --query-gpu`` as {index: {field: value}}; values it calls [N/A] are None."""
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    rows = {}
    for line in out.strip().splitlines():
        values = [part.strip() for part in line.split(",")]
        parsed = {}
        for name, value in zip(SMI_FIELDS, values, strict=False):
            try:
                parsed[name] = float(value)
            except ValueError:
                parsed[name] = None
        rows[int(parsed["index"] or 0)] = parsed
    return rows


def run_gpu_tests(timeout_s: int) -> Check:
    """Every gpu-marked test; the suite's own plugins need Django, Redis and so on, so where those are
    missing (a bare GPU box with only torch) the engine's GPU tests still run with the plugins off."""
    base = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rA", "-p", "no:cacheprovider"]
    try:
        import pytest_django  # noqa: F401

        command = [*base, "tests"]
    except ImportError:
        command = [*base, "-o", "addopts=", "-p", "no:django", "tests/engine"]
    started = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        output, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output, code = f"timed out after {timeout_s} s\n{exc.stdout or ''}", -1
    tail = "\n".join(output.strip().splitlines()[-25:])
    summary = output.strip().splitlines()[-1] if output.strip() else "no output"
    return Check(
        "gpu-marked tests",
        code == 0,
        f"`{' '.join(command[2:])}` exited {code} in {time.monotonic() - started:.0f} s: {summary}",
        {"output_tail": tail},
    )


def _busy_gpu(stop: threading.Event) -> None:
    import torch

    a = torch.randn(8192, 8192, device="cuda:0", dtype=torch.bfloat16)
    while not stop.is_set():
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def compare_sampler_with_smi(rounds: int) -> Check:
    from workers.sampler.nvml import Nvml

    # Tolerances: memory is exact to a MiB's rounding; temperature moves slowly; power, clocks and
    # utilization are averaged over different windows by nvidia-smi and NVML, so they get slack.
    tolerances = {
        "memory_used_mib": ("memory.used", 2.0, "abs"),
        "memory_total_mib": ("memory.total", 1.0, "abs"),
        "temperature_c": ("temperature.gpu", 2.0, "abs"),
        "power_draw_w": ("power.draw", 0.15, "rel"),
        "sm_clock_mhz": ("clocks.sm", 0.05, "rel"),
        "utilization_gpu_percent": ("utilization.gpu", 20.0, "abs"),
    }
    mismatches, compared = [], []
    nvml = Nvml.open()
    stop = threading.Event()
    busy = threading.Thread(target=_busy_gpu, args=(stop,), daemon=True)
    try:
        for phase in ("idle", "busy"):
            if phase == "busy":
                busy.start()
                time.sleep(3)  # utilization is averaged over the last second or so
            for _ in range(rounds):
                smi = nvidia_smi_rows()
                ours = {gpu.index: gpu for gpu in nvml.sample() if not gpu.is_mig_device}
                for index, row in smi.items():
                    gpu = ours.get(index)
                    if gpu is None:
                        mismatches.append(f"GPU {index}: nvidia-smi lists it, the sampler does not")
                        continue
                    values = {
                        "memory_used_mib": gpu.memory_used_bytes / MIB
                        if gpu.memory_used_bytes is not None
                        else None,
                        "memory_total_mib": gpu.memory_total_bytes / MIB
                        if gpu.memory_total_bytes is not None
                        else None,
                        "temperature_c": gpu.temperature_c,
                        "power_draw_w": gpu.power_draw_w,
                        "sm_clock_mhz": gpu.sm_clock_mhz,
                        "utilization_gpu_percent": gpu.utilization_gpu_percent,
                    }
                    for ours_name, (smi_name, tolerance, how) in tolerances.items():
                        mine, theirs = values[ours_name], row.get(smi_name)
                        compared.append(
                            {
                                "phase": phase,
                                "gpu": index,
                                "field": ours_name,
                                "perfmon": mine,
                                "nvidia_smi": theirs,
                            }
                        )
                        if mine is None or theirs is None:
                            if (mine is None) != (theirs is None):
                                mismatches.append(
                                    f"{phase} GPU {index} {ours_name}: perfmon {mine}, nvidia-smi {theirs}"
                                )
                            continue
                        limit = tolerance if how == "abs" else tolerance * max(abs(theirs), 1.0)
                        if abs(mine - theirs) > limit:
                            mismatches.append(
                                f"{phase} GPU {index} {ours_name}: perfmon {mine:.1f}, nvidia-smi {theirs:.1f}"
                            )
                time.sleep(0.5)
    finally:
        stop.set()
        if busy.is_alive():
            busy.join(timeout=30)
        nvml.close()
    detail = f"{len(compared)} readings compared, {len(mismatches)} outside tolerance"
    return Check(
        "sampler vs nvidia-smi", not mismatches, detail, {"mismatches": mismatches, "readings": compared}
    )


def compare_harness_with_timer(min_run_time_s: float) -> Check:
    import torch
    from torch.utils.benchmark import Timer

    from workers import zoo
    from workers.bench import BenchSpec, run_benchmark

    rows, failures = [], []
    for name, batch_size in (("SmallResNet", 32), ("TeacherModel", 256), ("TinyTransformer", 8)):
        entry = zoo.get(name)
        model = entry.build().to("cuda:0").eval()
        spec = BenchSpec(
            batch_sizes=(batch_size,),
            iterations=100,
            device="cuda:0",
            min_duration_s=min_run_time_s,
            time_budget_s=max(10.0, 4 * min_run_time_s),
        )
        harness = run_benchmark(model, entry.input_spec, spec).to_json()["runs"][0]
        x = entry.input_spec.make(
            batch_size, device=torch.device("cuda:0"), generator=torch.Generator().manual_seed(0)
        )
        timer = Timer(
            stmt="model(x); torch.cuda.synchronize()", globals={"model": model, "x": x, "torch": torch}
        )
        with torch.inference_mode():
            timer.timeit(number=20)
            timer_ms = timer.blocked_autorange(min_run_time=min_run_time_s).median * 1e3
        ratio = harness["latency_ms"]["p50"] / timer_ms
        rows.append(
            {
                "model": name,
                "batch_size": batch_size,
                "harness_p50_ms": harness["latency_ms"]["p50"],
                "timer_median_ms": timer_ms,
                "ratio": ratio,
                "stop_reason": harness.get("stop_reason"),
            }
        )
        # Timer's statement adds a synchronize per call that CUDA events do not pay: allow 0.85..1.10.
        if not 0.85 <= ratio <= 1.10:
            failures.append(f"{name} b{batch_size}: harness/Timer {ratio:.3f}")
        del model, x
        torch.cuda.empty_cache()
    text = ", ".join(f"{r['model']} b{r['batch_size']} {r['ratio']:.3f}" for r in rows)
    return Check(
        "harness vs torch.utils.benchmark on CUDA", not failures, f"p50 ratios: {text}", {"rows": rows}
    )


def out_of_memory_sweep() -> Check:
    import torch
    from torch import nn

    from workers.bench import BenchSpec, run_benchmark
    from workers.zoo import InputSpec

    class Balloon(nn.Module):
        def __init__(self, bytes_per_sample: int) -> None:
            super().__init__()
            self.bytes_per_sample = bytes_per_sample

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ones(x.shape[0] * self.bytes_per_sample, dtype=torch.uint8, device=x.device)

    torch.cuda.empty_cache()
    free_before, total = torch.cuda.mem_get_info(0)
    allocated_before = torch.cuda.memory_allocated(0)
    per_sample = free_before // 10
    spec = BenchSpec(batch_sizes=(2, 64, 4), iterations=5, device="cuda:0", time_budget_s=1.0)
    runs = run_benchmark(
        Balloon(per_sample), InputSpec(shape=(None, 4), dtype="float32", low=0.0, high=1.0), spec
    )
    runs_json = runs.to_json()["runs"]
    torch.cuda.empty_cache()
    allocated_after = torch.cuda.memory_allocated(0)
    free_after, _ = torch.cuda.mem_get_info(0)
    problems = []
    if runs_json[1]["error"] != "out of memory at batch 64":
        problems.append(f"batch 64 ended {runs_json[1]['error']!r}, expected an out-of-memory error")
    for run in (runs_json[0], runs_json[2]):
        if run["error"] is not None:
            problems.append(f"batch {run['batch_size']} failed: {run['error']}")
    if allocated_after - allocated_before > MIB:
        problems.append(
            f"{(allocated_after - allocated_before) / MIB:.1f} MiB still allocated after the sweep"
        )
    data = {
        "free_before_gib": free_before / 2**30,
        "free_after_gib": free_after / 2**30,
        "total_gib": total / 2**30,
        "runs": [
            {k: r.get(k) for k in ("batch_size", "error", "iterations", "peak_memory_bytes")}
            for r in runs_json
        ],
    }
    detail = (
        f"batches 2, 64 (needs {64 * per_sample / 2**30:.0f} GiB), 4: "
        + ", ".join(f"b{r['batch_size']} {r['error'] or 'ok'}" for r in runs_json)
        + f"; allocated before {allocated_before / MIB:.1f} MiB, after {allocated_after / MIB:.1f} MiB"
    )
    return Check(
        "out-of-memory sweep", not problems, detail + ("; " + "; ".join(problems) if problems else ""), data
    )


def gpu_passes(budget_s: float) -> Check:
    from workers import zoo
    from workers.passes import PASSES, plan
    from workers.passes.candidate import Candidate
    from workers.passes.context import PassContext
    from workers.passes.data import digits_for_model
    from workers.passes.fidelity import measure_fidelity
    from workers.passes.pipeline import run_pipeline
    from workers.passes.search import Constraints, auto_optimize, default_recipes, harness_measure

    entry = zoo.get("TeacherModel")
    model = entry.build(Path("/tmp/perfmon-gpu-check-zoo")).to("cuda:0").eval()
    ctx = PassContext(input_spec=entry.input_spec, device="cuda:0", data=digits_for_model(entry))
    measure = harness_measure(entry.input_spec, 256, "cuda:0", 1, budget_s)
    base = measure(model)
    rows, problems = [], []
    recipes, _left_out = default_recipes(model, ctx)
    for recipe in recipes:
        label = " -> ".join(item["name"] + str(item.get("params", "")) for item in recipe)
        candidate, reports = run_pipeline(
            Candidate(model), plan(PASSES, recipe, device="cuda:0", has_labeled_data=True), ctx
        )
        failed = [r for r in reports if not r.ok]
        if failed:
            rows.append({"recipe": label, "error": failed[0].error})
            continue
        timing = measure(candidate.module)
        fidelity = measure_fidelity(model, candidate.module, ctx)
        rows.append(
            {
                "recipe": label,
                "backend": candidate.backend,
                "p50_ms": timing["p50_ms"],
                "speedup": base["p50_ms"] / timing["p50_ms"],
                "accuracy": fidelity["accuracy"],
                "accuracy_original": fidelity["accuracy_original"],
            }
        )
    search = auto_optimize(model, ctx, PASSES, measure, Constraints(time_budget_s=240))
    if search.chosen is not None and search.chosen.p50_ms >= search.baseline.p50_ms:
        problems.append("auto-optimize chose a candidate slower than the original")
    text = "; ".join(
        f"{r['recipe']}: "
        + (f"{r['speedup']:.2f}x, acc {r['accuracy']:.3f}" if "speedup" in r else f"error {r['error'][:80]}")
        for r in rows
    )
    detail = f"original p50 {base['p50_ms']:.3f} ms at batch 256; {text}; auto: {search.verdict}"
    return Check(
        "GPU optimization passes",
        not problems,
        detail,
        {"rows": rows, "auto": search.to_json(), "mismatches": problems},
    )


GPU_ONLY_PASSES = (
    [{"name": "torchao_int8_weight_only"}],
    [{"name": "torchao_int8_dynamic"}],
    [{"name": "torchao_float8"}],
    [{"name": "sparsity_2_4"}],
    [{"name": "torch_compile", "params": {"mode": "reduce-overhead"}}],
    [{"name": "onnxruntime", "params": {"provider": "cuda"}}],
)


def gpu_only_passes(budget_s: float, batch_size: int = 256) -> Check:
    """Each GPU-only pass on SimpleModel: what ran (backend, tensor types, kernels), its p50 against
    the original's and its accuracy. A pass refused for this GPU's compute capability, or for a
    package this machine lacks (torchao, onnxruntime-gpu), is reported with its reason and is not a
    failure; a pass that was allowed and then broke is."""
    import torch

    from workers import zoo
    from workers.passes import PASSES, InvalidPassParams, plan
    from workers.passes.candidate import Candidate
    from workers.passes.context import PassContext
    from workers.passes.data import digits_for_model
    from workers.passes.fidelity import measure_fidelity
    from workers.passes.gpu import torchao_available
    from workers.passes.pipeline import run_pipeline
    from workers.passes.search import harness_measure

    entry = zoo.get("SimpleModel")
    model = entry.build(Path("/tmp/perfmon-gpu-check-zoo")).to("cuda:0").eval()
    capability = tuple(torch.cuda.get_device_capability(0))
    ctx = PassContext(input_spec=entry.input_spec, device="cuda:0", data=digits_for_model(entry))
    measure = harness_measure(entry.input_spec, batch_size, "cuda:0", 1, budget_s)
    base = measure(model)
    rows, problems = [], []
    for recipe in GPU_ONLY_PASSES:
        name = recipe[0]["name"]
        label = name + (str(recipe[0]["params"]) if "params" in recipe[0] else "")
        try:
            steps = plan(PASSES, recipe, device="cuda:0", has_labeled_data=True, capability=capability)
        except InvalidPassParams as exc:
            rows.append({"recipe": label, "refused": str(exc)})
            continue
        if name.startswith("torchao_") and torchao_available():
            rows.append({"recipe": label, "refused": torchao_available()})
            continue
        candidate, (report,) = run_pipeline(Candidate(model), steps, ctx)
        if not report.ok:
            if "no CUDA provider" in (report.error or ""):
                rows.append({"recipe": label, "refused": report.error})
            else:
                rows.append({"recipe": label, "error": report.error})
                problems.append(f"{label}: {report.error}")
            continue
        timing = measure(candidate.module)
        fidelity = measure_fidelity(model, candidate.module, ctx)
        rows.append(
            {
                "recipe": label,
                "backend": candidate.backend,
                "details": {k: v for k, v in report.details.items() if k != "finetune"},
                "p50_ms": timing["p50_ms"],
                "speedup": base["p50_ms"] / timing["p50_ms"],
                "accuracy": fidelity["accuracy"],
                "accuracy_original": fidelity["accuracy_original"],
            }
        )
    text = "; ".join(
        f"{r['recipe']}: "
        + (
            f"{r['speedup']:.2f}x, acc {r['accuracy']:.3f} ({r['backend']})"
            if "speedup" in r
            else f"refused: {r['refused'][:100]}"
            if "refused" in r
            else f"error {r['error'][:100]}"
        )
        for r in rows
    )
    detail = (
        f"SimpleModel, batch {batch_size}, compute capability {capability[0]}.{capability[1]}; "
        f"original p50 {base['p50_ms']:.3f} ms; {text}"
    )
    return Check(
        "GPU-only passes on SimpleModel", not problems, detail, {"rows": rows, "mismatches": problems}
    )


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "host": platform.node()}
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
        if torch.cuda.is_available():
            env["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        env["torch"] = None
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        env["nvidia_smi_L"] = smi.stdout.strip() or smi.stderr.strip()
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        env["driver"] = driver.stdout.strip().splitlines()[0] if driver.stdout.strip() else None
    return env


def write_report(out: Path, env: dict[str, Any], checks: list[Check], note: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-report.json").write_text(
        json.dumps({"env": env, "checks": [asdict(c) for c in checks], "note": note}, indent=1, default=str)
    )
    lines = [f"# perfmon gpu-check, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    lines += [f"- {key}: {value}" for key, value in env.items()]
    if note:
        lines += ["", note]
    lines += ["", "| check | result | detail |", "| --- | --- | --- |"]
    lines += [f"| {c.name} | {'pass' if c.passed else 'FAIL'} | {c.detail} |" for c in checks]
    for check in checks:
        if check.data.get("mismatches"):
            lines += [
                "",
                f"## {check.name}: outside tolerance",
                *[f"- {m}" for m in check.data["mismatches"][:40]],
            ]
        if check.data.get("output_tail") and not check.passed:
            lines += ["", f"## {check.name}: output", "```", check.data["output_tail"], "```"]
    (out / "gpu-report.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-report")))
    parser.add_argument("--rounds", type=int, default=5, help="nvidia-smi comparisons per phase")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timing, both tools")
    parser.add_argument("--tests-timeout", type=int, default=240)
    args = parser.parse_args()

    env = environment()
    if not env.get("cuda_available"):
        reason = (
            "no GPU to check: torch.cuda.is_available() is false"
            if env.get("torch")
            else "torch is not importable"
        )
        write_report(args.out, env, [], note=reason)
        print(f"gpu-check: {reason}; report in {args.out}")
        return 2
    checks = []
    steps = [
        ("gpu-marked tests", lambda: run_gpu_tests(args.tests_timeout)),
        ("sampler vs nvidia-smi", lambda: compare_sampler_with_smi(args.rounds)),
        ("harness vs torch.utils.benchmark on CUDA", lambda: compare_harness_with_timer(args.min_run_time)),
        ("out-of-memory sweep", out_of_memory_sweep),
        ("GPU optimization passes", lambda: gpu_passes(args.min_run_time)),
        ("GPU-only passes on SimpleModel", lambda: gpu_only_passes(args.min_run_time)),
    ]
    for name, step in steps:
        try:
            check = step()
        except Exception as exc:  # one failing check must not hide the others' findings
            check = Check(name, False, f"{type(exc).__name__}: {exc}")
        checks.append(check)
        print(f"gpu-check: {check.name}: {'pass' if check.passed else 'FAIL'}: {check.detail}", flush=True)
    write_report(args.out, env, checks)
    print(f"gpu-check: report in {args.out}/gpu-report.md")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
