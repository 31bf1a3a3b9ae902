"""Small batches of a store mapped together (ingest/groups.py): in order, each with its own outcome and counters,
in one transaction; a store's queue head is claimed cheaply and only by one worker; a killed worker's group is
taken over."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import psycopg

from search_service.ingest import groups, pipeline
from search_service.ingest.config import IngestConfig
from search_service.ingest.worker import ImportWorker, ImportWorkerOptions
from tests.ingest_helpers import drain_imports, new_store


def deliver(conn: psycopg.Connection, store: uuid.UUID, *rows: dict[str, Any]) -> uuid.UUID:
    return pipeline.record_batch(conn, store_id=store, source="webhook", kind="webhook", rows=list(rows))


def run_worker(dsn: str) -> None:
    asyncio.run(ImportWorker(dsn, IngestConfig(), ImportWorkerOptions(drain=True)).run())


def listed(conn: psycopg.Connection, store: uuid.UUID, sku: str) -> tuple[int, bool]:
    row = conn.execute(
        "SELECT quantity, is_active FROM store_product WHERE store_id = %s AND sku = %s", (store, sku)
    ).fetchone()
    assert row is not None
    return row  # type: ignore[return-value]


def test_waiting_deliveries_are_mapped_in_order_each_with_its_own_outcome(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    store = new_store(db)
    deliver(db, store, *({"sku": s, "name": f"Item {s}", "price": "1.00", "quantity": 5} for s in ("a", "b", "c")))
    drain_imports(fresh_db_url)
    batches = [deliver(db, store, {"op": "stock", "sku": "a", "quantity": q}) for q in (4, 3, 0, 7)]
    newer = deliver(db, store, {"op": "stock", "sku": "b", "quantity": 1, "updated_at": "2026-12-03T10:00:00Z"})
    older = deliver(db, store, {"op": "stock", "sku": "b", "quantity": 9, "updated_at": "2026-12-03T09:00:00Z"})
    unknown = deliver(db, store, {"op": "stock", "sku": "nope", "quantity": 1})
    twice = deliver(
        db, store, {"op": "stock", "sku": "c", "quantity": 2}, {"op": "stock", "sku": "c", "quantity": 8}
    )  # the same SKU twice in one delivery: both apply, in order, as if delivered one by one
    gone = deliver(db, store, {"op": "delete", "sku": "c"})
    run_worker(fresh_db_url)

    assert listed(db, store, "a") == (7, True)
    assert listed(db, store, "b") == (1, True)
    assert listed(db, store, "c") == (8, False)
    levels = db.execute(
        "SELECT e.new_quantity FROM inventory_event e JOIN store_product sp ON sp.id = e.store_product_id "
        "WHERE sp.sku = 'a' AND e.reason = 'update' ORDER BY e.id"
    ).fetchall()
    assert [r[0] for r in levels] == [4, 3, 0, 7]  # every delivery applied, in the order they came
    ids = [*batches, newer, older, unknown, twice, gone]
    states = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT id, status, total_rows, processed_rows, mapped_rows, stale_rows, duplicate_rows, error_rows, "
            "locked_by FROM import_batch WHERE id = ANY(%s)",
            (ids,),
        )
    }
    assert all(s[0] == "completed" and s[1] == s[2] and s[7] is None for s in states.values()), states
    assert states[older][4] == 1 and states[unknown][6] == 1 and states[twice][3:5] == (2, 0)
    assert states[twice][5] == 0 and states[gone][3] == 1
    # Mapped together: one transaction finished them all.
    finished = db.execute("SELECT count(DISTINCT finished_at) FROM import_batch WHERE id = ANY(%s)", (ids,))
    assert finished.fetchone() == (1,)


async def _claims(dsn: str, first: uuid.UUID, second: uuid.UUID) -> tuple[Any, ...]:
    conn = await asyncpg.connect(dsn)
    try:
        head = await groups.claim_next(conn, "w1", 30)
        other = await groups.claim_next(conn, "w2", 30)  # the first store's queue is held: the second store's head
        nothing = await groups.claim_next(conn, "w3", 30)
        assert head is not None and head.store_id == first
        assert other is not None and other.store_id == second
        followers = await groups.claim_followers(conn, head, "w1", 30, max_rows=3)
        return head, other, nothing, followers
    finally:
        await conn.close()


def test_only_a_stores_head_is_claimed_and_its_holder_takes_the_followers(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    first, second = new_store(db), new_store(db)
    mine = [deliver(db, first, {"op": "stock", "sku": "a", "quantity": i}) for i in range(5)]
    theirs = deliver(db, second, {"op": "stock", "sku": "a", "quantity": 1})
    head, other, nothing, followers = asyncio.run(_claims(fresh_db_url, first, second))
    assert head.id == mine[0] and other.id == theirs and nothing is None
    assert [f.id for f in followers] == mine[1:4]  # in order, up to max_rows rows


async def _abandon_a_group(dsn: str) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        head = await groups.claim_next(conn, "dead", 0.5)
        assert head is not None
        followers = await groups.claim_followers(conn, head, "dead", 0.5, max_rows=100)
        return [head.id, *(f.id for f in followers)]
    finally:
        await conn.close()


def test_a_killed_workers_group_is_taken_over(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = new_store(db)
    deliver(db, store, {"sku": "a", "name": "Apple", "price": "1.00", "quantity": 5})
    drain_imports(fresh_db_url)
    batches = [deliver(db, store, {"op": "stock", "sku": "a", "quantity": q}) for q in (1, 2, 3)]
    held = asyncio.run(_abandon_a_group(fresh_db_url))
    assert held == batches  # claimed, never mapped: the worker died
    time.sleep(0.6)  # its leases lapse
    run_worker(fresh_db_url)
    states = db.execute(
        "SELECT status, processed_rows, attempts FROM import_batch WHERE id = ANY(%s)", (batches,)
    ).fetchall()
    assert states == [("completed", 1, 2)] * 3
    assert listed(db, store, "a") == (3, True)


def one_claim(dsn: str) -> None:
    """One claim of the import job and what it takes along (its drain would wait out a crashed batch's pause)."""

    async def run() -> None:
        worker = ImportWorker(dsn, IngestConfig(), ImportWorkerOptions(drain=True))
        conn = await asyncpg.connect(dsn)
        try:
            head = await groups.claim_next(conn, worker.worker_id, 60)
            assert head is not None
            await worker._take(conn, head)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_group_whose_batch_fails_maps_none_of_the_later_ones_past_it(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A group that raised was mapped batch by batch, and those after the one that failed were applied at once:
    when it succeeded on its retry (a transient error), its older level overwrote the newer one."""
    store = new_store(db)
    deliver(db, store, {"sku": "a", "name": "Item a", "price": "1.00", "quantity": 1})
    drain_imports(fresh_db_url)
    db.execute("CREATE TABLE fail_now (on_ boolean); INSERT INTO fail_now VALUES (true)")
    db.execute("""CREATE FUNCTION fail_666() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.quantity = 666 AND (SELECT on_ FROM fail_now) THEN RAISE EXCEPTION 'transient'; END IF;
        RETURN NEW; END $$""")  # fmt: skip
    db.execute("CREATE TRIGGER fail_666 BEFORE UPDATE ON store_product FOR EACH ROW EXECUTE FUNCTION fail_666()")
    first = deliver(db, store, {"op": "stock", "sku": "a", "quantity": 666})
    later = deliver(db, store, {"op": "stock", "sku": "a", "quantity": 5})
    one_claim(fresh_db_url)
    rows = db.execute("SELECT id, status, processed_rows, locked_by IS NULL, started_at IS NULL FROM import_batch "
                      "WHERE id = ANY(%s)", ([first, later],)).fetchall()  # fmt: skip
    states = {r[0]: tuple(r[1:]) for r in rows}
    assert states[first][:2] == ("processing", 0)  # paused, to be tried again
    # back in the queue, unmapped: pending, never started (it read "processing", started, while nobody mapped it)
    assert states[later] == ("pending", 0, True, True) and listed(db, store, "a")[0] == 1
    db.execute("UPDATE fail_now SET on_ = false")
    db.execute("UPDATE import_batch SET locked_until = NULL WHERE id = %s", (first,))  # its pause over
    run_worker(fresh_db_url)
    assert listed(db, store, "a")[0] == 5  # 666, then 5: in order


async def _put(dsn: str, store: uuid.UUID, *rows: dict[str, Any]) -> None:
    """A listing write mapped inline (`PUT …/listings/{sku}`, `POST …/listings/batch`)."""
    from search_service.ingest import listing_writes

    conn = await asyncpg.connect(dsn)
    try:
        await listing_writes.record_and_map(conn, store_id=store, rows=list(rows), worker_id=f"api:{store}")
    finally:
        await conn.close()


def test_a_single_writes_products_are_embedded_before_a_bulk_imports_backlog(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """Every product's embedding task was queued at priority 0 and claimed first in, first out: while a 12,000-row
    CSV's tasks were embedded, a product one PUT or delivery added waited behind all of them (72 s, not ≤ 5 s)."""
    from embeddings import queue

    def row(sku: str, name: str) -> dict[str, Any]:
        return {"sku": sku, "name": name, "price": "1.00", "quantity": 1}

    bulk, shop, synced = new_store(db), new_store(db), new_store(db)
    csv = [row(f"B{i}", f"Bulk widget number {i}") for i in range(30)]
    pipeline.record_batch(db, store_id=bulk, source="csv", kind="csv", rows=csv)
    drain_imports(fresh_db_url)
    pipeline.record_batch(db, store_id=synced, source="erply", kind="sync", rows=[row("S1", "Synced kettle")])
    asyncio.run(_put(fresh_db_url, shop, row("L1", "Vintage brass lantern")))
    asyncio.run(_put(fresh_db_url, bulk, row("B7", "Bulk widget renamed")))  # an edit lifts its pending task
    deliver(db, shop, row("D1", "Delivered teapot"))
    deliver(db, shop, row("D2", "Delivered cup"))  # mapped together with D1 (groups)
    run_worker(fresh_db_url)
    products = dict(db.execute("SELECT sku, product_master_id FROM store_product").fetchall())

    first = queue.claim(db, "embed-1", 4, 30)
    assert {t.product_id for t in first} == {products[s] for s in ("L1", "B7", "D1", "D2")}
    rest = queue.claim(db, "embed-2", 29, 30)  # the backlog still moves, in its order, before the later sync
    assert {t.product_id for t in rest} == {products[f"B{i}"] for i in range(30) if i != 7}
    assert [t.product_id for t in queue.claim(db, "embed-3", 5, 30)] == [products["S1"]]

    asyncio.run(_put(fresh_db_url, shop, *(row(f"M{i}", f"Many lamps {i}") for i in range(101))))  # a big batch
    priorities = db.execute(
        "SELECT DISTINCT t.priority FROM ai_task t JOIN store_product sp USING (product_master_id) "
        "WHERE sp.sku LIKE 'M%' AND t.status = 'pending'"
    ).fetchall()
    assert priorities == [(0,)]


def test_a_lone_points_hint_is_for_rows_people_wrote_not_a_connectors(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A POS connector's price '1.234' (a program's decimal point) got the hint meant for people typing a CSV: "if
    it is 1234, write it without a thousands separator". Mapped in one group, the signed webhook's row keeps it; the
    connector's says its rounding alone."""
    store = new_store(db)
    row = {"name": "Oat drink", "price": "1.234", "quantity": 5}
    people = deliver(db, store, {**row, "sku": "people"})
    program = pipeline.record_batch(
        db, store_id=store, source="shopify", kind="webhook", rows=[{**row, "sku": "program"}]
    )
    run_worker(fresh_db_url)
    noted = db.execute(
        "SELECT payload->>'sku', status, error FROM imported_product_raw WHERE import_batch_id = ANY(%s)",
        ([people, program],),
    ).fetchall()
    assert sorted(noted) == [
        ("people", "mapped", "price '1.234' read as 1.234, rounded to 1.23 (a lone point is a decimal point, and a "
         "listing holds 2 decimals): if it is 1234, write it without a thousands separator"),
        ("program", "mapped", "price 1.234 rounded to 1.23 (a listing holds 2 decimals)"),
    ]  # fmt: skip
