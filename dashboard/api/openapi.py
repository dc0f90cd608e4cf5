"""What the OpenAPI document must say that the routers' signatures cannot: the error answers every
operation can give, and the query parameters the metrics endpoints check themselves (they parse
strings so their 400s name the parameter; the document still says which are required)."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI

ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

# Every operation: ninja refuses a malformed path or query with a 400; no credentials is a 401.
EVERY_OPERATION = {
    "400": "a malformed request (the error names the field)",
    "401": "no valid session or token",
}
# Every write also: a role below operator (403) or a JSON body without `application/json` (415).
EVERY_WRITE = {"403": "your role (or your token's) may not do this", "415": "the body is not JSON in UTF-8"}

# (path, parameter) -> what the endpoint demands of it beyond "an optional string".
REQUIRED_QUERY = {
    ("/api/metrics/series", "node"),
    ("/api/metrics/series", "metric"),
    ("/api/metrics/series/many", "node"),
    ("/api/metrics/series/many", "series"),
}


class PerfmonAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any):
        schema = super().get_openapi_schema(*args, **kwargs)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                # ninja keys responses by int status: make them strings first, or a 400 added here
                # sits beside ninja's 400 and the JSON carries the key twice (Swagger UI refuses it).
                responses = {str(status): body for status, body in operation.get("responses", {}).items()}
                operation["responses"] = responses
                extra = dict(EVERY_OPERATION)
                if method in ("post", "put", "patch", "delete"):
                    extra.update(EVERY_WRITE)
                for status, description in extra.items():
                    responses.setdefault(status, {"description": description, **ERROR_REF})
                for parameter in operation.get("parameters", []):
                    if (path, parameter.get("name")) in REQUIRED_QUERY:
                        parameter["required"] = True
                        parameter["schema"] = {"type": "string", "minLength": 1}
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "Error",
            {
                "title": "Error",
                "type": "object",
                "properties": {"error": {"title": "Error", "type": "string"}},
                "required": ["error"],
            },
        )
        return schema
