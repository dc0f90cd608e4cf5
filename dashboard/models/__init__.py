"""perfmon's models, one module per kind; import them from here."""

from dashboard.models.alerting import (
    OPEN_STATES,
    Alert,
    AlertAction,
    AlertActionStatus,
    AlertEvent,
    AlertState,
    Channel,
    ChannelKind,
    Comparator,
    Delivery,
    DeliveryStatus,
    NoDataPolicy,
    Rule,
    Severity,
    Silence,
)
from dashboard.models.datasets import Dataset
from dashboard.models.deployments import (
    Deployment,
    DeploymentChange,
    DeploymentChangeKind,
    VerificationVerdict,
)
from dashboard.models.history import MetricSeries, RawBlock, RollupBlock
from dashboard.models.jobs import TERMINAL_STATUSES, Job, JobKind, JobStatus
from dashboard.models.nodes import Node, natural_key, natural_order
from dashboard.models.registry import ModelFileFormat, ModelVersion, ModelVersionStatus, RegisteredModel
from dashboard.models.results import Regression, Verdict
from dashboard.models.roles import ROLE_RANK, Role, UserRole
from dashboard.models.tokens import TOKEN_PREFIX, ApiToken, TokenRefused, hash_token

__all__ = [
    "OPEN_STATES",
    "Alert",
    "AlertAction",
    "AlertActionStatus",
    "AlertEvent",
    "AlertState",
    "Channel",
    "ChannelKind",
    "Comparator",
    "Delivery",
    "DeliveryStatus",
    "Deployment",
    "DeploymentChange",
    "DeploymentChangeKind",
    "NoDataPolicy",
    "Rule",
    "Severity",
    "Silence",
    "VerificationVerdict",
    "ROLE_RANK",
    "Role",
    "TokenRefused",
    "UserRole",
    "TERMINAL_STATUSES",
    "TOKEN_PREFIX",
    "ApiToken",
    "Dataset",
    "Job",
    "JobKind",
    "JobStatus",
    "MetricSeries",
    "ModelFileFormat",
    "ModelVersion",
    "ModelVersionStatus",
    "Node",
    "RawBlock",
    "RegisteredModel",
    "Regression",
    "RollupBlock",
    "Verdict",
    "hash_token",
    "natural_key",
    "natural_order",
]
