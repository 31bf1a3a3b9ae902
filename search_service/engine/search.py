"""The search engine: exact top-k under a radius filter, hybrid ranking. This module is its facade.

Plan (a handful of round trips; in a read-only transaction of its own unless the connections carry the
engine's settings, as the API's do):

1. `search_context`: active stores in the radius via the GiST index on store.location (none → return at
   once, strategy ``no_stores``) and the category subtree; a global search without a category skips it. The
   API places the stores in memory instead (`store_locator.StoreLocator`: `search_context` then measures
   only those near the radius's edge). The catalogue statistics (reltuples, pg_stats) come from
   `stats.StatsCache`, read every 30 s.
2. The vector side picks a plan per query from a cost estimate (`choose_strategy`):
   - ``exact_scan`` (when the API holds the in-memory vector copy, `vectors.VectorCache`): every vector is
     ranked in memory (int8 bounds, float32 re-scoring: exact), and PostgreSQL keeps the best-ranked ids
     that pass the filters, slice by slice, together with the qualifying products whose vector changed
     after the copy was taken; it stops once the k-th kept distance is no worse than the best any unchecked
     vector can have, so the answer is the true top-k. Cost: ranking plus a few index probes per id
     checked. When the next slice would cost more than the gather plan, that plan answers instead
     (``scan_fallback_gather``).
   - ``exact_gather`` (with the copy): the products in stock at the stores in scope, from the in-memory
     candidate sets (`candidates.py`: a roaring bitmap a store, kept exact by the listing change log that
     search_context reads; the plan choice routes on their exact count), or else listed by PostgreSQL in one
     packed array (`listed_products`), ranked exactly in memory and checked best first as in the scan. With
     the candidate sets it replaces the scan near a point; without, it is cheapest for a few thousand
     candidates, where the scan may walk far down the ranking before it finds products the nearby stores sell.
   - ``exact``: candidates = distinct products listed in-stock at those stores; each candidate's distance
     is computed with `cosine_distance()` (not index-orderable, so the HNSW index cannot be used) and
     top-N sorted. Exact by construction; ~10 µs per candidate (a heap and TOAST fetch each), so with the
     copy it only wins for a handful of candidates.
   - ``hnsw_iterative``: an HNSW iterative index scan (`hnsw.iterative_scan`, raised `hnsw.ef_search`,
     bounded `hnsw.max_scan_tuples`) filtered by an EXISTS probe of the listings, over-fetched and re-sorted
     by exact distance. If the scan returns fewer rows than asked, it ran out of budget: the query is
     answered by the exact plan instead (``hnsw_fallback_exact``), so a selective filter never loses rows.
   Without a point the filter is "listed at any active store" (``global_hnsw`` / ``global_exact`` /
   ``global_fallback_exact``).
3. Hybrid mode also runs the keyword side (`rank_keyword`) under the same filters and fuses both ranked
   lists with Reciprocal Rank Fusion (k=60); exact name/brand/GTIN matches sort first.
4. `hydrate`: the page's products and, per product, its nearest qualifying stores (LATERAL); a product with none
   left (sold out since the ranking, read on another connection) leaves the page, which is then shorter.

Modules: `results` (SearchParams, SearchResult, …), `config` (EngineConfig), `planner` (the pure plan
choice), `session` (settings, transaction), `scope` (search_context), `vector_plans` / `vector_scan` (the
vector side), `keyword` (the keyword side), `fusion` (the one ranked shape and merge), `hydrate`, and
`modes` (one strategy per mode). SQL: `search_service/engine/sql/search.sql` via `search_service.db.sql`.

Scores: ``semantic`` → cosine similarity (1 - cosine distance); ``hybrid`` → RRF score
Σ 1/(60 + rank) over the two lists (rank from 1; at most 2/61); ``keyword`` → text rank (ts_rank_cd
under 'plinqy_english', else 'plinqy_simple': both fold accents) or, for a typo match, trigram word
similarity; plus 1.0 for an exact name/brand/GTIN match.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from search_service.db.sql import PACKAGE_ROOT, statement, statements
from search_service.engine.config import DEFAULT_CONFIG, HNSW_INDEX, EngineConfig, ForcedPlan
from search_service.engine.fusion import RRF_K, Candidate, Merged, Ranked, merge, rrf_fuse
from search_service.engine.modes import QueryVector, run_search
from search_service.engine.planner import Choice, Estimate, Plan, choose_strategy, estimate, fetch_size, ids_left
from search_service.engine.results import (
    MAX_OFFSET,
    Mode,
    ProductHit,
    ProductNotFound,
    ProductSummary,
    SearchParams,
    SearchResult,
    StoreHit,
)
from search_service.engine.session import Conn, generic_plan_settings, session_settings, settings_sql, transaction
from search_service.engine.stats import StatsCache
from search_service.engine.store_locator import StoreLocator
from search_service.engine.vectors import VectorCache, as_vector

SQL_PATH = PACKAGE_ROOT / "engine" / "sql" / "search.sql"
_ids_left = ids_left  # the name tests/ used before the split

__all__ = [
    "DEFAULT_CONFIG",
    "HNSW_INDEX",
    "MAX_OFFSET",
    "RRF_K",
    "SQL_PATH",
    "Candidate",
    "Choice",
    "Conn",
    "EngineConfig",
    "Estimate",
    "ForcedPlan",
    "Merged",
    "Mode",
    "Plan",
    "ProductHit",
    "ProductNotFound",
    "ProductSummary",
    "QueryVector",
    "Ranked",
    "SearchParams",
    "SearchResult",
    "StoreHit",
    "as_vector",
    "choose_strategy",
    "estimate",
    "fetch_size",
    "generic_plan_settings",
    "ids_left",
    "merge",
    "rrf_fuse",
    "search",
    "session_settings",
    "settings_sql",
    "similar",
    "sql_blocks",
    "transaction",
]


def sql_blocks() -> dict[str, str]:
    """The asyncpg text of search.sql's statements by name (to recognise a statement a connection ran); to run
    one, bind its parameters by name: `statement("engine/search", name).bind(...)`."""
    return {name: stmt.sql for name, stmt in statements("engine/search").items()}


async def search(
    conn: Conn,
    params: SearchParams,
    query_vector: QueryVector | None,
    config: EngineConfig = DEFAULT_CONFIG,
    vectors: VectorCache | None = None,
    keyword_conn: Conn | None = None,
    stats: StatsCache | None = None,
    stores: StoreLocator | None = None,
    context_conn: Conn | None = None,
) -> SearchResult:
    """Search near a point (or globally without lat/lon). `query_vector`: float32 (384,), L2-normalised, or
    an awaitable of one (the embedding still running: the engine awaits it only once it needs it); None is
    accepted in keyword mode only. `vectors`: the in-memory vector copy, which enables the exact scan and
    gather plans (without it, or before it is loaded, the engine chooses between the exact and HNSW plans).
    `keyword_conn`: a second connection for the keyword side, hybrid's or keyword mode's (the engine opens a
    transaction on it, or uses the caller's). `stats`: the catalogue statistics the plan choice reads (without a
    cache, a statement per search reads them). `stores`: the stores' places in memory (store_locator.py), which find the
    stores in a radius without a radius query. `context_conn`: a connection that reuses one generic plan per
    statement (`generic_plan_settings`), for the first and last statements (search_context, hydrate), whose
    generic plans are as good as their custom ones; it may be `keyword_conn` too (the keyword side runs between
    them). Statements run in the caller's open transaction, or in a read-only one of their own: one snapshot when
    they all run on `conn` (over several connections hydrate drops a product sold out since the ranking)."""
    if query_vector is None and params.mode != "keyword":
        raise ValueError(f"mode {params.mode!r} needs a query vector")
    alone = context_conn in (None, conn) and keyword_conn in (None, conn)
    async with transaction(conn, config, one_snapshot=alone):
        return await run_search(
            conn, params, query_vector, None, config, vectors, stats, keyword_conn, stores, context_conn
        )


async def similar(
    conn: Conn,
    product_id: UUID,
    params: SearchParams,
    config: EngineConfig = DEFAULT_CONFIG,
    vectors: VectorCache | None = None,
    stats: StatsCache | None = None,
    stores: StoreLocator | None = None,
) -> SearchResult:
    """Products like `product_id` under the same filters (semantic ranking; `q` and `mode` are unused).

    Raises ProductNotFound for an unknown id; a product not embedded yet gives strategy ``no_vector``."""
    stmt = statement("engine/search", "product_vector")
    async with transaction(conn, config, one_snapshot=True):
        row = await conn.fetchrow(stmt.sql, *stmt.bind(product_id=product_id))
        if row is None:
            raise ProductNotFound(product_id)
        vector = row["ai_vector"]
        if vector is None:
            return SearchResult(results=[], total_candidates=0, strategy="no_vector")
        semantic = replace(params, mode="semantic")
        return await run_search(conn, semantic, as_vector(vector), product_id, config, vectors, stats, stores=stores)
