"""Pruning: L1 unstructured (the article's, made permanent) and structured pruning that really
removes neurons and channels, so the model gets smaller and faster."""

from __future__ import annotations

import copy
import warnings
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


ATTENTION_NOTE = (
    "attention model: only the feed-forward layers' inner width is pruned; the attention heads and "
    "the residual width (shared by embeddings, norms and every block) stay whole"
)


def _attention_ignored(model: nn.Module) -> list[nn.Module] | None:
    """For a model with attention, every prunable layer except the feed-forward inner ones (None
    for other models). Pruning the residual width would cut ``nn.MultiheadAttention``'s fused
    in-projection and any bare ``nn.Parameter`` (a learned position embedding) that Torch-Pruning
    can only guess a dimension for; the feed-forward inner width is read by one Linear only."""
    if not any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
        return None
    inner = {
        id(m.linear1)
        for m in model.modules()
        if isinstance(m, nn.TransformerEncoderLayer | nn.TransformerDecoderLayer)
    }
    if not inner:
        raise ValueError(
            "attention layers outside nn.TransformerEncoderLayer/DecoderLayer: their head layout is "
            "unknown, so structured pruning refuses rather than break them"
        )
    return [
        m for m in model.modules() if isinstance(m, (*PRUNABLE, nn.MultiheadAttention)) and id(m) not in inner
    ]


def structured(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """Remove a fraction of each layer's output neurons or channels (smallest L2 norm first) and the
    matching inputs of the layers that read them, found through Torch-Pruning's dependency graph
    (DepGraph), so coupled layers (residual adds, BatchNorm) stay consistent. In attention models only
    the feed-forward inner width is pruned (``ATTENTION_NOTE``). Then fine-tune: on the labeled data
    when there is one, else to match the original's outputs on generated inputs."""
    import torch_pruning as tp

    model = copy.deepcopy(candidate.module).to(ctx.device)
    example = ctx.example_batch(2)
    before = sum(p.numel() for p in model.parameters())
    attention_ignored = _attention_ignored(model)
    with warnings.catch_warnings():
        # The "unwrapped parameters" warning names parameters no kept group touches here.
        warnings.simplefilter("ignore", UserWarning)
        pruner = tp.pruner.MetaPruner(
            model,
            example,
            importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=params["amount"],
            ignored_layers=attention_ignored if attention_ignored is not None else _output_layers(model),
            root_module_types=[nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d],
        )
    ctx.step("structured pruning: removing neurons and channels")
    pruner.step()
    after = sum(p.numel() for p in model.parameters())
    if after >= before:
        raise ValueError("nothing could be removed: every layer is coupled to the model's output")
    notes = [f"parameters {before:,} -> {after:,} ({1 - after / before:.0%} removed)"]
    if attention_ignored is not None:
        notes.append(ATTENTION_NOTE)
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
