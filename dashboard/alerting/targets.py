"""What a rule watches, validated once at the edge and compiled into what the evaluator needs.

Three kinds of target (``Rule.target``):

- a resource metric with its scope: ``{"metric": "gpu.temperature_c", "node": "gpu-a", "gpu": 0}``
  (``gpu`` only for ``gpu.*`` metrics). The metric is a sampler metric (METRIC_UNITS) or one the
  node already has history for; the node must exist (a rule for a node that has never reported
  is refused: a typo must not become a rule that silently never fires).
- a deployment latency statistic: ``{"deployment": "digits-prod", "stat": "mean", "window": "5m"}``.
  ``stat`` is mean, p50, p95 or p99; ``window`` is a duration ("30s", "5m", "1h") over which the
  statistic is computed, or ``"last_N"``: the mean of the last N values (the article's "average
  of the last five checks"). The values are what the deployment's sources recorded: each probe's
  or scrape's value of that statistic (``deploy:<name>:<stat>_ms``) and every ingested sample
  (``deploy:<name>:sample_ms``).
- benchmark regressions: ``{"benchmark": "regression", "model": "name@3" (optional),
  "node": "gpu-a" (optional)}``. Each judged benchmark is one value per model and node: 1 when a
  batch size got a "regression" verdict, else 0 (dashboard.results.regressions publishes it), so
  ``>= 1`` fires on a regression and the next clean benchmark resolves it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from dashboard.deployments.series import latency_metric

STATS = ("mean", "p50", "p95", "p99")
MAX_WINDOW_S = 24 * 3600
MAX_LAST_N = 1000
BENCH_METRIC = "bench:regression:"  # + model name
# "no data" by default after this many of the source's intervals without a value.
NO_DATA_INTERVALS = 3
MIN_NO_DATA_S = 10.0

_WINDOW = re.compile(r"^(?P<n>[1-9][0-9]*)(?P<unit>[smh])$")
_LAST = re.compile(r"^last_(?P<n>[1-9][0-9]*)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


class TargetError(ValueError):
    """The target (or the condition against it) cannot be watched; the message says why."""


@dataclass(frozen=True)
class Watch:
    """A compiled target. The evaluator feeds it every point whose metric is in ``metrics`` (or
    starts with ``prefix``), whose node is ``node`` (any when None) and GPU ``gpu``."""

    kind: str  # "metric" | "deployment" | "benchmark"
    metrics: tuple[str, ...]
    node: str | None
    gpu: int | None
    labels: dict[str, Any]
    prefix: str | None = None
    stat: str = "last"  # "last", "mean", "p50", ...
    window_s: float | None = None
    last_n: int | None = None
    no_data_after_s: float | None = None
    deployment_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_window(window: Any) -> tuple[float | None, int | None]:
    """("5m" -> (300, None)), ("last_5" -> (None, 5)); raises TargetError."""
    if not isinstance(window, str):
        raise TargetError('window must be a duration such as "5m" or "last_N" such as "last_5"')
    if match := _LAST.match(window):
        n = int(match["n"])
        if n > MAX_LAST_N:
            raise TargetError(f"window last_{n}: at most last_{MAX_LAST_N}")
        return None, n
    if match := _WINDOW.match(window):
        seconds = int(match["n"]) * _UNIT_S[match["unit"]]
        if seconds > MAX_WINDOW_S:
            raise TargetError(f"window {window}: at most 24h")
        return float(seconds), None
    raise TargetError(f'window {window!r}: expected a duration such as "30s", "5m", "1h" or "last_5"')


def validate(target: Any) -> dict[str, Any]:
    """The target normalized (only its known keys), or TargetError naming what is wrong."""
    if not isinstance(target, dict):
        raise TargetError("target must be an object with metric+node, deployment+stat, or benchmark")
    if "deployment" in target:
        return _validate_deployment(target)
    if "benchmark" in target:
        return _validate_benchmark(target)
    if "metric" in target:
        return _validate_metric(target)
    raise TargetError("target needs one of: metric (with node), deployment (with stat), benchmark")


def _unexpected(target: dict, allowed: set[str]) -> None:
    extra = sorted(set(target) - allowed)
    if extra:
        raise TargetError(f"unknown target field(s): {', '.join(extra)}")


def _validate_metric(target: dict) -> dict[str, Any]:
    from dashboard.models import MetricSeries, Node
    from workers.sampler.sample import METRIC_UNITS

    _unexpected(target, {"metric", "node", "gpu"})
    metric, node_name, gpu = target.get("metric"), target.get("node"), target.get("gpu")
    if not isinstance(metric, str) or not metric:
        raise TargetError("metric must be a metric name such as gpu.temperature_c")
    if metric.startswith("deploy:"):
        raise TargetError('deployment latency: use {"deployment": ..., "stat": ..., "window": ...}')
    if not isinstance(node_name, str) or not node_name:
        raise TargetError("node is required for a resource metric")
    node = Node.objects.filter(name=node_name).first()
    if node is None:
        raise TargetError(f"unknown node {node_name!r}")
    known = metric in METRIC_UNITS or MetricSeries.objects.filter(node=node, metric=metric).exists()
    if not known:
        raise TargetError(f"unknown metric {metric!r}")
    if metric.startswith("gpu."):
        if not isinstance(gpu, int) or isinstance(gpu, bool) or gpu < 0:
            raise TargetError(f"{metric} needs gpu: the index of one of {node_name}'s GPUs")
        gpus = {g.get("index") for g in (node.info or {}).get("gpus") or [] if isinstance(g, dict)}
        has_series = MetricSeries.objects.filter(node=node, metric=metric, gpu_index=gpu).exists()
        if gpu not in gpus and not has_series:
            raise TargetError(f"node {node_name!r} has no GPU {gpu}")
    elif gpu is not None:
        raise TargetError(f"{metric} is a host metric: gpu must be null")
    return {"metric": metric, "node": node_name, "gpu": gpu}


def _validate_deployment(target: dict) -> dict[str, Any]:
    from dashboard.models import Deployment

    _unexpected(target, {"deployment", "stat", "window"})
    name, stat = target.get("deployment"), target.get("stat", "mean")
    if not isinstance(name, str) or not Deployment.objects.filter(name=name).exists():
        raise TargetError(f"unknown deployment {name!r}")
    if stat not in STATS:
        raise TargetError(f"stat {stat!r}: one of {', '.join(STATS)}")
    window = target.get("window", "5m")
    parse_window(window)
    return {"deployment": name, "stat": stat, "window": window}


def _validate_benchmark(target: dict) -> dict[str, Any]:
    from dashboard.models import Node

    _unexpected(target, {"benchmark", "model", "node"})
    if target["benchmark"] != "regression":
        raise TargetError('benchmark: the one benchmark rule type is "regression"')
    model, node = target.get("model"), target.get("node")
    if model is not None and (not isinstance(model, str) or not model):
        raise TargetError("model must be a model name such as SimpleModel or name@3")
    if node is not None and not Node.objects.filter(name=node).exists():
        raise TargetError(f"unknown node {node!r}")
    return {"benchmark": "regression", "model": model, "node": node}


def check_condition(target: dict[str, Any], op: str, threshold: float, resolve: float | None) -> None:
    """Conditions that can never fire, or always would, or whose hysteresis points the wrong way."""
    from dashboard.alerting.state import OPS

    if op not in OPS:
        raise TargetError(f"op {op!r}: one of {', '.join(OPS)}")
    for name, value in (("threshold", threshold), ("resolve_threshold", resolve)):
        if value is not None and (
            not isinstance(value, int | float) or value != value or abs(value) == float("inf")
        ):
            raise TargetError(f"{name} must be a finite number")
    if resolve is not None:
        if op in (">", ">=") and resolve > threshold:
            raise TargetError(
                f"resolve_threshold {resolve:g} must not be above threshold {threshold:g} for {op}"
            )
        if op in ("<", "<=") and resolve < threshold:
            raise TargetError(
                f"resolve_threshold {resolve:g} must not be below threshold {threshold:g} for {op}"
            )
    never = always = False
    if "benchmark" in target:  # values are 0 or 1
        never = OPS[op](0, threshold) is False and OPS[op](1, threshold) is False
        always = OPS[op](0, threshold) and OPS[op](1, threshold)
    elif "deployment" in target or _unit(target) in ("%", "bytes", "bytes/s", "W", "MHz", "count"):
        # latencies and these units are never negative; percentages never exceed 100
        never = (op == "<" and threshold <= 0) or (op == "<=" and threshold < 0)
        always = (op == ">=" and threshold <= 0) or (op == ">" and threshold < 0)
        if _unit(target) == "%":
            never = never or (op == ">" and threshold >= 100) or (op == ">=" and threshold > 100)
            always = always or (op == "<=" and threshold >= 100) or (op == "<" and threshold > 100)
    if never:
        raise TargetError(f"{op} {threshold:g} can never be true for this target")
    if always:
        raise TargetError(f"{op} {threshold:g} is always true for this target")


def _unit(target: dict) -> str:
    from dashboard.history.query import unit_of

    return unit_of(target["metric"]) if "metric" in target else ""


def check_durations(**durations: Any) -> None:
    """for_s, keep_firing_for_s, repeat_interval_s, no_data_after_s: whole seconds, 0..30 days."""
    for name, value in durations.items():
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 30 * 86400:
            raise TargetError(f"{name} must be whole seconds between 0 and 30 days")
    if durations.get("no_data_after_s") == 0:
        raise TargetError("no_data_after_s must be at least 1 s (or null for the source's default)")


def series_labels(target: dict[str, Any]) -> dict[str, Any]:
    if "deployment" in target:
        return {"deployment": target["deployment"], "stat": target["stat"], "window": target["window"]}
    if "benchmark" in target:
        return {k: v for k, v in (("model", target.get("model")), ("node", target.get("node"))) if v}
    labels = {"node": target["node"], "metric": target["metric"]}
    if target.get("gpu") is not None:
        labels["gpu"] = str(target["gpu"])
    return labels


def fingerprint(rule_id: int, labels: dict[str, Any]) -> str:
    """Hash of the rule and the series labels: one open episode per rule and series."""
    blob = json.dumps([rule_id, labels], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def compile_target(
    target: dict[str, Any], nodes: dict[str, Any] | None = None, deployments: dict[str, Any] | None = None
) -> Watch:
    """The Watch for a stored target; raises TargetError when what it names is gone or the target
    is malformed (a rule edited in the admin). ``nodes``/``deployments``: {name: row} preloaded by
    the evaluator so that 1,000 rules load in a few queries; looked up one by one when None."""
    from dashboard.models import Deployment, Node

    if not isinstance(target, dict):
        raise TargetError("target must be an object")
    try:
        labels = series_labels(target)
    except KeyError as exc:
        raise TargetError(f"target lacks {exc.args[0]}") from None
    if "deployment" in target:
        name = target["deployment"]
        deployment = (
            deployments.get(name) if deployments is not None else Deployment.objects.filter(name=name).first()
        )
        if deployment is None:
            raise TargetError(f"unknown deployment {name!r}")
        if target["stat"] not in STATS:
            raise TargetError(f"stat {target['stat']!r}: one of {', '.join(STATS)}")
        window_s, last_n = parse_window(target["window"])
        interval = deployment.probe_interval_s or 60
        return Watch(
            kind="deployment",
            metrics=(
                latency_metric(deployment.name, target["stat"]),
                latency_metric(deployment.name, "sample"),
            ),
            node=deployment.node_name,
            gpu=None,
            labels=labels,
            stat=target["stat"],
            window_s=window_s,
            last_n=last_n,
            no_data_after_s=max(MIN_NO_DATA_S, NO_DATA_INTERVALS * interval),
            deployment_id=deployment.pk,
        )
    if "benchmark" in target:
        model = target.get("model")
        return Watch(
            kind="benchmark",
            metrics=(BENCH_METRIC + model,) if model else (),
            prefix=None if model else BENCH_METRIC,
            node=target.get("node"),
            gpu=None,
            labels=labels,
            no_data_after_s=None,  # benchmarks run when someone runs them: silence is not an outage
        )
    name = target["node"]
    node = nodes.get(name) if nodes is not None else Node.objects.filter(name=name).first()
    if node is None:
        raise TargetError(f"unknown node {name!r}")
    return Watch(
        kind="metric",
        metrics=(target["metric"],),
        node=name,
        gpu=target.get("gpu"),
        labels=labels,
        no_data_after_s=max(MIN_NO_DATA_S, NO_DATA_INTERVALS * node.sample_interval_s),
    )
