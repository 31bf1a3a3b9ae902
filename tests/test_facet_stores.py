"""The store facet counted from the listing buckets (engine/facet_stores.py) against the SQL facet statement: the
same counts, names and order at every scope and filter (a chosen store does not narrow its own facet), with the
other facets and either order; and 60 stores tied on their count: the first 50 by store id, as PostgreSQL orders
them."""

from __future__ import annotations

import random
import uuid

import asyncpg
import psycopg

from search_service.engine.facet_memory import facet_set_from_stock, facet_set_in_memory, faceted_page
from search_service.engine.facets import FacetFilters, facet_set
from tests.test_facet_distance import _loaded
from tests.test_facet_labels import _call
from tests.test_search_ux import CENTER, _choices, _near, _seed, run

ALL = ("category", "brand", "price", "store")


def test_store_counts_from_memory_are_the_sql_counts(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(17))
    products = sorted(cat.products, key=str)
    random.Random(9).shuffle(products)

    async def check(conn: asyncpg.Connection) -> None:
        labels, stock, places = await _loaded(conn)
        counted = 0
        for scope in [sorted(_near(cat, 8_000)), sorted(_near(cat, 30_000)), None]:
            for filters in _choices(cat, products, set(scope or _near(cat, 30_000))):
                if filters.min_price is not None or filters.max_price is not None:
                    continue
                for sort in ("relevance", "distance"):
                    kw = {"store_ids": scope, "filters": filters, "facets": ALL, "sort": sort, "point": CENTER}
                    sql = await facet_set(conn, products, **kw)
                    page = await facet_set_from_stock(conn, labels, stock, products, places=places, **kw)
                    assert page is not None
                    assert (page.ids, page.total, page.facets) == (sql.ids, sql.total, sql.facets)
                    counted += len(page.facets.store or [])
        assert counted > 100

    run(_call(fresh_db_url, check))


def _open_stores(dsn: str, stores: list[uuid.UUID], products: list[uuid.UUID]) -> None:
    with psycopg.connect(dsn, autocommit=True) as sync:
        for store in stores:
            sync.execute(
                "INSERT INTO store (id, name, location) "
                "VALUES (%s, %s, ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326)::geography)",
                (store, f"Shop {store.hex[:6]}"),
            )
            for product in products:
                sync.execute(
                    "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity, is_active) "
                    "VALUES (%s, %s, 3, 'EUR', 1, true)",
                    (store, product),
                )


def test_sixty_stores_tied_show_the_first_fifty_by_id(fresh_db_url: str) -> None:
    """Half the stores open after the buckets were built (their codes come after the others'), so the order by
    code is not the order by id."""
    stores = [uuid.uuid4() for _ in range(60)]
    products = [uuid.uuid4(), uuid.uuid4()]
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        for product in products:
            sync.execute("INSERT INTO product_master (id, name) VALUES (%s, 'Tape')", (product,))
    _open_stores(fresh_db_url, stores[:30], products)

    async def check(conn: asyncpg.Connection) -> None:
        labels, stock, places = await _loaded(conn)
        _open_stores(fresh_db_url, stores[30:], products)
        await places.load(conn)
        kw = {"store_ids": None, "facets": ("store",)}
        page = await faceted_page(conn, labels, products, stock, None, places, **kw)
        sql = await facet_set(conn, products, **kw)
        assert page.facets.store == sql.facets.store
        assert [s.id for s in page.facets.store or []] == sorted(stores)[:50]
        assert {s.count for s in page.facets.store or []} == {2}
        assert len(stock.store_code) == 60  # the later ones brought in by the request

    run(_call(fresh_db_url, check))


def test_a_chosen_store_or_brand_past_the_fifty_shown_is_in_its_own_facet(fresh_db_url: str) -> None:
    """A front end shows a chosen value's checked box with its count: a store or brand past the 50 most frequent
    was missing from its own facet. 60 stores tied (the 56th by id chosen); 60 brands of 2 products and one of 1."""
    stores = sorted(uuid.uuid4() for _ in range(60))
    brands = [f"Brand {i:02d}" for i in range(60) for _ in range(2)] + ["Zeta Foods"]
    products = [uuid.uuid4() for _ in brands]
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        for product, brand in zip(products, brands, strict=True):
            sync.execute("INSERT INTO product_master (id, name, brand) VALUES (%s, 'Tape', %s)", (product, brand))
    _open_stores(fresh_db_url, stores, products)

    async def check(conn: asyncpg.Connection) -> None:
        labels, stock, places = await _loaded(conn)
        for chosen in ({"store_id": stores[55]}, {"brand": "zeta foods"}):
            kw = {"store_ids": None, "facets": ("brand", "store"), "filters": FacetFilters(**chosen)}
            sql = await facet_set(conn, products, **kw)
            page = await faceted_page(conn, labels, products, stock, None, places, **kw)
            assert page.facets == sql.facets
            brand_kw = {**kw, "facets": ("brand",)}
            assert (await facet_set_in_memory(conn, labels, products, **brand_kw)).facets.brand == sql.facets.brand
            facets = sql.facets
            assert facets.store is not None and facets.brand is not None
            if "store_id" in chosen:
                assert [s.id for s in facets.store] == [*stores[:50], stores[55]], facets.store
                assert facets.store[-1].count == len(products)
            else:
                assert [b.value for b in facets.brand] == [*sorted(set(brands[:-1]))[:50], "Zeta Foods"]
                assert facets.brand[-1].count == 1 and len(facets.store) == 50

    run(_call(fresh_db_url, check))
