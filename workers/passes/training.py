"""Short training loops the passes share: fine-tuning after pruning, and distillation."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from workers.passes.context import LabeledData, PassContext

VALIDATION_FRACTION = 0.15


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.7,
) -> torch.Tensor:
    """The seed article's distillation loss: alpha * KL(softened student || softened teacher) * T²
    + (1 - alpha) * cross-entropy with the labels. T² keeps the soft term's gradients at the
    scale of the hard one's as T grows (Hinton et al. 2015). Without labels, the soft term alone."""
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
    ) * (temperature**2)
    if labels is None:
        return soft
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


def split_validation(data: LabeledData, seed: int) -> tuple[LabeledData, torch.Tensor, torch.Tensor]:
    """(data with a smaller train split, validation x, validation y): early stopping looks at the
    validation part of the train split, so the held-out test accuracy reported stays honest."""
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(len(order) * VALIDATION_FRACTION))
    val, train = order[:cut], order[cut:]
    trimmed = LabeledData(data.train_x[train], data.train_y[train], data.test_x, data.test_y, data.name)
    return trimmed, data.train_x[val], data.train_y[val]


@torch.inference_mode()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    correct = 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
    return correct / max(1, len(y))


def train_student(
    student: nn.Module,
    teacher: nn.Module | None,
    ctx: PassContext,
    *,
    epochs: int,
    lr: float,
    temperature: float = 4.0,
    alpha: float = 0.7,
    patience: int = 3,
    batch_size: int = 64,
    label: str = "fine-tune",
) -> tuple[nn.Module, list[dict]]:
    """Train ``student`` (in place, then restored to its best epoch) and return it with a history of
    {epoch, loss, val_accuracy} per epoch. With labeled data: cross-entropy, or the KD loss when a
    teacher is given, stopping after ``patience`` epochs without a better validation accuracy.
    Without labels: match the teacher's logits on generated inputs (the teacher is required then)."""
    history: list[dict] = []
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    if teacher is not None:
        teacher.eval()
    if ctx.data is None:
        if teacher is None:
            raise ValueError("training without a labeled data set needs the original model as teacher")
        generator = torch.Generator().manual_seed(ctx.seed + 7)
        for epoch in range(epochs):
            ctx.step(f"{label}: epoch {epoch + 1}/{epochs}")
            student.train()
            total = 0.0
            for _ in range(32):
                x = ctx.input_spec.make(batch_size, device=ctx.device, generator=generator)
                with torch.no_grad():
                    target = teacher(x)
                loss = F.mse_loss(student(x), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item()
            history.append({"epoch": epoch + 1, "loss": total / 32, "val_accuracy": None})
        return student.eval(), history

    data, val_x, val_y = split_validation(ctx.data, ctx.seed)
    best_state, best_accuracy, stale = copy.deepcopy(student.state_dict()), -1.0, 0
    for epoch in range(epochs):
        student.train()
        total, batches = 0.0, 0
        for x, y in data.train_batches(batch_size, seed=ctx.seed + epoch):
            logits = student(x)
            if teacher is None:
                loss = F.cross_entropy(logits, y)
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                loss = kd_loss(logits, teacher_logits, y, temperature, alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        student.eval()
        val_accuracy = accuracy(student, val_x, val_y)
        history.append({"epoch": epoch + 1, "loss": total / max(1, batches), "val_accuracy": val_accuracy})
        ctx.step(
            f"{label}: epoch {epoch + 1}/{epochs}, loss {total / max(1, batches):.3f}, validation accuracy {val_accuracy:.3f}"
        )
        if val_accuracy > best_accuracy:
            best_state, best_accuracy, stale = copy.deepcopy(student.state_dict()), val_accuracy, 0
        else:
            stale += 1
            if stale >= patience:
                break
    student.load_state_dict(best_state)
    return student.eval(), history
