"""The uvicorn server `serve` runs: its config, and an HTTP protocol that holds each client to a request head's size
and read time (`Settings.server`, serverconfig.py).

uvicorn's httptools protocol has neither limit: five clients each sending a 60 MB header took a worker from 313 to
613 MB until they left, a 50 MB header was answered 200, and a client sending a header line every few seconds (or
half a request line, then nothing) held its connection for as long as it liked. h11 has a size limit, but parses in
Python; this subclass keeps httptools and adds, per request, a byte count on each read and one timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from search_service.api.access_log import (
    LOGGED_TARGET,
    REQUEST_ID_HEADER,
    count_refusal,
    mark_client_gone,
    mark_refused_by_server,
    request_id_of,
    write_access_line,
)
from search_service.api.allow_header import SERVER_METHODS
from search_service.api.cors import Cors
from search_service.cli.accept_queue import take_waiting_connections
from search_service.cli.common import uvicorn_log_config
from search_service.cli.http_heads import (
    UpgradeBody,
    chunked_last,
    codings_before_chunked,
    framing_fault,
    origin_form,
    received_line,
    unknown_method,
)
from search_service.serverconfig import ServerConfig
from search_service.settings import Settings

log = logging.getLogger(__name__)


class AnnouncedServer(uvicorn.Server):
    """uvicorn's server, logging 'serving' once its socket listens: given sockets, uvicorn logs no address, and
    `serve --workers N` said 'serving' as it forked, seconds before any worker accepted a connection."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGHUP stops it gracefully too, as SIGTERM does (its default ended the process without its clean-up)."""
        if threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return
        previous = signal.signal(signal.SIGHUP, self.handle_exit)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGHUP, previous)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """The connections already waiting are taken first and their requests served (accept_queue.py)."""

        def protocol() -> asyncio.Protocol:  # as uvicorn's startup makes one for its listeners
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state
            )

        taken = await take_waiting_connections(self.servers, protocol)
        if taken:
            log.info("stopping: %d connection(s) that were waiting are served first", taken)
        await super().shutdown(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
            log.info("serving http://%s:%d (process %d)", host, self.config.port, os.getpid())


def uvicorn_config(app: Any, settings: Settings, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The server's config: the limited protocol, the keep-alive setting, our log format."""
    limits = settings.server
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=limited_protocol(limits, Cors(settings.cors_origins, settings.cors_headers)),
        timeout_keep_alive=limits.keep_alive_s,
        log_config=uvicorn_log_config(),
        ws="none",  # no WebSocket route: uvicorn's handler logged a handshake's URL (a key in it too) and 403'd it
        **options,
    )


HEAD_START = LOGGED_TARGET + 80  # bytes kept of a head's start: the method and target of a request the parser refused
API_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS"
ALLOW = SERVER_METHODS  # a CONNECT's 405: the methods of the API as a whole


def limited_protocol(limits: ServerConfig, cors: Cors | None = None) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, holding these limits, and the CORS its own answers
    carry as the app's do."""
    return type(
        "LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits, "cors": cors or Cors((), ())}
    )


def error_answer(status: int, message: str, headers: list[tuple[bytes, bytes]], head_only: bool = False) -> bytes:
    """A whole HTTP response in the API's error format, closing the connection; to a HEAD, without its body
    (RFC 9110 9.3.2). `headers`: the server's default ones, and any the status needs (a 405's Allow)."""
    body = json.dumps({"error": {"parameter": None, "message": message}}).encode()
    head = [STATUS_LINE[status], *(name + b": " + value + b"\r\n" for name, value in headers)]
    head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return b"".join(head) + (b"" if head_only else body)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a limit on a request head's bytes (414 while the request line is unfinished, else 431) and
    on the time from its first byte until it is whole (408); a connection that never sends is idle (keep-alive)."""

    limits: ClassVar[ServerConfig] = ServerConfig()
    cors: ClassVar[Cors] = Cors((), ())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False  # the app writes the access line once the answer is sent (api/access_log.py)
        self._head_room: int | None = self.limits.max_header_bytes  # None: the head is whole (a body, if any)
        self._line_ended = False  # the request line is whole: an overflow is then the headers' (431), not the URL's
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_start = b""  # the head's first bytes: the method of a 501
        self._chunk, self._ended_in_chunk = b"", 0  # the last read, and how many requests ended in it
        self._head_fault: tuple[int, str] | None = None  # the answer on_headers_complete refused the head with
        self._fault_head_only = False  # that head was a HEAD's: no body in the answer
        self._refusal: bytes | None = None  # an answer for a bad pipelined request, sent after those before it
        self._refusal_line: tuple[str, str, str, int, str, float] = ("-", "-", "-", 400, "-", 0.0)  # logged as sent
        self._began = time.perf_counter()  # the request's first byte: its access line's duration
        self._cycle_before: Any = None  # the request read before this one (its answer precedes this one's)
        self.url, self.headers = b"", []  # uvicorn sets them as a request begins
        self._upgrade_body: UpgradeBody | None = None  # the body of a request with Upgrade, the connection's last

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn timed only a kept-alive connection: one opened with nothing sent was held for ever
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        # the app learns of it only from receive(), which a GET never calls: its answer was logged and counted as sent
        for cycle in (self.cycle, *(queued for queued, _ in self.pipeline)):
            if cycle is not None and not cycle.response_started:
                mark_client_gone(cycle.scope)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._upgrade_body is not None:
            self._read_upgrade_body(data)
            return
        room = self._head_room
        if room is None:
            self._parse(data)
            return
        if len(self._head_start) < HEAD_START:
            self._head_start += data[: HEAD_START - len(self._head_start)]
        self._chunk, self._ended_in_chunk = data, 0
        if len(data) <= room:
            self._head_room = room - len(data)
            self._line_ended = self._line_ended or b"\n" in data
            self._parse(data)
        else:
            self._overflowing(data, room)

    def _parse(self, data: bytes) -> None:
        """uvicorn's data_received without its warning 'Invalid HTTP request received.': the refusal's access line
        (send_400_response) says it, with the request id (each 400, 405 and 501 was logged twice)."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if self._refusal is not None:  # the parser repeats its error on each read; the refusal is already due
                return
            if self._head_room is None and self.cycle is not None and self.cycle.more_body:
                self._refuse_body()
            else:
                self.send_400_response(str(error))
        except httptools.HttpParserUpgrade as upgrade:
            # ws="none": the app answers it as a plain request (RFC 9110 7.8), without uvicorn's warning, its body
            # read (httptools left it for the new protocol: the app saw none), and its answer closes the connection
            self.cycle.more_body = True  # on_message_complete said none; its app has not run yet
            self._upgrade_body = UpgradeBody(self.headers, self.on_body, self._upgrade_body_read)
            self._read_upgrade_body(data[upgrade.args[0] :])

    def _read_upgrade_body(self, data: bytes) -> None:
        try:
            self._upgrade_body.feed(data)  # type: ignore[union-attr]
        except httptools.HttpParserError:
            self._upgrade_body.complete = True  # type: ignore[union-attr]  # refused: nothing more is read
            self._refuse_body()

    def _upgrade_body_read(self) -> None:
        self.cycle.more_body = False
        self.cycle.message_event.set()
        self.transport.pause_reading()  # nothing more is read; not self.flow's: the app's receive() resumes that

    def _overflowing(self, data: bytes, room: int) -> None:
        """`data` would take the head past its limit: parsed up to the limit, and refused unless the head ended."""
        line_ended = self._line_ended = self._line_ended or b"\n" in data[:room]
        self._head_room = 0
        if room:
            self._parse(data[:room])
        if self.transport.is_closing():  # the parser refused it (400)
            return
        if self._head_room is None or self._head_room == self.limits.max_header_bytes:  # it ended within the room
            self.data_received(data[room:])
            return
        limit = self.limits.max_header_bytes
        if line_ended:
            self._refuse(431, f"the request's headers are too large: the request line and headers may take {limit} "
                         "bytes")  # fmt: skip
        else:
            self._refuse(414, f"the URL is too long: the request line and headers may take {limit} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = time.perf_counter()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._head_room = None
        self._stop_head_timer()
        hosts = sum(1 for name, _ in self.headers if name == b"host")
        if self.parser.get_method() == b"CONNECT":  # a proxy's method: its host:port target was closed unanswered
            self._refuse_head(405, f"the method CONNECT is not allowed: this is no proxy; the API takes {API_METHODS}")
        if hosts > 1 or (hosts == 0 and self.parser.get_http_version() == "1.1"):
            # RFC 9112 3.2: a 400; two Host lines could route one request two ways behind a proxy
            fault = "an HTTP/1.1 request needs one Host header" if hosts == 0 else "two Host headers"
            self._refuse_head(400, f"invalid HTTP request: {fault}")
        if self.parser.get_http_version() != "1.1" and any(name == b"transfer-encoding" for name, _ in self.headers):
            # RFC 9112 6.1: its framing is faulty (HTTP/1.0 has no chunked), and llhttp read the body as chunked
            self._refuse_head(400, "invalid HTTP request: a Transfer-Encoding in an HTTP/1.0 request; send a "
                              "Content-Length")  # fmt: skip
        if not chunked_last(self.headers):
            # RFC 9112 6.3: the body's length is unknown. llhttp said so only once the app had the request: two answers
            self._refuse_head(400, "invalid HTTP request: a Transfer-Encoding whose last coding is not chunked")
        if codings := codings_before_chunked(self.headers):  # the body would reach the app still encoded
            self._refuse_head(
                501,
                f"the Transfer-Encoding {codings} is not implemented: send the body as it is, with "
                "Transfer-Encoding: chunked alone or a Content-Length",
            )
        self.url = origin_form(self.url)
        self._cycle_before = self.cycle
        super().on_headers_complete()
        self.cycle.keep_alive = self.cycle.keep_alive and not self.parser.should_upgrade()  # _parse: read no more

    def _refuse_head(self, status: int, message: str) -> None:
        """Refuse the head just parsed: raised to the parser, whose error uvicorn answers with send_400_response."""
        self._head_fault = (status, message)
        self._fault_head_only = self.parser.get_method() == b"HEAD"
        raise httptools.HttpParserError(message)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_room, self._line_ended = self.limits.max_header_bytes, False  # the next request's head
        self._head_start = b""
        self._ended_in_chunk += 1

    def send_400_response(self, msg: str) -> None:
        """A request the parser refused (`msg`: its reason): in the API's error format (it was text/plain); an
        unknown method is RFC 9110's 501."""
        if self._head_fault is not None:
            status, message = self._head_fault
            allow = [(b"allow", ALLOW)] if status == 405 else []
            self._refuse(status, message, self._fault_head_only, allow)
        elif (method := unknown_method(self._bad_head_start())) is not None:
            self._refuse(501, f"the method {method} is not implemented: the API takes {API_METHODS}")
        elif (fault := framing_fault(msg)) is not None:
            self._refuse(400, f"invalid HTTP request: {fault}")
        else:
            self._refuse(400, "invalid HTTP request: a malformed request line (a method of letters, an ASCII URL: "
                         "percent-encode other bytes, the version) or header")  # fmt: skip

    def _refuse_body(self) -> None:
        """The parser refused the body of the request it read last (a bad chunk): that request's 400, sent now or
        after the answers before it, its app (if running) told the client left. It was taken for a later request's:
        an app awaiting the body answered 408 after 30 s; one not reading it answered, then the 400 followed."""
        bad = self.cycle
        if bad.response_started:  # its answer is out, whole or in part: a second answer would pass for the next's
            self.transport.close()
            return
        queued = [entry for entry in self.pipeline if entry[0] is bad]
        if queued:  # its app has not run, and will not
            self.pipeline.remove(queued[0])
        else:
            mark_refused_by_server(bad.scope)  # the refusal's line is its one line
            bad.disconnected = True
            bad.message_event.set()
        self.cycle = self._cycle_before  # None, answered, or still answering: the 400 follows it
        self._line_ended = True  # its line is logged with its version (a pipelined one's said HTTP/-)
        self._refuse(400, "invalid HTTP request: a malformed chunked body (each chunk: its size in hex, CRLF, its "
                     "bytes, CRLF; the last: 0, CRLF, CRLF)")  # fmt: skip

    def _bad_head_start(self) -> bytes:
        """The refused request's first bytes: past the requests that ended in the same read (pipelined; found by
        their blank lines, so a body holding one may hide the method: then the answer is the 400)."""
        if not self._ended_in_chunk:
            return self._head_start
        at = 0
        for _ in range(self._ended_in_chunk):
            end = self._chunk.find(b"\r\n\r\n", at)
            if end < 0:
                return b""
            at = end + 4
        return self._chunk[at : at + HEAD_START]

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:  # a pipelined head: timed once it is next
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)
            return
        self._refuse(408, f"the request's head did not arrive whole within {self.limits.header_timeout_s:g} s")

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(
        self, status: int, message: str, head_only: bool = False, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Answer `status` and close the connection; a request pipelined behind others still being answered is
        answered after them (closing at once threw their answers away: a valid request got none)."""
        self._stop_head_timer()
        self._head_room = None
        if self.transport.is_closing():
            return
        headers = [*self.server_state.default_headers, *self._answer_headers(status), *(headers or [])]
        answer = error_answer(status, message, headers, head_only)
        if self.cycle is None or (self.cycle.response_complete and not self.pipeline):
            self._send_refusal(answer)
            return
        self._refusal = answer
        self.flow.pause_reading()  # nothing after the bad request is read

    def _send_refusal(self, answer: bytes) -> None:
        """Send a refusal and close; its access line is written now (a refusal pipelined behind a slow request was
        logged before that request's line), its duration from its head's first byte."""
        method, target, version, status, rid, began = self._refusal_line
        seconds = time.perf_counter() - began
        write_access_line(self.client, method, target, version, status, seconds * 1000, rid)
        count_refusal(method, status, seconds)
        self.transport.write(answer)
        self.transport.close()

    def _answer_headers(self, status: int) -> list[tuple[bytes, bytes]]:
        """The request id and CORS headers the app adds to its answers, for this refusal; and what its access line
        says (the client's id when its header was read whole and usable, else a new one)."""
        rid = request_id_of(self.headers)
        origins = [value.decode("latin-1") for name, value in self.headers if name == b"origin"]
        method, target = received_line(self._bad_head_start(), self.url)
        version = self.parser.get_http_version() if self._line_ended else "0.0"  # 0.0: not read
        self._refusal_line = (method, target, "-" if version == "0.0" else version, status, rid, self._began)
        return [(REQUEST_ID_HEADER, rid.encode()), *self.cors.simple_answer_headers(origins[-1] if origins else None)]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        done = self.cycle is None or self.cycle.response_complete  # the last request read before the bad one
        if self._refusal is not None and done and not self.pipeline and not self.transport.is_closing():
            self._stop_keep_alive()
            self._send_refusal(self._refusal)
            self._refusal = None

    def _stop_keep_alive(self) -> None:
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
