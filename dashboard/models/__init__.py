"""perfmon's models, one module per kind; import them from here."""

from dashboard.models.history import MetricSeries, RawBlock, RollupBlock
from dashboard.models.jobs import TERMINAL_STATUSES, Job, JobKind, JobStatus
from dashboard.models.nodes import Node
from dashboard.models.results import Regression
from dashboard.models.tokens import TOKEN_PREFIX, ApiToken, hash_token

__all__ = [
    "TERMINAL_STATUSES",
    "TOKEN_PREFIX",
    "ApiToken",
    "Job",
    "JobKind",
    "JobStatus",
    "MetricSeries",
    "Node",
    "RawBlock",
    "Regression",
    "RollupBlock",
    "hash_token",
]
