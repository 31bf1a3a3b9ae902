"""Request ids and the access line: each answer carries `X-Request-Id` (the client's own where it sent a usable one,
else a new one), and each request is logged as its answer's last part goes out, with its duration and that id.

uvicorn logged the line when the answer's head went out, with neither: a slow request could not be told from a fast
one, nor a client's report matched to its line. `serve`'s protocol turns uvicorn's line off (cli/http_server.py);
this one is written to the same logger, `uvicorn.access`, so its format and the redaction of keys apply.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any, Protocol, cast
from urllib.parse import quote

from litestar import Litestar
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
# nginx's "client closed request": the client left before its answer's head went out, which then went nowhere (the
# app, finding the body cut short, answered 500 to no one: it was logged and counted as a server error)
CLIENT_CLOSED = 499
# scope["state"] key: set once a receive() returned http.disconnect, or serve's protocol lost the connection (a GET
# never calls receive()); in the state, which a copied scope (a HEAD served as a GET) shares
CLIENT_GONE = "plinqy.client_gone"
# scope["state"] key: serve's protocol answered the request itself (a malformed chunked body) with its own line and
# count; the app, told the client left, is neither logged nor counted (one request, one line)
REFUSED_BY_SERVER = "plinqy.refused_by_server"
# scope["state"] key: the request's id, for the app's own log lines (an error's traceback matched to its access line)
REQUEST_ID = "plinqy.request_id"
# A client's id is kept when it is one token of these (a UUID, a trace id, base64): it is echoed and logged as sent.
USABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")

# Bytes of a request's target its line shows: a 20 KB query string was logged whole (a cheap log flood)
LOGGED_TARGET = 256
# The request of a refusal's line when none of its request line is known (a pipelined request after a body)
UNPARSABLE = "<unparsable request line>"

log = logging.getLogger("uvicorn.access")
# serve's protocol refuses some requests before the app sees them: counted by this process's app (set as it is built)
_refusal_counters: list[Callable[[str, int, float], None]] = []


class AccessCounter(Protocol):
    """metrics.Metrics as the access line sees it: what no route's middleware timed is counted here."""

    def count_unrouted(self, scope: Any, status: int, seconds: float = 0.0) -> None: ...

    def count_refused(self, method: str, status: int, seconds: float) -> None: ...


def count_refusal(method: str, status: int, seconds: float) -> None:
    """Count an answer serve's protocol gave itself (400, 405, 408, 414, 431, 501) in this process's metrics."""
    for count in _refusal_counters:
        count(method, status, seconds)


def request_id(scope: Scope) -> str:
    """The client's X-Request-Id when it sent one usable id, else a new one (32 hex digits)."""
    return request_id_of(scope["headers"])


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """`request_id` of the headers read (serve's protocol refuses some requests before the app sees them)."""
    sent = [value for name, value in headers if name == REQUEST_ID_HEADER]
    if len(sent) == 1:
        text = sent[0].decode("latin-1")
        if USABLE_REQUEST_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def log_access(app: Litestar, counter: AccessCounter) -> None:
    """In front of everything else (HEAD handling and CORS included): the line names the method as asked. What no
    route timed (the router's 404 and 405, `OPTIONS *`, a CORS preflight) is counted under route "unmatched"."""
    app.asgi_handler = _logged(app.asgi_handler, counter)
    _refusal_counters[:] = [counter.count_refused]


def _logged(app: ASGIApp, counter: AccessCounter) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        cast("Any", scope).setdefault("state", {})[REQUEST_ID] = rid
        status: int | None = None  # no head yet
        logged = False

        async def receive_noting_disconnect() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.disconnect":
                mark_client_gone(scope)
            return message

        def log_once() -> None:
            nonlocal logged
            if not logged and not refused_by_server(scope):
                logged = True
                # an app that failed before its answer's head: uvicorn answers 500 (unless the client left)
                shown = answered_status(scope, 500) if status is None else status
                seconds = time.perf_counter() - started
                _log_line(cast("HTTPScope", scope), shown, seconds * 1000, rid)
                counter.count_unrouted(scope, shown, seconds)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = answered_status(scope, message["status"])
                headers: Any = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log_once()  # before the last part goes out: a client holding its answer finds the line written
            await send(message)

        try:
            await app(scope, receive_noting_disconnect, send_with_id)
        finally:
            log_once()  # no last part was sent (the app failed, the client left)

    return wrapped


def mark_client_gone(scope: Any) -> None:
    """The client left: an answer starting from now on went nowhere (499)."""
    scope.setdefault("state", {})[CLIENT_GONE] = True


def mark_refused_by_server(scope: Any) -> None:
    scope.setdefault("state", {})[REFUSED_BY_SERVER] = True


def refused_by_server(scope: Scope) -> bool:
    return bool((scope.get("state") or {}).get(REFUSED_BY_SERVER))


def logged_request_id(scope: Scope) -> str | None:
    """The id this request's access line and `X-Request-Id` carry (None: no access line, as under a test client)."""
    return (scope.get("state") or {}).get(REQUEST_ID)


def answered_status(scope: Scope, status: int) -> int:
    """The status an answer starting now is logged and counted with: 499 once the client has left."""
    return CLIENT_CLOSED if (scope.get("state") or {}).get(CLIENT_GONE) else status


def _log_line(scope: HTTPScope, status: int, duration_ms: float, rid: str) -> None:
    # the target as sent: the routing drops a trailing slash and `path` is decoded (`%3F` read back as `?`)
    raw_path = scope.get("raw_path") or quote(scope.get("root_path", "") + scope["path"]).encode()
    if query := scope.get("query_string"):
        raw_path += b"?" + query
    target = shown_target(raw_path)
    write_access_line(scope.get("client"), scope["method"], target, scope["http_version"], status, duration_ms, rid)


def shown_target(raw: bytes) -> str:
    """A request target as read off the wire, for the line: what is not printable ASCII (a control character, a
    space, a quote) percent-encoded as the path is, so it cannot end the line or forge its quoted request; past
    LOGGED_TARGET bytes cut, `...[<bytes read>B]` saying so."""
    shown = quote(raw[:LOGGED_TARGET], safe="/:?#[]@!$&'()*+,;=%~") or "-"
    return shown if len(raw) <= LOGGED_TARGET else f"{shown}...[{len(raw)}B]"


def write_access_line(
    client: Sequence[Any] | None, method: str, target: str, version: str, status: int, duration_ms: float, rid: str
) -> None:
    """The access line: the app's for each request, serve's protocol's for a request it refuses itself (`method`
    "": no byte of its request line is known)."""
    address = f"{client[0]}:{client[1]}" if client else "-"
    try:
        status_text = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        status_text = "499 Client Closed Request" if status == CLIENT_CLOSED else str(status)
    request = f"{method} {target} HTTP/{version}" if method else UNPARSABLE
    log.info('%s - "%s" %s %.1fms request_id=%s', address, request, status_text, duration_ms, rid)
