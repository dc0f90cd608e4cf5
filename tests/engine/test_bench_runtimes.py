"""Runtimes: eager, torch.compile and ONNX Runtime, each recorded in the result as what ran."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tests.engine import test_registry_samples as samples
from workers import zoo
from workers.bench.harness import BenchSpec, run_benchmark
from workers.registry.onnx_format import load_session
from workers.zoo import InputSpec

# Short runs: tests check what the harness decided, not figures.
QUICK = {"threads": 1, "min_duration_s": 0.05, "time_budget_s": 0.5, "iterations": 5}
FLAT_8 = InputSpec(shape=(None, 8), dtype="float32", low=0.0, high=1.0)


def test_torch_compile_compiles_each_batch_size_before_warm_up_and_reports_it_apart() -> None:
    entry = zoo.get("SimpleModel")
    spec = BenchSpec(batch_sizes=(1, 4), runtime="torch_compile", **QUICK)
    result = run_benchmark(entry.build(), entry.input_spec, spec).to_json()

    assert result["env"]["runtime"] == "torch_compile" and result["env"]["compile_mode"] == "default"
    assert result["spec"]["runtime"] == "torch_compile" and result["spec"]["compile_mode"] == "default"
    for run in result["runs"]:
        assert run["error"] is None
        # The compiling call compiled this batch size's graph; warm-up and timing compiled nothing,
        # so no compile time is among the latencies.
        assert run["compiled_graphs"] == 1
        assert run["graphs_compiled_while_timing"] == 0
        assert run["compile_s"] > 0
        assert run["iterations"] == len(run["times_ms"]) >= 1
        assert run["warmup_iterations"] >= 1
    assert result["compile_s"] == pytest.approx(sum(run["compile_s"] for run in result["runs"]))


def test_every_batch_size_is_compiled_even_past_dynamos_recompile_limit() -> None:
    import torch._dynamo.config as dynamo_config

    model = nn.Sequential(nn.Linear(8, 5), nn.ReLU())
    spec = BenchSpec(batch_sizes=(1, 2, 3), runtime="torch_compile", **QUICK)
    # A limit of 1 stands in for dynamo's 8 against a 16-point sweep: past it dynamo would run the
    # model eagerly, and eager latencies would be reported as compiled ones.
    with dynamo_config.patch(recompile_limit=1):
        result = run_benchmark(model, FLAT_8, spec).to_json()
    assert [(run["error"], run["compiled_graphs"]) for run in result["runs"]] == [(None, 1)] * 3


def test_a_call_that_compiles_nothing_is_not_timed_as_compiled() -> None:
    from workers.bench.runtimes import compile_call

    compiled = torch.compile(nn.Sequential(nn.Linear(8, 4)), dynamic=False)
    x = torch.ones(2, 8)
    assert compile_call(compiled, x, "default").graphs == 1
    with pytest.raises(RuntimeError, match="compiled no graph for input shape"):
        compile_call(compiled, x, "default")  # this shape is compiled already: nothing new runs


def test_torch_compile_without_a_cxx_compiler_fails_each_point_with_the_reason() -> None:
    import torch._inductor.config as inductor_config

    # A graph no other test compiles, and no cache, so inductor really looks for the compiler.
    model = nn.Sequential(nn.Linear(8, 3), nn.Tanh())
    spec = BenchSpec(batch_sizes=(1, 2), runtime="torch_compile", **QUICK)
    with inductor_config.patch({"cpp.cxx": ("/nonexistent/g++",), "fx_graph_cache": False}):
        result = run_benchmark(model, FLAT_8, spec).to_json()

    assert result["partial"] and [run["batch_size"] for run in result["runs"]] == [1, 2]
    for run in result["runs"]:
        assert "needs a working C++ compiler" in run["error"]


def test_an_onnxruntime_run_is_checked_against_torch_and_says_so_in_its_env() -> None:
    entry = zoo.get("SimpleModel")
    spec = BenchSpec(batch_sizes=(1, 4), runtime="onnxruntime", ort_graph_optimization="basic", **QUICK)
    result = run_benchmark(entry.build(), entry.input_spec, spec).to_json()

    env = result["env"]
    assert env["runtime"] == "onnxruntime"
    assert env["ort_provider"] == "cpu" and env["ort_session_provider"] == "CPUExecutionProvider"
    assert env["ort_graph_optimization"] == "basic" and env["onnx_source"] == "exported from torch"
    assert 0 <= env["ort_max_abs_diff"] <= 1e-4
    assert result["spec"]["ort_provider"] == "cpu" and result["compile_s"] is None
    assert [run["error"] for run in result["runs"]] == [None, None]


class ShapeSpecialised(nn.Module):
    """Its Python branch on the batch size is frozen into the ONNX graph at the export's batch (2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[0] == 2 else x * 3


