"""Under ASGI a request crosses from the event loop to its thread at the top of the
middleware chain, not around each synchronous middleware (perfmon/sync_chain.py)."""

from __future__ import annotations

import pytest
from asgiref.sync import SyncToAsync
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def hops_for(path: str, monkeypatch) -> list[str]:
    """What the request ran through sync_to_async (each a trip from the event loop and back)."""
    calls = []
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    client = AsyncClient(HTTP_HOST="localhost")
    await client.get(path)  # warm: Django builds the chain on the first request
    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    response = await client.get(path)
    monkeypatch.undo()
    assert response.status_code in (200, 302), response.status_code
    return calls


def around_middleware(calls: list[str]) -> list[str]:
    return [name for name in calls if name.endswith((".process_request", ".process_response"))]


async def test_a_page_request_crosses_to_its_thread_at_the_top_of_the_chain(monkeypatch):
    # The login page: session, CSRF, auth and messages middleware all take part.
    calls = await hops_for("/login/", monkeypatch)
    assert around_middleware(calls) == []
    assert len(calls) <= 6, calls  # the signal, the chain, process_view, the view, render, close


async def test_without_the_last_middleware_it_would_cross_around_each(monkeypatch, settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "perfmon.sync_chain.OneThreadPerRequest"]
    calls = await hops_for("/login/", monkeypatch)
    assert "SessionMiddleware.process_request" in around_middleware(calls)
    assert len(around_middleware(calls)) >= 8, calls
