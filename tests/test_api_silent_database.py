"""A database that stops answering mid-request (its host frozen, a network partition): the request's budget (three
statement timeouts and a second) ends it with a 503, but releasing the connection reset it first, a round trip the
silent server never answered: the 503 came 5 s after the budget (12 s with the default 2 s statement timeout).
Also: a connect to a silent server, and the background refreshers' connections when the database goes silent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psycopg
import pytest

from search_service.api import runtime, shared_state
from search_service.db import silence
from search_service.db.cluster import free_port
from search_service.db.faults import DatabaseSilent
from tests.ingest_helpers import serve
from tests.test_api import app_settings


class FreezingProxy:
    """A TCP proxy to the database that, once frozen, reads what both sides send and forwards none of it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.frozen.is_set():
                    sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(db_url: str) -> Iterator[FreezingProxy]:
    parts = urlsplit(db_url)
    assert parts.hostname is not None and parts.port is not None
    proxy = FreezingProxy((parts.hostname, parts.port))
    yield proxy
    proxy.close()


def test_a_database_that_stops_answering_is_a_503_within_the_requests_budget(db_url: str, proxy: FreezingProxy) -> None:
    parts = urlsplit(db_url)
    through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    settings = dataclasses.replace(app_settings(through), statement_timeout_ms=500)  # a budget of 2.5 s
    with serve(settings, None) as base:
        assert httpx.get(f"{base}/v1/categories", timeout=30).status_code == 200
        proxy.frozen.set()
        started = time.monotonic()
        answer = httpx.get(f"{base}/v1/categories", timeout=30)
        took = time.monotonic() - started
        proxy.frozen.clear()
    assert answer.status_code == 503 and answer.json()["error"]["message"].startswith("the database took too long")
    assert took < 2.5 + 1.5, took  # it took the budget and 5 s more


def test_readyz_says_a_stalled_database_is_slow_within_the_statement_timeout(db_url: str, proxy: FreezingProxy) -> None:
    """/readyz waited out a request's budget (three statement timeouts and a second: 7 s by default) before saying
    `slow`, past a readiness probe's own timeout; a lock held by `migrate` (the server's statement timeout) was
    `unreachable`."""
    parts = urlsplit(db_url)
    through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    settings = dataclasses.replace(app_settings(through), statement_timeout_ms=1000)  # a request budget of 4 s
    with serve(settings, None) as base, psycopg.connect(db_url) as locker:
        proxy.frozen.set()
        started = time.monotonic()
        stalled = httpx.get(f"{base}/readyz", timeout=30)
        took = time.monotonic() - started
        proxy.frozen.clear()
        locker.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")  # as a running migration does
        locked = httpx.get(f"{base}/readyz", timeout=30)
        locker.rollback()
    assert took < 1 + 0.5 + 1, took  # its bound, the statement timeout and half a second; it took the budget, 4 s
    for answer in (stalled, locked):
        body = answer.json()
        assert answer.status_code == 503 and body["checks"]["database"] == "slow", body
        assert "database: no answer within 1 s (PLINQY_STATEMENT_TIMEOUT_MS)" in body["reasons"][0], body


def test_readyz_that_waited_for_a_pooled_connection_still_answers_within_its_bound(db_url: str) -> None:
    """A probe that waited for a connection (searches held the pool in a stall) then ran into the connection's whole
    statement timeout: 2.9 s for its bound of 2.5. Here the pool's one connection is held by another probe."""
    settings = app_settings(
        db_url, statement_timeout_ms=1500, pool_min_size=1, pool_max_size=1, pool_acquire_timeout_s=2.0
    )  # a bound of 2 s; the wait for the connection may take it all

    def probe(base: str, after_s: float) -> tuple[httpx.Response, float]:
        time.sleep(after_s)
        started = time.monotonic()
        return httpx.get(f"{base}/readyz", timeout=30), time.monotonic() - started

    with serve(settings, None) as base, psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")  # as a running migration does
        with ThreadPoolExecutor(2) as probes:
            first, waiting = probes.submit(probe, base, 0), probes.submit(probe, base, 0.3)
            answers = [first.result(), waiting.result()]
        locker.rollback()
    for answer, took in answers:
        body = answer.json()
        assert answer.status_code == 503 and body["checks"]["database"] == "slow", body
        assert took < 1.5 + 0.5 + 0.3, answers  # the second took ~1.2 s for the connection, then 1.5 s more