def test_an_export_that_disagrees_with_torch_is_refused_before_timing() -> None:
    spec = BenchSpec(batch_sizes=(1,), runtime="onnxruntime", **QUICK)
    with pytest.raises(ValueError, match="ONNX Runtime's outputs differ from torch's"):
        run_benchmark(ShapeSpecialised(), FLAT_8, spec)


def test_onnxruntime_refuses_precisions_other_than_fp32() -> None:
    with pytest.raises(ValueError, match="precision fp16 is not available"):
        BenchSpec(batch_sizes=(1,), runtime="onnxruntime", precision="fp16", **QUICK)


def test_an_onnx_artifact_runs_on_onnxruntime_and_is_recorded_so(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(samples.onnx_mlp())
    spec_784 = InputSpec.from_json(samples.SPEC_784)

    # "eager" (the default) cannot run an ONNX file as PyTorch: the result says what did run.
    result = run_benchmark(load_session(path), spec_784, BenchSpec(batch_sizes=(2,), **QUICK)).to_json()
    assert result["env"]["runtime"] == "onnxruntime" and result["env"]["onnx_source"] == "registry artifact"
    assert result["env"]["ort_provider"] == "cpu" and result["runs"][0]["error"] is None

    with pytest.raises(ValueError, match="ONNX file: it runs on ONNX Runtime, not torch.compile"):
        run_benchmark(
            load_session(path), spec_784, BenchSpec(batch_sizes=(2,), runtime="torch_compile", **QUICK)
        )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"runtime": "tvm"}, "Runtime 'tvm' is unknown: eager, torch_compile or onnxruntime"),
        (
            {"runtime": "eager", "compile_mode": "default"},
            "compile_mode applies to runtime torch_compile only",
        ),
        ({"runtime": "torch_compile", "compile_mode": "fast"}, "compile_mode 'fast' is unknown"),
        ({"runtime": "onnxruntime", "ort_provider": "cuda"}, "cuda provider cannot run on device cpu"),
        (
            {"runtime": "onnxruntime", "ort_graph_optimization": "max"},
            "ort_graph_optimization 'max' is unknown",
        ),
        (
            {"runtime": "torch_compile", "ort_provider": "cpu"},
            "ort_provider applies to runtime onnxruntime only",
        ),
    ],
)
def test_runtime_options_are_checked_by_the_spec(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchSpec.from_params({"batch_sizes": [1], "iterations": 1, **params})


def test_runtime_defaults_are_resolved_so_the_spec_records_what_runs() -> None:
    assert BenchSpec(batch_sizes=(1,), iterations=1).runtime == "eager"
    compiled = BenchSpec(batch_sizes=(1,), iterations=1, runtime="torch_compile")
    assert compiled.compile_mode == "default" and compiled.ort_provider is None
    ort = BenchSpec(batch_sizes=(1,), iterations=1, runtime="onnxruntime")
    assert (ort.ort_provider, ort.ort_graph_optimization, ort.compile_mode) == ("cpu", "all", None)
    assert (
        BenchSpec(batch_sizes=(1,), iterations=1, runtime="onnxruntime", device="cuda:0").ort_provider
        == "cuda"
    )
