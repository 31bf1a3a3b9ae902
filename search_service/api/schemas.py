"""The API's request/response bodies (msgspec structs, which are also the OpenAPI schema) and their OpenAPI
examples and response specs, so the route decorators only name them."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from search_service.api.ingest_fields import StoredGtin
from search_service.api.openapi_fixes import ExampleWithNulls
from search_service.api.params import MAX_LIMIT, NEARBY_MAX, UUID_RULE
from search_service.api.ux_schemas import ExplainOut, FacetsOut, HitExplainOut
from search_service.engine.results import Strategy

EXAMPLE_PRODUCT_ID = "6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a"
EXAMPLE_STORE_ID = "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b"


# --- response bodies
class ErrorDetail(msgspec.Struct):
    parameter: str | None
    message: str


class ErrorBody(msgspec.Struct):
    """Every route's error answer: `parameter` names the input at fault, null where none is."""

    error: ErrorDetail


class StoreHitOut(msgspec.Struct):
    id: UUID
    name: str
    distance_m: float | None
    price: float
    currency: str
    quantity: int
    delivers: bool = False  # the store's delivery radius or polygon holds the searcher's lat/lon


class ProductOut(msgspec.Struct):
    id: UUID
    name: str
    brand: str | None
    category_id: int | None
    gtin: StoredGtin | None
    description: str | None


class HitOut(msgspec.Struct, omit_defaults=True):
    product: ProductOut
    score: Annotated[
        float,
        msgspec.Meta(
            description="The hit's relevance as its mode scores it: semantic, the cosine similarity; keyword, the "
            "tiered keyword score; hybrid, the Reciprocal Rank Fusion score of the fusion window the hit came in "
            "(30, 100, 300, 1000, 1100 ranks of each side). Order by the results' order, not by `score`: a hybrid "
            "hit of a deeper window can score more than one before it, and exact matches lead whatever their "
            "score; with `sort=distance` or `price` the order is that sort's."
        ),
    ]
    stores: list[StoreHitOut]
    explain: HitExplainOut | None = None  # explain=true only


TOTAL_CANDIDATES_DOC = (
    "How many products the ranking plan (`strategy`) took as in scope; not a count of results, and often an "
    "ESTIMATE: exact only for the SQL exact plans (`exact`, `global_exact`, `hnsw_fallback_exact`, "
    "`global_fallback_exact`) and for the scan and gather plans of an in-stock search near a point without a "
    "category or price filter (counted from the in-stock candidate sets, unless the scope is nearly every product); "
    "the planner's estimate otherwise (`in_stock=false`, a category or price filter, HNSW plans, keyword mode, facet "
    "sets). A count to show: `total` (with `total_capped`), which is exact."
)


class SearchResponse(msgspec.Struct, omit_defaults=True):
    results: list[HitOut]
    total_candidates: Annotated[int, msgspec.Meta(description=TOTAL_CANDIDATES_DOC)]
    strategy: Strategy  # the plan that ranked it (engine/results.py)
    took_ms: float
    # results passing every filter (facets, sort, store_id, brand: the whole set; bbox, fulfilment, explain alone:
    # only when the page's fusion window held them all, absent otherwise)
    total: int | None = None
    total_capped: Annotated[
        bool | None,
        msgspec.Meta(
            description="With `total`: true when more products matched than the result set's depth "
            "(PLINQY_FACET_DEPTH, default 1000; in keyword mode, when the keyword side's caps cut its matches), so "
            "`total` and the facet counts cover the depth's best and more may match past it (a facet value chosen "
            "is applied within the set: `brand=X&facets=brand` with `total` 0 and `total_capped` true found no X among "
            "the depth's best); false when all that matched is counted (an unknown `category_id` or a `store_id` "
            "outside the scope: none)."
        ),
    ] = None
    facets: FacetsOut | None = None  # facets=... only
    explain: ExplainOut | None = None  # explain=true only


class Location(msgspec.Struct):
    lat: float
    lon: float


class StoreNearbyOut(msgspec.Struct):
    id: UUID
    name: str
    store_type: str | None
    address: str | None
    city: str | None
    postal_code: str | None
    country_code: str | None
    location: Location
    distance_m: float


class StoresNearbyResponse(msgspec.Struct):
    stores: list[StoreNearbyOut]
    total: Annotated[int, msgspec.Meta(description="Active stores in the radius, the page's and every other.")]


class CategoryRef(msgspec.Struct):
    id: int
    name: str
    slug: str | None


class ImageOut(msgspec.Struct):
    id: UUID
    url: str
    alt_text: str | None
    position: int
    is_primary: bool


class ProductDetail(msgspec.Struct):
    id: UUID
    name: str
    brand: str | None
    description: str | None
    category_id: int | None
    gtin: StoredGtin | None
    attributes: dict[str, Any]
    category_path: list[CategoryRef]
    images: list[ImageOut]


class CategoryNode(msgspec.Struct):
    id: int
    name: str
    slug: str | None
    position: int
    children: list[CategoryNode]


class CategoriesResponse(msgspec.Struct):
    categories: list[CategoryNode]


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]
    reasons: list[str]


# --- OpenAPI examples and response specs (what each route's `responses=` names)
def _error_example(status: int, parameter: str | None, message: str) -> Example:
    return ExampleWithNulls(summary=f"{status}", value={"error": {"parameter": parameter, "message": message}})


def bad_request(parameter: str, message: str) -> ResponseSpec:
    """A route's 400, its example an answer the route really gives (tests/test_api_validation.py sends it)."""
    return ResponseSpec(
        ErrorBody,
        description="A parameter is invalid; `parameter` names it.",
        examples=[_error_example(400, parameter, message)],
        generate_examples=False,
    )


