"""`/v1/search` and `/v1/products/{id}/similar`: validate (the shared filter dependency), embed (cached, batched),
run the engine on pooled connections under the statement timeout, shape the JSON."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
from litestar import Request, get
from litestar.di import NamedDependency

from search_service.api import params as P
from search_service.api.filters import FILTER_DEPENDENCIES, SIMILAR_FILTER_DEPENDENCIES, SearchFilters
from search_service.api.routes.ux import run_ux_search, ux_response
from search_service.api.runtime import Runtime
from search_service.api.schemas import (
    SEARCH_RESPONSES,
    SIMILAR_RESPONSES,
    HitOut,
    ProductOut,
    SearchResponse,
    StoreHitOut,
)
from search_service.api.ux_params import UxOptions
from search_service.engine import search as engine
from search_service.engine.text import embedded_text, ends_in_space
from search_service.engine.ux import UxResult, needs_ux, ux_similar


def _finite(value: Any, default: float = 0.0) -> float:
    number = float(value) if value is not None else default
    return number if math.isfinite(number) else default


def _optional_distance(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _price(value: Any) -> float:
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _hit_out(hit: Any) -> HitOut:
    p = hit.product
    return HitOut(
        product=ProductOut(
            id=_uuid(p.id),
            name=p.name,
            brand=getattr(p, "brand", None),
            category_id=getattr(p, "category_id", None),
            gtin=getattr(p, "gtin", None),
            description=getattr(p, "description", None),
        ),
        score=_finite(hit.score),
        stores=[
            StoreHitOut(
                id=_uuid(s.id),
                name=s.name,
                distance_m=_optional_distance(getattr(s, "distance_m", None)),
                price=_price(s.price),
                currency=s.currency,
                quantity=int(s.quantity),
                delivers=bool(getattr(s, "delivers", False)),
            )
            for s in hit.stores
        ],
    )


def to_search_response(result: Any, took_ms: float) -> SearchResponse:
    hits = [_hit_out(hit) for hit in result.results]
    return SearchResponse(
        results=hits,
        total_candidates=int(result.total_candidates),
        strategy=result.strategy,
        took_ms=round(took_ms, 3),
    )


async def _run_search(
    rt: Runtime, sp: engine.SearchParams, embedding: asyncio.Future[np.ndarray] | None
) -> tuple[engine.SearchResult, float]:
    """The engine's result and when it started. A search gets a connection of generic plans, when that pool has one,
    for its first and last statements and the keyword side (which runs in between, in hybrid beside the vector side);
    without one, hybrid's keyword side gets a spare connection when the main pool has one."""
    try:
        await rt.embedding_first(embedding)
        async with (
            rt.connection() as conn,
            rt.generic_connection() as generic_conn,
            _keyword_connection(rt, sp, generic_conn) as kw_conn,
        ):
            engine_started = time.perf_counter()
            result = await engine.search(
                conn,
                sp,
                embedding,
                rt.engine_config,
                vectors=rt.vectors,
                keyword_conn=kw_conn,
                stats=rt.stats,
                stores=rt.stores,
                context_conn=generic_conn,
            )
    finally:
        if embedding is not None and not embedding.done():
            embedding.cancel()  # the engine answered without it (no store in the radius, say)
        elif embedding is not None and not embedding.cancelled():
            embedding.exception()  # retrieved: a failure the engine never awaited is not logged as lost
    return result, engine_started


