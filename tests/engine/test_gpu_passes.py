"""The GPU-only passes (torchao int8/float8, 2:4 sparsity, CUDA graphs, ORT's CUDA provider): where
each is refused and why, on any machine; what each makes, on a GPU (``gpu``-marked, run by
scripts/gpu-check)."""

from __future__ import annotations

import pytest
import torch

from workers import zoo
from workers.passes import PASSES, InvalidPassParams, catalogue, plan
from workers.passes.candidate import Candidate
from workers.passes.context import PassContext
from workers.passes.pipeline import run_pipeline

GPU_ONLY = ("torchao_int8_weight_only", "torchao_int8_dynamic", "torchao_float8", "sparsity_2_4")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("name", GPU_ONLY)
def test_a_gpu_pass_is_refused_on_the_cpu_naming_the_pass(name) -> None:
    with pytest.raises(InvalidPassParams, match=f"pass '{name}' needs a CUDA GPU, and the device is cpu"):
        plan(PASSES, [{"name": name}], device="cpu", has_labeled_data=False)


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (
            {"name": "torch_compile", "params": {"mode": "reduce-overhead"}},
            "pass 'torch_compile', parameter 'mode': 'reduce-overhead' needs a CUDA GPU",
        ),
        (
            {"name": "onnxruntime", "params": {"provider": "cuda"}},
            "pass 'onnxruntime', parameter 'provider': 'cuda' needs a CUDA GPU",
        ),
    ],
)
def test_cuda_only_choices_are_refused_on_the_cpu(requested, message) -> None:
    with pytest.raises(InvalidPassParams, match=message):
        plan(PASSES, [requested], device="cpu", has_labeled_data=False)


@pytest.mark.parametrize(
    ("name", "capability", "refused"),
    [
        ("torchao_float8", (8, 0), "compute capability 8.9 or newer, and cuda:0 is 8.0"),
        ("torchao_float8", (8, 9), None),
        ("torchao_float8", (9, 0), None),
        ("sparsity_2_4", (7, 5), "compute capability 8.0 or newer, and cuda:0 is 7.5"),
        ("sparsity_2_4", (8, 0), None),
        ("torchao_int8_dynamic", (7, 0), None),
        ("torchao_float8", None, None),  # unknown: the worker checks the GPU it has
    ],
)
def test_a_gpu_too_old_for_the_kernels_is_refused(name, capability, refused) -> None:
    def check():
        return plan(PASSES, [{"name": name}], device="cuda:0", has_labeled_data=False, capability=capability)

    if refused:
        with pytest.raises(InvalidPassParams, match=refused):
            check()
    else:
        assert [s.decl.name for s in check()] == [name]


def test_the_catalogue_says_where_gpu_passes_run() -> None:
    listed = {p["name"]: p for p in catalogue()}
    assert listed["torchao_float8"]["devices"] == ["cuda"]
    assert listed["torchao_float8"]["min_compute_capability"] == "8.9"
    assert listed["sparsity_2_4"]["min_compute_capability"] == "8.0"
    assert listed["torchao_int8_weight_only"]["needs_package"] == "torchao"
    provider = next(p for p in listed["onnxruntime"]["params"] if p["name"] == "provider")
    assert provider["choice_devices"] == {"cuda": ["cuda"]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal a worker without a GPU gives")
@pytest.mark.parametrize("name", GPU_ONLY)
def test_a_gpu_pass_run_without_a_gpu_fails_with_its_reason(name) -> None:
    """A job planned for a node's GPU that lands on a worker whose torch sees none fails the pass
    with a reason (and the pipeline's other passes still run), never a traceback from a kernel."""
    entry = zoo.get("SimpleModel")
    ctx = PassContext(input_spec=entry.input_spec, device="cuda:0")
    steps = plan(PASSES, [{"name": name}], device="cuda:0", has_labeled_data=False)
    _, (report,) = run_pipeline(Candidate(entry.build()), steps, ctx)
    assert not report.ok
    assert "needs a CUDA GPU, and this worker's torch sees none" in report.error


def test_the_2_4_mask_keeps_the_two_largest_of_every_four() -> None:
    from workers.passes.gpu import mask_2_4

    weight = torch.tensor([[1.0, -4.0, 3.0, 0.5, 0.125, 0.25, -0.375, 0.5]])
    assert mask_2_4(weight).tolist() == [[0.0, -4.0, 3.0, 0.0, 0.0, 0.0, -0.375, 0.5]]
    dense = torch.randn(64, 128)
    groups = (mask_2_4(dense) != 0).reshape(64, 32, 4).sum(dim=-1)
    assert (groups == 2).all()


def _gpu_run(name: str, params: dict | None = None):
    entry = zoo.get("SimpleModel")
    model = entry.build().to("cuda:0").eval()
    ctx = PassContext(input_spec=entry.input_spec, device="cuda:0")
    steps = plan(
        PASSES,
        [{"name": name, "params": params or {}}],
        device="cuda:0",
        has_labeled_data=False,
        capability=torch.cuda.get_device_capability(0),
    )
    candidate, (report,) = run_pipeline(Candidate(model), steps, ctx)
    x = entry.input_spec.make(64, device="cuda:0")
    with torch.inference_mode():
        return candidate, report, candidate.module(x).float(), model(x)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("name", ["torchao_int8_weight_only", "torchao_int8_dynamic", "torchao_float8"])
def test_torchao_quantizes_the_linear_layers_and_says_which_tensors_ran(name) -> None:
    from workers.passes.gpu import torchao_available

    missing = torchao_available()
    if missing:
        pytest.skip(reason=missing)
    if name == "torchao_float8" and torch.cuda.get_device_capability(0) < (8, 9):
        pytest.skip(reason="float8 needs compute capability 8.9")
    candidate, report, got, expected = _gpu_run(name)
    assert report.ok, report.error
    assert report.details["quantized_layers"] and report.details["weight_tensor_types"] != ["Parameter"]
    assert candidate.backend.startswith("torchao")
    assert (got.argmax(1) == expected.argmax(1)).float().mean() > 0.9


@pytest.mark.gpu
@needs_cuda
def test_2_4_sparsity_compresses_the_weights_and_runs_on_sparse_kernels() -> None:
    if torch.cuda.get_device_capability(0) < (8, 0):
        pytest.skip(reason="2:4 sparsity needs compute capability 8.0")
    candidate, report, got, expected = _gpu_run("sparsity_2_4")
    assert report.ok, report.error
    assert report.details["sparse_layers"], report.details
    assert "2:4 sparse" in candidate.backend
    assert got.shape == expected.shape and torch.isfinite(got).all()


@pytest.mark.gpu
@needs_cuda
def test_cuda_graphs_and_ort_cuda_provider_name_what_ran() -> None:
    candidate, report, got, expected = _gpu_run("torch_compile", {"mode": "reduce-overhead"})
    assert report.ok, report.error
    assert "CUDA graphs" in candidate.backend
    assert torch.allclose(got, expected, atol=1e-3)
    candidate, report, _, _ = _gpu_run("onnxruntime", {"provider": "cuda"})
    if report.ok:
        assert candidate.backend.startswith("onnxruntime CUDAExecutionProvider")
    else:  # the CPU-only onnxruntime package: refused with its reason, not a silent CPU run
        assert "no CUDA provider" in report.error
