"""The in-memory listing buckets (engine/facet_stock.py) through `facet_set_from_stock` against the SQL facet statement:
the same pages and counts, and a price change, a stock change, a new listing, a deleted one and a store closed are
visible to the very next request (no refresh in between), before and after the changed rows are packed; a reader
that fell behind counts in SQL until a refresh rebuilds; the change log (migration 0017) names a price change of a
sellable listing only."""

from __future__ import annotations

import random
import uuid
from typing import Any

import asyncpg
import psycopg

from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import facet_set_from_stock, faceted_page
from search_service.engine.facet_stock import StockBuckets, built_buckets
from search_service.engine.facets import FacetFilters, facet_set
from search_service.engine.keyindex import keys_of
from tests.test_facet_labels import _call
from tests.test_search_ux import _near, _seed, run

WANTED = ("category", "brand", "price")


async def _same(
    conn: asyncpg.Connection, labels: ProductLabels, stock: StockBuckets, ids: list[uuid.UUID], **kw: Any
) -> Any:
    kw = {"facets": WANTED, "limit": 500, **kw}
    sql = await facet_set(conn, ids, **kw)
    memory = await facet_set_from_stock(conn, labels, stock, ids, **kw)
    assert memory is not None
    assert memory.total == sql.total and memory.ids == sql.ids
    assert memory.facets == sql.facets
    return memory


def _price_count(page: Any) -> dict[Any, int]:
    return {b.min: b.count for b in page.facets.price}


def test_stock_buckets_follow_price_and_stock_changes_at_once(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(7))
    scope = sorted(_near(cat, 20_000))
    products = sorted(cat.products, key=str)
    sellable = [(s, p) for s, p, _price, qty, active in cat.listings if qty > 0 and active and s in set(scope)]
    (repriced_store, repriced), (emptied_store, emptied) = sellable[0], sellable[1]

    async def scenario(conn: asyncpg.Connection) -> None:
        labels, stock = ProductLabels(), StockBuckets()
        await labels.load(conn)
        await stock.load(conn)
        assert stock.loaded and len(stock.packed) == sum(1 for _s, _p, _pr, q, a in cat.listings if q > 0 and a)
        cases = [{}, {"filters": FacetFilters(brand="bolt")}, {"filters": FacetFilters(store_id=scope[0])}]
        for kw in cases:
            await _same(conn, labels, stock, products, store_ids=scope, **kw)
        await _same(conn, labels, stock, products, store_ids=None)
        before = _price_count(await _same(conn, labels, stock, [repriced], store_ids=[repriced_store]))
        await conn.execute(
            "UPDATE store_product SET price = 777.77 WHERE store_id = $1 AND product_master_id = $2",
            repriced_store,
            repriced,
        )
        after = _price_count(await _same(conn, labels, stock, [repriced], store_ids=[repriced_store]))
        assert after != before and after == {500: 1}  # the next request sees the new bucket
        await conn.execute(
            "UPDATE store_product SET price = 7.77 WHERE store_id = $1 AND product_master_id = $2",
            repriced_store,
            repriced,
        )
        seen = stock.snapshot
        await stock.refresh(conn)  # the API's refresh applies it without a request
        _pos, bucket = stock.in_scope(keys_of([repriced]), stock.store_mask([repriced_store]))
        assert stock.snapshot != seen and bucket.tolist() == [2]  # 5-9.99, before any request read it
        assert _price_count(await _same(conn, labels, stock, [repriced], store_ids=[repriced_store])) == {5: 1}
        await conn.execute(
            "UPDATE store_product SET quantity = 0 WHERE store_id = $1 AND product_master_id = $2",
            emptied_store,
            emptied,
        )
        gone = await _same(conn, labels, stock, [emptied], store_ids=[emptied_store])
        assert gone.total == 0 and gone.facets.price == []
        new = await conn.fetchval("INSERT INTO product_master (name, brand) VALUES ('Rake 1', 'Zeta') RETURNING id")
        await conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
            "VALUES ($1, $2, 12.34, 'EUR', 2)",
            scope[0],
            new,
        )
        await conn.execute("DELETE FROM store_product WHERE store_id = $1 AND product_master_id = $2", *sellable[2])
        await conn.execute("UPDATE store SET is_active = false WHERE id = $1", scope[1])
        ids = [new, *products]
        for _ in range(2):  # the changed rows held aside, then packed
            for kw in cases:
                page = await _same(conn, labels, stock, ids, store_ids=[s for s in scope if s != scope[1]], **kw)
            await _same(conn, labels, stock, ids, store_ids=None)  # the closed store counts no more
            assert new in page.ids
            stock._pack()
        assert stock.n == len({p for _s, p, _pr, q, a in cat.listings if q > 0 and a} | {new})

    run(_call(fresh_db_url, scenario))


