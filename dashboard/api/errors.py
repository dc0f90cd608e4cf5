from __future__ import annotations

from ninja import Schema


class Error(Schema):
    """Every 4xx answer of the API: {"error": "<what is wrong>"}."""

    error: str
