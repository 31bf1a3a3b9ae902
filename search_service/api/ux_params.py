"""The search routes' shopper-facing parameters: facets, sort, bbox, fulfilment, explain, store_id.

One litestar dependency, `ux`, part of the shared filters (filters.py): `/v1/search` and `/v1/similar` take them,
each declared with descriptions of its own (similar has no query and no mode: its ranking is the product's).
Types are checked by litestar; the rest here, as `BadParameter` naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Request
from litestar.di import Provide
from litestar.openapi.spec import Example
from litestar.params import Parameter

from search_service.api.params import EXAMPLE_STORE_ID, UUID_FORM, UUID_PATTERN, BadParameter, parse_uuid
from search_service.engine import geo_areas
from search_service.engine.facets import FACETS
from search_service.engine.ux import UxParams

# The facets' and sorts' rules after what each route ranks by (search: a query's relevance; similar: the
# product's similarity), so that each operation's parameters describe only what it takes.
_FACET_RULES = (
    "Category counts roll up the tree. A chosen value (category_id, brand, store_id, min_price/max_price) filters the "
    "results and the other facets' counts, not its own facet's. The brand and store facets list their 50 most "
    "frequent values, and a chosen brand or store past them with its count."
)
_PRICES_AS_NUMBERS = (
    "Prices are compared as numbers, whatever their currency (no conversion): 2.00 USD sorts as 2.00 EUR."
)
_SORTS = "distance: nearest store with stock first (needs lat/lon); price: lowest price in scope first."
FacetsParam = Annotated[
    str | None,
    Parameter(
        description=(
            "Comma-separated facets to count over the result set: any of category, brand, price, store. The result "
            "set is every product that passes the filters in keyword mode, and the top PLINQY_FACET_DEPTH (default "
            f"1000) products by relevance in semantic and hybrid mode. {_FACET_RULES}"
        ),
        examples=[Example(summary="three facets", value="category,brand,price")],
    ),
]
SimilarFacetsParam = Annotated[
    str | None,
    Parameter(
        description=(
            "Comma-separated facets to count over the result set: any of category, brand, price, store. The result "
            "set is the PLINQY_FACET_DEPTH (default 1000) products most similar to this one that pass the filters. "
            + _FACET_RULES
        ),
        examples=[Example(summary="three facets", value="category,brand,price")],
    ),
]
SortParam = Annotated[
    Literal["relevance", "distance", "price"],
    Parameter(
        description=(
            f"relevance (default); {_SORTS} Distance and price order the same result set the facets count; ties "
            "keep relevance order. In semantic and hybrid mode they keep the relevant products only: those at least "
            "PLINQY_SORT_RELATIVE_SIMILARITY (default 0.75) times as similar to the query as the most similar product "
            "in scope, and the query's exact word matches and word matches at least 0.6 times as similar, so they "
            f"can list fewer than relevance (a query of nonsense: a few or none). {_PRICES_AS_NUMBERS}"
        ),
        examples=[Example(summary="cheapest first", value="price")],
    ),
]
SimilarSortParam = Annotated[
    Literal["relevance", "distance", "price"],
    Parameter(
        description=(
            f"relevance (default: the most similar first); {_SORTS} Distance and price order the same result set the "
            "facets count; ties keep similarity order. They keep the products at least PLINQY_SORT_RELATIVE_SIMILARITY "
            "(default 0.75) times as similar to this product as the most similar one in scope, so they can list "
            f"fewer than relevance. {_PRICES_AS_NUMBERS}"
        ),
        examples=[Example(summary="cheapest first", value="price")],
    ),
]
BBoxParam = Annotated[
    str | None,
    Parameter(
        description=(
            "Map viewport instead of a radius: min_lon,min_lat,max_lon,max_lat (WGS 84, bounds included). "
            "min_lon > max_lon is a box across the antimeridian; lon -180 and 180 are one meridian (an edge on it "
            "holds the stores at either). Not together with radius_m. Distances are still "
            "measured from lat/lon when given. Central Berlin: `13.30,52.48,13.48,52.56`."
        ),  # no example: sent with radius_m's (Swagger's "try it out" sends each), a 400
    ),
]
FulfilmentParam = Annotated[
    Literal["pickup", "delivery", "any"],
    Parameter(
        description=(
            "pickup (default): stores in the radius or bbox; delivery: stores whose delivery radius or polygon "
            "holds lat/lon, however far away; any: both. Each store in a hit says whether it `delivers` there."
        ),
        examples=[Example(summary="delivered to me", value="delivery")],
    ),
]
_EXPLAIN_RESPONSE = "and to the response the plan, its candidate count and each stage's time."
ExplainParam = Annotated[
    bool,
    Parameter(
        description="Add to each hit its vector similarity, keyword rank, typo corrections and exact-match flag, "
        + _EXPLAIN_RESPONSE,
        examples=[Example(summary="explain", value=True)],
    ),
]
SimilarExplainParam = Annotated[
    bool,
    Parameter(
        description="Add to each hit its vector similarity to this product, " + _EXPLAIN_RESPONSE,
        examples=[Example(summary="explain", value=True)],
    ),
]
StoreIdParam = Annotated[
    str | None,
    Parameter(
        description=(
            "Only listings of this store (the store facet's value): every product it has that matches, ranked; "
            f"the store facet still counts every store in scope. A UUID: {UUID_FORM}."
        ),
        schema_extra={"format": "uuid", "pattern": UUID_PATTERN},
        examples=[Example(summary="Handyman's Depot Pankow", value=EXAMPLE_STORE_ID)],
    ),
]


@dataclass(frozen=True)
class UxOptions:
    ux: UxParams


def parse_facets(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACETS]
    if unknown:
        raise BadParameter("facets", f"unknown facet {unknown[0]!r}: use any of {', '.join(FACETS)}")
    if not names:
        raise BadParameter("facets", f"must name at least one of {', '.join(FACETS)}")
    return tuple(dict.fromkeys(names))


def checked_bbox(request: Request[Any, Any, Any], bbox: str | None) -> geo_areas.BBox | None:
    """The viewport, or BadParameter naming bbox: malformed, out of range, or sent with radius_m (search's and
    suggest's rule alike)."""
    if bbox is None:
        return None
    if request.query_params.get("radius_m") is not None:
        raise BadParameter("bbox", "give either bbox or radius_m, not both")
    try:
        return geo_areas.parse_bbox(bbox)
    except geo_areas.InvalidBBox as exc:
        raise BadParameter("bbox", str(exc)) from None


def provide_ux(
    request: Request[Any, Any, Any],
    facets: FacetsParam = None,
    sort: SortParam = "relevance",
    bbox: BBoxParam = None,
    fulfilment: FulfilmentParam = "pickup",
    explain: ExplainParam = False,
    store_id: StoreIdParam = None,
) -> UxOptions:
    """`/v1/search`'s options (`ux_options` checks them)."""
    return ux_options(request, facets, sort, bbox, fulfilment, explain, store_id)


def provide_similar_ux(
    request: Request[Any, Any, Any],
    facets: SimilarFacetsParam = None,
    sort: SimilarSortParam = "relevance",
    bbox: BBoxParam = None,
    fulfilment: FulfilmentParam = "pickup",
    explain: SimilarExplainParam = False,
    store_id: StoreIdParam = None,
) -> UxOptions:
    """`/v1/products/{id}/similar`'s: the same options, described as that route ranks (no query, no mode)."""
    return ux_options(request, facets, sort, bbox, fulfilment, explain, store_id)


def ux_options(
    request: Request[Any, Any, Any],
    facets: str | None,
    sort: Literal["relevance", "distance", "price"],
    bbox: str | None,
    fulfilment: Literal["pickup", "delivery", "any"],
    explain: bool,
    store_id: str | None,
) -> UxOptions:
    """The checks a type cannot make: facet names, bbox shape and ranges, bbox with radius_m, what needs a point."""
    query = request.query_params
    point = query.get("lat") is not None and query.get("lon") is not None
    box = checked_bbox(request, bbox)
    if sort == "distance" and not point:
        raise BadParameter("sort", "sort=distance needs lat and lon")
    if fulfilment != "pickup" and not point:
        raise BadParameter("fulfilment", f"fulfilment={fulfilment} needs lat and lon (where to deliver)")
    sid = None if store_id is None else parse_uuid("store_id", store_id)
    return UxOptions(UxParams(parse_facets(facets), sort, box, fulfilment, explain, sid))


UX_DEPENDENCIES = {"ux": Provide(provide_ux, sync_to_thread=False)}
SIMILAR_UX_DEPENDENCIES = {"ux": Provide(provide_similar_ux, sync_to_thread=False)}
