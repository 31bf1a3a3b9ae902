"""A CSV upload stored block by block (ingest/csv_store.py) against a real database and a real server: the same
raw rows as stored whole, nothing of it on a failure, and text PostgreSQL cannot hold (NUL) refused per row."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest

from search_service.ingest import csv_store, pipeline
from search_service.ingest.csvfile import CsvRows, parse_csv
from search_service.settings import Settings
from tests.ingest_helpers import (
    bearer,
    drain_imports,
    new_store,
    signed,
    store_key,
    webhook_connection,
)

# A BOM, `;`, blank lines, a ragged row, bytes that are not UTF-8, a NUL in a name and one in an ignored column.
# (A cell past the csv module's field limit refuses the whole file: test_ingest_csv_faults.py.)
MESSY = (
    b"\xef\xbb\xbfSKU;Name;Price;Quantity;Note\n"
    b"a1;Apples;3,49;10;x\n\n"
    b"a2;Pears;1.20\n"
    b"a3;Caf\xe9;1;1;x\n"
    b"a4;Milk\x00bad;1;1;x\n"
    b"a5;Bread;2;3;n\x00te\n"
    b"a6;Rolls;1;1;x\n\n\n"
    b"a7;Tea;4;4;x\n"
)
RAW = "SELECT row_number, payload::text, raw::text, status, error FROM imported_product_raw WHERE import_batch_id = $1"


def _store_both(dsn: str, store: uuid.UUID, block_rows: int) -> tuple[list[Any], list[Any], list[Any]]:
    """The file stored block by block and stored whole (parse_csv, store_rows): each batch's raw rows, and the
    two batches' counters."""

    async def go() -> tuple[list[Any], list[Any], list[Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            batches = []
            for streamed in (True, False):
                async with conn.transaction():
                    batch = await pipeline.open_batch(conn, store_id=store, source="csv", kind="csv")
                    if streamed:
                        await csv_store.store_csv_rows(conn, batch, CsvRows(MESSY), block_rows)
                    else:
                        await pipeline.store_rows(conn, batch, parse_csv(MESSY).rows)
                batches.append(batch)
            rows = [sorted(tuple(r) for r in await conn.fetch(RAW, b)) for b in batches]
            counters = "SELECT status, total_rows, error_rows FROM import_batch WHERE id = ANY($1) ORDER BY id = $2"
            totals = [tuple(r) for r in await conn.fetch(counters, batches, batches[1])]
            return rows[0], rows[1], totals
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.mark.parametrize("block_rows", [1, 3, 1000])
def test_a_csv_stored_block_by_block_stores_what_storing_it_whole_stores(fresh_db_url: str, block_rows: int) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = new_store(conn)
    streamed, whole, totals = _store_both(fresh_db_url, store, block_rows)
    assert streamed == whole and len(streamed) == 7
    by_number = {r[0]: r for r in streamed}
    assert sorted(by_number) == list(range(1, 8))
    assert by_number[1][3] == "pending" and json.loads(by_number[1][1])["price"] == "3,49"
    assert "cells" in by_number[2][4] and "UTF-8" in by_number[3][4]
    assert by_number[4][4].startswith("name holds a NUL") and "Milk\ufffdbad" in by_number[4][1]
    assert by_number[5][4].startswith("a cell holds a NUL") and "n\ufffdte" in by_number[5][2]
    assert by_number[6][3] == by_number[7][3] == "pending"
    assert totals[0] == totals[1] == ("pending", 7, 4)


def test_a_failure_in_a_later_block_leaves_nothing_of_the_upload(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refusing the third block (a fault injected in our own code, the COPYs before it real): the
    caller's transaction rolls the first two back."""
    real_copy = pipeline.copy_rows
    calls: list[int] = []

    async def third_fails(conn: Any, batch_id: uuid.UUID, split: Any) -> None:
        calls.append(len(split))
        if len(calls) == 3:
            raise asyncpg.exceptions.DiskFullError("could not extend file")
        await real_copy(conn, batch_id, split)

    monkeypatch.setattr(pipeline, "copy_rows", third_fails)
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        store = new_store(sync)

        async def go() -> uuid.UUID:
            conn = await asyncpg.connect(fresh_db_url)
            batch = await pipeline.open_batch(conn, store_id=store, source="csv", kind="csv")
            try:
                with pytest.raises(asyncpg.exceptions.DiskFullError):
                    async with conn.transaction():
                        await csv_store.store_csv_rows(conn, batch, CsvRows(MESSY), 2)
            finally:
                await conn.close()
            return batch

        batch = asyncio.run(go())
        assert calls == [2, 2, 2]
        count = "SELECT count(*) FROM imported_product_raw WHERE import_batch_id = %s"
        assert sync.execute(count, (batch,)).fetchone() == (0,)
        assert sync.execute("SELECT status FROM import_batch WHERE id = %s", (batch,)).fetchone() == ("receiving",)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def _upload(base: str, store: uuid.UUID, key: str, data: bytes) -> httpx.Response:
    headers = {**bearer(key), "content-type": "text/csv"}
    return httpx.post(f"{base}/v1/stores/{store}/imports", content=data, headers=headers, timeout=60)


def test_an_upload_the_database_fails_mid_way_is_aborted(
    base: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its status says why nothing was applied (it stayed `receiving` forever), and the client gets a 503."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    monkeypatch.setattr(csv_store, "BLOCK_ROWS", 2)
    real_copy = pipeline.copy_rows

    async def second_fails(db: Any, batch_id: uuid.UUID, split: Any) -> None:
        if split[0][0] > 2:
            raise asyncpg.exceptions.DiskFullError("could not extend file")
        await real_copy(db, batch_id, split)

    monkeypatch.setattr(pipeline, "copy_rows", second_fails)
    response = _upload(base, store, key, b"sku,name,price,quantity\nb1,A,1,1\nb2,B,1,1\nb3,C,1,1\n")
    assert response.status_code == 503, response.text
    batch = conn.execute("SELECT id, status, error FROM import_batch WHERE store_id = %s", (store,)).fetchone()
    assert batch is not None and batch[1] == "aborted" and "DiskFullError" in batch[2]
    count = "SELECT count(*) FROM imported_product_raw WHERE import_batch_id = %s"
    assert conn.execute(count, (batch[0],)).fetchone() == (0,)


def test_nul_characters_are_refused_naming_the_field(
    base: str, db_url: str, settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """PostgreSQL's text and jsonb cannot hold U+0000: each of these answered 500 (and stored nothing) before."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    listing = {"name": "Oat\u0000drink", "price": 1, "quantity": 1}
    put = httpx.put(f"{base}/v1/stores/{store}/listings/N1", json=listing, headers=bearer(key))
    assert put.status_code == 400 and put.json()["error"]["parameter"] == "name", put.text
    path_sku = httpx.put(f"{base}/v1/stores/{store}/listings/a%00b", json={**listing, "name": "x"}, headers=bearer(key))
    assert path_sku.status_code == 400 and path_sku.json()["error"]["parameter"] == "sku", path_sku.text
    items = [
        {"sku": "B\u00001", "name": "x", "price": 1, "quantity": 1},
        {"sku": "B2", "name": "y", "price": 1, "quantity": 1},
    ]
    batch = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert batch.status_code == 200, batch.text
    assert [r["status"] for r in batch.json()["results"]] == ["rejected", "mapped"]
    assert batch.json()["results"][0]["error"].startswith("sku holds a NUL")
    admin = store_key(conn, None)
    shop = {"name": "Kiez\u0000Laden", "lat": 52.5, "lon": 13.4}
    created = httpx.post(f"{base}/v1/stores", json=shop, headers=bearer(admin))
    assert created.status_code == 400 and created.json()["error"]["parameter"] == "name", created.text
    connection, secret = webhook_connection(conn, settings, store)
    body = json.dumps({"type": "listing.upsert", "data": {"sku": "W\u00001", "name": "Tea", "price": 2, "quantity": 3}})
    delivered = httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=signed(secret, body.encode()))
    assert delivered.status_code == 202, delivered.text
    uploaded = _upload(base, store, key, b"sku;name;price;quantity\nc1;Milk\x00;1,00;3\nc2;Bread;2;1\n")
    assert uploaded.status_code == 202, uploaded.text
    drain_imports(db_url)
    status = httpx.get(f"{base}/v1/imports/{uploaded.json()['batch_id']}", headers=bearer(key)).json()
    assert (status["status"], status["mapped_rows"], status["error_rows"]) == ("completed", 1, 1)
    errors = httpx.get(f"{base}{uploaded.json()['errors_url']}", headers=bearer(key))
    table = list(csv.reader(io.StringIO(errors.text)))
    assert table[1][:2] == ["1", "name holds a NUL character (0x00), which cannot be stored as text"]
    assert table[1][3] == "Milk\ufffd"
    skus = conn.execute("SELECT sku FROM store_product WHERE store_id = %s ORDER BY sku", (store,)).fetchall()
    assert skus == [("B2",), ("c2",)]
    webhook_rows = conn.execute(
        "SELECT r.status, r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
        "WHERE b.connection_id = %s",
        (connection,),
    ).fetchall()
    assert webhook_rows == [("rejected", "sku holds a NUL character (0x00), which cannot be stored as text")]


HOLD_UPLOAD_UPDATES = """
CREATE OR REPLACE FUNCTION test_hold_upload_updates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'receiving' AND OLD.source = 'csv' AND OLD.store_id = '{store}' THEN
        PERFORM pg_advisory_xact_lock_shared(4243);  -- waits while the test holds it
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_hold_upload_updates BEFORE UPDATE ON import_batch
FOR EACH ROW EXECUTE FUNCTION test_hold_upload_updates();
"""


def test_an_upload_holds_its_place_from_the_moment_its_batch_exists(
    base: str, db_url: str, conn: psycopg.Connection
) -> None:
    """The upload's batch was inserted, then leased by a second statement (beat_upload): a PATCH between the two
    did not see it (a `receiving` batch counts only while leased) and was mapped before the file. The batch is
    inserted leased now. (The upload's first update of its batch is held here, the PATCH sent meanwhile.)"""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/listings/H-1"
    assert httpx.put(url, json={"name": "Honey", "price": 4, "quantity": 5}, headers=bearer(key)).is_success
    conn.execute(HOLD_UPLOAD_UPDATES.format(store=store))
    waiting = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"
    try:
        with psycopg.connect(db_url, autocommit=True) as holder, ThreadPoolExecutor(1) as pool:
            holder.execute("SELECT pg_advisory_lock(4243)")
            uploaded = pool.submit(_upload, base, store, key, b"sku,name,price,quantity\nH-1,Honey,4,50\n")
            deadline = time.monotonic() + 30
            while not conn.execute(waiting).fetchone():
                assert time.monotonic() < deadline and not uploaded.done(), "the upload never updated its batch"
                time.sleep(0.05)
            patched = httpx.patch(url, json={"quantity": 3}, headers=bearer(key), timeout=30)
            holder.execute("SELECT pg_advisory_unlock(4243)")
            assert uploaded.result(timeout=60).status_code == 202
    finally:
        conn.execute("DROP TRIGGER IF EXISTS test_hold_upload_updates ON import_batch")
    assert patched.status_code == 202, patched.text  # behind the upload, not before it
    drain_imports(db_url)
    assert httpx.get(url, headers=bearer(key)).json()["quantity"] == 3  # the file's 50, then the till's 3


def test_a_store_deleted_while_its_upload_arrives_is_a_404_naming_it(base: str, conn: psycopg.Connection) -> None:
    """Its batch went with it, and storing the rows broke their foreign key: a 500."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    started = threading.Event()
    deleted = threading.Event()

    def slow_file() -> Iterator[bytes]:
        yield b"sku,name,price,quantity\n"
        started.set()
        assert deleted.wait(30)
        yield b"G-1,Glue,2,4\n"

    headers = {**bearer(key), "Content-Type": "text/csv"}
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, f"{base}/v1/stores/{store}/imports", content=slow_file(), headers=headers)
        assert started.wait(30)
        opened = "SELECT 1 FROM import_batch WHERE store_id = %s AND status = 'receiving'"
        deadline = time.monotonic() + 30
        while not conn.execute(opened, (store,)).fetchone():  # the API has opened the upload's batch
            assert time.monotonic() < deadline, "the upload never opened its batch"
            time.sleep(0.05)
        assert conn.execute("DELETE FROM store WHERE id = %s", (store,)).rowcount == 1
        deleted.set()
        response = answer.result(timeout=60)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["parameter"] == "store_id"


class _Fresh:
    """Another connection, as the API's pool gives one."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def __aenter__(self) -> Any:
        self.conn = await asyncpg.connect(self.dsn)
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()


def test_an_upload_whose_connection_dies_while_storing_is_aborted_at_once(fresh_db_url: str) -> None:
    """Its connection terminated mid-store (pg_terminate_backend, real): the abort ran on that dead connection and
    was lost, so the batch stayed `receiving` and held the store's writes back until its lease lapsed (~2 min)."""
    from search_service.api.ingest_uploads import _store

    rows = b"sku,name,price,quantity\n" + b"".join(b"s%d,n,1,1\n" % i for i in range(20_000))
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        store = new_store(sync)

        async def go() -> uuid.UUID:
            conn = await asyncpg.connect(fresh_db_url)
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            batch = await pipeline.open_batch(conn, store_id=store, source="csv", kind="csv", upload=True)

            class KilledMidway(CsvRows):
                def block(self, size: int) -> list[dict[str, Any]]:
                    if not self.done and getattr(self, "read_one", False):  # the second block: the connection goes
                        sync.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    self.read_one = True
                    return super().block(size)

            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):  # whichever comes first
                await _store(conn, store, batch, KilledMidway(rows), lambda: _Fresh(fresh_db_url))
            conn.terminate()
            return batch

        batch = asyncio.run(go())
        status, error = sync.execute("SELECT status, error FROM import_batch WHERE id = %s", (batch,)).fetchone()
        assert status == "aborted" and "could not be stored" in error, (status, error)
        count = "SELECT count(*) FROM imported_product_raw WHERE import_batch_id = %s"
        assert sync.execute(count, (batch,)).fetchone() == (0,)
