"""Search with the shopper-facing extras: facets, distance/price sorts, map viewports, delivery, explain.

`ux_search` composes the engine's ranking with `facets.facet_set`:

1. scope: the stores (`geo_areas.store_scope`: the radius or the bbox for pickup, delivery areas holding the
   point for delivery, both for any);
2. the ranked result set: the engine's own sides (keyword, vector, or both fused by RRF as in `search`) at the
   depth of the fusion window holding offset + limit (`fusion.fusion_depth`), or `FacetConfig.depth` when facets,
   a non-relevance sort or a brand/store filter need the whole set (keyword search: every match, up to the keyword
   side's caps, `keyword_rank_cap`). With facets the ranking leaves out the facet filters (category, brand, price),
   which `facet_set` applies, so that each facet can count the values not chosen (hybrid fuses the products a chosen
   value keeps again, as search fuses them: facet_chosen.py);
3. `facet_set`: filters, orders (stable) and counts; then the page is hydrated, each store says whether it delivers
   to the point; explain: each hit's similarity, keyword rank, typo corrections, exact match, and the stage timings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine import facet_vectors, geo_areas
from search_service.engine import search as engine
from search_service.engine.facet_chosen import ChosenSides, chosen_page, left_to_facet_set, refused_sides
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import faceted_page
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import (
    SORT_WORDS_SIMILARITY,
    FacetConfig,
    FacetFilters,
    Facets,
    Sort,
    StoreCount,
    chosen_filters,
)
from search_service.engine.fusion import fusion_depth
from search_service.engine.hydrate import hydrate
from search_service.engine.modes import QueryVector
from search_service.engine.results import Strategy
from search_service.engine.scope import Scope, radius_probe
from search_service.engine.session import transaction
from search_service.engine.stage_clock import StageClock
from search_service.engine.stats import StatsCache
from search_service.engine.store_locator import StoreLocator
from search_service.engine.ux_explain import HitExplain, explained
from search_service.engine.ux_ranking import RankedSet, SortFloor
from search_service.engine.ux_sides import current_sets, filtered_by, rank_set
from search_service.engine.vectors import VectorCache

DEFAULT_FACETS = FacetConfig()
Fulfilment = Literal["pickup", "delivery", "any"]


@dataclass(frozen=True)
class UxParams:
    facets: tuple[str, ...] = ()
    sort: Sort = "relevance"
    bbox: geo_areas.BBox | None = None
    fulfilment: Fulfilment = "pickup"
    explain: bool = False
    store_id: UUID | None = None  # the store facet's value (the brand's is SearchParams.brand)


@dataclass(frozen=True)
class UxResult:
    results: list[engine.ProductHit]
    total: int | None  # None: the set was ranked only as deep as the page's fusion window, and filled it
    strategy: Strategy
    candidates: int
    facets: Facets
    delivers: set[tuple[UUID, UUID]]  # (product id, store id) pairs whose store delivers to the point
    explain: dict[UUID, HitExplain] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    capped: bool = False  # more products matched than the whole set's depth: `total` counts the first ones


def needs_ux(ux: UxParams, params: engine.SearchParams) -> bool:
    """Whether a request needs this path (otherwise `engine.search` answers it, as before these features)."""
    return bool(ux.facets or ux.sort != "relevance" or ux.bbox or ux.fulfilment != "pickup" or ux.explain) or (
        params.brand is not None or ux.store_id is not None
    )


def _whole(params: engine.SearchParams, ux: UxParams) -> bool:
    """Whether the request needs the whole result set (`FacetConfig.depth` deep), not only the page's ranks."""
    return bool(ux.facets or ux.sort != "relevance" or params.brand is not None or ux.store_id is not None)


def _depth(
    params: engine.SearchParams, ux: UxParams, facets: FacetConfig, config: engine.EngineConfig, keyword: bool
) -> int:
    """The whole set's fixed depth (pages past it are empty: a deeper set orders its pages otherwise), in keyword
    mode every match its side ranks (up to `keyword_rank_cap`); or the fusion window holding the page."""
    whole = config.keyword_rank_cap if keyword else facets.depth
    return whole if _whole(params, ux) else fusion_depth(params.offset + params.limit, config.rrf_depth)


