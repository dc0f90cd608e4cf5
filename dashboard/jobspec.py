"""What a job submission may contain, validated once at the edge (web form and REST API alike)."""

from __future__ import annotations

import re

from pydantic import ValidationError

from dashboard.kinds import KINDS
from dashboard.kinds.base import InvalidJob
from dashboard.kinds.benchmark import BenchmarkParams
from workers import zoo
from workers.bench.spec import MAX_BATCH_SIZE, MAX_ITERATIONS

__all__ = ["MAX_BATCH_SIZE", "MAX_ITERATIONS", "BenchmarkParams", "InvalidJob", "validate_submission"]


# What the user calls each parameter: one value of a list field, and the list itself.
FIELD_LABELS = {
    "batch_sizes": ("Batch size", "Batch sizes"),
    "iterations": ("Iterations", "Iterations"),
    "device": ("Device", "Device"),
    "precision": ("Precision", "Precision"),
    "threads": ("Threads", "Threads"),
    "time_budget_s": ("Time budget (s)", "Time budget (s)"),
    "concurrency": ("Concurrency", "Concurrency sweep"),
    "devices": ("GPU", "GPUs"),
    "runtime": ("Runtime", "Runtime"),
    "compile_mode": ("torch.compile mode", "torch.compile mode"),
    "ort_provider": ("ONNX Runtime provider", "ONNX Runtime provider"),
    "ort_graph_optimization": ("ONNX Runtime graph optimization", "ONNX Runtime graph optimization"),
}


_VERSION_DIGITS = 9
_VERSION = re.compile(rf"[0-9]{{1,{_VERSION_DIGITS}}}")
MAX_NAME_CHARS = 300


def _check_text(field: str, text: str) -> None:
    """Refuse what no name can be before it reaches the database: JSON lets "\ud800" (a lone
    surrogate) through, which the database driver cannot encode, and names are short."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJob(f"{field} must be valid Unicode text (it holds a lone surrogate)", field) from None
    if len(text) > MAX_NAME_CHARS:
        raise InvalidJob(
            f"{field} is {len(text)} characters long; names have at most {MAX_NAME_CHARS}", field
        )


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def validate_submission(
    kind: object, model: object, params: object, node: object = None
) -> tuple[str, str, dict, str]:
    """(kind, model, params, node) made canonical, or InvalidJob naming the first problem.

    node "" means any node (CPU jobs only); a named node must be registered, and a GPU job's
    device must be one of that node's GPUs."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidJob(f"unknown job kind {kind!r}; known kinds: {', '.join(KINDS)}", "kind")
    if not isinstance(model, str):
        raise InvalidJob("model must be a zoo name or a registered model's name[@version]", "model")
    _check_text("model", model)
    if model not in zoo.ZOO:
        model = resolve_registered(model)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidJob("params must be a JSON object")
    try:
        parsed = KINDS[kind].params_model.model_validate(params)
    except ValidationError as exc:
        problems = describe_problems(exc)
        raise InvalidJob("; ".join(message for _, message in problems), problems=problems) from None
    params = parsed.model_dump(exclude_none=True)
    spec = KINDS[kind]
    node = validate_target(node, spec.device_of(params))
    return kind, model, spec.prepare(params, node, model), node


def resolve_registered(text: str) -> str:
    """A registered model as "name@version": "name" means its newest ready version."""
    from dashboard.models import ModelVersion, ModelVersionStatus

    name, _, wanted = text.partition("@")
    # ASCII digits only, and few enough for a database integer: str.isdigit() accepts "²", which
    # int() refuses, and 20 nines overflow SQLite's INTEGER.
    if wanted and not _VERSION.fullmatch(wanted):
        raise InvalidJob(
            f"model {_clip(text)!r}: the version after @ must be a number of at most {_VERSION_DIGITS} digits",
            "model",
        )
    versions = ModelVersion.objects.filter(model__name=name).order_by("-version")
    if not versions.exists():
        raise InvalidJob(
            f"unknown model {text!r}; known models: {', '.join(zoo.names())}, or a registered model's name[@version]",
            "model",
        )
    if wanted:
        version = versions.filter(version=int(wanted)).first()
        if version is None:
            raise InvalidJob(f"model {name!r} has no version {wanted}", "model")
        if version.status != ModelVersionStatus.READY:
            reason = f": {version.status_reason}" if version.status_reason else ""
            raise InvalidJob(f"model {name}@{wanted} is {version.status}{reason}", "model")
    else:
        version = versions.filter(status=ModelVersionStatus.READY).first()
        if version is None:
            raise InvalidJob(f"model {name!r} has no version ready to run yet", "model")
    return f"{name}@{version.version}"


