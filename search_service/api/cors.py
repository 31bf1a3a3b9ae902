"""CORS for a shop's pages on another origin (PLINQY_CORS_ORIGINS, PLINQY_CORS_HEADERS), in place of litestar's,
which sent `Vary: Origin` only on an answer to an allowed origin (a shared cache served one origin's answer to
another, or to a request without Origin), replaced the answer's `Vary` (`Accept-Encoding` lost), refused every
request header past Authorization and Content-Type (tracing headers broke each call: no setting) and refused in
plain text.

Every answer says it: with `*` `Access-Control-Allow-Origin: *` whatever the request (nothing varies), with a list
of origins `Vary: Origin` and the origin itself where it is listed. A refused preflight is a 400 in the API's
error format naming the request header that was refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# Always allowed: what the API reads (a key, a JSON body) and what tracing and logging add to a page's calls.
DEFAULT_HEADERS = (
    *("authorization", "content-type"),
    *("traceparent", "tracestate", "baggage", "sentry-trace", "x-request-id", "x-correlation-id"),
)
# A browser asks for these too when a value is not safelisted (an Accept of over 128 bytes, or with `"`, `:`, `(`)
SAFELISTED = ("accept", "accept-language", "content-language")
# What a page reads past the simple headers: a 429's or 503's Retry-After, a queued write's Location, Allow, the
# request's id (to quote in a report), an import's CSV file name (Content-Disposition), a 401's challenge.
EXPOSED = b"Allow, Content-Disposition, Location, Retry-After, WWW-Authenticate, X-Request-Id"
MAX_AGE = b"600"


@dataclass(frozen=True)
class Cors:
    origins: tuple[str, ...]  # ("*",) or origins as browsers send them
    headers: tuple[str, ...]  # request headers allowed past the defaults, lower case; ("*",): any

    def wrap(self, app: Litestar) -> None:
        """In front of the app's router, as litestar's was (a preflight is answered before any route)."""
        if not self.origins:
            return  # PLINQY_CORS_ORIGINS=none: no CORS headers
        app.asgi_handler = self._middleware(app.asgi_handler)

    @property
    def any_origin(self) -> bool:
        return "*" in self.origins

    def _middleware(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            asked = Headers.from_scope(scope)
            origin = asked.get("origin")
            if scope.get("method") == "OPTIONS" and origin and "access-control-request-method" in asked:
                await self._preflight(origin, asked, send)
                return
            await app(scope, receive, self._with_cors_headers(send, origin))

        return wrapped

    def _with_cors_headers(self, send: Send, origin: str | None) -> Send:
        allowed = self.any_origin or origin in self.origins

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders(message)
                if not self.any_origin:
                    headers.extend_header_value("vary", "Origin")
                if allowed:
                    headers["access-control-allow-origin"] = "*" if self.any_origin else str(origin)
                    headers["access-control-expose-headers"] = EXPOSED.decode()
            await send(message)

        return wrapped

    def simple_answer_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """What `_with_cors_headers` adds to an answer, for one serve's protocol writes itself (a 408, a 431)."""
        if not self.origins:
            return []
        headers = [] if self.any_origin else [(b"vary", b"Origin")]
        if self.any_origin or origin in self.origins:
            allowed = b"*" if self.any_origin else str(origin).encode("latin-1")
            headers += [(b"access-control-allow-origin", allowed), (b"access-control-expose-headers", EXPOSED)]
        return headers

    async def _preflight(self, origin: str, asked: Headers, send: Send) -> None:
        method = asked.get("access-control-request-method", "").strip()
        requested = [h.strip().lower() for h in asked.get("access-control-request-headers", "").split(",")]
        requested = [h for h in requested if h]
        refused = [h for h in requested if h not in (*DEFAULT_HEADERS, *SAFELISTED, *self.headers)]
        vary = [] if self.any_origin else [(b"vary", b"Origin")]
        if not self.any_origin and origin not in self.origins:
            problem = ("Origin", f"{origin} may not call this API from a browser (PLINQY_CORS_ORIGINS)")
        elif method not in METHODS:
            problem = ("Access-Control-Request-Method", f"{method or 'no method'} is not one of {', '.join(METHODS)}")
        elif refused and "*" not in self.headers:
            problem = ("Access-Control-Request-Headers", f"not allowed: {', '.join(refused)} (PLINQY_CORS_HEADERS)")
        else:
            echo = "*" in self.headers  # the answer then varies with the headers asked for
            allow_headers = requested if echo else sorted({*DEFAULT_HEADERS, *SAFELISTED, *self.headers})
            vary += [(b"vary", b"Access-Control-Request-Headers")] if echo else []
            headers = [
                (b"access-control-allow-origin", b"*" if self.any_origin else origin.encode("latin-1")),
                (b"access-control-allow-methods", ", ".join(METHODS).encode()),
                (b"access-control-allow-headers", ", ".join(allow_headers).encode("latin-1")),
                (b"access-control-max-age", MAX_AGE),
                *vary,
            ]
            await _answer(send, 204, headers, b"")
            return
        body = msgspec.json.encode({"error": {"parameter": problem[0], "message": f"CORS preflight: {problem[1]}"}})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *vary]
        await _answer(send, 400, headers, body)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
