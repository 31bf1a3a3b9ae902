"""OPTIONS answers every method a path serves in its `Allow` header. litestar builds a path's OPTIONS handler from
one of its route handlers, so `OPTIONS /v1/stores/{id}/listings/{sku}` said `OPTIONS, PUT` of a path that also
serves GET, PATCH and DELETE (schemathesis' check, and a CORS client, read it). HEAD wherever GET (head_requests.py)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


class AllowHeader:
    """The ASGI middleware, and the methods of each path (filled once the app is built: `learn`)."""

    def __init__(self) -> None:
        self.methods: dict[str, bytes] = {}

    def learn(self, app: Litestar) -> None:
        for route in app.routes:
            if isinstance(route, HTTPRoute):
                methods = route.methods | {"HEAD"} if "GET" in route.methods else route.methods
                self.methods[route.path_format] = ", ".join(sorted(methods)).encode()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            allowed = self.methods.get(str(scope.get("path_template", "")))
            if scope["type"] != "http" or scope.get("method") != "OPTIONS" or allowed is None:
                await app(scope, receive, send)
                return

            async def send_all_methods(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers: Any = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", allowed)]}
                await send(message)

            await app(scope, receive, send_all_methods)

        return wrapped


SERVER_METHODS = b"DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"


def answer_server_wide_options(app: Litestar) -> None:
    """`OPTIONS *` asks about the server as a whole (RFC 9110 9.3.7): 204 with the API's methods (it was a 404, the
    router finding no path `*`)."""
    routed = app.asgi_handler

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "OPTIONS" or scope["path"] != "*":
            await routed(scope, receive, send)
            return
        start: Any = {"type": "http.response.start", "status": 204, "headers": [(b"allow", SERVER_METHODS)]}
        await send(start)
        end: Any = {"type": "http.response.body", "body": b""}
        await send(end)

    app.asgi_handler = wrapped
