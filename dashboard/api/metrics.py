"""/api/metrics: metric history (one series over a range, at a bounded number of points) and the
catalog of nodes, devices and metrics that have history."""

from __future__ import annotations

from ninja import Router, Schema, Status

from dashboard.api.errors import Error
from dashboard.history import query

router = Router(tags=["metrics"])


class SeriesOut(Schema):
    node: str
    metric: str
    gpu: int | None
    unit: str
    resolution_s: int
    tier: str  # "raw", "1m" or "1h": the tier resolution_s names
    bucket_s: int
    start: float
    end: float
    first_ts: float | None  # the series' earliest sample; after start on a young install
    points: list[list[float]]


class CatalogMetricOut(Schema):
    metric: str
    gpu: int | None
    unit: str


class CatalogNodeOut(Schema):
    # Not "NodeOut": OpenAPI names schemas by class name, and /api/nodes has a NodeOut of its own.
    name: str
    online: bool
    last_seen: str
    gpus: list[int]
    metrics: list[CatalogMetricOut]


class CatalogOut(Schema):
    nodes: list[CatalogNodeOut]


def _int(raw: str | None, name: str, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise query.BadQuery(f"{name}={raw!r} is not an integer") from None


@router.get("/series", response={200: SeriesOut, 400: Error, 401: Error, 404: Error})
def get_series(
    request,
    node: str | None = None,
    metric: str | None = None,
    gpu: str | None = None,
    start: str | None = None,
    end: str | None = None,
    points: str | None = None,
):
    """One metric of one node (``gpu``: the GPU index; leave it out for host metrics) from ``start``
    to ``end`` (epoch seconds or ISO-8601; default the last hour), as at most ``points`` (1..5000,
    default 500) ``[epoch_s, avg, min, max]`` rows from the coarsest resolution (raw, 1 min, 1 h)
    that still gives that many over the part of the range that holds data. ``first_ts`` is the
    series' earliest sample: where it is after ``start``, history begins inside the range."""
    try:
        if not node or not metric:
            raise query.BadQuery(
                "node and metric are required, e.g. ?node=gpu-1&metric=gpu.temperature_c&gpu=0"
            )
        return query.series(
            node,
            metric,
            gpu=_int(gpu, "gpu", None),
            start=query.parse_time(start, "start"),
            end=query.parse_time(end, "end"),
            points=_int(points, "points", query.DEFAULT_POINTS),
        )
    except query.HistoryQueryError as exc:
        return Status(exc.status, {"error": str(exc)})


MAX_SERIES_PER_REQUEST = 200


class ManySeriesOut(Schema):
    node: str
    series: list[dict]


@router.get("/series/many", response={200: ManySeriesOut, 400: Error, 401: Error, 404: Error})
def get_many_series(
    request,
    node: str | None = None,
    series: str | None = None,
    start: str | None = None,
    end: str | None = None,
    points: str | None = None,
):
    """Several metrics of one node over one range in one request (a node page draws dozens):
    ``series`` is a comma-separated list of ``metric`` or ``metric:gpu``. Each entry of the answer
    is what /series would give for it, or ``{"metric", "gpu", "error"}`` for a series with no
    history, so one missing series does not fail the rest."""
    try:
        if not node or not series:
            raise query.BadQuery(
                "node and series are required, e.g. ?node=gpu-1&series=host.cpu_percent,gpu.temperature_c:0"
            )
        wanted = [_series_key(item) for item in series.split(",") if item.strip()]
        if len(wanted) > MAX_SERIES_PER_REQUEST:
            raise query.BadQuery(f"at most {MAX_SERIES_PER_REQUEST} series a request, not {len(wanted)}")
        start_s, end_s = query.parse_time(start, "start"), query.parse_time(end, "end")
        count = _int(points, "points", query.DEFAULT_POINTS)
        answers = []
        for metric, gpu in wanted:
            try:
                answers.append(query.series(node, metric, gpu=gpu, start=start_s, end=end_s, points=count))
            except query.NotFound as exc:
                if str(exc).startswith("unknown node"):
                    raise  # the whole request is wrong, not one series
                answers.append({"metric": metric, "gpu": gpu, "error": str(exc)})
        return {"node": node, "series": answers}
    except query.HistoryQueryError as exc:
        return Status(exc.status, {"error": str(exc)})


def _series_key(item: str) -> tuple[str, int | None]:
    # Deployment latency metrics hold colons themselves ("deploy:<name>:p95_ms"): only a last
    # part that is a number is a GPU index.
    item = item.strip()
    if item.startswith("deploy:"):
        metric, _, gpu = item.rpartition(":")
        return (metric, int(gpu)) if gpu.isdigit() and metric.count(":") >= 2 else (item, None)
    metric, _, gpu = item.partition(":")
    return metric, _int(gpu, f"the GPU of {item!r}", None)


@router.get("/catalog", response={200: CatalogOut, 401: Error})
def get_catalog(request):
    """Every node (online state, last heartbeat, GPU indices) and the metrics it has history of."""
    return query.catalog()
