"""A big batch mapped in lanes (ingest/lanes.py): the state it leaves is the one a single mapper leaves, row by row;
rows that depend on each other keep one mapper; a lane that fails leaves its rows to the chunk loop; a batch taken
over while a lane maps rolls the lane's chunk back; a worker SIGKILLed mid-lanes loses nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import psycopg
import pytest

from search_service.db.cluster import free_port
from search_service.ingest import lanes, pipeline
from search_service.ingest.config import IngestConfig
from search_service.ingest.gtins import gtin14
from search_service.ingest.worker import ImportWorker, ImportWorkerOptions
from tests.ingest_helpers import new_store
from tests.test_ingest_worker import batch_state, spawn, wait_for_processed

CHUNK = 100
BIG = 1200  # rows: a first chunk, then lanes of several chunks each


def gtin13(n: int) -> str:
    body = f"{400000000000 + n:012d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    code = body + str((10 - total % 10) % 10)
    assert gtin14(code) is not None
    return code


SEED = [
    {"sku": f"old-{i}", "name": f"Old item {i}", "price": "2.00", "quantity": 3, "gtin": gtin13(90_000 + i),
     "updated_at": "2026-12-01T10:00:00Z"}
    for i in range(30)
]  # fmt: skip


def big_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(BIG):
        row: dict[str, Any] = {"sku": f"n{i}", "name": f"New item {i}", "price": f"{1 + i % 9}.50", "quantity": i % 6}
        if i % 3 == 0:
            row["gtin"] = gtin13(i)
        rows.append(row)
    rows[7]["gtin"] = "4000000000007"  # a wrong check digit: ignored, noted
    rows[11]["category"] = "Nowhere > Else"  # no such category: mapped without, noted
    for i in range(5):
        rows[100 + i]["price"] = "-1"  # rejected
    for i in range(10):  # older than the listing: stale
        rows.append({"sku": f"old-{i}", "name": "Too old", "price": "9.00", "quantity": 1,
                     "updated_at": "2026-11-01T10:00:00Z"})  # fmt: skip
    for i in range(10, 20):  # newer: the listing's price and level change, its product kept (by SKU)
        rows.append({"sku": f"old-{i}", "price": "4.00", "quantity": 8, "updated_at": "2026-12-02T10:00:00Z"})
    rows.append({"sku": "again", "name": "Another SKU", "price": "1.00", "quantity": 1, "gtin": SEED[20]["gtin"]})
    return rows  # the last: the store already lists that GTIN's product as old-20, rejected


def map_batch(dsn: str, rows: list[dict[str, Any]], lanes_wanted: int) -> uuid.UUID:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = new_store(conn)
        pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=SEED)
        run_worker(dsn, IngestConfig(batch_chunk_rows=CHUNK, lanes=lanes_wanted))
        pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=rows)
    run_worker(dsn, IngestConfig(batch_chunk_rows=CHUNK, lanes=lanes_wanted))
    return store


def run_worker(dsn: str, config: IngestConfig) -> None:
    asyncio.run(ImportWorker(dsn, config, ImportWorkerOptions(drain=True)).run())


def state(dsn: str, store: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT r.row_number, r.status, r.error, r.matched_by, p.gtin, p.name FROM imported_product_raw r "
            "JOIN import_batch b ON b.id = r.import_batch_id LEFT JOIN product_master p ON p.id = r.matched_product_id "
            "WHERE b.store_id = %s AND b.total_rows > 100 ORDER BY r.row_number",
            (store,),
        ).fetchall()
        listings = conn.execute(
            "SELECT sp.sku, sp.title, sp.price, sp.quantity, sp.is_active, p.gtin, p.name, p.category_id "
            "FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id WHERE sp.store_id = %s "
            "ORDER BY sp.sku",
            (store,),
        ).fetchall()
        counters = conn.execute(
            "SELECT status, total_rows, processed_rows, mapped_rows, stale_rows, duplicate_rows, error_rows "
            "FROM import_batch WHERE store_id = %s AND total_rows > 100",
            (store,),
        ).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM inventory_event e JOIN store_product sp ON sp.id = e.store_product_id "
            "WHERE sp.store_id = %s",
            (store,),
        ).fetchone()
        products = conn.execute("SELECT count(*) FROM product_master").fetchone()  # none made twice, none lost
    return {"rows": rows, "listings": listings, "counters": counters, "events": events, "products": products}


def lane_events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        try:
            message = json.loads(record.getMessage())
        except ValueError:
            continue
        if message.get("event") == event:
            found.append(message)
    return found


def test_lanes_leave_the_state_one_mapper_leaves(
    make_database: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plinqy.ingest")
    one_dsn, laned_dsn = make_database(), make_database()
    rows = big_rows()
    one = state(one_dsn, map_batch(one_dsn, rows, 1))
    assert lane_events(caplog, "lanes") == []
    laned = state(laned_dsn, map_batch(laned_dsn, rows, 2))
    assert [e["lanes"] for e in lane_events(caplog, "lanes")] == [2]  # the big batch, not the 30-row seed
    assert laned == one
    assert one["counters"] == ("completed", len(rows), len(rows), len(rows) - 16, 10, 0, 6)
    statuses = {r[1] for r in one["rows"]}
    assert statuses == {"mapped", "stale", "rejected"}
    reasons = {r[2] for r in one["rows"] if r[1] == "rejected"}
    assert any("this store already lists its product as sku" in str(r) for r in reasons)
    assert any("ignored" in str(r[2]) for r in one["rows"] if r[1] == "mapped")


def plan(dsn: str, rows: list[dict[str, Any]]) -> lanes.Lanes | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        batch = pipeline.record_batch(conn, store_id=new_store(conn), source="csv", kind="csv", rows=rows)

    async def go() -> lanes.Lanes | None:
        conn = await asyncpg.connect(dsn)
        try:
            return await lanes.plan_lanes(conn, batch, 2, 10)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_rows_that_meet_keep_one_mapper(fresh_db_url: str) -> None:
    """Two SKUs of one GTIN (written two ways), or one SKU twice (an upsert, then its stock), are mapped in order
    by one mapper; independent rows are split into two ranges of about the same size."""
    rows = [{"sku": f"s{i}", "name": f"Item {i}", "price": "1.00", "quantity": 1} for i in range(60)]
    split = plan(fresh_db_url, rows)
    assert split is not None and split.ranges == [(0, 30), (30, 2**31 - 1)]
    assert plan(fresh_db_url, rows[:39]) is None  # fewer than two chunks a lane
    same_gtin = [dict(r) for r in rows]
    same_gtin[3]["gtin"], same_gtin[50]["gtin"] = "0012345678905", "12345678905"
    assert gtin14("0012345678905") == gtin14("012345678905")
    assert plan(fresh_db_url, same_gtin) is None
    twice = [*rows, {"op": "stock", "sku": " s3 ", "quantity": 0}]  # "s3" as validation reads it
    assert plan(fresh_db_url, twice) is None


def test_a_failing_lane_leaves_its_rows_to_the_chunk_loop(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plinqy.ingest")
    real_apply = lanes.apply_rows
    failed: list[int] = []

    async def apply_or_fail(conn: Any, store_id: uuid.UUID, currency: str, items: Any, **store: Any) -> Any:
        if not failed:
            number = await conn.fetchval("SELECT row_number FROM imported_product_raw WHERE id = $1", items[0][0])
            if number > BIG // 2:  # the second lane's first chunk: the server refuses a statement
                failed.append(number)
                await conn.execute("SELECT 1 / 0")
        return await real_apply(conn, store_id, currency, items, **store)

    monkeypatch.setattr(lanes, "apply_rows", apply_or_fail)
    rows = [{"sku": f"f{i}", "name": f"Item {i}", "price": "1.00", "quantity": 1} for i in range(BIG)]
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = new_store(conn)
        batch = pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=rows)
        run_worker(fresh_db_url, IngestConfig(batch_chunk_rows=CHUNK, lanes=2))
        assert failed and lane_events(caplog, "lane_failed")
        assert "DivisionByZero" in lane_events(caplog, "lane_failed")[0]["error"]
        assert batch_state(conn, batch)[:3] == ("completed", BIG, BIG)
        listed = conn.execute("SELECT count(*) FROM inventory_event WHERE reason = 'listed'").fetchone()
        assert listed == (BIG,)  # each row applied once: the failed chunk rolled back, mapped again later


def test_lanes_the_server_refuses_leave_the_batch_to_one_mapper(
    fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No connection for a lane (here: nothing listens where they are opened; in life, max_connections): the
    batch is mapped by the worker's chunk loop alone, whole."""
    caplog.set_level(logging.INFO, logger="plinqy.ingest")
    rows = [{"sku": f"u{i}", "name": f"Item {i}", "price": "1.00", "quantity": 1} for i in range(BIG)]
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = new_store(conn)
        batch = pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=rows)
        conn.execute("UPDATE import_batch SET status = 'processing', locked_by = 'me' WHERE id = %s", (batch,))
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    config = IngestConfig(batch_chunk_rows=CHUNK, lanes=2)

    async def go() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            await pipeline.map_chunk(conn, batch, "me", CHUNK, 60, first=True)
            assert await lanes.map_in_lanes(conn, lanes.LaneRun(closed, batch, "me", config)) is None
            assert await lanes.map_in_lanes(conn, lanes.LaneRun(fresh_db_url, batch, "me", config)) is not None
        finally:
            await conn.close()

    asyncio.run(go())
    assert [e["event"] for e in lane_events(caplog, "lanes_unavailable")] == ["lanes_unavailable"]
    with psycopg.connect(fresh_db_url) as conn:
        assert batch_state(conn, batch)[1:3] == (BIG, BIG)  # every row mapped once: the first chunk, then lanes