@dataclass(frozen=True)
class _Context:
    """What a search runs with, beyond its parameters."""

    config: engine.EngineConfig
    facet_config: FacetConfig
    vectors: VectorCache | None
    stats: StatsCache | None
    labels: ProductLabels | None
    stock: StockBuckets | None = None  # listings in stock by product (facet_stock.py)
    exclude_id: UUID | None = None  # similar: the product asked about
    stores: StoreLocator | None = None  # the stores' places in memory (store_locator.py)


async def ux_search(
    conn: Any,
    params: engine.SearchParams,
    query_vector: QueryVector | None,
    ux: UxParams,
    *,
    config: engine.EngineConfig = engine.DEFAULT_CONFIG,
    facet_config: FacetConfig = DEFAULT_FACETS,
    vectors: VectorCache | None = None,
    stats: StatsCache | None = None,
    labels: ProductLabels | None = None,
    stock: StockBuckets | None = None,
    stores: StoreLocator | None = None,
) -> UxResult:
    """Search under `ux` (see the module docstring); the statements run as `engine.search`'s do. `labels`: the
    in-memory product labels (facet_labels.py), which count the facets in memory when loaded; `stock`: the listings
    in stock by product (facet_stock.py), which spare the facet set's listings statement when loaded."""
    context = _Context(config, facet_config, vectors, stats, labels, stock, stores=stores)
    async with transaction(conn, config, one_snapshot=True):  # the page's stores and prices: the set's
        return await _ux_run(conn, params, query_vector, ux, context)


async def ux_similar(
    conn: Any,
    product_id: UUID,
    params: engine.SearchParams,
    ux: UxParams,
    *,
    config: engine.EngineConfig = engine.DEFAULT_CONFIG,
    facet_config: FacetConfig = DEFAULT_FACETS,
    vectors: VectorCache | None = None,
    stats: StatsCache | None = None,
    labels: ProductLabels | None = None,
    stock: StockBuckets | None = None,
    stores: StoreLocator | None = None,
) -> UxResult:
    """`engine.similar` under `ux`: the products nearest to `product_id`'s vector (semantic ranking, the product
    itself left out). Raises ProductNotFound for an unknown id; a product not embedded yet gives ``no_vector``."""
    stmt = statement("engine/search", "product_vector")
    async with transaction(conn, config, one_snapshot=True):  # the page's stores and prices: the set's
        row = await conn.fetchrow(stmt.sql, *stmt.bind(product_id=product_id))
        if row is None:
            raise engine.ProductNotFound(product_id)
        if row["ai_vector"] is None:
            return UxResult([], 0, "no_vector", 0, _no_counts(ux.facets), set())
        context = _Context(config, facet_config, vectors, stats, labels, stock, product_id, stores)
        semantic = replace(params, q="", mode="semantic")
        return await _ux_run(conn, semantic, engine.as_vector(row["ai_vector"]), ux, context)


