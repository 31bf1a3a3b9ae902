"""The mapping's listing probes keep the (store_id, sku) key plan whatever the statistics say: for a store that
was empty when the table was last analyzed (the first import or sync of a new store) and for a big analyzed one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from search_service.db.sql import statement

LISTINGS = 20_000
PROBED = 2_000


@pytest.fixture(scope="module")
def stores(make_database: Any) -> Iterator[tuple[psycopg.Connection, uuid.UUID, uuid.UUID]]:
    """A store analyzed with its listings, and a store analyzed empty that got as many listings afterwards."""
    with psycopg.connect(make_database(), autocommit=True) as conn:
        conn.execute("ALTER TABLE store_product SET (autovacuum_enabled = false)")  # the stale statistics stay
        conn.execute("ALTER TABLE store_product DISABLE TRIGGER USER")  # setup speed only: no history, no events
        big, new = (_store(conn, name) for name in ("big", "new"))
        _listings(conn, big, "A")
        conn.execute("ANALYZE product_master, store_product")
        _listings(conn, new, "B")
        conn.execute("ALTER TABLE store_product ENABLE TRIGGER USER")
        yield conn, big, new


def _store(conn: psycopg.Connection, name: str) -> uuid.UUID:
    sql = "INSERT INTO store (name, location) VALUES (%s, 'SRID=4326;POINT(13.4 52.5)') RETURNING id"
    row = conn.execute(sql, (name,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _listings(conn: psycopg.Connection, store: uuid.UUID, prefix: str) -> None:
    conn.execute(
        "INSERT INTO product_master (id, name) SELECT md5(%(p)s || g)::uuid, 'product ' || g "
        "FROM generate_series(1, %(n)s) g",
        {"p": prefix, "n": LISTINGS},
    )
    conn.execute(
        "INSERT INTO store_product (store_id, sku, product_master_id, price, currency, quantity) "
        "SELECT %(s)s, %(p)s || g, md5(%(p)s || g)::uuid, 1, 'EUR', 5 FROM generate_series(1, %(n)s) g",
        {"s": store, "p": prefix, "n": LISTINGS},
    )


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's nodes read from the listings or threw away, over all their loops."""
    loops = plan.get("Actual Loops", 1)
    read = plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Join Filter", 0)
    if plan.get("Relation Name") == "store_product" and plan["Node Type"] != "ModifyTable":
        read += plan.get("Actual Rows", 0)
    return int(read * loops) + sum(_rows_read(child) for child in plan.get("Plans", []))


def _explain(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> int:
    stmt = statement("ingest/mapping", name)
    with conn.transaction(force_rollback=True):  # update_stock really runs
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt.psycopg, params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return _rows_read(plan[0]["Plan"])


def _params(name: str, store: uuid.UUID, prefix: str) -> dict[str, Any]:
    skus = [f"{prefix}{i}" for i in range(1, PROBED + 1)]
    if name == "lookup":
        return {"store_id": store, "skus": skus, "gtins": [None] * PROBED}
    keep: list[Any] = [None] * PROBED
    return {"store_id": store, "skus": skus, "quantities": [3] * PROBED, "prices": keep,
            "deactivate": [False] * PROBED, "updated_ats": keep, "versions": keep,
            "catalog_versions": keep}  # fmt: skip


@pytest.mark.parametrize("name", ["lookup", "update_stock"])
@pytest.mark.parametrize("which", ["new", "big"])
def test_listing_probes_stay_per_row(
    stores: tuple[psycopg.Connection, uuid.UUID, uuid.UUID], name: str, which: str
) -> None:
    conn, big, new = stores
    store, prefix = (new, "B") if which == "new" else (big, "A")
    # Probing by the whole key reads about one listing per row (or the table once, hashed); probing by the store
    # alone, planned on statistics that saw the new store empty, read the store's listings once per row
    # (PROBED x LISTINGS = 40M here).
    assert _explain(conn, name, _params(name, store, prefix)) <= 4 * (PROBED + 2 * LISTINGS)


def test_vocabulary_trigger_probes_terms_by_index_in_a_long_session(make_database: Any) -> None:
    """A worker's session plans the vocabulary trigger (search_term_collect) once, maybe while search_term is
    empty; the later, bigger inserts of that session must still probe the terms by index, not scan them once per
    new word (a second 20,000-product insert took 119 s that way)."""
    with psycopg.connect(make_database(), autocommit=True) as conn:
        insert = (
            "INSERT INTO product_master (name, brand) "
            "SELECT 'Item w' || g || %(tag)s || ' x' || g, 'Brand ' || (g %% 50) FROM generate_series(1, %(n)s) g"
        )
        conn.execute(insert, {"tag": "a", "n": 1})  # the session's first plan: search_term is empty
        with conn.transaction():
            conn.execute(insert, {"tag": "b", "n": 3000})
            conn.execute(insert, {"tag": "c", "n": 3000})
            row = conn.execute(
                "SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'search_term'"
            ).fetchone()
        terms = conn.execute("SELECT count(*) FROM search_term").fetchone()
    assert terms is not None and terms[0] > 9000  # every new word was added
    # Scanned per word: ~9,000 new words x the terms held, tens of millions of rows read.
    assert row is not None and row[0] < 10_000
