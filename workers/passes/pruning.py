"""Pruning: L1 unstructured (the article's, made permanent) and structured pruning that really
removes neurons and channels, so the model gets smaller and faster."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torch import nn
from torch.nn.utils import prune

from workers.passes import NO_DENSE_SPEEDUP
from workers.passes.candidate import Candidate
from workers.passes.context import PassContext, PassOutcome
from workers.passes.training import train_student

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def l1_unstructured(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """The article's ``prune.l1_unstructured`` on every Linear and Conv weight, with the masks made
    permanent (``prune.remove``): a mask left attached costs a multiply on every call."""
    model = copy.deepcopy(candidate.module)
    amount = params["amount"]
    layers = [m for m in model.modules() if isinstance(m, PRUNABLE)]
    if not layers:
        raise ValueError("no Linear or Conv layer to prune")
    for layer in layers:
        prune.l1_unstructured(layer, "weight", amount=amount)
        prune.remove(layer, "weight")
    zero = sum(int((layer.weight == 0).sum()) for layer in layers)
    total = sum(layer.weight.numel() for layer in layers)
    sparsity = zero / total
    return PassOutcome(
        candidate.after("prune_l1_unstructured", module=model),
        notes=(f"{sparsity:.1%} of the pruned layers' weights are now zero", NO_DENSE_SPEEDUP),
        details={"weight_sparsity": sparsity, "layers": len(layers)},
    )


def _output_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose outputs are the model's outputs: their output width is the model's contract."""
    last = None
    for module in model.modules():
        if isinstance(module, PRUNABLE):
            last = module
    return [last] if last is not None else []


def structured(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """Remove a fraction of each layer's output neurons or channels (smallest L2 norm first) and the
    matching inputs of the layers that read them, found through Torch-Pruning's dependency graph
    (DepGraph), so coupled layers (residual adds, BatchNorm) stay consistent. Then fine-tune: on the
    labeled data when there is one, else to match the original's outputs on generated inputs."""
    import torch_pruning as tp

    model = copy.deepcopy(candidate.module).to(ctx.device)
    example = ctx.example_batch(2)
    before = sum(p.numel() for p in model.parameters())
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=params["amount"],
        ignored_layers=_output_layers(model),
        # Attention projections are coupled through the head split; leaving them whole keeps the
        # model correct (Torch-Pruning needs per-model head settings to prune them safely).
        root_module_types=[nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d],
    )
    ctx.step("structured pruning: removing neurons and channels")
    pruner.step()
    after = sum(p.numel() for p in model.parameters())
    if after >= before:
        raise ValueError("nothing could be removed: every layer is coupled to the model's output")
    notes = [f"parameters {before:,} -> {after:,} ({1 - after / before:.0%} removed)"]
    history: list[dict] = []
    if params["finetune_epochs"] > 0:
        teacher = None if ctx.data is not None else copy.deepcopy(candidate.module).to(ctx.device)
        model, history = train_student(
            model, teacher, ctx, epochs=params["finetune_epochs"], lr=params["lr"], label="fine-tune"
        )
        notes.append(
            f"fine-tuned {len(history)} epochs on "
            + (f"{ctx.data.name}'s train split" if ctx.data is not None else "the original's outputs")
        )
    return PassOutcome(
        candidate.after("prune_structured", module=model.eval()),
        notes=tuple(notes),
        details={"params_before": before, "params_after": after, "finetune": history},
    )