def test_a_connect_that_times_out_says_what_timed_out_and_after_how_long(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes the connection and never answers: asyncpg's TimeoutError has no text, and the log said
    `cannot connect to the database (TimeoutError: )` and `shared state: no database (TimeoutError: TimeoutError)`."""
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel completes the handshake; nobody ever answers
    url = f"postgresql://plinqy@127.0.0.1:{silent.getsockname()[1]}/plinqy"
    monkeypatch.setattr(runtime, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(shared_state, "CONNECT_TIMEOUT_S", 0.5)
    rt = runtime.Runtime.build(app_settings(url))

    async def connect_for_a_while() -> None:
        task = asyncio.create_task(rt._connect())
        await asyncio.sleep(1.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        with caplog.at_level(logging.INFO):
            asyncio.run(connect_for_a_while())
            assert shared_state.preload_shared_state(app_settings(url)).labels is None
    finally:
        silent.close()
    said = "(DatabaseSilent: connection timeout expired: no answer within 0.5 s)"
    lines = [r.getMessage() for r in caplog.records]
    assert f"cannot connect to the database {said}; retrying in 0.5s" in lines, lines
    assert f"shared state: not preloaded {said[:-1]}); each worker loads its own" in lines, lines


def test_the_background_refreshers_recover_from_a_database_that_went_silent(
    db_url: str, proxy: FreezingProxy, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state's own connections had no client-side timeout: a 15 s stall (every byte dropped) left each
    refresher waiting for ever on a reply that never came, with no log line and /readyz 200 (the vector copy's
    age climbed past 100 s). The connection's silence while it owes a reply is bounded now: dropped, logged,
    reconnected, and the recovery said."""
    monkeypatch.setattr(silence, "SILENT_REPLY_S", 1.0)  # 120 s in service
    parts = urlsplit(db_url)
    through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    settings = dataclasses.replace(app_settings(through), vector_cache_refresh_s=0.2)
    refreshers = ("the in-memory vector copy", "the facet labels", "the store places", "the suggestion index")
    with serve(settings, None):
        proxy.frozen.set()
        time.sleep(3)  # the vector copy reads its changes every 0.2 s: one read is left without its answer
        proxy.frozen.clear()
        deadline, err = time.monotonic() + 40, ""
        while "the in-memory vector copy" not in (
            stuck := [what for what in refreshers if f"{what} failed to" in err]
        ) or any(f"{what} refreshed again after" not in err for what in stuck):  # not done when the others are
            assert time.monotonic() < deadline, err[-3000:]
            time.sleep(0.2)
            err += capfd.readouterr().err
    for what in stuck:  # the others sent nothing while it was silent, or (a loaded machine) were connecting then
        failed = [line for line in err.splitlines() if f"{what} failed to" in line]
        dropped = "no answer for " in failed[0] and "connection dropped" in failed[0]
        assert dropped or "connection timeout expired: no answer within" in failed[0], failed


def test_a_statement_sent_the_moment_a_reply_came_is_watched_too(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch took a statement for answered when the kernel's time of the last data sent was no later than
    that of the last received: in jiffies (4 ms at HZ=250), the statement sent in the tick its predecessor's reply
    came owed nothing, and a stall that caught it (the vector copy's refresh, its statements one after another)
    left the refresher waiting for ever, with no line logged. `pg_sleep` is a server silent while it owes a reply.
    A connection idle after a reply, longer than the limit, is left alone."""
    monkeypatch.setattr(silence, "SILENT_REPLY_S", 1.0)

    async def stalled_after_a_reply() -> float:
        conn = await asyncpg.connect(db_url)
        watch, started = silence.SilenceWatch(conn), time.monotonic()
        try:
            with pytest.raises(DatabaseSilent, match="while a reply was owed"):
                async with watch.guarded() as guarded:
                    await guarded.execute("SELECT 1")
                    await asyncio.sleep(1.5)  # idle, owing nothing: not cut
                    await guarded.execute("SELECT 1")
                    started = time.monotonic()
                    await guarded.execute("SELECT pg_sleep(8)")  # sent in the tick the reply before it came
            return time.monotonic() - started
        finally:
            conn.terminate()

    for _ in range(3):  # before, each waited the 8 s out (10 of 10 on a HZ=250 kernel)
        took = asyncio.run(stalled_after_a_reply())
        assert took < 1.0 + 2.5, took  # the limit, the watch's quarter-second tick, and a loaded machine's delay
