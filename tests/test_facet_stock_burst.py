"""The listing buckets (engine/facet_stock.py) during a burst of changes: past `burst_changes` they step aside (the
facets count in SQL, exactly) and load again once the change log is quiet; a small change set is applied in place
(no rebuild); the bulk apply agrees with a plain model of every listing, before and after packing."""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

import asyncpg
import numpy as np
import psycopg
import pytest

from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import facet_set_from_stock, faceted_page
from search_service.engine.facet_stock import StockBuckets, built_buckets
from search_service.engine.facets import facet_set
from search_service.engine.keyindex import keys_of
from tests.test_facet_labels import _call
from tests.test_facet_stock import WANTED, _same
from tests.test_search_ux import _near, _seed, run


def test_a_burst_steps_aside_then_the_buckets_load_again_once_the_log_is_quiet(
    fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(13))
    scope = sorted(_near(cat, 20_000))
    products = sorted(cat.products, key=str)
    caplog.set_level(logging.INFO, logger="search_service.engine.facet_stock")

    async def scenario(conn: asyncpg.Connection) -> None:
        labels, stock = ProductLabels(), StockBuckets(burst_floor=100)
        await labels.load(conn)
        await stock.load(conn)
        assert stock.burst_changes == 100  # ~700 listings: a tenth is under the floor
        new = await conn.fetch(
            "INSERT INTO product_master (name, brand) SELECT 'Rake ' || i, 'Zeta' FROM generate_series(1, 150) i "
            "RETURNING id"
        )
        await conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
            "SELECT $1, id, 3 + (random() * 40)::int, 'EUR', 2 FROM unnest($2::uuid[]) AS id",
            scope[0],
            [r["id"] for r in new],
        )
        ids = [r["id"] for r in new] + products
        kw: dict[str, Any] = {"store_ids": scope, "facets": WANTED, "limit": 500}

        async def exact_in_sql() -> None:
            assert await facet_set_from_stock(conn, labels, stock, ids, **kw) is None
            assert await faceted_page(conn, labels, ids, stock, **kw) == await facet_set(conn, ids, **kw)

        await stock.refresh(conn)  # 150 changes at once: a burst, read no further than the burst's limit
        assert stock.stale and not stock.loaded and "101 changes read at once (a burst: past 100;" in caplog.text
        await exact_in_sql()
        await conn.execute("UPDATE store_product SET price = price + 1 WHERE is_active AND quantity > 0")  # ~850
        await stock.refresh(conn)  # the log moved by more than a burst since the step: still aside
        assert not stock.loaded and "rebuilding" not in caplog.text
        await exact_in_sql()
        await stock.refresh(conn)  # quiet since the last look: rebuilt, and used again
        assert stock.loaded and "the change log is quiet (" in caplog.text
        assert len(stock.packed) == await conn.fetchval(
            "SELECT count(*) FROM store_product WHERE is_active AND quantity > 0"
        )
        page = await _same(conn, labels, stock, ids, store_ids=scope)
        assert page.best_price == {}  # the buckets' path (buckets, not prices)
        assert await faceted_page(conn, labels, ids, stock, **kw) == page

    run(_call(fresh_db_url, scenario))


def test_a_small_change_set_is_applied_in_place(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(17))
    scope = sorted(_near(cat, 20_000))
    products = sorted(cat.products, key=str)
    sellable = [(s, p) for s, p, _pr, q, a in cat.listings if q > 0 and a]

    async def scenario(conn: asyncpg.Connection) -> None:
        labels, stock = ProductLabels(), StockBuckets()
        await labels.load(conn)
        await stock.load(conn)
        packed, seen = stock.packed, stock.snapshot
        for store, product in sellable[:4]:
            await conn.execute(
                "UPDATE store_product SET price = price * 3 WHERE store_id = $1 AND product_master_id = $2",
                store,
                product,
            )
        await conn.execute("UPDATE store_product SET quantity = 0 WHERE store_id = $1 AND product_master_id = $2",
                           *sellable[4])  # fmt: skip
        await stock.refresh(conn)
        assert stock.loaded and stock.snapshot != seen
        assert stock.packed is packed  # no rebuild, no packing: the five rows held aside
        assert len(stock._changed_rows) == len({p for _s, p in sellable[:5]})
        await _same(conn, labels, stock, products, store_ids=scope)
        await _same(conn, labels, stock, products, store_ids=None)

    run(_call(fresh_db_url, scenario))


def test_the_burst_threshold_scales_with_the_listings_held() -> None:
    rng = np.random.default_rng(3)
    for listings, max_changes, want in ((0, 20000, 1000), (50_000, 20000, 5000), (50_000, 3000, 3000)):
        stock = StockBuckets(max_changes=max_changes)
        stock._install(built_buckets([uuid.uuid4()], [rng.bytes(16 * listings)], [bytes([1]) * listings]))
        assert stock.burst_changes == want


def test_the_bulk_apply_agrees_with_a_model_of_every_listing() -> None:
    rng = random.Random(5)
    stores = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(6)]
    products = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(3000)]
    model: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for product in products[:2000]:
        for store in rng.sample(stores[:4], rng.randint(0, 3)):
            model[store, product] = rng.randint(1, 12)
    stock = StockBuckets()
    by_store = [[(p, b) for (s, p), b in model.items() if s == store] for store in stores[:4]]
    stock._install(built_buckets(stores[:4], [b"".join(p.bytes for p, _b in got) for got in by_store],
                 [bytes(b for _p, b in got) for got in by_store]))  # fmt: skip

    def check() -> None:
        want = [*rng.sample(products, 1500), uuid.uuid4()]
        pos, bucket = stock.in_scope(keys_of(want), stock.store_mask(None))
        expected = sorted((i, b) for i, p in enumerate(want) for (s, q), b in model.items() if q == p)
        assert sorted(zip(pos.tolist(), bucket.tolist(), strict=True)) == expected
        mask = stock.store_mask([stores[1], stores[5]])
        pos, bucket = stock.in_scope(keys_of(want), mask)
        assert sorted(zip(pos.tolist(), bucket.tolist(), strict=True)) == sorted(
            (i, b) for i, p in enumerate(want) for (s, q), b in model.items() if q == p and s in stores[1::4]
        )

    for size in (1, 40, 900, 5000, 300):  # 5000 changed rows: packed at once
        pairs = {(rng.choice(stores), rng.choice(products)): rng.choice([0, 0, *range(1, 13)]) for _ in range(size)}
        stock._apply_pairs(b"".join(s.bytes + p.bytes + bytes([b]) for (s, p), b in pairs.items()))
        for key, b in pairs.items():
            if b:
                model[key] = b
            else:
                model.pop(key, None)
        check()
    stock._pack()
    check()
    assert len(stock.packed) == len(model)
