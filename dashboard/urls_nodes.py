"""Node list and node pages (live monitoring in the browser)."""

from __future__ import annotations

from django.urls import path

from dashboard import views_nodes

urlpatterns = [
    path("nodes/", views_nodes.node_list, name="nodes"),
    # <path:...>: a node's name comes from PERFMON_NODE_NAME and may hold anything, "/" included.
    path("nodes/<path:name>/", views_nodes.node_detail, name="node"),
]
