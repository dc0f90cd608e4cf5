"""Training the zoo's MLPs on the digits, cached as safetensors, and measuring their accuracy.

Training is deterministic: the model starts from the zoo's seeded weights, batches come from a
seeded generator, nothing reads the global RNG, and it runs on one thread, because sums split
across threads round differently and the weights would then depend on the machine's core count.
A few seconds on one CPU core (one thread is also the fastest for layers this small).

The cache file is ``<weights_dir>/<name>.safetensors`` (never a pickle). Its metadata records the
training recipe; a file made by another recipe, or one that does not load, is retrained over.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from workers.zoo.digits import DigitsData, Split, load_digits, side_for_input_size

if TYPE_CHECKING:
    from workers.zoo import ZooEntry

# Change any of these and every cached file is retrained (the recipe is stored with the weights).
RECIPE = {
    "version": 1,
    "epochs": 15,
    "batch_size": 128,
    "lr": 3e-3,
    "optimizer": "adam",
    "seed": 0,
    "threads": 1,
}


def digits_for(entry: ZooEntry) -> DigitsData:
    """The digits shaped for entry's input (28x28 for 784 inputs, 32x32 for 1024)."""
    if entry.dataset != "digits":
        raise ValueError(f"{entry.name} is not trained on a data set")
    shape = entry.input_spec.shape
    if len(shape) != 2 or shape[1] is None:
        raise ValueError(f"{entry.name} does not take flat images: {shape}")
    return load_digits(side_for_input_size(shape[1]))


def train(model: nn.Module, data: DigitsData) -> nn.Module:
    """Train model in place on data's train split with RECIPE; returns it in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    loss_fn = nn.CrossEntropyLoss()
    loader = data.loader("train", batch_size=RECIPE["batch_size"], shuffle=True, seed=RECIPE["seed"])
    threads = torch.get_num_threads()
    torch.set_num_threads(RECIPE["threads"])
    try:
        model.train()
        for _epoch in range(RECIPE["epochs"]):
            for images, labels in loader:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(images), labels).backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def train_or_load(entry: ZooEntry, model: nn.Module, weights_dir: Path) -> nn.Module:
    """model with entry's trained weights: loaded from weights_dir when cached, else trained and cached."""
    from safetensors.torch import load_file

    path = Path(weights_dir) / f"{entry.name}.safetensors"
    if is_cached(entry, weights_dir):
        try:
            model.load_state_dict(load_file(str(path)), strict=True)
            return model.eval()
        except Exception:  # a damaged cache file is retrained over below
            pass
    train(model, digits_for(entry))
    _save_atomically(model, path, {"recipe": json.dumps(RECIPE, sort_keys=True), "model": entry.name})
    return model


def is_cached(entry: ZooEntry, weights_dir: Path) -> bool:
    """Whether weights_dir holds entry's weights trained with this RECIPE (train_or_load then only
    loads them, in milliseconds, instead of training for a minute)."""
    from safetensors import safe_open

    path = Path(weights_dir) / f"{entry.name}.safetensors"
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored_recipe = (handle.metadata() or {}).get("recipe")
    except Exception:  # a damaged cache file: train_or_load trains over it
        return False
    return stored_recipe == json.dumps(RECIPE, sort_keys=True)


def _save_atomically(model: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    # Two workers may train at once: each writes its own temporary file and renames it into place.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@torch.inference_mode()
def evaluate_accuracy(model: nn.Module, entry: ZooEntry, split: Split = "test") -> float:
    """Fraction (0..1) of split's digits that model classifies correctly (argmax of its logits).

    model may be any callable taking a float32 batch [B, inputs] on the CPU and returning logits."""
    data = digits_for(entry)
    correct = total = 0
    for images, labels in data.loader(split, batch_size=256):
        logits = model(images)
        correct += int((logits.argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / total
