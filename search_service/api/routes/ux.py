"""The shopper-facing parts of the search API: `/v1/search` with facets, sorts, bbox, fulfilment or explain (run by
`engine.ux.ux_search`), and `GET /v1/suggest` (search-as-you-type)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import numpy as np
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Parameter

from search_service.api import params as P
from search_service.api.runtime import Runtime
from search_service.api.schemas import SEARCH_RESPONSES, HitOut, SearchResponse, bad_request, limit_rule
from search_service.api.ux_params import checked_bbox
from search_service.api.ux_schemas import (
    BrandFacet,
    CategoryFacet,
    ExplainOut,
    FacetsOut,
    HitExplainOut,
    PriceFacet,
    StoreFacet,
    SuggestionOut,
    SuggestResponse,
)
from search_service.engine import search as engine
from search_service.engine.facets import Facets
from search_service.engine.suggest import MAX_SUGGESTIONS, SuggestParams, suggest
from search_service.engine.suggest_typed import PREFIX_MAX_LENGTH
from search_service.engine.ux import UxParams, UxResult, ux_search


def facets_out(f: Facets) -> FacetsOut:
    return FacetsOut(
        category=None
        if f.category is None
        else [CategoryFacet(c.id, c.name, c.parent_id, c.count) for c in f.category],
        brand=None if f.brand is None else [BrandFacet(b.value, b.count) for b in f.brand],
        price=None
        if f.price is None
        else [PriceFacet(float(p.min), None if p.max is None else float(p.max), p.count) for p in f.price],
        store=None if f.store is None else [StoreFacet(s.id, s.name, s.count) for s in f.store],
    )


def ux_response(result: UxResult, ux: UxParams, hit_out: Any, took_ms: float) -> SearchResponse:
    hits: list[HitOut] = []
    for hit in result.results:
        out = hit_out(hit)  # each store's `delivers` comes with the hit (hydrate measures it)
        e = result.explain.get(hit.product.id)
        if e is not None:
            out.explain = HitExplainOut(
                e.vector_similarity, e.keyword_rank, e.keyword_score, e.typo_corrections, e.exact_match
            )
        hits.append(out)
    return SearchResponse(
        results=hits,
        total_candidates=result.candidates,
        strategy=result.strategy,
        took_ms=round(took_ms, 3),
        total=result.total,
        total_capped=None if result.total is None else result.capped,
        facets=facets_out(result.facets) if ux.facets else None,
        explain=ExplainOut(result.strategy, result.candidates, result.timings_ms) if ux.explain else None,
    )


async def run_ux_search(
    rt: Runtime, sp: engine.SearchParams, embedding: asyncio.Future[np.ndarray] | None, ux: UxParams
) -> tuple[UxResult, float]:
    try:
        await rt.embedding_first(embedding)
        async with rt.connection() as conn:
            started = time.perf_counter()
            result = await ux_search(
                conn,
                sp,
                embedding,
                ux,
                config=rt.engine_config,
                facet_config=rt.settings.facets,
                vectors=rt.vectors,
                stats=rt.stats,
                labels=rt.labels,
                stock=rt.stock,
                stores=rt.stores,
            )
    finally:
        if embedding is not None and not embedding.done():
            embedding.cancel()
        elif embedding is not None and not embedding.cancelled():
            embedding.exception()
    return result, started


SuggestQ = Annotated[
    str,
    Parameter(
        description=f"What has been typed so far: 1–{PREFIX_MAX_LENGTH} characters.",
        schema_extra={"minLength": 1, "maxLength": PREFIX_MAX_LENGTH, "pattern": P.Q_PATTERN},
        examples=[Example(summary="a prefix", value="cordless dr")],
    ),
]
# Suggest's own: no distances are measured, so lat/lon beside a bbox serve nothing (search's measure from them).
SuggestRadiusM = Annotated[
    float | None,
    Parameter(
        ge=1,
        le=P.MAX_RADIUS_M,
        description=f"Metres around lat/lon (needs them; not with `bbox`); {P.DEFAULT_RADIUS_M} when lat/lon are "
        "given without it.",
        examples=[Example(summary=f"{P.DEFAULT_RADIUS_M}", value=P.DEFAULT_RADIUS_M)],
    ),
]
SuggestBBox = Annotated[
    str | None,
    Parameter(
        description=(
            "Map viewport instead of a radius, as `/v1/search` takes it: min_lon,min_lat,max_lon,max_lat (WGS 84, "
            "bounds included); completions only from the active stores inside the box. min_lon > max_lon is a box "
            "across the antimeridian; lon -180 and 180 are one meridian. Not together with radius_m; lat/lon "
            "beside it are ignored. Central Berlin: `13.30,52.48,13.48,52.56`."
        ),  # no example: sent with radius_m's (Swagger's "try it out" sends each), a 400
    ),
]
SuggestLimit = Annotated[
    int, Parameter(ge=1, le=MAX_SUGGESTIONS, description="Completions to return.", examples=[Example(value=10)])
]


@get(
    "/v1/suggest",
    summary="Search-as-you-type suggestions",
    description=(
        "Up to 10 completions of what is typed so far: product names, brands and categories starting with it, and "
        "completions of its last word (`query`, once it has 2 letters; the word as the products write it, whatever "
        "the accents typed: `pate` completes to `pâté`), each backed by an in-stock listing at a "
        "store in scope (within `radius_m` of lat/lon, inside the map viewport `bbox` as `/v1/search` scopes it, or "
        "any active store). A word that `-` excludes, as search reads it, is not completed (`milk -oat`: no "
        "`milk oat`), and a completion keeps the text typed before its last word (`milk -oat whol`: "
        "`milk -oat whole`; `women's ja`: `women's jacket`). No product or brand is "
        "offered that the same `q` excludes from `/v1/search` (`milk - chocolate`: not `Milk - Chocolate Flavour`), "
        f"and no text that `/v1/search` refuses as `q` or `brand` (a control character, over {P.Q_MAX_LENGTH} "
        "characters): a completion picked is the next search's `q`."
    ),
    tags=["search"],
    responses={400: bad_request("limit", limit_rule(MAX_SUGGESTIONS)), 503: SEARCH_RESPONSES[503]},
)
async def suggest_route(
    rt: NamedDependency[Runtime],
    request: Request[Any, Any, Any],
    q: SuggestQ,
    lat: P.Lat = None,
    lon: P.Lon = None,
    radius_m: SuggestRadiusM = None,
    bbox: SuggestBBox = None,
    limit: SuggestLimit = MAX_SUGGESTIONS,
) -> SuggestResponse:
    started = time.perf_counter()
    text = P.clean_query(q, PREFIX_MAX_LENGTH)  # its own limit, also for a q past the search's (it said 256)
    point = P.check_point(lat, lon)
    box = checked_bbox(request, bbox)  # search's checks and messages
    params = SuggestParams(
        text, point[0] if point else None, point[1] if point else None, P.check_radius(radius_m), limit, box
    )
    async with rt.connection() as conn:
        sets = rt.vectors.candidates if rt.vectors is not None else None
        found = await suggest(conn, params, rt.labels, rt.suggestions, sets, rt.stores)
    took = round((time.perf_counter() - started) * 1000, 3)
    return SuggestResponse([SuggestionOut(s.kind, s.text, s.ref) for s in found], took)


UX_ROUTES = [suggest_route]