def validate_target(node: object, device: str) -> str:
    from dashboard.models import Node

    if node in (None, ""):
        if device != "cpu":
            raise InvalidJob(f"device {device!r} needs a node: say which node's GPU to use", "node")
        return ""
    if not isinstance(node, str):
        raise InvalidJob("node must be a node name", "node")
    _check_text("node", node)
    registered = Node.objects.filter(name=node).first()
    if registered is None:
        known = ", ".join(Node.objects.values_list("name", flat=True)) or "none yet"
        raise InvalidJob(f"unknown node {node!r}; known nodes: {known}", "node")
    if device != "cpu":
        if registered.info.get("simulated"):
            raise InvalidJob(f"node {node}'s GPUs are simulated; run on its CPU or on a real GPU node")
        index = int(device.partition(":")[2])
        indices = [gpu.get("index") for gpu in registered.info.get("gpus", [])]
        if index not in indices:
            has = f"GPUs {', '.join(map(str, indices))}" if indices else "no GPU"
            raise InvalidJob(f"node {node!r} has no GPU {index} (it has {has})", "node")
    return node


def describe_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(params key, human message) per problem, e.g. ("batch_sizes", "Batch size 5000 is too large: at most 4096")."""
    return [_describe_one(error) for error in exc.errors()]


def _describe_one(error) -> tuple[str, str]:
    loc = tuple(error["loc"])
    field = str(loc[0]) if loc else ""
    one, many = FIELD_LABELS.get(field, (field, field))
    # An error on one value of a list ("batch_sizes", 0) names the value; on the list itself, the list.
    label = one if len(loc) > 1 else many
    value, ctx, kind = error.get("input"), error.get("ctx") or {}, error["type"]
    shown = repr(value) if isinstance(value, str) else str(value)
    if kind == "less_than_equal":
        return field, f"{label} {shown} is too large: at most {_num(ctx['le'])}"
    if kind == "less_than":
        return field, f"{label} {shown} is too large: it must be under {_num(ctx['lt'])}"
    if kind == "greater_than_equal":
        return field, f"{label} {shown} is too small: at least {_num(ctx['ge'])}"
    if kind == "greater_than":
        return field, f"{label} {shown} is too small: it must be more than {_num(ctx['gt'])}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return field, f"{label} must be a whole number, not {shown}"
    if kind in ("float_type", "float_parsing"):
        return field, f"{label} must be a number, not {shown}"
    if kind == "list_type":
        return field, f"{label} must be a list, e.g. [1, 8, 32], not {shown}"
    if kind == "too_short":
        return field, f"{label}: give at least {ctx['min_length']} value(s)"
    if kind == "too_long":
        return field, f"{label}: at most {ctx['max_length']} values, not {ctx['actual_length']}"
    if kind == "literal_error" and field == "runtime":
        return field, f"Runtime {shown} is unknown: eager, torch_compile or onnxruntime"
    if kind == "literal_error":
        return field, f"{label} must be {ctx['expected'].replace(chr(39), '')}, not {shown}"
    if kind == "string_pattern_mismatch":
        expected = '"cuda:N"' if field == "devices" else '"cpu" or "cuda:N"'
        return field, f"{label} must be {expected}, not {shown}"
    if kind == "extra_forbidden":
        known = ", ".join(FIELD_LABELS)
        return "", f"unknown parameter {field!r}; known parameters: {known}"
    if kind == "missing":
        return field, f"{label} is required"
    return field, f"{label}: {error['msg']}" if field else error["msg"]


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