def test_listed_follows_a_stock_change_once_brought_current(fresh_db_url: str) -> None:
    """What a wide facet set asks the buckets (facet_vectors.listed_in_memory): brought up to now, they say a product
    emptied a moment ago is no longer listed, and listed again once restocked; stepped aside they answer nothing."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(9))
    store, product = next((s, p) for s, p, _price, qty, active in cat.listings if qty > 0 and active)
    only_there = sum(1 for s, p, _pr, q, a in cat.listings if p == product and q > 0 and a) == 1

    async def scenario(conn: asyncpg.Connection) -> None:
        stock = StockBuckets()
        await stock.load(conn)
        want, stores = keys_of([product]), stock.store_mask([store])
        assert stock.listed(want, stores).tolist() == [True]
        assert stock.listed(want, stock.store_mask([])).tolist() == [False]
        for quantity, listed in ((0, False), (4, True)):
            await conn.execute(
                "UPDATE store_product SET quantity = $3 WHERE store_id = $1 AND product_master_id = $2",
                store, product, quantity,
            )  # fmt: skip
            assert await stock.brought_current(conn)
            assert stock.listed(want, stores).tolist() == [listed]
            assert stock.listed(want, stock.store_mask(None)).tolist() == [listed or not only_there]
        stock.stale = True
        assert not await stock.brought_current(conn)

    run(_call(fresh_db_url, scenario))


def test_a_reader_behind_counts_in_sql_until_a_refresh_rebuilds(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(9))
    scope = sorted(_near(cat, 20_000))
    products = sorted(cat.products, key=str)

    async def scenario(conn: asyncpg.Connection) -> None:
        labels, stock = ProductLabels(), StockBuckets(max_changes=2)
        await labels.load(conn)
        await stock.load(conn)
        await conn.execute("UPDATE store_product SET price = price + 100 WHERE is_active AND quantity > 0")
        assert await facet_set_from_stock(conn, labels, stock, products, store_ids=scope, facets=WANTED) is None
        assert stock.stale and not stock.loaded
        kw: dict[str, Any] = {"store_ids": scope, "facets": WANTED, "limit": 500}
        page = await faceted_page(conn, labels, products, stock, **kw)  # the SQL listings meanwhile
        assert page == await facet_set(conn, products, **kw)
        await stock.refresh(conn)
        assert stock.loaded
        await _same(conn, labels, stock, products, store_ids=scope)

    run(_call(fresh_db_url, scenario))


def test_the_change_log_names_price_changes_of_sellable_listings_only(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(11))
        on = next((s, p) for s, p, _pr, q, a in cat.listings if q > 0 and a)
        off = next((s, p) for s, p, _pr, q, a in cat.listings if q == 0 or not a)
        sync.execute("DELETE FROM listing_change")
        for store, product in (on, off):
            sync.execute(
                "UPDATE store_product SET price = price + 1 WHERE store_id = %s AND product_master_id = %s",
                (store, product),
            )
        sync.execute(
            "UPDATE store_product SET quantity = quantity + 1 WHERE store_id = %s AND product_master_id = %s", on
        )
        logged = sync.execute("SELECT store_id, product_master_id FROM listing_change").fetchall()
    assert set(logged) == {on}  # (the old and the new pair: the same one)


def test_the_buckets_in_scope_of_a_few_products() -> None:
    stock = StockBuckets()
    stores = [uuid.uuid4() for _ in range(3)]
    products = [uuid.UUID(int=i + 1) for i in range(4)]
    packed = [b"".join(p.bytes for p in products[:2]), b"".join(p.bytes for p in products[1:])]
    stock._install(built_buckets(stores[:2], packed, [bytes([1, 2]), bytes([3, 4, 5])]))
    keys = keys_of([products[3], products[1], uuid.uuid4()])
    pos, bucket = stock.in_scope(keys, stock.store_mask(stores))
    assert sorted(zip(pos.tolist(), bucket.tolist(), strict=True)) == [(0, 5), (1, 2), (1, 3)]
    pos, bucket = stock.in_scope(keys, stock.store_mask(None, inactive=[stores[0]]))
    assert sorted(zip(pos.tolist(), bucket.tolist(), strict=True)) == [(0, 5), (1, 3)]
