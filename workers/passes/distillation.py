"""Knowledge distillation (the seed article's section 3): a smaller student learns from the model
(the teacher) with the KD loss, on the model's labeled data set, stopping early on validation accuracy."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from workers.passes.candidate import Candidate
from workers.passes.context import PassContext, PassOutcome
from workers.passes.pruning import structured
from workers.passes.training import train_student


def distill(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """The student is a width-reduced copy of the teacher (``width`` of each hidden layer, made by
    structured pruning without fine-tuning), or a module the caller supplies as ``ctx.extra["student"]``
    (a zoo student). It is trained from scratch-initialised pruned weights by the KD loss."""
    if ctx.data is None:
        raise ValueError(
            "distillation needs a labeled data set (the zoo's digits, or an uploaded .npz with x and y)"
        )
    teacher = copy.deepcopy(candidate.module).to(ctx.device).eval()
    student = ctx.extra.get("student")
    origin = "the supplied student"
    if student is None:
        shrunk = structured(
            candidate, {"amount": 1.0 - params["width"], "finetune_epochs": 0, "lr": 0.0}, ctx
        )
        student = shrunk.candidate.module
        origin = f"the teacher at {params['width']:.0%} width"
    student = copy.deepcopy(student).to(ctx.device)
    student, history = train_student(
        student,
        teacher,
        ctx,
        epochs=params["epochs"],
        lr=params["lr"],
        temperature=params["temperature"],
        alpha=params["alpha"],
        patience=params["patience"],
        label="distillation",
    )
    best = max((h["val_accuracy"] for h in history), default=None)
    return PassOutcome(
        candidate.after("distill", module=student),
        notes=(
            f"student: {origin}; {len(history)} epochs, best validation accuracy {best:.3f}"
            f" (T = {params['temperature']:g}, soft-loss weight {params['alpha']:g})",
        ),
        details={"epochs": history, "student": origin},
    )
