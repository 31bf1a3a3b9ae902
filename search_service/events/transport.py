"""An httpx client that connects only to addresses the SSRF guard checked.

The URL (hence the Host header and TLS SNI and certificate check) stays as registered; the TCP connection goes to
the pinned address of the current request. A host with no pin in the current task is refused before any socket
is opened, so a connection can only ever reach a checked address.
"""

from __future__ import annotations

import contextlib
import contextvars
import typing
from collections.abc import Iterator

import httpcore
import httpx
from httpcore._backends.auto import AutoBackend

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


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, max_connections: int) -> None:
        super().__init__(retries=0)
        ssl_context = httpx.create_ssl_context()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=PinnedBackend(),
        )


def make_client(timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    """No redirects followed (a redirect is a failed delivery), no proxies from the environment, no cookies kept."""
    return httpx.AsyncClient(
        transport=PinnedTransport(max_connections),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )


class Clients:
    """One small client (connection pool) per subscription: httpcore's pool scans all its connections for every
    request, so one pool shared by hundreds of connections costs quadratic CPU (measured: most of a dispatcher's
    time at 64 in flight). Per-subscription pools also keep a slow receiver's connections (its per_webhook share)
    from crowding out another's, even on the same host."""

    def __init__(self, timeout_s: float, per_client: int, max_clients: int = 1000) -> None:
        self.timeout_s, self.per_client, self.max_clients = timeout_s, per_client, max_clients
        self._clients: dict[object, httpx.AsyncClient] = {}

    def get(self, key: object) -> httpx.AsyncClient:
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
