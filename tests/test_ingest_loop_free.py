"""A large write's CPU work leaves the API worker's event loop free for its searches: a 10 MB listing batch's JSON
decoding and checks, its mapping's per-row work, and a 5 MiB signed delivery's signature check and reading took the
loop for as long as they ran (up to hundreds of milliseconds), and every search of the process waited. Measured
in the served API's own loop: a task there ticking every millisecond notes the most CPU its thread spent between
two ticks (CPU time, not wall: the machine's load does not stretch it), held to under half of what the work costs."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from litestar import get

from search_service.ingest.json_faults import repeated_key_field, underflow_field
from search_service.ingest.rows import validate
from search_service.ingest.webhooks import parse_body
from search_service.settings import Settings
from tests.ingest_helpers import bearer, new_store, serve, signed, store_key, webhook_connection


class LoopWatch:
    """The longest CPU stretch of the served loop's thread between two ticks of a task sleeping 1 ms."""

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self.task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        last = time.thread_time()
        while True:
            await asyncio.sleep(0.001)
            now = time.thread_time()
            self.longest_ms = max(self.longest_ms, (now - last) * 1000)
            last = now


WATCH = LoopWatch()


@get("/test/loop-watch")
async def loop_watch() -> dict[str, float]:
    """The longest stretch since the last look (the first starts the watch)."""
    if WATCH.task is None:
        WATCH.task = asyncio.get_running_loop().create_task(WATCH.tick())
    longest, WATCH.longest_ms = WATCH.longest_ms, 0.0
    return {"longest_ms": longest}


@pytest.fixture(scope="module")
def base(settings: Settings) -> Iterator[str]:
    with serve(settings, None, [loop_watch]) as url:
        yield url


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def cpu_ms(work: Callable[[], Any]) -> float:
    """The least CPU time `work` takes here, of three runs."""
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        work()
        best = min(best, (time.thread_time() - start) * 1000)
    return best


def items(n: int, attribute_bytes: int) -> list[dict[str, Any]]:
    """Listings with attributes of many small objects: the JSON checks' hook runs once per object."""
    attributes = {f"k{i}": {"v": i} for i in range(attribute_bytes // 16)}
    return [{"sku": f"L-{uuid.uuid4().hex[:10]}", "name": f"Oat milk {i}", "price": 1.99, "quantity": 3,
             "attributes": attributes} for i in range(n)]  # fmt: skip


def while_searching(base: str, send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float, list[float]]:
    """`send()`'s answer while searches go every 20 ms; the loop's longest CPU stretch meanwhile and the searches'
    latencies (ms)."""
    latencies: list[float] = []
    stop = threading.Event()

    def search() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while not stop.is_set():
                start = time.perf_counter()
                assert client.get("/v1/search", params={"q": "oat", "mode": "keyword"}).status_code == 200
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.02)

    httpx.get(f"{base}/test/loop-watch")
    searcher = threading.Thread(target=search)
    # The objects made so far (the test's own megabytes of items among them) kept out of the collector's full
    # passes: one over this process's heap took ~140 ms in whichever thread it fell on, the loop's too.
    gc.freeze()
    searcher.start()
    try:
        answer = send()
    finally:
        stop.set()
        searcher.join()
        gc.unfreeze()
    longest = httpx.get(f"{base}/test/loop-watch").json()["longest_ms"]
    return answer, longest, latencies


def test_a_large_signed_delivery_is_verified_and_read_off_the_event_loop(
    base: str, conn: psycopg.Connection, settings: Settings
) -> None:
    store = new_store(conn)
    connection_id, secret = webhook_connection(conn, settings, store)
    raw = b""
    for n in range(1000, 0, -50):  # the largest delivery the default limit takes (5 MiB)
        raw = json.dumps({"type": "listings.upsert", "data": items(n, 4800)}, separators=(",", ":")).encode()
        if len(raw) <= settings.ingest.max_webhook_bytes:
            break
    work_ms = cpu_ms(lambda: parse_body(raw))

    def deliver() -> httpx.Response:
        return httpx.post(f"{base}/v1/ingest/{connection_id}", content=raw, headers=signed(secret, raw), timeout=120)

    answer, longest, latencies = while_searching(base, deliver)
    assert answer.status_code == 202, answer.text
    # before: the loop ran it all in one stretch (work 170 ms of CPU, longest 200-210 ms; after: 20 ms)
    assert longest < work_ms / 2, (len(raw), work_ms, longest, max(latencies, default=None))


def test_a_large_batchs_json_checks_run_off_the_event_loop_and_answer_the_same(
    base: str, conn: psycopg.Connection
) -> None:
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    body = json.dumps({"items": items(1000, 9000)}, separators=(",", ":")).encode()
    body = body[: -len(b"}]}")] + b',"quantity":4}]}'  # the last item's quantity given twice: found by the checks
    assert len(body) < 10_000_000  # litestar's default body limit, the batch route's
    work_ms = cpu_ms(lambda: (underflow_field(body), repeated_key_field(body)))

    def write() -> httpx.Response:
        headers = {**bearer(key), "content-type": "application/json"}
        return httpx.post(f"{base}/v1/stores/{store}/listings/batch", content=body, headers=headers, timeout=120)

    answer, longest, latencies = while_searching(base, write)
    assert answer.status_code == 400, answer.text
    assert "items[999].quantity" in answer.text, answer.text
    # before: work 700-780 ms of CPU, longest 880-910 ms; after: 4 ms (107 ms with msgspec's decoding on the loop)
    assert longest < work_ms / 2, (len(body), work_ms, longest, max(latencies, default=None))


def test_a_full_batchs_rows_are_validated_and_decided_off_the_event_loop(base: str, conn: psycopg.Connection) -> None:
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    sent = items(1000, 9000)
    body = json.dumps({"items": sent}, separators=(",", ":")).encode()
    work_ms = cpu_ms(lambda: [validate({**item, "op": "upsert"}) for item in sent])

    def write() -> httpx.Response:
        headers = {**bearer(key), "content-type": "application/json"}
        return httpx.post(f"{base}/v1/stores/{store}/listings/batch", content=body, headers=headers, timeout=120)

    answer, longest, latencies = while_searching(base, write)
    assert answer.status_code in (200, 202), answer.text  # 202: mapped past the statement timeout, by a worker
    # before: the rounds' validation, decisions, payload decoding and attributes' JSON on the loop, 154-167 ms in
    # one stretch (536 ms with the body's decoding and checks there too); after: 33-67 ms, and a collector's pass
    # over the request's own objects (~30-55 ms) may fall on the loop: three quarters of the work, not half
    assert longest < work_ms * 3 / 4, (len(body), work_ms, longest, max(latencies, default=None))
