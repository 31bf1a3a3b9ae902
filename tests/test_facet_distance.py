"""sort=distance from the listing buckets and the stores' places in memory (engine/facet_distance.py) against the
SQL facet statement, which reads every listing with its store's distance: the same pages, totals and counts at
every offset, scope and filter, across the antimeridian; two stores the sphere orders one way and the spheroid the
other; and a store the places do not hold yet, or one that moved since they were read, sends the request to SQL."""

from __future__ import annotations

import random
import uuid
from typing import Any

import asyncpg
import numpy as np
import psycopg

from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import facet_set_from_stock, faceted_page
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import facet_set
from search_service.engine.store_locator import StoreLocator, sphere_distances_m, unit_vectors
from tests.test_facet_labels import _call
from tests.test_search_ux import CENTER, FIJI, _choices, _destination, _near, _seed, run

WANTED = ("category", "brand", "price")


async def _loaded(conn: asyncpg.Connection) -> tuple[ProductLabels, StockBuckets, StoreLocator]:
    labels, stock, places = ProductLabels(), StockBuckets(), StoreLocator()
    await labels.load(conn)
    await stock.load(conn)
    await places.load(conn)
    return labels, stock, places


async def _same_by_distance(
    conn: asyncpg.Connection, memory: tuple[ProductLabels, StockBuckets, StoreLocator], ids: list[uuid.UUID], **kw: Any
) -> list[uuid.UUID]:
    labels, stock, places = memory
    kw = {"facets": WANTED, "sort": "distance", **kw}
    sql = await facet_set(conn, ids, **kw)
    page = await facet_set_from_stock(conn, labels, stock, ids, places=places, **kw)
    assert page is not None
    assert (page.ids, page.total, page.facets) == (sql.ids, sql.total, sql.facets)
    return page.ids


def test_pages_by_distance_from_memory_are_the_sql_pages(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(11))
    products = sorted(cat.products, key=str)
    random.Random(3).shuffle(products)  # a relevance order that is not the distance order

    async def check(conn: asyncpg.Connection) -> None:
        memory = await _loaded(conn)
        pages = 0
        for point, scope in [(CENTER, sorted(_near(cat, 8_000))), (CENTER, sorted(_near(cat, 30_000))),
                             (CENTER, None), (FIJI, None)]:  # fmt: skip
            for filters in _choices(cat, products, set(scope or _near(cat, 30_000))):
                if filters.min_price is not None or filters.max_price is not None:
                    continue  # a price range needs the listings' prices: read in SQL (faceted_page)
                for offset, limit in [(0, 10), (7, 5), (0, 500)]:
                    page = await _same_by_distance(
                        conn, memory, products, store_ids=scope, point=point, filters=filters, offset=offset,
                        limit=limit,
                    )  # fmt: skip
                    pages += bool(page)
        assert pages > 30  # most of the cases have hits

    run(_call(fresh_db_url, check))


def _two_stores(sync: psycopg.Connection) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Store A 1,001 m due north of CENTER, store B 1,002 m due east (WGS84): on the sphere B is the nearer. A
    product at each, the one at B first in relevance."""
    places = [_destination(*CENTER, 0.0, 1001.0), _destination(*CENTER, 90.0, 1002.0)]
    stores, products = [uuid.uuid4(), uuid.uuid4()], [uuid.uuid4(), uuid.uuid4()]
    for store, product, (lat, lon) in zip(stores, products, places, strict=True):
        sync.execute(
            "INSERT INTO store (id, name, location) "
            "VALUES (%s, 'S', ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
            (store, lon, lat),
        )
        sync.execute("INSERT INTO product_master (id, name) VALUES (%s, 'Lamp')", (product,))
        sync.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity, is_active) "
            "VALUES (%s, %s, 5, 'EUR', 3, true)",
            (store, product),
        )
    sphere = sphere_distances_m(unit_vectors(*np.array([(lon, lat) for lat, lon in places]).T), CENTER[1], CENTER[0])
    assert sphere[1] < sphere[0]  # the sphere puts B first; the spheroid (below) A
    return stores, products[::-1]


def test_two_stores_the_sphere_orders_the_other_way_are_ordered_as_postgis_measures(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        stores, relevance = _two_stores(sync)

    async def check(conn: asyncpg.Connection) -> None:
        memory = await _loaded(conn)
        ids = await _same_by_distance(conn, memory, relevance, store_ids=stores, point=CENTER, limit=1)
        assert ids == [relevance[1]]  # A's product, second in relevance, first by distance
        assert await _same_by_distance(conn, memory, relevance, store_ids=None, point=CENTER) == relevance[::-1]

    run(_call(fresh_db_url, check))


def test_a_store_the_places_do_not_hold_or_that_moved_sends_the_page_to_sql(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        _stores, relevance = _two_stores(sync)

    async def check(conn: asyncpg.Connection) -> None:
        labels, stock, places = await _loaded(conn)
        kw: dict[str, Any] = {"facets": WANTED, "sort": "distance", "point": CENTER, "store_ids": None}
        newer, product = uuid.uuid4(), relevance[0]
        await conn.execute(
            "INSERT INTO store (id, name, location) "
            "VALUES ($1, 'New', ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography)",
            newer, CENTER[1], CENTER[0] + 0.0001,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity, is_active) "
            "VALUES ($1, $2, 5, 'EUR', 3, true)",
            newer, product,
        )  # fmt: skip
        assert await facet_set_from_stock(conn, labels, stock, relevance, places=places, **kw) is None
        page = await faceted_page(conn, labels, relevance, stock, None, places, **kw)
        assert page.ids == (await facet_set(conn, relevance, **kw)).ids == relevance  # the new store: 11 m off
        await places.load(conn)
        assert (await facet_set_from_stock(conn, labels, stock, relevance, places=places, **kw)) is not None
        await conn.execute(
            "UPDATE store SET location = ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography WHERE id = $3",
            CENTER[1] + 0.5, CENTER[0], newer,
        )  # fmt: skip
        assert await facet_set_from_stock(conn, labels, stock, relevance, places=places, **kw) is None  # moved
        page = await faceted_page(conn, labels, relevance, stock, None, places, **kw)
        assert page.ids == (await facet_set(conn, relevance, **kw)).ids == relevance[::-1]

    run(_call(fresh_db_url, check))
