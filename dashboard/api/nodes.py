"""/api/nodes: the nodes that report to this perfmon, with their hardware and state."""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema

from dashboard.api.errors import READ_ERRORS
from dashboard.models import Node, natural_order

router = Router(tags=["nodes"])


class NodeOut(Schema):
    name: str
    online: bool
    last_seen: str
    last_seen_age_s: float
    gpu_status: str
    info: dict[str, Any]


@router.get("", response={200: list[NodeOut], **READ_ERRORS})
def list_nodes(request):
    return [
        {
            "name": node.name,
            "online": node.is_online,
            "last_seen": node.last_seen.isoformat(),
            "last_seen_age_s": round(node.last_seen_age_s, 1),
            "gpu_status": node.gpu_status,
            "info": node.info,
        }
        for node in natural_order(Node.objects.all())
    ]