def test_a_batch_taken_over_while_a_lane_maps_rolls_the_lanes_chunk_back(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The takeover lands between the lane's fence and its save (no row lock held in between): the save finds
    the batch is no longer ours, the chunk rolls back, nothing of it stays."""
    rows = [{"sku": f"t{i}", "name": f"Item {i}", "price": "1.00", "quantity": 1} for i in range(BIG)]
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = new_store(conn)
        batch = pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=rows)
        conn.execute("UPDATE import_batch SET status = 'processing', locked_by = 'me' WHERE id = %s", (batch,))
    real_apply = lanes.apply_rows

    async def apply_then_lose(conn: Any, store_id: uuid.UUID, currency: str, items: Any, **store: Any) -> Any:
        results = await real_apply(conn, store_id, currency, items, **store)
        with psycopg.connect(fresh_db_url, autocommit=True) as other:  # another worker takes the batch over
            other.execute("UPDATE import_batch SET locked_by = 'other' WHERE id = %s", (batch,))
        return results

    monkeypatch.setattr(lanes, "apply_rows", apply_then_lose)

    async def go() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            with pytest.raises(pipeline.LeaseLost):
                await lanes.map_lane_chunk(conn, batch, "me", (0, 2**31 - 1), CHUNK, 60)
        finally:
            await conn.close()

    asyncio.run(go())
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (0,)
        pending = conn.execute("SELECT count(*) FROM imported_product_raw WHERE status = 'pending'").fetchone()
        assert pending == (BIG,)
        assert batch_state(conn, batch)[1] == 0


@pytest.mark.slow
def test_sigkill_mid_lanes_loses_nothing(fresh_db_url: str) -> None:
    rows = [{"sku": f"k{i}", "name": f"Item {i}", "price": "1.00", "quantity": i % 7} for i in range(BIG)]
    with psycopg.connect(fresh_db_url, autocommit=True) as db:
        store = new_store(db)
        batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
        doomed = spawn(fresh_db_url, PLINQY_INGEST_CHUNK_ROWS=str(CHUNK), PLINQY_INGEST_HOLD_S="1",
                       PLINQY_INGEST_LEASE_S="3", PLINQY_INGEST_LANES="2")  # fmt: skip
        wait_for_processed(db, batch, 4 * CHUNK)  # the first chunk, then lane chunks
        doomed.send_signal(signal.SIGKILL)
        _out, err = doomed.communicate(timeout=10)
        assert '"event": "lanes"' in err
        time.sleep(3.5)  # the lease lapses
        status, processed, mapped, _ = batch_state(db, batch)
        assert status == "processing" and processed == mapped and 4 * CHUNK <= processed < BIG
        rescuer = spawn(fresh_db_url, "--drain", PLINQY_INGEST_CHUNK_ROWS=str(CHUNK))
        _out, err = rescuer.communicate(timeout=120)
        assert rescuer.returncode == 0, err[-2000:]
        assert batch_state(db, batch)[:3] == ("completed", BIG, BIG)
        assert db.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (BIG,)
        listed = db.execute("SELECT count(*) FROM inventory_event WHERE reason = 'listed'").fetchone()
        assert listed == (BIG,)  # every row applied exactly once
