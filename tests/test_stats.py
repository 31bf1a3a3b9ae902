"""The catalogue statistics the plan choice reads (search_service/stats.py), from a real database."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg

from search_service.demo.synthetic import SyntheticSpec, seed_synthetic
from search_service.engine.search import SearchParams, estimate
from search_service.engine.stats import StatsCache, read_stats


def test_statistics_before_and_after_analyze_and_their_cache(fresh_db_url: str) -> None:
    spec = SyntheticSpec(products=600, stores=30, listings=4000, seed=3)

    async def body() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            empty = await read_stats(conn)  # never analysed: no planner statistics, reltuples unknown
            assert empty.category_mcv is None and empty.price_histogram is None
            assert empty.n_products is not None and empty.n_products <= 0
            est = estimate(empty, None, 5, SearchParams(q="", min_price=None))
            assert est.candidates > 0  # errs toward more candidates, never zero

            cache = StatsCache(max_age_s=3600)
            assert await cache.get(conn) == empty

            seed_synthetic(fresh_db_url, spec)
            with psycopg.connect(fresh_db_url, autocommit=True) as sync:
                sync.execute("VACUUM ANALYZE product_master, store, store_product")
            fresh = await read_stats(conn)
            assert fresh.n_products == spec.products and fresh.n_stores == spec.stores
            assert fresh.n_listings is not None and 0.9 * spec.listings <= fresh.n_listings <= spec.listings
            assert fresh.category_mcv and fresh.price_histogram and len(fresh.price_histogram) > 10
            assert 0.5 < sum(fresh.category_mcf or []) <= 1.0 + 1e-6  # float4 frequencies

            assert await cache.get(conn) == empty  # within max_age: the figures read before
            cache.max_age_s = 0.0
            assert await cache.get(conn) == fresh  # past it: read again
        finally:
            await conn.close()

    asyncio.run(body())
