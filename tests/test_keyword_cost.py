"""What the keyword side's broadest queries cost. A query of only excluded words (`-zq`) matched by absence: its
tsquery (`!'zq' & !'zq' & …`) needs no word, so the GIN index could not find its matches, and the rank statement
read and tested every product, once more for each `-zq` (742 ms at 100k products for 64 of them)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx
import psycopg

from search_service.db.sql import statement
from search_service.engine.config import EngineConfig
from search_service.engine.keyword import query_texts
from search_service.engine.scope import NO_NEAR
from search_service.engine.session import settings_sql
from tests.ingest_helpers import bearer, new_store, store_key

NAMES = ["Qorvel Oat Milk", "Qorvel Whole Milk", "Qorvel Rye Bread", "Qorvel Day Cream", "Qorvel Green Tea"]
NEGATED_ONLY = ["-zq", " ".join(["-zq"] * 64), "-zq" * 85, "-day", "-qorvel -milk", "milk or -zq", "-zq mi"]


def _write_catalogue(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    items: list[dict[str, Any]] = [
        {"sku": f"QC-{n}", "name": name, "price": 2, "quantity": 3} for n, name in enumerate(NAMES)
    ]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * len(NAMES), written.text


def _names(base: str, q: str) -> list[str]:
    answer = httpx.get(f"{base}/v1/search", params={"q": q, "mode": "keyword", "limit": 50})
    assert answer.status_code == 200, answer.text
    return sorted(r["product"]["name"] for r in answer.json()["results"])


def _product_rows_read(plan: dict[str, Any]) -> int:
    """Rows of product_master the plan's scans fetched: those kept, and those a filter or recheck removed."""
    read = 0
    if plan.get("Relation Name") == "product_master":
        kept = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
        read = kept + plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    return read + sum(_product_rows_read(child) for child in plan.get("Plans", []))


async def _rank_keyword_rows_read(db_url: str, q: str) -> int:
    """rank_keyword for `q` over the whole catalogue (no store scope, no candidate sets), EXPLAIN ANALYZEd."""
    config = EngineConfig()
    stmt = statement("engine/search", "rank_keyword")
    own = {"depth": 30, "cap": config.keyword_cap, "typo_tolerance": True, "typo_below": 30, "scan_cap": None}
    filters = {"category_ids": None, "exclude_id": None, "brand": None, "excluding": None}
    filters |= {"min_price": None, "max_price": None}
    values = stmt.bind(q=q, **query_texts(q), **own, store_ids=None, in_stock=True, **filters, **NO_NEAR)
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute(settings_sql(config))
            plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt.sql, *values)
    finally:
        await conn.close()
    return _product_rows_read(json.loads(plan)[0]["Plan"])


def test_a_query_of_only_excluded_words_matches_nothing_and_reads_no_product(base: str, db_url: str) -> None:
    _write_catalogue(base, db_url)
    assert len(_names(base, "qorvel")) == len(NAMES)
    assert asyncio.run(_rank_keyword_rows_read(db_url, "qorvel")) > 0  # the measure sees a match's reads
    for q in NEGATED_ONLY:
        # no word to rank by: not every product without it, nor (`-day`) a typo match of the excluded word
        assert _names(base, q) == [], q
        assert asyncio.run(_rank_keyword_rows_read(db_url, q)) == 0, q
