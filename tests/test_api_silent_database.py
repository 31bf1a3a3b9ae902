"""A database that stops answering mid-request (its host frozen, a network partition): the request's budget (three
statement timeouts and a second) ends it with a 503, but releasing the connection reset it first, a round trip the
silent server never answered: the 503 came 5 s after the budget (12 s with the default 2 s statement timeout)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from search_service.db.cluster import free_port
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
