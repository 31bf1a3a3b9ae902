"""The in-memory facet labels (engine/facet_labels.py, facet_memory.py) against the SQL facet statement: the same
pages and counts right after products change (before any refresh: each request reads its products stamped since the
copy's snapshot), after a refresh, with a chosen brand in another case or accents, a new category and a new product."""

from __future__ import annotations

import random
import uuid
from typing import Any

import asyncpg
import psycopg

from search_service.engine.facet_labels import NameColumn, ProductLabels
from search_service.engine.facet_memory import facet_set_in_memory
from search_service.engine.facets import FacetFilters, facet_set
from search_service.engine.suggest import SuggestParams, suggest
from search_service.engine.text import fold_accents
from tests.test_search_ux import CENTER, _near, _seed, run

WANTED = ("category", "brand", "price")


async def _both(conn: asyncpg.Connection, labels: ProductLabels, ids: list[uuid.UUID], **kw: Any) -> tuple[Any, Any]:
    kw = {"facets": WANTED, "limit": 500, **kw}
    return await facet_set(conn, ids, **kw), await facet_set_in_memory(conn, labels, ids, **kw)


def _same(sql: Any, memory: Any) -> None:
    assert memory.total == sql.total and memory.ids == sql.ids
    assert memory.facets == sql.facets
    assert memory.best_price == sql.best_price
    assert memory.nearest_m.keys() == sql.nearest_m.keys()


def test_in_memory_facets_follow_changes_before_and_after_a_refresh(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(7))
    scope = sorted(_near(cat, 20_000))
    products = sorted(cat.products, key=str)
    # The changed products must be in the global result set (in stock at an active store), or their counts vanish.
    in_stock = {pid for sid, pid, _, qty, active in cat.listings if qty > 0 and active and cat.stores[sid][2]}
    renamed, moved, retired, shouted, accented = [pid for pid in products if pid in in_stock][:5]

    async def scenario(conn: asyncpg.Connection) -> None:
        labels = ProductLabels()
        await labels.load(conn)
        assert len(labels) == len(products) and len(labels.categories) == len(cat.parent)
        await conn.execute("UPDATE product_master SET brand = 'Zeta' WHERE id = $1", renamed)
        await conn.execute("UPDATE product_master SET brand = 'ZETA' WHERE id = $1", shouted)  # another store's case
        await conn.execute("UPDATE product_master SET brand = 'Žéta' WHERE id = $1", accented)  # and accents
        garden = await conn.fetchval(
            "INSERT INTO category (name, parent_id) SELECT 'Garden', id FROM category WHERE name = 'Tools' RETURNING id"
        )
        await conn.execute("UPDATE product_master SET category_id = $2 WHERE id = $1", moved, garden)
        await conn.execute("UPDATE product_master SET is_active = false WHERE id = $1", retired)
        new = await conn.fetchval(
            "INSERT INTO product_master (name, brand, category_id) VALUES ('Rake 1', 'Zeta', $1) RETURNING id", garden
        )
        await conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
            "VALUES ($1, $2, 12.34, 'EUR', 2)",
            scope[0],
            new,
        )
        ids = [new, *products]
        for _ in range(2):  # before the refresh (the request reads what changed), then after it
            for kw in (
                {},
                {"filters": FacetFilters(brand="zeta")},
                {"filters": FacetFilters(brand="ŽETA")},
                {"filters": FacetFilters(category_ids=[garden]), "sort": "price"},
                {"filters": FacetFilters(min_price=cat.listings[0][2]), "sort": "distance", "point": CENTER},
            ):
                sql, memory = await _both(conn, labels, ids, store_ids=scope, **kw)
                _same(sql, memory)
            sql, memory = await _both(conn, labels, ids, store_ids=None)
            _same(sql, memory)
            assert any(c.id == garden and c.count == 2 for c in memory.facets.category)
            # one value as the brand filter reads it (`ZETA`, `Žéta` were values of their own), named by its commoner
            # spelling
            assert any(b.value == "Zeta" and b.count >= 4 for b in memory.facets.brand)
            assert not any(fold_accents(b.value.lower()) == "zeta" != b.value.lower() for b in memory.facets.brand)
            assert retired not in memory.ids and new in memory.ids
            await labels.refresh(conn)
        held = labels.rows_of([new, renamed])
        assert (held >= 0).all() and labels.brands[labels.brand[held[1]]] == "Zeta"

    run(_call(fresh_db_url, scenario))


async def _call(url: str, scenario: Any) -> None:
    conn = await asyncpg.connect(url)
    try:
        await scenario(conn)
    finally:
        await conn.close()


def test_narrow_suggestions_of_a_prefix_ending_in_punctuation(fresh_db_url: str) -> None:
    """ "dr." has no last word to complete: the in-memory path's details statement must still plan (an empty
    prefix query, '':*, is a tsquery syntax error if the planner folds it), and agree with the SQL plan."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(8))
        store = sorted(_near(cat, 20_000))[0]
        sync.execute(
            "WITH p AS (INSERT INTO product_master (name, brand) VALUES ('Dr. Oetker Pizza', 'Dr. Oetker') "
            "RETURNING id) INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
            "SELECT %s, id, 3.99, 'EUR', 5 FROM p",
            (store,),
        )
        lat, lon = cat.stores[store][:2]

    async def scenario(conn: asyncpg.Connection) -> None:
        labels = ProductLabels()
        await labels.load(conn)
        for prefix in ("dr.", "dr. o", "Dr"):
            params = SuggestParams(q=prefix, lat=lat, lon=lon, radius_m=50, limit=10)
            want = await suggest(conn, params)
            assert await suggest(conn, params, labels) == want
            assert any(s.text == "Dr. Oetker Pizza" for s in want), (prefix, want)

    run(_call(fresh_db_url, scenario))


def test_the_packed_name_column_reads_what_was_set_before_and_after_packing() -> None:
    names = NameColumn()
    names.set([0, 2], ["oat milk", "Ünïcode brot"])
    assert [names[r] for r in range(4)] == ["oat milk", "", "Ünïcode brot", ""]
    names.pack()
    assert [names[r] for r in range(4)] == ["oat milk", "", "Ünïcode brot", ""]
    names.set([1, 2, 3], ["rye", "spelt", "teff"])  # changed rows win over the packed blob until the next packing
    assert [names[r] for r in range(4)] == ["oat milk", "rye", "spelt", "teff"]
    many = [f"name {i}" for i in range(5000)]  # past the packing threshold: packed again on its own
    names.set(list(range(4, 5004)), many)
    assert names.n == 5004 and names[3] == "teff" and names[5003] == "name 4999" and names[2] == "spelt"
