"""An httpx transport (keep-alive pool) that connects only to addresses the SSRF guard checked.

The URL (hence the Host header and TLS SNI and certificate check) stays as registered; the TCP connection goes to
the pinned address of the current request. A host with no pin in the current task is refused before any socket
is opened, so a connection can only ever reach a checked address.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import typing
from collections.abc import Iterator

import httpcore
import httpx
from httpcore._backends.auto import AutoBackend
from httpx._transports.default import map_httpcore_exceptions

from search_service.events.ssrf import Target

_PINS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("plinqy_webhook_pins", default=None)


class UnpinnedHost(httpcore.ConnectError):
    """A connection to a host the guard did not check (never attempted)."""


@contextlib.contextmanager
def pinned(target: Target) -> Iterator[None]:
    """Within this block (this task), connections to target.host go to target.address."""
    token = _PINS.set({target.host.lower().strip("[]"): target.address})
    try:
        yield
    finally:
        _PINS.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = (_PINS.get() or {}).get(host.lower().strip("[]"))
        if address is None:
            raise UnpinnedHost(f"refusing to connect to {host}: no checked address for it")
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnpinnedHost("webhooks never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


MAX_RESPONSE_BYTES = 64 * 1024  # of a receiver's answer we keep (the error text shows 200 characters)
_PoolKey = tuple[bytes, bytes, int, str]


class PinnedTransport(httpx.AsyncBaseTransport):
    """A small keep-alive pool, its idle connections kept per (origin, checked address) on a stack. httpcore's
    own pool re-examines every connection (a poll() each) on every request and every response: most of a
    dispatcher's CPU. Here a request takes the last idle connection (one poll to see that the receiver has not
    closed it), or opens one; the answer is read here (up to MAX_RESPONSE_BYTES) and the connection goes back."""

    def __init__(self, max_connections: int, timeout_s: float = 10.0, keepalive_expiry: float = 30.0) -> None:
        self._timeouts = httpx.Timeout(timeout_s).as_dict()
        self._deadline_s = timeout_s  # the whole exchange: httpx's timeouts bound each connect, write and read only
        self._ssl_context = httpx.create_ssl_context()
        self._backend = PinnedBackend()
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_PoolKey, list[httpcore.AsyncHTTPConnection]] = {}

    async def post(self, url: httpx.URL, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """One POST, its answer read. Straight to the transport: an AsyncClient's layers (cookies, auth, redirects,
        header merging) cost a tenth of a dispatcher's CPU and none of them is wanted here."""
        request = httpx.Request("POST", url, content=body, headers=headers, extensions={"timeout": self._timeouts})
        return await self.handle_async_request(request)

    async def _take(self, key: _PoolKey) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()  # expired, or the receiver closed it
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        address = (_PINS.get() or {}).get(url.host.lower().strip("[]"), "")
        key = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80), address)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        timeouts = request.extensions.get("timeout", {})
        with map_httpcore_exceptions():
            try:
                await asyncio.wait_for(self._slots.acquire(), timeouts.get("pool"))
            except TimeoutError:
                raise httpcore.PoolTimeout("no free connection slot") from None
            try:
                async with asyncio.timeout(self._deadline_s):
                    return await self._exchange(key, core_request)
            except TimeoutError:  # a receiver dripping its answer held a send (and the lease) for minutes
                raise httpcore.ReadTimeout(f"no whole answer within {self._deadline_s:g} s") from None
            finally:
                self._slots.release()

    async def _exchange(self, key: _PoolKey, request: httpcore.Request) -> httpx.Response:
        connection = await self._take(key) or httpcore.AsyncHTTPConnection(
            origin=request.url.origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )
        try:
            response = await connection.handle_async_request(request)
            chunks, size = [], 0
            async for chunk in response.aiter_stream():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_RESPONSE_BYTES:
                    break  # the rest is not read: the connection closes below
            await response.aclose()
        except BaseException:
            await connection.aclose()
            raise
        if connection.is_idle():
            self._idle.setdefault(key, []).append(connection)
        else:
            await connection.aclose()
        content = b"".join(chunks)[:MAX_RESPONSE_BYTES]
        return httpx.Response(response.status, headers=response.headers, content=content)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()


def make_client(timeout_s: float, max_connections: int) -> PinnedTransport:
    """No redirects followed (a redirect is a failed delivery), no proxies from the environment, no cookies kept:
    the transport does none of these."""
    return PinnedTransport(max_connections, timeout_s)


class Clients:
    """One small client (connection pool) per subscription: keep-alive connections of its own, and a slow
    receiver's connections (its per_webhook share) never crowd out another's, even on the same host."""

    def __init__(self, timeout_s: float, per_client: int, max_clients: int = 1000) -> None:
        self.timeout_s, self.per_client, self.max_clients = timeout_s, per_client, max_clients
        self._clients: dict[object, PinnedTransport] = {}

    def get(self, key: object) -> PinnedTransport:
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= self.max_clients:
                # Forget the oldest; its idle connections close when it is collected (sends in flight finish).
                self._clients.pop(next(iter(self._clients)))
            client = self._clients[key] = make_client(self.timeout_s, self.per_client)
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
