"""304 Not Modified on a matching validator (RFC 9110 13.1.2, 13.1.3): the page and its static files said
`Cache-Control: no-cache` with an ETag and Last-Modified, yet every revalidation got the whole file again (app.js
36 KB, each page view). A GET or HEAD whose `If-None-Match` matches the answer's ETag (weak comparison, `*` any), or,
without one, whose `If-Modified-Since` is not older than its Last-Modified, gets a 304 with the answer's headers and
no body."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from litestar.datastructures import Headers
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# What a 304 leaves out of the 200's headers: they describe a body it does not send.
BODY_HEADERS = {b"content-length", b"content-type", b"content-encoding", b"transfer-encoding"}


def not_modified_middleware(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        asked = Headers.from_scope(scope) if scope["type"] == "http" else None
        if asked is None or scope.get("method") not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        if_none_match, if_modified_since = asked.get("if-none-match"), asked.get("if-modified-since")
        if if_none_match is None and if_modified_since is None:
            await app(scope, receive, send)
            return
        unchanged = False

        async def send_304_when_unchanged(message: Message) -> None:
            nonlocal unchanged
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = {name.lower(): value.decode("latin-1") for name, value in message.get("headers", [])}
                unchanged = _unchanged(headers, if_none_match, if_modified_since)
                if unchanged:
                    kept: Any = [(k, v) for k, v in message["headers"] if k.lower() not in BODY_HEADERS]
                    message = {**message, "status": 304, "headers": kept}
            elif message["type"] == "http.response.body" and unchanged:
                if message.get("more_body", False):
                    return
                message = {**message, "body": b""}
            await send(message)

        await app(scope, receive, send_304_when_unchanged)

    return wrapped


def _unchanged(headers: dict[bytes, str], if_none_match: str | None, if_modified_since: str | None) -> bool:
    etag, last_modified = headers.get(b"etag"), headers.get(b"last-modified")
    if if_none_match is not None:  # it decides alone when given (RFC 9110 13.2.2)
        if if_none_match.strip() == "*":
            return True
        return etag is not None and _opaque(etag) in {_opaque(tag) for tag in if_none_match.split(",")}
    if last_modified is None or if_modified_since is None:
        return False
    try:
        return _http_date(last_modified) <= _http_date(if_modified_since)
    except (TypeError, ValueError):
        return False  # a date that is none is ignored (RFC 9110 13.1.3)


def _http_date(text: str) -> datetime:
    """An HTTP-date in any of its three forms (RFC 9110 5.6.7), in UTC: asctime's carries no zone and came back
    naive, so comparing it with an IMF-fixdate raised and the 304 was lost."""
    when = parsedate_to_datetime(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _opaque(tag: str) -> str:
    """The tag without its weakness: If-None-Match compares weakly."""
    return tag.strip().removeprefix("W/")
