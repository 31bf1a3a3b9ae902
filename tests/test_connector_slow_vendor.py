"""A vendor that answers slowly: PLINQY_SYNC_HTTP_TIMEOUT_S bounds one vendor request as a whole. httpx's timeout
bounded each socket read only, so an answer of `Content-Length: 100000` dripping a byte at a time held `sync` past
any timeout, and the worker's sync job (one connection at a time) kept every other due connection waiting. And one
that answers too much: a page is read up to MAX_PAGE_BYTES (a 200 MB answer took `sync` to 514 MB)."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from search_service.ingest.connectors.config import ConnectorsConfig
from search_service.ingest.connectors.http import MAX_PAGE_BYTES, RetryPolicy, VendorError, VendorHTTP
from search_service.ingest.connectors.job import run_sync_loop
from tests.connector_helpers import BOX, make_connection, make_store
from tests.pos_fakes.vendors import Item, LightspeedRFake

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


class DrippingVendor:
    """Answers every request with `head` (a 100,000-byte body's headers), then `chunk` every `drip_s`."""

    def __init__(self, drip_s: float = 0.2, head: bytes = HEAD + b"[", chunk: bytes = b" ") -> None:
        self.drip_s, self.head, self.chunk = drip_s, head, chunk
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.closed = threading.Event()
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.clients.append(client)
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        try:
            client.recv(65536)
            client.sendall(self.head)
            while not self.closed.wait(self.drip_s):
                client.sendall(self.chunk)
        except OSError:
            return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def dripping() -> Iterator[DrippingVendor]:
    vendor = DrippingVendor()
    yield vendor
    vendor.close()


def _r_connection(db: psycopg.Connection, url: str, name: str, account: str) -> uuid.UUID:
    store = make_store(db, name, 52.37, 4.89)
    return make_connection(db, store, "lightspeed-r", "1", url, {"account": account, "token": "r-token"})


def _in_thread(dsn: str, config: ConnectorsConfig, stop: threading.Event | None = None) -> threading.Thread:
    job = threading.Thread(target=run_sync_loop, args=(dsn, BOX, config), kwargs={"drain": True, "stop": stop})
    job.start()
    return job


def test_a_dripping_vendor_answer_is_cut_at_the_timeout_and_the_job_goes_on(
    db: psycopg.Connection, dripping: DrippingVendor
) -> None:
    good = LightspeedRFake()
    try:
        good.bucket = (0.0, 100_000)
        good.add(Item("101", "Item 101", "1.00", 3))
        good.clock.now += timedelta(minutes=2)
        slow = _r_connection(db, dripping.url, "slow", "1")
        fine = _r_connection(db, good.server.url, "fine", "4242")
        config = ConnectorsConfig(http_timeout_s=1, http_attempts=1)
        started = time.monotonic()
        job = _in_thread(db.info.dsn, config)
        job.join(timeout=20)
        took = time.monotonic() - started
        hung = job.is_alive()
    finally:
        dripping.close()  # ends a hung read, before the fix
        good.server.close()
    assert not hung and took < 10, took  # one 1 s request for the slow vendor (it ran until stopped)
    error = db.execute("SELECT last_error FROM ingest_connection WHERE id = %s", (slow,)).fetchone()
    assert error is not None and "no whole answer from" in error[0] and "within 1 s" in error[0], error
    synced = db.execute("SELECT last_sync_at, consecutive_failures FROM ingest_connection WHERE id = %s", (fine,))
    row = synced.fetchone()
    assert row is not None and row[0] is not None and row[1] == 0, row  # the next due connection was synced


def test_a_sync_stopped_mid_request_is_logged_as_stopped_not_synced(
    db: psycopg.Connection, dripping: DrippingVendor, caplog: pytest.LogCaptureFixture
) -> None:
    _r_connection(db, dripping.url, "slow", "1")
    stop = threading.Event()
    with caplog.at_level(logging.INFO, logger="plinqy.sync"):
        job = _in_thread(db.info.dsn, ConnectorsConfig(http_timeout_s=60, http_attempts=1), stop)
        time.sleep(1.0)
        stop.set()  # SIGTERM's
        job.join(timeout=20)
    lines = [r.getMessage() for r in caplog.records if r.name == "plinqy.sync"]
    assert not job.is_alive()
    # it said `synced connection …: 0 read, 0 rows in 91.0s` though nothing was read
    assert not [line for line in lines if "synced" in line], lines
    assert [line for line in lines if " stopped, to resume from its cursor: 0 read, 0 rows" in line], lines


CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n"
MIB_CHUNK = b"100000\r\n" + b" " * (1 << 20) + b"\r\n"  # 1 MiB of spaces in a chunk, sent without end


@pytest.mark.parametrize(
    ("head", "chunk", "says"),
    [
        (CHUNKED, MIB_CHUNK, "larger than 64 MiB: stopped reading it"),
        (HEAD.replace(b"100000", b"200000000") + b"[", b" ", "Content-Length 200000000 is past 64 MiB: not read"),
    ],
    ids=["chunked", "declared"],
)
def test_a_vendor_answer_past_the_page_limit_is_refused_unread(head: bytes, chunk: bytes, says: str) -> None:
    vendor = DrippingVendor(drip_s=0.001, head=head, chunk=chunk)
    try:
        with VendorHTTP(vendor.url, policy=RetryPolicy(attempts=3, base_delay_s=0.01, timeout_s=30)) as http:
            with pytest.raises(VendorError, match=says):
                http.request_json("GET", "/items")  # read it all: 514 MB of memory for 200 MB, then "malformed"
            assert http.requests == 1  # not retried: the same page would come again
    finally:
        vendor.close()
    assert MAX_PAGE_BYTES == 64 << 20  # as docs/connectors.md says
