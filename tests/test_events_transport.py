"""The webhook sender's own keep-alive pool and the SSRF guard's DNS cache, against a raw HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable

import pytest

from search_service.events import delivery, ssrf
from search_service.events.transport import MAX_RESPONSE_BYTES, make_client


async def _serve(body: bytes, connections: list[int]) -> tuple[int, list[asyncio.Server]]:
    """On 127.0.0.1 and ::1 (one port): answers every request with 200 and `body`, keeping the connection
    open; counts the connections accepted."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    v4 = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = v4.sockets[0].getsockname()[1]
    return port, [v4, await asyncio.start_server(handle, "::1", port)]


def _send(client: object, url: str, resolver: ssrf.Resolver) -> Awaitable[delivery.AttemptResult]:
    headers = {"content-type": "application/json"}
    return delivery.attempt(client, url, headers, "{}", frozenset({"localhost"}), resolver)  # type: ignore[arg-type]


def test_connections_are_kept_alive_per_checked_address_and_answers_capped() -> None:
    async def scenario() -> tuple[list[int], list[delivery.AttemptResult], int]:
        connections: list[int] = []
        port, servers = await _serve(b"x" * (3 * MAX_RESPONSE_BYTES), connections)
        answers = {"localhost": ["127.0.0.1"]}

        async def resolver(host: str, port: int) -> list[str]:
            return answers[host]

        async with make_client(5.0, 4) as client:
            url = f"http://localhost:{port}/hook"
            first = [await _send(client, url, resolver) for _ in range(5)]
            after_first = len(connections)
            answers["localhost"] = ["::1"]  # a new answer: a connection to the newly checked address
            second = [await _send(client, url, resolver) for _ in range(3)]
        for server in servers:
            server.close()
        return connections, first + second, after_first

    connections, results, after_first = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in results), results
    # A body over the cap is not read to its end, so that connection is not reused: one per request here.
    assert after_first == 5 and len(connections) == 8


def test_a_small_answer_reuses_one_connection_and_a_new_address_opens_another() -> None:
    async def scenario() -> tuple[int, int]:
        connections: list[int] = []
        port, servers = await _serve(b"ok", connections)
        answers = {"localhost": ["127.0.0.1"]}

        async def resolver(host: str, port: int) -> list[str]:
            return answers[host]

        async with make_client(5.0, 4) as client:
            url = f"http://localhost:{port}/hook"
            for _ in range(6):
                assert (await _send(client, url, resolver)).status_code == 200
            kept = len(connections)
            answers["localhost"] = ["::1"]
            for _ in range(3):
                assert (await _send(client, url, resolver)).status_code == 200
        for server in servers:
            server.close()
        return kept, len(connections)

    kept, total = asyncio.run(scenario())
    assert kept == 1 and total == 2


def test_dns_answers_are_kept_for_the_ttl_and_still_checked_at_every_use() -> None:
    calls: list[str] = []
    answers = {"hooks.example.test": ["198.51.100.7"], "bad.example.test": ["169.254.169.254"]}

    async def inner(host: str, port: int) -> list[str]:
        calls.append(host)
        if host == "gone.example.test":
            raise OSError("no such host")
        return answers[host]

    async def scenario(resolver: ssrf.CachingResolver) -> None:
        for _ in range(3):
            with pytest.raises(ssrf.UnsafeUrl, match="cloud metadata"):
                await ssrf.check("https://bad.example.test/x", [], resolver)
        for _ in range(2):
            with pytest.raises(ssrf.UnsafeUrl, match="does not resolve"):
                await ssrf.check("https://gone.example.test/x", [], resolver)
        assert await resolver("hooks.example.test", 443) == ["198.51.100.7"]
        answers["hooks.example.test"] = ["198.51.100.8"]
        assert await resolver("hooks.example.test", 443) == ["198.51.100.7"]  # within the TTL

    asyncio.run(scenario(ssrf.CachingResolver(inner, ttl_s=60.0)))
    assert calls.count("bad.example.test") == 1 and calls.count("gone.example.test") == 2  # failures not kept
    assert calls.count("hooks.example.test") == 1
    expired = ssrf.CachingResolver(inner, ttl_s=0.0)
    assert asyncio.run(expired("hooks.example.test", 443)) == ["198.51.100.8"]
    assert asyncio.run(expired("hooks.example.test", 443)) == ["198.51.100.8"]
    assert calls.count("hooks.example.test") == 3


def test_a_receiver_that_resets_the_connection_is_named_in_the_delivery_error() -> None:
    """A receiver that reset the connection before answering (a full accept backlog) was recorded as `ReadError: `,
    an empty reason."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST
        writer.transport.abort()

    async def scenario() -> delivery.AttemptResult:
        server = await asyncio.start_server(reset, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def resolver(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        async with make_client(5.0, 1) as client:
            result = await _send(client, f"http://localhost:{port}/hook", resolver)
        server.close()
        return result

    result = asyncio.run(scenario())
    assert result.status_code is None and result.error is not None
    kind, _, why = result.error.partition(": ")
    assert kind in ("ReadError", "RemoteProtocolError") and why.strip(), result.error


def test_a_host_whose_first_address_is_down_is_reached_on_the_next_and_the_error_names_each_address() -> None:
    """Only the first checked address was ever tried: a receiver whose first address was down (an AAAA first where
    IPv6 is broken, a dead round-robin member) failed every delivery, "All connection attempts failed"."""

    async def scenario() -> tuple[ssrf.Target, list[delivery.AttemptResult], int, delivery.AttemptResult]:
        connections: list[int] = []
        port, servers = await _serve(b"ok", connections)  # 127.0.0.1 and ::1; nothing on 127.0.0.2 or .3
        answers = {"localhost": ["127.0.0.2", "127.0.0.1", "127.0.0.2"]}

        async def resolver(host: str, port: int) -> list[str]:
            return answers[host]

        url = f"http://localhost:{port}/hook"
        target = await ssrf.check(url, ["localhost"], resolver)
        async with make_client(5.0, 4) as client:
            sent = [await _send(client, url, resolver) for _ in range(3)]
            answers["localhost"] = ["127.0.0.2", "127.0.0.3"]
            down = await _send(client, url, resolver)
        for server in servers:
            server.close()
        return target, sent, len(connections), down

    target, sent, connections, down = asyncio.run(scenario())
    assert [r.status_code for r in sent] == [200, 200, 200], sent
    assert target.addresses == ("127.0.0.2", "127.0.0.1")  # every checked address, once each, in order
    assert connections == 1  # the connection to the address that answered is kept and reused
    assert down.status_code is None and down.error == (
        "ConnectError: could not connect to any of 2 addresses: "
        "127.0.0.2 (Connection refused), 127.0.0.3 (Connection refused)"
    ), down.error