async def _ranked_set(
    conn: Any,
    params: engine.SearchParams,
    query_vector: QueryVector | None,
    ux: UxParams,
    context: _Context,
    clock: StageClock,
    known: tuple[list[UUID] | None, FacetFilters] | None = None,
) -> tuple[list[UUID] | None, FacetFilters, RankedSet | Strategy]:
    """The stores in scope, the chosen facet values, and the ranked set (or why it is empty); a chosen store's: its
    products' (geo_areas.chosen_store_scope). `known`: the stores and values found already (_scope_stores)."""
    if known is None:
        store_ids = await geo_areas.store_scope(
            conn, lat=params.lat, lon=params.lon, radius_m=params.radius_m, bbox=ux.bbox, fulfilment=ux.fulfilment,
            stores=context.stores,
        )  # fmt: skip
        filters = await chosen_filters(conn, params, ux.store_id)
        ranked_stores = await geo_areas.chosen_store_scope(conn, store_ids, ux.store_id)
    else:
        store_ids, filters = known
        ranked_stores = store_ids
    none = ranked_stores == [] or filters.category_ids == []  # a chosen store out of scope, an unknown category
    if ux.facets and none:
        ranked_stores = store_ids  # no result, but each facet counts the set without its own filter
    clock.lap("scope")
    if ranked_stores == [] or (filters.category_ids == [] and not ux.facets):
        return store_ids, filters, "no_stores" if ranked_stores == [] else "no_category"
    # With facets the ranking leaves the facet filters to facet_set; otherwise it applies what it can.
    bare = replace(params, category_id=None, min_price=None, max_price=None, brand=None) if ux.facets else params
    categories = None if ux.facets or filters.category_ids is None else list(filters.category_ids)
    depth = _depth(params, ux, context.facet_config, context.config, query_vector is None or params.mode == "keyword")
    sets = await current_sets(conn, params, ranked_stores, context.vectors)
    near = None
    if ux.bbox is None and ux.fulfilment == "pickup" and store_ids is not None and ranked_stores is store_ids:
        near = radius_probe(context.stores, params, len(store_ids))  # the radius's stores, exactly
    rows = facet_vectors.inactive_rows(context.labels, context.vectors)  # a set's in-memory ranking skips them
    scope = Scope(ranked_stores, categories, bare, context.exclude_id, sets=sets, near=near, inactive=rows)
    extra = context.exclude_id is not None  # the facet set's in-memory ranking may hold the product itself
    # the page is the set's slice unless facet_set filters the set (a value chosen: facet_chosen settles the page's
    # window among those that pass; without facets the ranking applies them): its window is ordered as search's
    chosen = (bool(ux.facets) and left_to_facet_set(filters)) or ux.sort != "relevance"
    window = fusion_depth(params.offset + params.limit, context.config.rrf_depth) + extra
    floor = None if ux.sort == "relevance" else await _sort_floor(conn, (scope, store_ids), query_vector, context)
    ranking = await rank_set(
        conn, scope, query_vector, depth + extra, _whole(params, ux), context.config, context.vectors,
        context.stats, context.stock, 0 if chosen else window, floor,
    )  # fmt: skip
    ranking.cut(depth, context.exclude_id)
    ranking.matches_none = none
    return store_ids, filters, ranking


async def _sort_floor(
    conn: Any, scopes: tuple[Scope, list[UUID] | None], query_vector: QueryVector | None, context: _Context
) -> SortFloor | None:
    """The floor for a sort by price or distance (ux_ranking.py). Its anchor is the best similarity in scope
    without the filters and the chosen store (`scopes`: the ranking's, and the stores in scope): a filtered
    ranking (no facets) or a chosen store's ranks one product more for it."""
    scope, store_ids = scopes
    config = context.facet_config
    if query_vector is None or scope.params.mode == "keyword" or config.sort_relative_similarity == 0:
        return None  # 0: off, a sort orders the whole set
    floor = SortFloor(
        config.sort_relative_similarity, config.sort_min_similarity, SORT_WORDS_SIMILARITY, exclude_id=scope.exclude_id
    )
    if not filtered_by(scope) and scope.store_ids is store_ids:
        return floor  # the vector side's own best
    bare = replace(scope.params, category_id=None, min_price=None, max_price=None, brand=None, mode="semantic")
    sets = scope.sets if scope.store_ids is store_ids else await current_sets(conn, bare, store_ids, context.vectors)
    wide = replace(scope, store_ids=store_ids, category_ids=None, params=bare, in_scope=None, sets=sets)
    wide = wide if scope.store_ids is store_ids else replace(wide, near=None)
    best = await rank_set(
        conn, wide, query_vector, 1 + (scope.exclude_id is not None), False, context.config, context.vectors,
        context.stats, context.stock,
    )  # fmt: skip
    anchor = floor.best(best.vector)
    return replace(floor, anchor=-math.inf if anchor is None else anchor)


