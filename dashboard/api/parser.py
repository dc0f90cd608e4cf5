"""The API's JSON body parser: JSON means `Content-Type: application/json` in UTF-8.

Accepting text/plain would let any web page POST JSON cross-site without a CORS preflight, and
json.loads guessing UTF-16 or -32 from the bytes makes the API read bodies no client should
send. Size: Django's DATA_UPLOAD_MAX_MEMORY_SIZE refuses larger bodies (a 400, see __init__)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.parser import Parser


class StrictJsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        if request.content_type != "application/json":
            got = request.content_type or "no Content-Type"
            raise HttpError(415, f"send JSON as Content-Type: application/json (got {got})")
        charset = (request.content_params or {}).get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise HttpError(415, f"send JSON in UTF-8 (got charset={charset})")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HttpError(400, f"malformed JSON: the body is not UTF-8 ({exc.reason})") from None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise HttpError(400, f"malformed JSON: {exc}") from None