def _keyword_connection(
    rt: Runtime, sp: engine.SearchParams, generic_conn: Any
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The keyword side: on the generic-plan connection (rank_keyword planned once: a custom plan cost keyword mode
    ~3 ms a search); else hybrid's on a spare of the main pool, else (None) on the search's own connection."""
    if sp.mode == "semantic" or (sp.mode == "keyword" and generic_conn is None):
        return contextlib.nullcontext()
    return contextlib.nullcontext(generic_conn) if generic_conn is not None else rt.spare_connection()


@get(
    "/v1/search",
    summary="Search products near a place",
    description=(
        "Natural-language product search, optionally limited to stores within `radius_m` of lat/lon, or in a map "
        "viewport (`bbox`), or delivering to lat/lon (`fulfilment`). With `facets`, counts per category, brand, "
        "price bucket and store over the result set: every product passing the filters in keyword mode, the top "
        "PLINQY_FACET_DEPTH (default 1000) by relevance in semantic and hybrid mode. `sort` orders that set by "
        "distance or price; `explain=true` says why each hit ranks where it does."
    ),
    tags=["search"],
    responses=SEARCH_RESPONSES,
    dependencies=FILTER_DEPENDENCIES,
)
async def search_products(
    rt: NamedDependency[Runtime],
    request: Request[Any, Any, Any],
    filters: NamedDependency[SearchFilters],
    ux: NamedDependency[UxOptions],
    q: P.Q,
    mode: P.ModeParam = "hybrid",
) -> SearchResponse:
    started = time.perf_counter()
    text = P.clean_query(q)
    sp = filters.params(q=text, mode=mode, whole_last_word=ends_in_space(q))  # `choc ` is no prefix
    # Keyword mode needs no model (it keeps working while the model loads). Otherwise the query is embedded
    # while the database work starts; a model that is not ready answers 503 before any of it.
    # The text embedded is q without what `-` excludes and without operators (`milk -oat` as typed sits near oat
    # milk); a query of excluded words only has nothing to rank by: no vector side, and no keyword matches either.
    # Nor has a query of which the model knows no token (`😀`, `抹茶`): its vector sits near every such text's, not
    # near what it means, so it is ranked by its words (keyword mode, docs/engine.md).
    embedding: asyncio.Future[np.ndarray] | None = None
    meaning = embedded_text(text)
    if mode != "keyword" and not (meaning and rt.check_model().has_known_token([meaning])[0]):
        sp = replace(sp, mode="keyword")
    elif mode != "keyword":
        embedding = rt.start_embedding(meaning)
    if needs_ux(ux.ux, sp):
        found, engine_started = await run_ux_search(rt, sp, embedding, ux.ux)
        rt.metrics.search_latency.labels(mode, found.strategy).observe(time.perf_counter() - engine_started)
        request.state.search_strategy = found.strategy
        return ux_response(found, ux.ux, _hit_out, (time.perf_counter() - started) * 1000)
    result, engine_started = await _run_search(rt, sp, embedding)
    strategy = str(result.strategy)
    rt.metrics.search_latency.labels(mode, strategy).observe(time.perf_counter() - engine_started)
    request.state.search_strategy = strategy
    return to_search_response(result, (time.perf_counter() - started) * 1000)


SIMILAR_NO_QUERY = (
    "is not taken by similar (it ranks by the product's vector, semantically): use /v1/search for a query or a mode"
)


@get(
    "/v1/products/{product_id:str}/similar",
    summary="Products similar to a product",
    description=(
        "Products whose embedding is nearest to this product's, with the same filters as search: a radius, a map "
        "viewport (`bbox`) or the stores delivering to lat/lon (`fulfilment`); `facets` counted over the "
        "PLINQY_FACET_DEPTH (default 1000) most similar products; `sort` by distance or price; `explain=true` "
        "gives each hit's vector similarity and the plan's stages. The product itself is never a result. It ranks "
        "by the product, not by words: a `q` or a `mode` is refused (400 naming it)."
    ),
    tags=["search"],
    responses=SIMILAR_RESPONSES,
    dependencies=SIMILAR_FILTER_DEPENDENCIES,
)
async def similar_products(
    rt: NamedDependency[Runtime],
    request: Request[Any, Any, Any],
    product_id: P.ProductIdParam,
    filters: NamedDependency[SearchFilters],
    ux: NamedDependency[UxOptions],
) -> SearchResponse:
    started = time.perf_counter()
    for taken_by_search_only in ("q", "mode"):  # search's, which similar has not: they were dropped without a word
        if taken_by_search_only in request.query_params:
            raise P.BadParameter(taken_by_search_only, SIMILAR_NO_QUERY)
    pid = P.parse_uuid("product_id", product_id)
    sp = filters.params(q="", mode="semantic")
    if needs_ux(ux.ux, sp):
        found, engine_started = await _run_ux_similar(rt, pid, sp, ux)
        rt.metrics.search_latency.labels("similar", found.strategy).observe(time.perf_counter() - engine_started)
        request.state.search_strategy = found.strategy
        return ux_response(found, ux.ux, _hit_out, (time.perf_counter() - started) * 1000)
    async with rt.connection() as conn:
        engine_started = time.perf_counter()
        result = await engine.similar(
            conn, pid, sp, rt.engine_config, vectors=rt.vectors, stats=rt.stats, stores=rt.stores
        )
    strategy = str(result.strategy)
    rt.metrics.search_latency.labels("similar", strategy).observe(time.perf_counter() - engine_started)
    request.state.search_strategy = strategy
    return to_search_response(result, (time.perf_counter() - started) * 1000)


async def _run_ux_similar(rt: Runtime, pid: UUID, sp: engine.SearchParams, ux: UxOptions) -> tuple[UxResult, float]:
    async with rt.connection() as conn:
        started = time.perf_counter()
        found = await ux_similar(
            conn, pid, sp, ux.ux, config=rt.engine_config, facet_config=rt.settings.facets, vectors=rt.vectors,
            stats=rt.stats, labels=rt.labels, stock=rt.stock, stores=rt.stores,
        )  # fmt: skip
    return found, started


SEARCH_ROUTES = [search_products, similar_products]
