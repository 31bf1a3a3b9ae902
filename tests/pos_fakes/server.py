"""A small threaded HTTP server on 127.0.0.1 for the fake vendors, with a flaky mode.

Each fake vendor is a `Handler` (method, path, query, form/body, headers) -> `Reply`. The flaky mode injects, in
turn, the failures a real vendor produces: 429 (with Retry-After), 500, a response slower than the client's
timeout, and a malformed page, on every `every`-th request; the request is then answered properly on retry.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Flaky:
    every: int = 0  # 0: never fail
    faults: tuple[str, ...] = ("429", "500", "timeout", "malformed")
    slow_s: float = 0.6
    retry_after: str = "0"
    injected: list[str] = field(default_factory=list)
    _count: int = 0

    def fault(self) -> str | None:
        if not self.every:
            return None
        self._count += 1
        if self._count % self.every:
            return None
        fault = self.faults[len(self.injected) % len(self.faults)]
        self.injected.append(fault)
        return fault


class FakeServer:
    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self.handler = handler
        self.flaky = Flaky()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.clock: Callable[[], datetime] | None = None  # the vendor's clock for the Date header (default: now)
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                if fake.clock is None or timestamp is not None:
                    return super().date_time_string(timestamp)
                return email.utils.format_datetime(fake.clock(), usegmt=True)

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _serve(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        form = {}
        if "form-urlencoded" in (http.headers.get("Content-Type") or ""):
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        request = Request(method, parts.path, query, form, {k.lower(): v for k, v in http.headers.items()}, body)
        with self.lock:
            self.requests.append(request)
            fault = self.flaky.fault()
            reply = self._fault_reply(fault) if fault else self.handler(request)
        if fault == "timeout":
            time.sleep(self.flaky.slow_s)
        self._send(http, reply)

    def _fault_reply(self, fault: str) -> Reply:
        if fault == "429":
            return Reply(429, {"error": "rate limited"}, {"Retry-After": self.flaky.retry_after})
        if fault == "500":
            return Reply(500, {"error": "boom"})
        if fault == "malformed":
            return Reply(200, b'{"data": [{"id": ')
        return Reply(200, {"late": True})  # sent after the client gave up

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, reply: Reply) -> None:
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            http.send_response(reply.status)
            http.send_header("Content-Type", "application/json")
            http.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                http.send_header(name, value)
            http.end_headers()
            http.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
