"""The API docs page: Swagger UI served from static/vendor/, inside perfmon's own page frame.

django-ninja's default page loads Swagger UI from a CDN, which leaves a blank page on a machine
with no internet. This one needs nothing beyond the perfmon server and runs no inline script."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja.openapi.docs import DocsBase

if TYPE_CHECKING:
    from ninja import NinjaAPI


class LocalSwagger(DocsBase):
    template = "api_docs.html"

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        context = {"api": api, "openapi_url": self.get_openapi_url(api, kwargs)}
        return render(request, self.template, context)
