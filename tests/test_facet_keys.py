"""The facet set's ids as keys (keyindex.py) carried from the ranking to the listing buckets (facet_memory.py): ids
made from keys are plain equal UUIDs; a semantic and a hybrid facet set from the in-memory copy count with the
ranking's keys (no ids turned back into keys) what the SQL facet statement counts, and a stock change is in the
very next request's counts."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import numpy as np
import pytest
from pgvector.asyncpg import register_vector

from search_service.engine import facet_memory
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import FacetConfig
from search_service.engine.keyindex import ids_from_keys, keys_of
from search_service.engine.search import SearchParams
from search_service.engine.ux import UxParams, ux_search
from search_service.engine.vectors import VectorCache
from tests.test_search_ux import CENTER, _near, run
from tests.test_search_ux_engine import seeded_with_vectors

WANTED = ("category", "brand", "price")


def test_ids_from_keys_are_equal_plain_uuids() -> None:
    ids = [uuid.UUID(int=0), uuid.UUID(int=(1 << 128) - 1), *(uuid.uuid4() for _ in range(200))]
    keys = keys_of(ids)
    assert keys.dtype == np.uint64 and keys[1].tolist() == [(1 << 64) - 1] * 2
    back = ids_from_keys(keys)
    assert back == ids and [hash(i) for i in back] == [hash(i) for i in ids]
    assert [str(i) for i in back] == [str(i) for i in ids] and all(type(i) is uuid.UUID for i in back)
    assert [i.bytes for i in back] == [i.bytes for i in ids] and back[2].version == 4
    assert {back[5]: 1}.get(ids[5]) == 1


async def _scenario(url: str, scope: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    try:
        labels, stock, vectors = ProductLabels(), StockBuckets(), VectorCache()
        for loaded in (labels, stock, vectors):
            await loaded.load(conn)
        rng = np.random.default_rng(5)
        q = rng.normal(size=384).astype(np.float32)
        q /= np.linalg.norm(q)
        calls: list[int] = []
        real_keys_of = facet_memory.keys_of
        monkeypatch.setattr(facet_memory, "keys_of", lambda ids: calls.append(len(ids)) or real_keys_of(ids))

        async def both(mode: str) -> tuple[Any, Any]:
            params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode=mode, limit=30)  # type: ignore[arg-type]
            kw: dict[str, Any] = {"facet_config": FacetConfig(depth=60), "vectors": vectors}
            memory = await ux_search(conn, params, q, UxParams(facets=WANTED), labels=labels, stock=stock, **kw)
            sql = await ux_search(conn, params, q, UxParams(facets=WANTED), **kw)  # facet_set: the oracle
            assert memory.strategy == "facet_set" and memory.total == sql.total > 5
            assert [h.product.id for h in memory.results] == [h.product.id for h in sql.results]
            assert memory.facets == sql.facets
            return memory, sql

        for mode in ("semantic", "hybrid"):
            await both(mode)
        assert calls == []  # the ranking's keys were used
        before, _sql = await both("hybrid")
        gone = before.results[0].product.id
        await conn.execute(
            "UPDATE store_product SET quantity = 0 WHERE product_master_id = $1 AND store_id = ANY($2::uuid[])",
            gone,
            scope,
        )
        after, _sql = await both("hybrid")  # no refresh in between
        assert gone not in {h.product.id for h in after.results} and after.total <= before.total
        assert calls == []
    finally:
        await conn.close()


def test_semantic_and_hybrid_facet_sets_count_with_the_rankings_keys(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = seeded_with_vectors(fresh_db_url)
    run(_scenario(fresh_db_url, sorted(_near(cat, 20_000)), monkeypatch))
