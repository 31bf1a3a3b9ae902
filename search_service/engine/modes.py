"""One strategy per mode: each returns its ranked sides, which `fusion.merge` orders, and hydration fills.

``semantic`` is the vector side alone (similar() is semantic with the product itself excluded);
``keyword`` the keyword side alone (also any mode without a query vector); ``hybrid`` both, the keyword
side running while the vector side is planned and ranked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias
from uuid import UUID

import numpy as np

from search_service.engine.config import EngineConfig
from search_service.engine.fusion import Ranked, fusion_depth, merge
from search_service.engine.hydrate import hydrate
from search_service.engine.keyword import rank_keyword, rank_keyword_apart
from search_service.engine.results import MAX_OFFSET, Mode, SearchParams, SearchResult
from search_service.engine.scope import Scope, resolve_scope
from search_service.engine.session import Conn
from search_service.engine.stats import CatalogueStats, StatsCache, read_stats
from search_service.engine.store_locator import StoreLocator
from search_service.engine.vector_plans import rank_vector
from search_service.engine.vector_scan import VectorPlan, plan_vector
from search_service.engine.vectors import VectorCache

QueryVector: TypeAlias = "np.ndarray | Awaitable[np.ndarray]"


@dataclass(frozen=True)
class SearchRun:
    """What a mode strategy needs: the connection(s), the scope, the query vector and the knobs."""

    conn: Conn
    scope: Scope
    query_vector: QueryVector | None
    top_n: int
    config: EngineConfig
    vectors: VectorCache | None
    stats: StatsCache | None
    keyword_conn: Conn | None = None

    @property
    def depth(self) -> int:
        """Ranks each side contributes to fusion (and the keyword side's depth): the fusion window of the page."""
        return fusion_depth(self.top_n, self.config.rrf_depth)

    async def vector(self) -> np.ndarray:
        vector = self.query_vector
        assert vector is not None
        return np.asarray(vector if isinstance(vector, np.ndarray) else await vector, dtype=np.float32)

    async def plan(self, top_n: int) -> VectorPlan:
        stats: CatalogueStats = await (read_stats(self.conn) if self.stats is None else self.stats.get(self.conn))
        return plan_vector(self.scope, stats, top_n, self.config, self.vectors)


async def semantic_sides(run: SearchRun) -> list[Ranked]:
    plan = await run.plan(run.top_n)  # while the query is embedded: the plan (the scope's rows) needs no vector
    vector = await run.vector()
    return [await rank_vector(run.conn, run.scope, plan, vector, run.top_n, run.config)]


async def keyword_sides(run: SearchRun) -> list[Ranked]:
    if run.keyword_conn is not None:  # a connection of generic plans: the statement is planned for longer than it runs
        return [await rank_keyword_apart(run.keyword_conn, run.scope, run.depth, run.config)]
    return [await rank_keyword(run.conn, run.scope, run.depth, run.config)]


async def hybrid_sides(run: SearchRun) -> list[Ranked]:
    """Both sides. With a second connection the keyword statement (the costlier side, and one that needs no
    vector) starts at once, while the query embedding finishes and the vector side runs on `conn`; without
    one, the vector ranking runs in a thread while `conn` answers the keyword side."""
    conn, scope, depth, config = run.conn, run.scope, run.depth, run.config
    if run.keyword_conn is not None:
        keyword = asyncio.ensure_future(rank_keyword_apart(run.keyword_conn, scope, depth, config))
        try:
            await asyncio.sleep(0)  # the keyword statement goes out before the plan's CPU work holds the loop
            plan = await run.plan(depth)  # while the query is embedded: the plan needs no vector
            vector = await run.vector()
            ranked = await rank_vector(conn, scope, plan, vector, depth, config)
            return [ranked, await keyword]
        except BaseException:
            keyword.cancel()
            with contextlib.suppress(BaseException):
                await keyword
            raise
    plan = await run.plan(depth)  # while the query is embedded
    vector = await run.vector()
    plan.start_scan(vector)  # the in-memory ranking runs in a thread while PostgreSQL answers the keyword side
    try:
        keyword_side = await rank_keyword(conn, scope, depth, config)
    except BaseException:
        plan.cancel()
        raise
    return [await rank_vector(conn, scope, plan, vector, depth, config), keyword_side]


MODES: dict[Mode, Callable[[SearchRun], Awaitable[list[Ranked]]]] = {
    "semantic": semantic_sides,
    "keyword": keyword_sides,
    "hybrid": hybrid_sides,
}


async def run_search(
    conn: Conn,
    params: SearchParams,
    query_vector: QueryVector | None,
    exclude_id: UUID | None,
    config: EngineConfig,
    vectors: VectorCache | None,
    stats: StatsCache | None,
    keyword_conn: Conn | None = None,
    stores: StoreLocator | None = None,
    context_conn: Conn | None = None,
) -> SearchResult:
    """Scope, the mode's sides, the one merge, the page hydrated (in the caller's transaction; the scope and the
    page on `context_conn` when given: search.search)."""
    context = conn if context_conn is None else context_conn
    if params.offset < 0 or params.offset > MAX_OFFSET:
        raise ValueError(f"offset must be between 0 and {MAX_OFFSET}")
    if params.limit < 1:
        raise ValueError("limit must be at least 1")
    scope = await resolve_scope(context, params, exclude_id, None if vectors is None else vectors.candidates, stores)
    if isinstance(scope, SearchResult):
        return scope
    if query_vector is None and exclude_id is not None:
        return SearchResult(results=[], total_candidates=0, strategy="no_vector")
    mode = params.mode if query_vector is not None else "keyword"
    top_n = params.offset + params.limit
    run = SearchRun(conn, scope, query_vector, top_n, config, vectors, stats, keyword_conn)
    with contextlib.nullcontext() if vectors is None else vectors.batcher.caller():
        merged = merge(await MODES[mode](run), first_window=config.rrf_depth)
    page = merged.candidates[params.offset : top_n]
    scores = {c.product_id: c.score for c in page}
    hits = await hydrate(context, scope, [c.product_id for c in page], scores)
    return SearchResult(hits, merged.total, merged.strategy, merged.total_exact)