def _no_counts(asked: Sequence[str]) -> Facets:
    """The facets asked for, each with no value: an empty set answers the shape a set with no match does."""
    return Facets(**{name: [] for name in asked})


async def _scope_stores(
    conn: Any,
    params: engine.SearchParams,
    query_vector: QueryVector | None,
    ux: UxParams,
    context: _Context,
    known: tuple[list[UUID] | None, FacetFilters],
) -> list[StoreCount]:
    """The store facet beside a chosen store's page: counted over the set ranked over every store in scope."""
    store_ids, filters, ranking = await _ranked_set(conn, params, query_vector, ux, context, StageClock(), known)
    if isinstance(ranking, str):
        return []
    point = (params.lat, params.lon) if params.lat is not None and params.lon is not None else None
    wide = await faceted_page(
        conn, context.labels, ranking.ids, context.stock, ranking.keys, context.stores, store_ids=store_ids,
        in_stock=params.in_stock, point=point, filters=filters, facets=["store"], sort=ux.sort, offset=0, limit=1,
    )  # fmt: skip
    return wide.facets.store or []


async def _ux_run(
    conn: Any, params: engine.SearchParams, query_vector: QueryVector | None, ux: UxParams, context: _Context
) -> UxResult:
    clock = StageClock()
    point = (params.lat, params.lon) if params.lat is not None and params.lon is not None else None
    store_ids, filters, ranking = await _ranked_set(conn, params, query_vector, ux, context, clock)
    if isinstance(ranking, str):
        return UxResult([], 0, ranking, 0, _no_counts(ux.facets), set(), {}, clock.timings)
    clock.lap("rank")
    settle = ranking.settle if ux.sort == "relevance" else None  # search's order under chosen values, scores, ranks
    sides = refused_sides(ux.facets, filters, ranking.vector, ranking.keyword, settle, ux.explain)
    page, fused, chosen = await chosen_page(
        conn, context.labels, (ranking.ids, ranking.keys), context.stock, context.stores, sides,
        context.config.rrf_depth, every=ranking.every, store_ids=store_ids, in_stock=params.in_stock, point=point,
        filters=filters, facets=ux.facets, sort=ux.sort, offset=params.offset, limit=params.limit,
    )  # fmt: skip
    ranking.scores = ranking.scores | fused
    # the set was ranked over the chosen store: the store facet counts the scope's set
    if ux.store_id is not None and "store" in ux.facets and ux.store_id in (store_ids or [ux.store_id]):
        counted = await _scope_stores(conn, params, query_vector, ux, context, (store_ids, filters))
        page = replace(page, facets=replace(page.facets, store=counted))
    clock.lap("facets")
    shown = store_ids if ux.store_id is None else [s for s in store_ids or [ux.store_id] if s == ux.store_id]
    # sorted by price: each hit shows its cheapest stores, the price the order follows, first
    hits = await hydrate(conn, Scope(shown, None, params), page.ids, ranking.scores, ux.sort == "price")
    clock.lap("hydrate")
    delivers = {(h.product.id, s.id) for h in hits for s in h.stores if s.delivers}  # measured by hydrate
    told = chosen or ChosenSides(ranking.vector, ranking.keyword)  # each side among the products that pass
    explain = (
        await explained(conn, params.q, told.keyword, told.vector, page.ids, context.config.rrf_depth)
        if ux.explain
        else {}
    )
    if ux.explain:
        clock.lap("explain")
    keyword = ranking.vector is None
    depth = _depth(params, ux, context.facet_config, context.config, keyword)
    complete = _whole(params, ux) or len(ranking.ids) < depth
    cut = keyword and ranking.keyword is not None and not ranking.keyword.total_exact  # its caps cut the matches
    capped = _whole(params, ux) and (ranking.more or cut) and not ranking.matches_none  # none past the depth either
    return UxResult(
        hits, page.total if complete else None, ranking.strategy, ranking.candidates, page.facets, delivers, explain,
        clock.timings, capped,
    )  # fmt: skip