def limit_rule(maximum: int) -> str:
    return f"must be an integer between 1 and {maximum}"


_BAD_REQUEST = bad_request("limit", limit_rule(MAX_LIMIT))
_NOT_FOUND = ResponseSpec(
    ErrorBody,
    description="No such product.",
    examples=[_error_example(404, "product_id", "no product with this id")],
    generate_examples=False,
)
_UNAVAILABLE = ResponseSpec(
    ErrorBody,
    description="Overloaded or not ready (statement timeout, connection pool exhausted, model loading, the database "
    "not at this code's migration: a table, column, function, type or text search configuration missing); "
    "retry after `Retry-After` seconds.",
    examples=[_error_example(503, None, "the database took too long; retry shortly")],
    generate_examples=False,
)

_STORE_HIT_EXAMPLE = {
    "id": EXAMPLE_STORE_ID,
    "name": "De Pijp Hardware",
    "distance_m": 812.4,
    "price": 2.49,
    "currency": "EUR",
    "quantity": 14,
}
_SEARCH_EXAMPLE = {
    "results": [
        {
            "product": {
                "id": EXAMPLE_PRODUCT_ID,
                "name": "Tap washer set, 12 pieces",
                "brand": "FixIt",
                "category_id": 42,
                "gtin": "8710000000017",
                "description": 'Rubber washers for 1/2" and 3/4" taps.',
            },
            "score": 0.83,
            "stores": [_STORE_HIT_EXAMPLE],
        }
    ],
    "total_candidates": 57,
    "strategy": "exact_scan",
    "took_ms": 18.2,
}


def _ok(model: type, example: object, description: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            model,
            description=description,
            examples=[Example(summary="example", value=example)],
            generate_examples=False,
        )
    }


SEARCH_RESPONSES = {
    **_ok(SearchResponse, _SEARCH_EXAMPLE, "Products ranked by relevance, each with its nearest stores."),
    400: _BAD_REQUEST,
    503: _UNAVAILABLE,
}
SIMILAR_RESPONSES = {**SEARCH_RESPONSES, 404: _NOT_FOUND}


PRODUCT_RESPONSES = {
    **_ok(
        ProductDetail,
        {
            "id": EXAMPLE_PRODUCT_ID,
            "name": "Tap washer set, 12 pieces",
            "brand": "FixIt",
            "description": 'Rubber washers for 1/2" and 3/4" taps.',
            "category_id": 42,
            "gtin": "8710000000017",
            "attributes": {"pieces": 12},
            "category_path": [
                {"id": 3, "name": "DIY", "slug": "diy"},
                {"id": 42, "name": "Plumbing", "slug": "plumbing"},
            ],
            "images": [
                {
                    "id": "3c1d2e3f-4a5b-4c6d-8e7f-8a9b0c1d2e3f",
                    "url": "https://img.plinqy.example/tap-washers.jpg",
                    "alt_text": "A set of tap washers",
                    "position": 0,
                    "is_primary": True,
                }
            ],
        },
        "The product.",
    ),
    400: bad_request("product_id", UUID_RULE),
    404: _NOT_FOUND,
    503: _UNAVAILABLE,
}

STORES_NEARBY_RESPONSES = {
    **_ok(
        StoresNearbyResponse,
        {
            "stores": [
                {
                    "id": EXAMPLE_STORE_ID,
                    "name": "De Pijp Hardware",
                    "store_type": "hardware",
                    "address": "Ferdinand Bolstraat 1",
                    "city": "Amsterdam",
                    "postal_code": "1072 LA",
                    "country_code": "NL",
                    "location": {"lat": 52.3559, "lon": 4.8918},
                    "distance_m": 812.4,
                }
            ],
            "total": 1,
        },
        "Stores, nearest first.",
    ),
    400: bad_request("limit", limit_rule(NEARBY_MAX)),
    503: _UNAVAILABLE,
}

CATEGORIES_RESPONSES = {
    **_ok(
        CategoriesResponse,
        {
            "categories": [
                {
                    "id": 3,
                    "name": "DIY",
                    "slug": "diy",
                    "position": 0,
                    "children": [{"id": 42, "name": "Plumbing", "slug": "plumbing", "position": 0, "children": []}],
                }
            ]
        },
        "The tree.",
    ),
    503: _UNAVAILABLE,
}

HEALTHZ_RESPONSES = _ok(Health, {"status": "ok"}, "Alive.")

READYZ_RESPONSES = {
    **_ok(
        Readiness,
        {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "model": "ok", "suggestions": "building", "vectors": "ok"},
            "reasons": [],
        },
        "Ready to serve searches. `suggestions` (building, ok, off) is not waited for: until the suggestion index is "
        "built, suggestions are answered by statements. `migrations: ahead` (the database migrated by newer code, "
        "e.g. a `migrate` ahead of a rolling restart) is ready too: migrations keep older code working; it is logged.",
    ),
    503: ResponseSpec(
        Readiness,
        description="Not ready; `reasons` says why. `database`: ok, unreachable, busy, slow or forbidden (the role "
        "in DATABASE_URL lacks rights, to read or to write what the API or its triggers write, such as a read-only "
        "role: a grant "
        "to make); `migrations`: "
        "behind (run `plinqy-search migrate`) or missing; `suggestions`: waiting while the database is away.",
        examples=[
            Example(
                summary="model loading",
                value={
                    "status": "not ready",
                    "checks": {"database": "ok", "migrations": "ok", "model": "loading"},
                    "reasons": ["the model is loading"],
                },
            )
        ],
        generate_examples=False,
    ),
}

METRICS_RESPONSES = {200: ResponseSpec(str, description="Prometheus text format.", media_type=MediaType.TEXT)}
