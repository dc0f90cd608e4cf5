"""GPU-only passes: torchao's int8 and float8 quantization, and 2:4 semi-structured sparsity.

Each one refuses to run without a CUDA GPU of the compute capability its kernels need (checked here
against the GPU the worker has; the API and the form check the node's recorded capability first),
and reports which backend and which tensor types actually ran, so a user sees whether torchao's
quantized kernels or cuSPARSELt/CUTLASS did the work.

torchao's int8 and float8 layers are tensor subclasses whose fast path is torch.compile: without it
they dispatch per op and are often slower than the original (the anchors' trackers' first complaint),
so ``compile`` defaults to on and the job's measurement decides. torchao is optional (``pip install
'perfmon[gpu]'``); without it these passes fail with that advice and every other pass still runs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from workers.passes import PASSES
from workers.passes.candidate import Candidate
from workers.passes.context import PassContext, PassOutcome
from workers.passes.quantization import HALF_DTYPES, _CastIO

# From the declarations, so the API's refusal and the worker's agree: float8 tensor cores came with
# Ada and Hopper (8.9), 2:4 sparse tensor cores with Ampere (8.0).
FLOAT8_CAPABILITY = PASSES["torchao_float8"].min_capability
SPARSE_CAPABILITY = PASSES["sparsity_2_4"].min_capability
DTYPES = {**HALF_DTYPES, "fp32": torch.float32}
# torchao config class for each pass; the classes exist from torchao 0.10 on.
TORCHAO_CONFIGS = {
    "torchao_int8_weight_only": ("Int8WeightOnlyConfig", "int8 weight-only"),
    "torchao_int8_dynamic": (
        "Int8DynamicActivationInt8WeightConfig",
        "int8 dynamic activations, int8 weights",
    ),
    "torchao_float8": ("Float8DynamicActivationFloat8WeightConfig", "float8 dynamic activations and weights"),
}


def gpu_capability(device: str, what: str, need: tuple[int, int] | None = None) -> tuple[int, int]:
    """The CUDA compute capability of ``device``; ValueError naming ``what`` when there is no GPU
    there or it is older than ``need``."""
    if not device.startswith("cuda"):
        raise ValueError(f"{what} needs a CUDA GPU, and the device is {device}")
    if not torch.cuda.is_available():
        raise ValueError(f"{what} needs a CUDA GPU, and this worker's torch sees none")
    capability = tuple(torch.cuda.get_device_capability(device))
    if need is not None and capability < need:
        raise ValueError(
            f"{what} needs a GPU of compute capability {need[0]}.{need[1]} or newer; "
            f"{torch.cuda.get_device_name(device)} is {capability[0]}.{capability[1]}"
        )
    return capability  # type: ignore[return-value]


def torchao_available() -> str | None:
    """None when torchao's quantize_ API can be imported, else why not (shown to the user)."""
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_  # noqa: F401
    except ImportError as exc:
        return f"torchao 0.10 or newer is not installed on this worker (pip install 'perfmon[gpu]'): {exc}"
    return None


def _compile(module: nn.Module, ctx: PassContext) -> tuple[nn.Module, float]:
    compiled = torch.compile(module, dynamic=False)
    started = time.perf_counter()
    with torch.inference_mode():
        compiled(ctx.example_batch(ctx.extra.get("first_batch_size", 1)))
        torch.cuda.synchronize()
    return compiled, time.perf_counter() - started


def _linear_filter(multiple: int):
    def accept(module: nn.Module, fqn: str) -> bool:
        return (
            isinstance(module, nn.Linear)
            and module.in_features % multiple == 0
            and module.out_features % multiple == 0
        )

    return accept


