"""Optimization passes: each takes a model (a ``Candidate``) and returns a new one with a report.

This package's top level imports no torch (the web process lists and checks passes with it); the
passes, pipelines and search live in its modules: ``pipeline.run_pipeline``, ``candidate.Candidate``,
``context.PassContext``, ``search.auto_optimize``.

``PASSES`` is the one registry: name -> declaration (where it applies, its parameters with ranges,
its run function). The engine validates pipelines with it and the API, the form and the docs list it.
"""

from __future__ import annotations

from workers.passes.declare import InvalidPassParams, ParamDecl, PassDecl
from workers.passes.planning import Step, plan

NO_DENSE_SPEEDUP = (
    "zeroed weights are still multiplied by dense kernels, so do not expect this model to run faster "
    "or use less memory; use structured pruning for that"
)
GRAPH_LEVELS = ("disable", "basic", "extended", "all")

_PASSES = (
    PassDecl(
        name="prune_l1_unstructured",
        title="L1 unstructured pruning",
        summary="Zero the smallest weights of every Linear and Conv layer (the article's prune.l1_unstructured, made permanent).",
        run_ref="workers.passes.pruning:l1_unstructured",
        params=(
            ParamDecl("amount", "float", 0.3, "fraction of each layer's weights set to zero", 0.0, 0.95),
        ),
        caveat=NO_DENSE_SPEEDUP,
    ),
    PassDecl(
        name="prune_structured",
        title="Structured pruning",
        summary="Remove whole neurons and channels (smallest L2 norm) and the inputs that read them, then fine-tune.",
        run_ref="workers.passes.pruning:structured",
        params=(
            ParamDecl(
                "amount", "float", 0.5, "fraction of each layer's neurons or channels removed", 0.05, 0.9
            ),
            ParamDecl("finetune_epochs", "int", 5, "fine-tuning epochs after pruning (0: none)", 0, 100),
            ParamDecl("lr", "float", 1e-3, "fine-tuning learning rate (Adam)", 1e-6, 1.0),
        ),
    ),
    PassDecl(
        name="distill",
        title="Knowledge distillation",
        summary="Train a narrower student from the model with the KD loss (KL on softened outputs x T², plus cross-entropy).",
        run_ref="workers.passes.distillation:distill",
        needs_labeled_data=True,
        params=(
            ParamDecl(
                "width", "float", 0.5, "student width as a fraction of the teacher's hidden layers", 0.1, 0.9
            ),
            ParamDecl("epochs", "int", 20, "most training epochs", 1, 200),
            ParamDecl(
                "patience", "int", 4, "stop after this many epochs without better validation accuracy", 1, 50
            ),
            ParamDecl("temperature", "float", 4.0, "softmax temperature T", 1.0, 20.0),
            ParamDecl(
                "alpha",
                "float",
                0.7,
                "weight of the soft (teacher) loss; 1 - alpha goes to the labels",
                0.0,
                1.0,
            ),
            ParamDecl("lr", "float", 3e-3, "learning rate (Adam)", 1e-6, 1.0),
        ),
    ),
    PassDecl(
        name="quantize_dynamic",
        title="Dynamic int8 (torch)",
        summary="int8 weights for Linear and LSTM layers, activations quantized per call (fbgemm on x86).",
        run_ref="workers.passes.quantization:quantize_dynamic",
        devices=("cpu",),
        params=(
            ParamDecl(
                "engine", "choice", "fbgemm", "quantized kernel library", choices=("fbgemm", "x86", "qnnpack")
            ),
        ),
    ),
    PassDecl(
        name="half_precision",
        title="fp16 / bf16",
        summary="Weights and activations in 16-bit floats; inputs and outputs stay float32.",
        run_ref="workers.passes.quantization:half_precision",
        params=(ParamDecl("dtype", "choice", "bf16", "16-bit format", choices=("bf16", "fp16")),),
    ),
    PassDecl(
        name="onnxruntime",
        title="ONNX export + ONNX Runtime",
        summary="Export to ONNX (dynamic batch axis), check outputs against torch, run with ONNX Runtime.",
        run_ref="workers.passes.onnx_runtime:onnxruntime",
        params=(
            ParamDecl(
                "graph_optimization",
                "choice",
                "all",
                "ORT graph optimization level",
                choices=GRAPH_LEVELS,
            ),
            ParamDecl(
                "provider",
                "choice",
                "auto",
                "execution provider: auto is CUDA on a GPU device, CPU otherwise",
                choices=("auto", "cpu", "cuda"),
                choice_devices={"cuda": ("cuda",)},
            ),
        ),
        extra={"produces": "onnx"},
    ),
    PassDecl(
        name="ort_quantize_dynamic",
        title="ONNX Runtime dynamic int8",
        summary="ORT's dynamic int8 quantization of the exported graph.",
        run_ref="workers.passes.onnx_runtime:ort_quantize_dynamic",
        accepts=("onnx",),
        params=(ParamDecl("per_channel", "bool", False, "one scale per output channel"),),
    ),
    PassDecl(
        name="ort_quantize_static",
        title="ONNX Runtime static int8 (QDQ)",
        summary="ORT's static int8 in QDQ format, calibrated on the model's training data.",
        run_ref="workers.passes.onnx_runtime:ort_quantize_static",
        accepts=("onnx",),
        params=(
            ParamDecl(
                "calibration",
                "choice",
                "minmax",
                "calibration method",
                choices=("minmax", "entropy", "percentile"),
            ),
            ParamDecl("calibration_batches", "int", 16, "batches of 32 inputs used to calibrate", 1, 1000),
            ParamDecl("per_channel", "bool", True, "one scale per output channel"),
        ),
    ),
    PassDecl(
        name="torch_compile",
        title="torch.compile",
        summary="Compile with inductor; reduce-overhead adds CUDA graphs on a GPU. Compile time is reported apart.",
        run_ref="workers.passes.compile:torch_compile",
        params=(
            ParamDecl(
                "mode",
                "choice",
                "default",
                "inductor mode",
                choices=("default", "reduce-overhead", "max-autotune"),
                # reduce-overhead is inductor plus CUDA graphs; on a CPU it would be "default" by another name.
                choice_devices={"reduce-overhead": ("cuda",)},
            ),
        ),
    ),
    *(
        PassDecl(
            name=name,
            title=title,
            summary=summary,
            run_ref=f"workers.passes.gpu:{name}",
            devices=("cuda",),
            min_capability=capability,
            needs_package="torchao",
            params=(
                ParamDecl(
                    "dtype",
                    "choice",
                    "bf16",
                    "precision of the layers left unquantized",
                    choices=("bf16", "fp16", "fp32"),
                ),
                ParamDecl(
                    "compile",
                    "bool",
                    True,
                    "torch.compile the result (torchao's quantized layers are slow without it)",
                ),
            ),
        )
        for name, title, summary, capability in (
            (
                "torchao_int8_weight_only",
                "torchao int8 weight-only",
                "int8 weights, per channel; activations stay 16-bit (torchao Int8WeightOnlyConfig). GPU only.",
                None,
            ),
            (
                "torchao_int8_dynamic",
                "torchao int8 dynamic",
                "int8 weights and int8 activations quantized per token at run time (torchao Int8DynamicActivationInt8WeightConfig). GPU only.",
                None,
            ),
            (
                "torchao_float8",
                "torchao float8",
                "float8 (e4m3) weights and activations quantized at run time (torchao Float8DynamicActivationFloat8WeightConfig). GPU of compute capability 8.9+ (Ada, Hopper).",
                (8, 9),
            ),
        )
    ),
    PassDecl(
        name="sparsity_2_4",
        title="2:4 semi-structured sparsity",
        summary="Prune Linear weights to 2 of every 4 and run them on sparse tensor cores (torch.sparse.to_sparse_semi_structured). GPU of compute capability 8.0+.",
        run_ref="workers.passes.gpu:sparsity_2_4",
        devices=("cuda",),
        min_capability=(8, 0),
        caveat="magnitude pruning without fine-tuning: check the accuracy change before using it",
        params=(
            ParamDecl("dtype", "choice", "fp16", "16-bit format of the model", choices=("fp16", "bf16")),
            ParamDecl(
                "kernels",
                "choice",
                "cusparselt",
                "sparse matmul library (CUTLASS where cuSPARSELt is missing)",
                choices=("cusparselt", "cutlass"),
            ),
        ),
    ),
    PassDecl(
        name="inference_cache",
        title="Inference cache",
        summary="A bounded LRU of outputs keyed by a hash of the input, measured on a replayed request trace.",
        run_ref="workers.passes.cache:inference_cache",
        caveat="only repeated inputs get faster; the model itself is unchanged",
        params=(
            ParamDecl("capacity", "int", 1024, "most outputs held", 1, 1_000_000),
            ParamDecl("requests", "int", 2000, "requests in the replayed trace", 10, 100_000),
            ParamDecl(
                "repeat_fraction", "float", 0.5, "chance that a request repeats a recent input", 0.0, 1.0
            ),
            ParamDecl(
                "distinct_pool", "int", 200, "how many recent inputs a repeat is drawn from", 1, 100_000
            ),
        ),
    ),
)

PASSES: dict[str, PassDecl] = {decl.name: decl for decl in _PASSES}


def catalogue() -> list[dict]:
    """Every pass's declaration, for GET /api/passes and the form."""
    return [decl.to_json() for decl in _PASSES]


__all__ = ["PASSES", "InvalidPassParams", "ParamDecl", "PassDecl", "Step", "catalogue", "plan"]
