"""A JSON write under the 10 MB body limit whose attributes are megabytes of small nested arrays: stored raw as a
jsonb of its whole size before the mapping's 10,000-character check rejected it (8.5 MB: past the statement timeout,
a 503 after 8.5 s), its decode holding the event loop for seconds. The row is now stored rejected without them, and
a large body is decoded with the garbage collector paused (api/bodies.py, ingest/sources.py)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from search_service.ingest.raw_rows import STORED_ATTRIBUTES_MAX, split_rows
from tests.ingest_helpers import bearer, new_store, store_key


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def nested_attributes_body(arrays: int) -> bytes:
    """A batch of one listing whose attributes hold `arrays` arrays nested 30 deep (about 61 bytes each): through
    the batch route, as one listing's PUT refuses a body over 1 MiB unread (413)."""
    one = b"[" * 30 + b"]" * 30
    arrays_text = b",".join([one] * arrays)
    item = b'{"sku":"BLOCK","name":"x","price":"1","quantity":1,"attributes":{"a":[' + arrays_text + b"]}}"
    return b'{"items":[' + item + b"]}"


def collector_comes_back_on(within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while not gc.isenabled():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_attributes_of_megabytes_are_refused_and_not_stored_whole(base: str, conn: psycopg.Connection) -> None:
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    body = nested_attributes_body(40_000)  # 2.4 MB
    answer = httpx.post(
        f"{base}/v1/stores/{store}/listings/batch", content=body,
        headers={**bearer(key), "content-type": "application/json"}, timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["status"] == "rejected" and result["error"].startswith("attributes take 24"), result
    assert "at most 10000 characters" in result["error"], result
    stored = conn.execute(
        "SELECT r.status, r.payload ? 'attributes', octet_length(r.payload::text), r.error FROM imported_product_raw r "
        "JOIN import_batch b ON b.id = r.import_batch_id WHERE b.store_id = %s",
        (store,),
    ).fetchall()
    assert len(stored) == 1, stored
    status, has_attributes, size, reason = stored[0]
    # it stored all 2.4 MB, then rejected the row at mapping
    assert status == "rejected" and not has_attributes and size < 1000, stored
    assert reason.startswith("attributes take 24") and "bytes as JSON" in reason, reason
    # the server (a thread of this process) paused it while decoding only; its refresh loops pause it across
    # their loads too (restoring it after), so one look may land inside such a pause: it must come back on
    assert collector_comes_back_on(), "the garbage collector stayed disabled after the request"


def test_attributes_past_the_mapping_s_limit_but_not_far_past_it_are_stored_as_they_came() -> None:
    row = {"sku": "A", "name": "x", "attributes": {"blob": "v" * 20_000}}  # the mapping rejects it, with its size
    (_number, payload, _raw, status, error), *_ = split_rows([row])
    assert status == "pending" and error is None and '"blob"' in payload
    huge = {"sku": "B", "name": "x", "attributes": {"blob": "v" * STORED_ATTRIBUTES_MAX}}
    (_number, payload, _raw, status, error), *_ = split_rows([huge])
    assert status == "rejected" and "blob" not in payload and payload.startswith('{"sku":"B"'), payload[:200]
    assert error == f"attributes take {STORED_ATTRIBUTES_MAX + 11} bytes as JSON; at most 10000 characters"
