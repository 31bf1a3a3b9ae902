"""Pages of a hybrid (and keyword) search are slices of one order: paging with `offset` neither repeats nor skips a
product, on the engine's path and on the extended one (a map viewport), whatever the page size."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import numpy as np
import psycopg
import pytest
from pgvector.asyncpg import register_vector
from pgvector.psycopg import register_vector as register_vector_psycopg

from search_service.engine import geo_areas
from search_service.engine.fusion import Ranked, fusion_depth, merge, windows
from search_service.engine.search import SearchParams, search
from search_service.engine.ux import UxParams, ux_search
from search_service.engine.vectors import VectorCache

CENTER = (48.137, 11.575)  # lat, lon
WORDS = ["lamp", "desk", "chair", "shelf"]
PRODUCTS = 700


@pytest.fixture(scope="module")
def catalogue(db_url: str) -> Iterator[str]:
    """700 products in stock at one store; 'lamp' in about half their names; random unit vectors."""
    rng = random.Random(11)
    vectors = np.random.default_rng(5).normal(size=(PRODUCTS, 384)).astype(np.float32)
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        store = uuid.uuid4()
        conn.execute(
            "INSERT INTO store (id, name, location) VALUES (%s, 'Pages', "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
            (store, CENTER[1], CENTER[0]),
        )
        for i in range(PRODUCTS):
            pid = uuid.uuid4()
            name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.choice(WORDS)} {i}"
            conn.execute(
                "INSERT INTO product_master (id, name, ai_vector) VALUES (%s, %s, %s)",
                (pid, name, vectors[i] / np.linalg.norm(vectors[i])),
            )
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
                "VALUES (%s, %s, %s, 'EUR', 3)",
                (store, pid, Decimal(rng.randint(100, 9_999)) / 100),
            )
    yield db_url


async def _pages(url: str, mode: str, pages: list[tuple[int, int]], viewport: bool) -> list[list[uuid.UUID]]:
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    try:
        vectors = VectorCache()
        await vectors.load(conn)
        query = np.random.default_rng(9).normal(size=384).astype(np.float32)
        query /= np.linalg.norm(query)
        out = []
        for offset, limit in pages:
            if viewport:
                box = geo_areas.BBox(CENTER[1] - 0.1, CENTER[0] - 0.1, CENTER[1] + 0.1, CENTER[0] + 0.1)
                params = SearchParams(q="lamp", limit=limit, offset=offset, mode=mode)  # type: ignore[arg-type]
                result: Any = await ux_search(conn, params, query, UxParams(bbox=box), vectors=vectors)
            else:
                params = SearchParams(
                    q="lamp",
                    lat=CENTER[0],
                    lon=CENTER[1],
                    limit=limit,
                    offset=offset,
                    mode=mode,  # type: ignore[arg-type]
                )
                result = await search(conn, params, query, vectors=vectors)
            out.append([hit.product.id for hit in result.results])
        return out
    finally:
        await conn.close()


@pytest.mark.parametrize("viewport", [False, True], ids=["engine", "viewport"])
@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_pages_are_slices_of_one_order(catalogue: str, mode: str, viewport: bool) -> None:
    whole, *pages = asyncio.run(
        _pages(catalogue, mode, [(0, 100), *[(o, 25) for o in range(0, 100, 25)], (0, 20), (20, 20)], viewport)
    )
    deep_whole, *deep_pages = asyncio.run(
        _pages(catalogue, mode, [(100, 100), (100, 50), (150, 50), (0, 300), (290, 20), (300, 100)], viewport)
    )
    assert len(whole) == 100 and len(deep_whole) == 100
    assert [pid for page in pages[:4] for pid in page] == whole
    assert pages[4] + pages[5] == whole[:40]
    assert deep_pages[0] + deep_pages[1] == deep_whole
    head = deep_pages[2]
    assert head[:100] == whole and head[100:200] == deep_whole
    assert deep_pages[3][:10] == head[290:] and len(set(head + deep_pages[4])) == len(head) + len(deep_pages[4])


def _side(ids: list[uuid.UUID]) -> Ranked:
    return Ranked(ids, {pid: 1.0 / (i + 1) for i, pid in enumerate(ids)}, len(ids), True, "x")


def test_window_fusion_extends_each_windows_order() -> None:
    rng = random.Random(3)
    pool = [uuid.uuid4() for _ in range(900)]
    vector, keyword = rng.sample(pool, 600), rng.sample(pool, 450)
    assert fusion_depth(20, 30) == 30 and fusion_depth(31, 30) == 100 and fusion_depth(1050, 30) == 1100
    assert windows(600, 30) == [30, 100, 300, 600]
    full = [c.product_id for c in merge([_side(vector), _side(keyword)], first_window=30).candidates]
    assert len(full) == len(set(vector) | set(keyword))
    for depth in (30, 100, 300):
        head = merge([_side(vector[:depth]), _side(keyword[:depth])], first_window=30).candidates
        assert [c.product_id for c in head] == full[: len(head)]


@pytest.fixture(scope="module")
def bulbs(make_database: Any) -> str:
    """Three GU10 bulbs (only the keyword side finds them: their vectors point away from the query) and 40
    products near the query in meaning, none holding the word: a phone is the vector side's first."""
    url = str(make_database())
    query = np.random.default_rng(21).normal(size=384).astype(np.float32)
    noise = np.random.default_rng(22).normal(size=(40, 384)).astype(np.float32)
    near = [query] + [query + 0.5 * n for n in noise[1:]]
    products = [(f"Qarrow Bulb GU10 {i}W", -query) for i in (3, 5, 7)]
    products += [(f"Qarrow Phone {i}", v) for i, v in enumerate(near)]
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        store = uuid.uuid4()
        conn.execute(
            "INSERT INTO store (id, name, location) VALUES (%s, 'Bulbs', "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
            (store, CENTER[1], CENTER[0]),
        )
        for name, vector in products:
            pid = uuid.uuid4()
            conn.execute(
                "INSERT INTO product_master (id, name, ai_vector) VALUES (%s, %s, %s)",
                (pid, name, vector / np.linalg.norm(vector)),
            )
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
                "VALUES (%s, %s, 2, 'EUR', 3)",
                (store, pid),
            )
    return url


async def _hybrid_names(url: str, q: str, ux: UxParams | None) -> list[str]:
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    try:
        query = np.random.default_rng(21).normal(size=384).astype(np.float32)
        params = SearchParams(q=q, lat=CENTER[0], lon=CENTER[1], limit=6, mode="hybrid")
        result: Any = (
            await search(conn, params, query / np.linalg.norm(query))
            if ux is None
            else await ux_search(conn, params, query / np.linalg.norm(query), ux)
        )
        return [hit.product.name for hit in result.results]
    finally:
        await conn.close()


@pytest.mark.parametrize("ux", [None, UxParams(facets=("brand",))], ids=["engine", "facet_set"])
def test_a_hybrid_tie_goes_to_the_keyword_side(bulbs: str, ux: UxParams | None) -> None:
    """A product at keyword rank n before one at vector rank n (RRF 1/(60+n) each): broken by the vector side,
    `gu10` put a phone first, then alternated it with the bulbs. Merge's order and the facet set's (fuse_two)."""
    names = asyncio.run(_hybrid_names(bulbs, "gu10", ux))
    assert sorted(names[0::2]) == ["Qarrow Bulb GU10 3W", "Qarrow Bulb GU10 5W", "Qarrow Bulb GU10 7W"], names
    assert names[1] == "Qarrow Phone 0", names
