"""The outbox: events written by triggers in the transaction of the listing change, numbered per store, fanned out."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.events_support import seed_listing, seed_product, seed_store, subscribe


def events(conn: psycopg.Connection) -> list[tuple[str, int, dict]]:  # type: ignore[type-arg]
    rows = conn.execute("SELECT type, seq, payload FROM webhook_event ORDER BY id").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_listing_changes_become_events_with_old_and_new_values(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    product = seed_product(db, "Tap washer set", "8710000000017")
    sub = subscribe(fresh_db_url, store, "http://127.0.0.1:9/hook", ["*"])
    listing = seed_listing(db, store, product, "TW-12", price=2.49, quantity=3)
    db.execute("UPDATE store_product SET quantity = 0 WHERE id = %s", (listing,))
    db.execute("UPDATE store_product SET quantity = 7, price = 2.99 WHERE id = %s", (listing,))
    db.execute("UPDATE store_product SET updated_at = now() WHERE id = %s", (listing,))  # no change: no event
    db.execute("DELETE FROM store_product WHERE id = %s", (listing,))
    got = events(db)
    assert [(t, s) for t, s, _ in got] == [
        ("listing.created", 1),
        ("listing.updated", 2),
        ("stock.changed", 3),
        ("stock.out", 4),
        ("listing.updated", 5),
        ("stock.changed", 6),
        ("stock.back", 7),
        ("price.changed", 8),
        ("listing.deleted", 9),
    ]
    price = got[7][2]
    assert price["store_id"] == str(store) and price["sequence"] == 8 and price["event_type"] == "price.changed"
    assert price["listing"] == {"id": str(listing), "sku": "TW-12"}
    assert price["product"] == {"id": str(product), "gtin": "8710000000017", "name": "Tap washer set"}
    assert (price["old"]["price"], price["new"]["price"]) == (0.0 + 2.49, 2.99)
    assert (price["old"]["quantity"], price["new"]["quantity"]) == (0, 7)
    assert got[8][2]["new"] is None and got[8][2]["old"]["sku"] == "TW-12"
    assert "occurred_at" in price
    rows = db.execute("SELECT webhook_id, message_id FROM webhook_delivery ORDER BY id").fetchall()
    assert len(rows) == 9 and {r[0] for r in rows} == {sub.subscription["id"]}
    assert len({r[1] for r in rows}) == 9


def test_events_only_for_listening_stores_and_filtered_by_type(db: psycopg.Connection, fresh_db_url: str) -> None:
    quiet, loud = seed_store(db, "Quiet"), seed_store(db, "Loud")
    product = seed_product(db, "Oat milk")
    subscribe(fresh_db_url, loud, "http://127.0.0.1:9/a", ["stock.out"])
    subscribe(fresh_db_url, loud, "http://127.0.0.1:9/b", ["price.changed", "stock.out"])
    seed_listing(db, quiet, product, "Q1")
    seed_listing(db, loud, product, "L1", quantity=2)
    db.execute("UPDATE store_product SET quantity = 0")
    assert db.execute("SELECT count(*) FROM webhook_event WHERE store_id = %s", (quiet,)).fetchone() == (0,)
    per_type = dict(
        db.execute(
            "SELECT e.type, count(*) FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id GROUP BY 1"
        ).fetchall()
    )
    assert per_type == {"stock.out": 2}


def test_rolled_back_change_writes_no_event(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    product = seed_product(db, "Oat milk")
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/a")
    with pytest.raises(psycopg.errors.CheckViolation), db.transaction():
        seed_listing(db, store, product, "OK-1")
        seed_listing(db, store, seed_product(db, "Soy milk"), "BAD", price=-1)
    assert db.execute("SELECT count(*) FROM webhook_event").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM webhook_delivery").fetchone() == (0,)


def test_bulk_statement_numbers_each_store_without_gaps(db: psycopg.Connection, fresh_db_url: str) -> None:
    stores = [seed_store(db, f"S{i}") for i in range(3)]
    for s in stores:
        subscribe(fresh_db_url, s, "http://127.0.0.1:9/a")
    products = [seed_product(db, f"P{i}") for i in range(50)]
    db.execute(
        "INSERT INTO store_product (store_id, product_master_id, sku, price, currency, quantity) "
        "SELECT s, p, 'sku-' || p, 1, 'EUR', 1 FROM unnest(%s::uuid[]) s, unnest(%s::uuid[]) p",
        (stores, products),
    )
    db.execute("UPDATE store_product SET quantity = 0")
    for s in stores:
        seqs = [r[0] for r in db.execute("SELECT seq FROM webhook_event WHERE store_id = %s ORDER BY id", (s,))]
        assert seqs == list(range(1, 201))  # 50 created + 50 x (updated, stock.changed, stock.out)


def test_import_batch_finishing_emits_import_events(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/a", ["import.completed", "import.failed"])
    batch = db.execute(
        "INSERT INTO import_batch (store_id, source, total_rows) VALUES (%s, 'csv', 10) RETURNING id", (store,)
    ).fetchone()[0]
    db.execute("UPDATE import_batch SET status = 'processing' WHERE id = %s", (batch,))
    counts = (
        "processed_rows = 10, mapped_rows = 6, stale_rows = 1, duplicate_rows = 2, error_rows = 1, unchanged_rows = 4"
    )
    db.execute(f"UPDATE import_batch SET status = 'completed', {counts} WHERE id = %s", (batch,))
    db.execute("UPDATE import_batch SET processed_rows = 10 WHERE id = %s", (batch,))  # not a status change
    db.execute(  # given up after its first chunk: 1 row of 4 processed (rejected), 3 never
        "INSERT INTO import_batch (store_id, source, status, error, total_rows, processed_rows, error_rows) "
        "VALUES (%s, 'csv', 'failed', 'bad', 4, 1, 1)",
        (store,),
    )
    got = events(db)
    assert [t for t, _, _ in got] == ["import.completed", "import.failed"]
    assert got[0][2]["import"]["id"] == str(batch) and got[0][2]["import"]["processed_rows"] == 10
    # what was applied, as GET /v1/imports/{id} says it: it said processed and rejected only
    # (and of the mapped rows those that changed nothing: a file sent again said "mapped" as one that changed all)
    names = ("mapped_rows", "stale_rows", "duplicate_rows", "error_rows", "unchanged_rows")
    outcome = {k: got[0][2]["import"][k] for k in names}
    assert outcome == {"mapped_rows": 6, "stale_rows": 1, "duplicate_rows": 2, "error_rows": 1, "unchanged_rows": 4}
    assert got[1][2]["import"]["error"] == "bad"
    # a failed import's rows never processed: its `error_rows: 1` alone read as 3 of 4 rows applied
    assert [got[i][2]["import"]["unprocessed_rows"] for i in (0, 1)] == [0, 3]
    assert db.execute("SELECT count(*) FROM webhook_delivery").fetchone() == (2,)


def test_deleting_a_store_with_webhooks_and_listings_works(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/a")
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    db.execute("DELETE FROM store WHERE id = %s", (store,))
    assert db.execute("SELECT count(*) FROM webhook_delivery").fetchone() == (0,)
    assert json.dumps(events(db)[0][2])  # the listing.created event stays until pruned


def test_an_ingest_import_emits_listing_events_and_import_completed(db: psycopg.Connection, fresh_db_url: str) -> None:
    """The ingest pipeline needs no call into events: the triggers see its listing writes and its batch status."""
    import asyncio

    import asyncpg

    from search_service.ingest import pipeline

    store = seed_store(db)
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/a", ["listing.created", "import.completed"])
    rows = [
        {"sku": "A1", "name": "Oat drink", "price": "2.49", "quantity": "10"},
        {"sku": "B2", "name": "Rye bread", "price": "3.10", "quantity": "0"},
    ]
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)

    async def drain() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            while (claimed := await pipeline.claim_batch(conn, "events-test", 30)) is not None:
                await pipeline.map_batch(conn, claimed, "events-test", 1000, 30)
        finally:
            await conn.close()

    asyncio.run(drain())
    got = events(db)
    assert sorted(t for t, _, _ in got) == ["import.completed", "listing.created", "listing.created"]
    done = next(p for t, _, p in got if t == "import.completed")
    assert done["import"]["id"] == str(batch) and done["import"]["status"] == "completed"
    assert got[-1][0] == "import.completed"  # after the listings it wrote
    assert db.execute("SELECT count(*) FROM webhook_delivery").fetchone() == (3,)


def test_a_listing_write_through_the_api_emits_no_import_event(db: psycopg.Connection, fresh_db_url: str) -> None:
    """Its answer says the outcome; a till's PATCH a sale doubled a `*` subscriber's traffic with import.completed."""
    import asyncio

    import asyncpg

    from search_service.ingest import listing_writes

    store = seed_store(db)
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/a")

    async def write() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            rows = [{"sku": "T1", "name": "Tea", "price": "2.00", "quantity": "3"}]
            await listing_writes.record_and_map(conn, store_id=store, rows=rows, worker_id="api-test")
        finally:
            await conn.close()

    asyncio.run(write())
    assert db.execute("SELECT status, kind FROM import_batch").fetchall() == [("completed", "listing")]
    assert sorted({t for t, _, _ in events(db)}) == ["listing.created"]
