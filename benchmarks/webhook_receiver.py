"""A local webhook receiver on 127.0.0.1 for the tests and benchmarks (aiohttp, in its own thread and loop).

The path chooses the behaviour, so one server plays many receivers:
- `/ok/...`: 204.
- `/slow/<seconds>/...`: waits, then 204.
- `/drip/<seconds>/...`: 200 with its headers at once, then a byte of body every 0.2 s for that long.
- `/status/<code>/...`: answers that code (`/status/302/...` adds a Location, the `location` query parameter's
  if given, none if it is empty; `/status/429/...` and
  `/status/503/...` a `Retry-After` from the `retry_after` query parameter); the `body` query parameter is its
  body (raw bytes as UTF-8; default `status <code>`).
- `/flaky/<n>/...`: 500 for the first n attempts of each webhook-id (on that path), then 204.
Every request is recorded (path, headers, body, time received) for the caller to check.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time()

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class Receiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port  # 0: any free port
        self.received: list[Received] = []
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-receiver", daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def start(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body, time.time())
        with self._lock:
            self.received.append(record)
            key = f"{record.path} {record.webhook_id}"
            self._attempts[key] += 1
            attempt = self._attempts[key]
        parts = request.path.strip("/").split("/")
        kind = parts[0]
        if kind == "slow":
            await asyncio.sleep(float(parts[1]))
        elif kind == "drip":
            return await self._drip(float(parts[1]), request)
        elif kind == "status":
            return self._status(int(parts[1]), request)
        elif kind == "flaky" and attempt <= int(parts[1]):
            return web.Response(status=500, text="flaky")
        return web.Response(status=204)

    @staticmethod
    async def _drip(seconds: float, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = max(1, int(seconds / 0.2))
        await response.prepare(request)
        for _ in range(response.content_length):
            await response.write(b".")
            await asyncio.sleep(0.2)
        return response

    @staticmethod
    def _status(code: int, request: web.Request) -> web.Response:
        headers = {}
        if 300 <= code < 400:
            location = request.query.get("location", "http://127.0.0.1:9/elsewhere")
            if location:
                headers["Location"] = location
        if code in (429, 503) and "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        body = request.query.get("body", f"status {code}").encode("utf-8", "surrogateescape")
        return web.Response(status=code, headers=headers, body=body)
