"""HEAD wherever GET works (RFC 9110 9.3.2): an uptime check, a proxy or a link checker asking HEAD got 405 on every
API route. litestar routes HEAD only to handlers that declare it, so the request goes in as a GET, before the
routing, and its answer goes out with GET's status and headers (Content-Length and Content-Encoding included) and
no body."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from search_service.api.metrics import ASKED_METHOD


def answer_head_as_get(app: Litestar) -> None:
    """Put the HEAD handling in front of the app's router (its CORS handling included)."""
    app.asgi_handler = _head_as_get(app.asgi_handler)


def _head_as_get(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope.get("method") != "HEAD":
            await app(scope, receive, _allow_head_in_405(send))
            return

        async def send_no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # GET's body is dropped, its last (empty) part ends the answer
                message = {**message, "body": b""}
            await send(message)

        # A copy: the server reads the original scope's method to know it answers a HEAD.
        as_get: Any = {**scope, "method": "GET", ASKED_METHOD: "HEAD"}  # counted as the HEAD it is (metrics.py)
        await app(as_get, receive, _allow_head_in_405(send_no_body))

    return wrapped


def _allow_head_in_405(send: Send) -> Send:
    """A 405's `Allow` lists HEAD where it lists GET (the router lists the methods it has handlers for)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers: Any = [
                (name, _with_head(value) if name.lower() == b"allow" else value) for name, value in message["headers"]
            ]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _with_head(allow: bytes) -> bytes:
    methods = {m.strip() for m in allow.decode("latin-1").split(",") if m.strip()}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)).encode("latin-1")
