"""A small shared world for the Django tests: one user (an operator, who may submit, cancel and
upload), one node."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import TestCase

from dashboard.models import ApiToken, Node, Role
from dashboard.permissions import grant


class BaseTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = get_user_model().objects.create_user("alice", password="wonderland-42")
        grant(cls.alice, Role.OPERATOR)
        cls.node = Node.objects.create(name="gpu-node-1", gpu_status="no GPU", info={"cpu_count": 2})
        _token, cls.alice_token = ApiToken.issue(cls.alice, Role.OPERATOR)

    def bearer(self, token: str | None = None) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {token or self.alice_token}"}
