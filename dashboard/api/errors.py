from __future__ import annotations

from ninja import Schema


class Error(Schema):
    """Every 4xx answer of the API: {"error": "<what is wrong>"}."""

    error: str


# The error answers every endpoint may give, to put in each `response=`: any request may lack
# credentials (401); a write may be malformed (400), forbidden to the role (403), or not JSON (415).
READ_ERRORS: dict[int, type[Error]] = {401: Error}
WRITE_ERRORS: dict[int, type[Error]] = {400: Error, 401: Error, 403: Error, 415: Error}
