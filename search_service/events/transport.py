"""An httpx transport (keep-alive pool) that connects only to addresses the SSRF guard checked.

The URL (hence the Host header and TLS SNI and certificate check) stays as registered; the TCP connection goes to
a pinned address of the current request, each in turn until one connects. A host with no pin in the current task
is refused before any socket is opened, so a connection can only ever reach a checked address.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import ssl
import typing
from collections.abc import Iterator

import httpcore
import httpx
from httpcore._backends.auto import AutoBackend
from httpx._transports.default import map_httpcore_exceptions

from search_service.events.ssrf import Target

_Pins = dict[str, tuple[str, ...]]
_PINS: contextvars.ContextVar[_Pins | None] = contextvars.ContextVar("plinqy_webhook_pins", default=None)


class UnpinnedHost(httpcore.ConnectError):
    """A connection to a host the guard did not check (never attempted)."""


def _pin_key(host: str) -> str:
    return host.lower().strip("[]")


@contextlib.contextmanager
def pinned(target: Target) -> Iterator[None]:
    """Within this block (this task), connections to target.host go to one of target.addresses."""
    token = _PINS.set({_pin_key(target.host): target.addresses})
    try:
        yield
    finally:
        _PINS.reset(token)


@contextlib.contextmanager
def _only(host: str, address: str) -> Iterator[None]:
    """The pin of host narrowed to the one checked address the next connection tries."""
    pins = _PINS.get() or {}
    assert address in pins.get(host, ()), "only a checked address"
    token = _PINS.set({**pins, host: (address,)})
    try:
        yield
    finally:
        _PINS.reset(token)


def _why(exc: Exception) -> str:
    """Why a connect failed, short: anyio's text is "All connection attempts failed" even for its one attempt; the
    errno at the root says what happened ("Connection refused"). A TLS failure keeps its own text."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, OSError) and not isinstance(root, ssl.SSLError) and root.errno:
        return os.strerror(root.errno)
    return "timed out" if isinstance(exc, httpcore.ConnectTimeout) else str(exc) or type(exc).__name__


def _unreached(failures: list[tuple[str, Exception]]) -> httpcore.ConnectError | httpcore.ConnectTimeout:
    """One error naming each address tried and why it failed (a timeout if every one timed out)."""
    said = ", ".join(f"{address} ({_why(exc)})" for address, exc in failures)
    many = f"any of {len(failures)} addresses: " if len(failures) > 1 else ""
    timed_out = all(isinstance(exc, httpcore.ConnectTimeout) for _, exc in failures)
    return (httpcore.ConnectTimeout if timed_out else httpcore.ConnectError)(f"could not connect to {many}{said}")


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
        addresses = (_PINS.get() or {}).get(_pin_key(host))
        if not addresses:
            raise UnpinnedHost(f"refusing to connect to {host}: no checked address for it")
        # PinnedTransport narrows the pin to the address it tries (its pool is kept per address).
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

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
_Origin = tuple[bytes, bytes, int]
_PoolKey = tuple[bytes, bytes, int, str]  # the origin and the checked address


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
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        timeouts = request.extensions.get("timeout", {})
        with map_httpcore_exceptions():
            addresses = (_PINS.get() or {}).get(_pin_key(url.host))
            if not addresses:
                raise UnpinnedHost(f"refusing to connect to {url.host}: no checked address for it")
            try:
                await asyncio.wait_for(self._slots.acquire(), timeouts.get("pool"))
            except TimeoutError:
                raise httpcore.PoolTimeout("no free connection slot") from None
            try:
                async with asyncio.timeout(self._deadline_s):
                    return await self._send(origin, _pin_key(url.host), addresses, core_request)
            except TimeoutError:  # a receiver dripping its answer held a send (and the lease) for minutes
                raise httpcore.ReadTimeout(f"no whole answer within {self._deadline_s:g} s") from None
            finally:
                self._slots.release()

    async def _send(
        self, origin: _Origin, host: str, addresses: tuple[str, ...], request: httpcore.Request
    ) -> httpx.Response:
        """Over an idle connection to a checked address, else a new one to each in turn (the resolver's order) until
        one connects: a receiver whose first address is down (an AAAA first where IPv6 is broken) is still reached.
        Only a failed connect moves on, so nothing is sent twice. Each address gets its share of the time left to
        connect (as curl splits it), so one that drops packets leaves the next some time."""
        for address in addresses:
            idle = await self._take((*origin, address))
            if idle is not None:
                return await self._exchange((*origin, address), idle, request)
        loop = asyncio.get_running_loop()
        ends, timeouts = loop.time() + self._deadline_s, dict(request.extensions.get("timeout", {}))
        failures: list[tuple[str, Exception]] = []
        for left, address in zip(range(len(addresses), 0, -1), addresses, strict=True):
            share = (ends - loop.time()) / left
            connect = min(share, timeouts.get("connect") or share)
            request.extensions = {**request.extensions, "timeout": {**timeouts, "connect": connect}}
            with _only(host, address):
                try:
                    return await self._exchange((*origin, address), self._connection(request), request)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    failures.append((address, exc))
        raise _unreached(failures)

    def _connection(self, request: httpcore.Request) -> httpcore.AsyncHTTPConnection:
        return httpcore.AsyncHTTPConnection(
            origin=request.url.origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )

    async def _exchange(
        self, key: _PoolKey, connection: httpcore.AsyncHTTPConnection, request: httpcore.Request
    ) -> httpx.Response:
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