def _torchao(name: str, candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    config_name, label = TORCHAO_CONFIGS[name]
    need = FLOAT8_CAPABILITY if name == "torchao_float8" else None
    capability = gpu_capability(ctx.device, f"torchao {label}", need)
    missing = torchao_available()
    if missing:
        raise ValueError(missing)
    import torchao
    import torchao.quantization as tq

    dtype = DTYPES[params["dtype"]]
    model = copy.deepcopy(candidate.module).to(ctx.device, dtype=dtype).eval()
    # float8 matmuls (torch._scaled_mm) need both dimensions to be multiples of 16.
    accept = _linear_filter(16 if name == "torchao_float8" else 1)
    chosen = [fqn for fqn, m in model.named_modules() if accept(m, fqn)]
    if not chosen:
        raise ValueError(f"no Linear layer that torchao {label} can quantize")
    ctx.step(f"torchao: {label}")
    tq.quantize_(model, getattr(tq, config_name)(), filter_fn=accept)
    modules = dict(model.named_modules())
    weight_types = sorted({type(modules[fqn].weight).__name__ for fqn in chosen})
    module: nn.Module = model if dtype == torch.float32 else _CastIO(model, dtype)
    notes = [f"{len(chosen)} Linear layers quantized ({config_name}; weights are {', '.join(weight_types)})"]
    compile_s = None
    if params["compile"]:
        ctx.step(f"torchao: {label}: torch.compile")
        module, compile_s = _compile(module, ctx)
        notes.append(f"compiled in {compile_s:.1f} s (not counted in the latencies)")
    else:
        notes.append("not compiled: torchao's quantized tensors run op by op, often slower than the original")
    runs = "torch.compile inductor" if params["compile"] else "eager"
    return PassOutcome(
        candidate.after(
            name,
            module=module,
            backend=f"torchao {label} ({params['dtype']}, {runs}, {', '.join(weight_types)})",
        ),
        notes=tuple(notes),
        details={
            "torchao_version": getattr(torchao, "__version__", None),
            "config": config_name,
            "quantized_layers": chosen,
            "weight_tensor_types": weight_types,
            "dtype": params["dtype"],
            "compiled": params["compile"],
            "compile_s": compile_s,
            "compute_capability": f"{capability[0]}.{capability[1]}",
        },
    )


def torchao_int8_weight_only(
    candidate: Candidate, params: Mapping[str, Any], ctx: PassContext
) -> PassOutcome:
    return _torchao("torchao_int8_weight_only", candidate, params, ctx)


def torchao_int8_dynamic(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    return _torchao("torchao_int8_dynamic", candidate, params, ctx)


def torchao_float8(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    return _torchao("torchao_float8", candidate, params, ctx)


def mask_2_4(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` with the two smallest-magnitude values of every 4 consecutive inputs set to zero
    (the 2:4 pattern the sparse tensor cores skip). The last dimension must be a multiple of 4."""
    rows, cols = weight.shape
    groups = weight.reshape(rows, cols // 4, 4)
    keep = groups.abs().topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return (groups * mask).reshape(rows, cols)


def sparsity_2_4(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """Prune every Linear layer that fits to 2:4 (magnitude, no fine-tuning) and store its weight as
    ``torch.sparse.to_sparse_semi_structured``, run by cuSPARSELt (or CUTLASS) sparse kernels.
    Layers whose shape the kernels do not take stay dense and are named in the notes."""
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured
    from torch.sparse.semi_structured import (
        SparseSemiStructuredTensorCUSPARSELT,
        SparseSemiStructuredTensorCUTLASS,
    )

    capability = gpu_capability(ctx.device, "2:4 semi-structured sparsity", SPARSE_CAPABILITY)
    dtype = HALF_DTYPES[params["dtype"]]
    wanted = params["kernels"]
    cusparselt = bool(
        getattr(torch.backends, "cusparselt", None) and torch.backends.cusparselt.is_available()
    )
    notes = []
    if wanted == "cusparselt" and not cusparselt:
        wanted = "cutlass"
        notes.append("this torch build has no cuSPARSELt: CUTLASS sparse kernels used instead")
    kind = SparseSemiStructuredTensorCUTLASS if wanted == "cutlass" else SparseSemiStructuredTensorCUSPARSELT
    limits = kind._DTYPE_SHAPE_CONSTRAINTS[dtype]
    model = copy.deepcopy(candidate.module).to(ctx.device, dtype=dtype).eval()
    sparse, dense = [], []
    ctx.step("2:4 sparsity: pruning and compressing Linear weights")
    forced = SparseSemiStructuredTensor._FORCE_CUTLASS
    SparseSemiStructuredTensor._FORCE_CUTLASS = wanted == "cutlass"  # picks the subclass at conversion
    try:
        for fqn, module in model.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            rows, cols = module.weight.shape
            if rows % limits.sparse_min_rows or cols % limits.sparse_min_cols:
                dense.append(f"{fqn} ({rows}x{cols})")
                continue
            pruned = mask_2_4(module.weight.detach()).contiguous()
            module.weight = nn.Parameter(to_sparse_semi_structured(pruned), requires_grad=False)
            sparse.append(fqn)
    finally:
        SparseSemiStructuredTensor._FORCE_CUTLASS = forced
    if not sparse:
        raise ValueError(
            f"no Linear layer has a shape the {wanted} 2:4 kernels take (multiples of "
            f"{limits.sparse_min_rows}x{limits.sparse_min_cols} in {params['dtype']}): {', '.join(dense)}"
        )
    notes.insert(
        0,
        f"{len(sparse)} Linear layers 2:4 sparse on {wanted} ({params['dtype']}); half their weights are zero",
    )
    if dense:
        notes.append(f"left dense (shape the kernels do not take): {', '.join(dense)}")
    notes.append("pruned by magnitude without fine-tuning: the accuracy change is measured, not assumed")
    return PassOutcome(
        candidate.after(
            "sparsity_2_4",
            module=_CastIO(model, dtype),
            backend=f"torch eager {params['dtype']} 2:4 sparse ({wanted}, {len(sparse)} layers)",
        ),
        notes=tuple(notes),
        details={
            "kernels": wanted,
            "sparse_layers": sparse,
            "dense_layers": dense,
            "dtype": params["dtype"],
            "compute_capability": f"{capability[0]}.{capability[1]}",
        },
    )
