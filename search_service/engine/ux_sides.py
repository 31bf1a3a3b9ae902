"""The ranked set's sides for ux.py: the vector side from the API's copy (facet_vectors) where a whole set allows it,
else from the engine's plans, the keyword side beside it, joined (ux_ranking.joined) under a sort's floor."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine import facet_vectors
from search_service.engine import search as engine
from search_service.engine.candidates import CandidateSets
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facet_vectors import listed_in_memory, products_passing, rank_vector_set, union_pays
from search_service.engine.fusion import Ranked
from search_service.engine.keyword import rank_keyword
from search_service.engine.modes import QueryVector
from search_service.engine.ranking import score_error
from search_service.engine.scope import Scope
from search_service.engine.stats import StatsCache, read_stats
from search_service.engine.text import may_exclude
from search_service.engine.ux_ranking import RankedSet, SortFloor, joined
from search_service.engine.vector_plans import rank_vector
from search_service.engine.vector_scan import VectorPlan, plan_vector
from search_service.engine.vectors import VectorCache


async def _plan(
    conn: Any, scope: Scope, depth: int, config: engine.EngineConfig, vectors: VectorCache | None, stats: Any
) -> VectorPlan:
    catalogue = await (read_stats(conn) if stats is None else stats.get(conn))
    return plan_vector(scope, catalogue, depth, config, vectors)


async def _vector_of(query_vector: QueryVector) -> np.ndarray:
    return np.asarray(query_vector if isinstance(query_vector, np.ndarray) else await query_vector, np.float32)


def filtered_by(scope: Scope) -> bool:
    """Whether the ranking must apply product or price filters (no facets asked), which facet_vectors' in-memory
    set leaves out (it kept the scope's 1000 best and facet_set filtered those: `brand=X` found 4 of 27)."""
    p = scope.params
    return scope.category_ids is not None or p.brand is not None or p.min_price is not None or p.max_price is not None


async def rank_set(
    conn: Any,
    scope: Scope,
    query_vector: QueryVector | None,
    depth: int,
    whole: bool,
    config: engine.EngineConfig,
    vectors: VectorCache | None,
    stats: StatsCache | None,
    stock: StockBuckets | None = None,
    settle: int = 0,
    floor: SortFloor | None = None,
) -> RankedSet:
    """The ranked result set, `depth` deep (`whole`: the facets' set; `settle`: facet_vectors._settled's). The
    keyword side keeps search's typo threshold: a deeper set holds the same matches, not looser typo matches."""
    mode = scope.params.mode if query_vector is not None else "keyword"
    deep = depth + whole  # a whole set's sides one deeper: whether more products match than it holds (`more`)
    vector_side = keyword_side = settle_copy = None
    filtered = whole and filtered_by(scope)
    # what `q` excludes is product_filter's (excluded_words), which the vector plans apply and facet_vectors does not
    excludes = may_exclude(scope.params.q)
    passing = await products_passing(conn, scope) if filtered and mode != "keyword" and vectors is not None else None
    if mode == "keyword":
        keyword_side = await rank_keyword(conn, scope, deep, config)
    elif whole and vectors is not None and vectors.loaded and (not filtered or passing is not None) and not excludes:
        assert query_vector is not None  # a whole set: facet_vectors, among the products its filters keep
        if mode == "hybrid":
            keyword_side = await rank_keyword(conn, scope, deep, config)
        vector = await _vector_of(query_vector)
        union = filtered or await union_pays(conn, scope, config, stats)
        listed = None if union and scope.store_ids is not None else await listed_in_memory(conn, scope, stock)
        vector_side = await rank_vector_set(conn, scope, vectors, vector, deep, union, listed, settle, passing)
        settle_copy = partial(facet_vectors.settle_window, conn, vector, vectors)
        floor = await _settled_floor(conn, vector, score_error(vectors._matrix), vector_side, floor)
    else:
        assert query_vector is not None
        vector = await _vector_of(query_vector)
        plan = await _plan(conn, scope, deep, config, vectors, stats)
        plan.start_scan(vector)  # the in-memory ranking runs in a thread meanwhile, as in search
        try:
            if mode == "hybrid":
                keyword_side = await rank_keyword(conn, scope, deep, config)
        except BaseException:
            plan.cancel()
            raise
        vector_side = await rank_vector(conn, scope, plan, vector, deep, config)
    return replace(joined(vector_side, keyword_side, depth, config, floor), settle=settle_copy)


async def _settled_floor(
    conn: Any, vector: np.ndarray, error: float, side: Ranked, floor: SortFloor | None
) -> SortFloor | None:
    """`floor` with PostgreSQL's scores where the copy's (float16 rows, within `error`) could put a product on
    either side of it: its anchor, when that is the side's own best, and the products near the floors. The
    engine's plans (a price range, which the copy cannot filter) score them so: a product at the floor was kept
    with facets and cut by the range its price bucket's count promised (7 counted, 6 listed)."""
    best = None if floor is None or not error else floor.best(side)
    if floor is None or best is None:
        return floor
    anchor = best if floor.anchor is None else floor.anchor
    # the copy's anchor is within `error` of PostgreSQL's: a product farther than 3 x error from a floor stays
    # on its side of it, whichever the anchor
    marks = (floor.ratio * anchor, floor.words_ratio * anchor)
    near = [
        pid
        for pid in side.ids
        if pid != floor.exclude_id
        and (
            (floor.anchor is None and side.scores[pid] >= best - 2 * error)
            or any(abs(side.scores[pid] - mark) <= 3 * error for mark in marks)
        )
    ]
    stmt = statement("engine/search", "product_similarity")
    rows = await conn.fetch(stmt.sql, *stmt.bind(ids=near, query_vector=vector)) if near else []
    scores = {r["id"]: float(r["similarity"]) for r in rows}
    if floor.anchor is None:
        anchor = max(scores.get(pid, side.scores[pid]) for pid in near if side.scores[pid] >= best - 2 * error)
    return replace(floor, anchor=anchor, scores=scores)


async def current_sets(
    conn: Any,
    params: engine.SearchParams,
    store_ids: list[UUID] | None,
    vectors: VectorCache | None,
) -> CandidateSets | None:
    """The candidate sets brought up to now (candidates.py): the vector side's plans and a facet set's rank on them
    (facet_vectors.py), and the keyword side ranks a common word's matches in scope on them (keyword.py). Their
    union is taken only if a plan or a common word asks."""
    if vectors is None:
        return None
    sets = vectors.candidates
    return sets if await sets.brought_current(conn, store_ids, params.in_stock) else None
