"""How much an optimized model still does what the original did: accuracy on the held-out split
where the model has a labeled data set, else agreement with the original's outputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workers.passes.context import PassContext
from workers.passes.training import accuracy

AGREEMENT_BATCHES = 8
AGREEMENT_BATCH_SIZE = 32


def _on(model: nn.Module, x: torch.Tensor, device: str) -> torch.Tensor:
    return model(x.to(device)).float().cpu()


@torch.inference_mode()
def measure_fidelity(original: nn.Module, candidate: nn.Module, ctx: PassContext) -> dict[str, Any]:
    """{"accuracy", "accuracy_original", "agreement", "max_abs_error", "mean_abs_error", "basis"}.

    Accuracy (0..1) is measured on the held-out test split, which no pass trains or calibrates on.
    Agreement is the fraction of inputs whose top-1 class matches the original's; errors are over
    every output element, on the test split or on generated inputs (seeded, the same every time)."""
    if ctx.data is not None:
        xs = [ctx.data.test_x[i : i + 256] for i in range(0, len(ctx.data.test_x), 256)]
    else:
        generator = torch.Generator().manual_seed(ctx.seed + 99)
        xs = [
            ctx.input_spec.make(AGREEMENT_BATCH_SIZE, generator=generator) for _ in range(AGREEMENT_BATCHES)
        ]
    # The original's outputs are the same for every candidate of a search: computed once per context
    # (the model is kept with them, so its id cannot be reused by another while they are held).
    held = ctx.extra.setdefault("_fidelity_reference", {})
    if id(original) not in held:
        held.clear()
        held[id(original)] = (original, [_on(original, x, ctx.device) for x in xs])
    references = held[id(original)][1]
    agree = total = 0
    max_error, error_sum, elements = 0.0, 0.0, 0
    for x, expected in zip(xs, references, strict=True):
        got = _on(candidate, x, ctx.device)
        difference = (got - expected).abs()
        max_error = max(max_error, float(difference.max()))
        error_sum += float(difference.sum())
        elements += difference.numel()
        if expected.dim() >= 2:
            agree += int((got.argmax(dim=-1) == expected.argmax(dim=-1)).sum())
            total += expected.shape[0] * (expected[..., 0].numel() // expected.shape[0])
    out: dict[str, Any] = {
        "agreement": agree / total if total else None,
        "max_abs_error": max_error,
        "mean_abs_error": error_sum / max(1, elements),
        "basis": f"{ctx.data.name} held-out split" if ctx.data is not None else "generated inputs",
        "accuracy": None,
        "accuracy_original": None,
    }
    if ctx.data is not None:
        run = lambda model: lambda x: _on(model, x, ctx.device)  # noqa: E731
        out["accuracy"] = accuracy(run(candidate), ctx.data.test_x, ctx.data.test_y)
        out["accuracy_original"] = accuracy(run(original), ctx.data.test_x, ctx.data.test_y)
    return out


def relative_drop(original: float, now: float) -> float:
    """Relative accuracy loss, INC's default criterion: (original - now) / original; negative = better."""
    return (original - now) / original if original else 0.0
