"""Nodes are listed as people count them (sim-1, sim-2, ..., sim-10), not as text (sim-1, sim-10,
sim-2): on the dashboard's fleet overview, the node list, the benchmark form and the API."""

from __future__ import annotations

import re

from django.urls import reverse

from dashboard.models import Node, natural_key
from tests.dashboard.base import BaseTestCase

NATURAL = ["gpu-node-1", "sim-1", "sim-2", "sim-3", "sim-9", "sim-10", "sim-11", "sim-100"]


class NodeOrderTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()  # gpu-node-1
        for name in ["sim-10", "sim-2", "sim-100", "sim-1", "sim-11", "sim-3", "sim-9"]:
            Node.objects.create(
                name=name, info={"gpus": [{"index": 0, "name": "Sim", "uuid": f"GPU-{name}"}]}
            )

    def setUp(self):
        self.client.force_login(self.alice)

    def names_in(self, html: str, attribute: str) -> list[str]:
        return re.findall(rf'{attribute}="([^"]+)"', html)

    def test_the_fleet_overview_orders_nodes_naturally(self):
        html = self.client.get(reverse("dashboard:home")).content.decode()
        fleet = html[html.index('id="fleet-overview"') :]
        self.assertEqual(self.names_in(fleet, 'class="fleet-node" data-node'), NATURAL)

    def test_the_node_list_orders_nodes_naturally(self):
        html = self.client.get(reverse("dashboard:nodes")).content.decode()
        self.assertEqual(self.names_in(html, "<tr data-node"), NATURAL)

    def test_the_api_and_the_benchmark_form_order_nodes_naturally(self):
        listed = [node["name"] for node in self.client.get("/api/nodes").json()]
        self.assertEqual(listed, NATURAL)
        html = self.client.get(reverse("dashboard:benchmark")).content.decode()
        targets = [
            name for name in self.names_in(html, "<option value") if name.endswith("|cpu") and name != "|cpu"
        ]
        self.assertEqual([t.removesuffix("|cpu") for t in targets], NATURAL)


def test_natural_key_counts_digit_runs_as_numbers():
    names = ["rack2-node10", "Rack2-node9", "rack10-node1", "rack2-node1", "node", "node-01", "node-1"]
    assert sorted(names, key=natural_key) == [
        "node",
        "node-01",
        "node-1",
        "rack2-node1",
        "Rack2-node9",
        "rack2-node10",
        "rack10-node1",
    ]
