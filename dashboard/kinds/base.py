"""What a job kind declares, once: its params, where it is queued, how it runs, what follows success,
and how its result is shown. The form, the API, the worker and the pages all read the declaration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from dashboard.models import Job

# The version of the result document a run writes; readers of older results check it.
RESULT_SCHEMA_VERSION = 2


class InvalidJob(ValueError):
    """A submission we refuse, with a message fit to show the user as is.

    ``problems`` are (field, message) pairs, field being a params key ("batch_sizes"), "model",
    "node" or "" when no one field is to blame; the web form shows each beside its field."""

    def __init__(self, message: str, field: str = "", problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [(field, message)]


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: ``status`` is a JobStatus value; ``result`` is kept even when it failed or
    was cancelled (the points measured before stay visible)."""

    status: str
    result: dict[str, Any] | None
    error: str = ""


@dataclass
class JobContext:
    """What a kind's run function gets: the job row (read-only by convention), progress reports
    (fraction 0..1, step text), a cancel poll, and model loading (a zoo name or "name@N" -> (module,
    input spec)). The run function returns a RunOutcome and writes nothing itself."""

    job: Job
    progress: Callable[[float, str], None]
    should_stop: Callable[[], bool]
    load_model: Callable[[str], tuple[Any, Any]]
    data_dir: Path


def _device_queue(params: dict[str, Any], node: str) -> str:
    from dashboard.queues import queue_for

    return queue_for(node, params.get("device", "cpu"))


@dataclass(frozen=True)
class JobKindSpec:
    name: str
    title: str
    params_model: type[BaseModel]
    # (params as validated, node, model) -> params made canonical; raises InvalidJob for what
    # cannot run there (a pass that does not apply, a GPU the node lacks).
    prepare: Callable[[dict[str, Any], str, str], dict[str, Any]]
    run: Callable[[JobContext], RunOutcome]
    # (params, node) -> the Celery queue the job is sent to: by default its node's queue for the device.
    queue_rule: Callable[[dict[str, Any], str], str] = lambda params, node: _device_queue(params, node)
    on_success: Callable[[Job], None] = lambda job: None
    result_template: str = "dashboard/_job_result.html"
    # params -> the device the job needs on its node ("cpu", "cuda:N"): target checks read it.
    device_of: Callable[[dict[str, Any]], str] = lambda params: params.get("device", "cpu")
