"""HTTP routes of the search API: search, similar, products, stores, categories, health, metrics.

Handlers stay thin: validate (params.py), embed (cached, in a thread), run SQL under a statement timeout
(runtime in app.py), shape the JSON (the msgspec structs below, which are also the OpenAPI schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from embeddings.sqlblocks import load_blocks
from search_service.api import params as P
from search_service.engine import search as engine

if TYPE_CHECKING:
    import numpy as np

    from search_service.api.app import Runtime

CATALOG_SQL = Path(__file__).with_name("sql") / "catalog.sql"

_EXAMPLE_PRODUCT_ID = "6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a"
_EXAMPLE_STORE_ID = "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b"


# --- response bodies
class ErrorDetail(msgspec.Struct):
    parameter: str | None
    message: str


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class StoreHitOut(msgspec.Struct):
    id: UUID
    name: str
    distance_m: float | None
    price: float
    currency: str
    quantity: int


class ProductOut(msgspec.Struct):
    id: UUID
    name: str
    brand: str | None
    category_id: int | None
    gtin: str | None
    description: str | None


class HitOut(msgspec.Struct):
    product: ProductOut
    score: float
    stores: list[StoreHitOut]


class SearchResponse(msgspec.Struct):
    results: list[HitOut]
    total_candidates: int
    strategy: str
    took_ms: float


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
    gtin: str | None
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


# --- OpenAPI examples
def _error_example(status: int, parameter: str | None, message: str) -> Example:
    return Example(summary=f"{status}", value={"error": {"parameter": parameter, "message": message}})


_BAD_REQUEST = ResponseSpec(
    ErrorBody,
    description="A parameter is invalid; `parameter` names it.",
    examples=[_error_example(400, "limit", "Expected `int` <= 100")],
    generate_examples=False,
)
_NOT_FOUND = ResponseSpec(
    ErrorBody,
    description="No such product.",
    examples=[_error_example(404, "id", "no product with this id")],
    generate_examples=False,
)
_UNAVAILABLE = ResponseSpec(
    ErrorBody,
    description="Overloaded or not ready (statement timeout, connection pool exhausted, model loading); "
    "retry after `Retry-After` seconds.",
    examples=[_error_example(503, None, "the search took too long; retry shortly")],
    generate_examples=False,
)

_STORE_HIT_EXAMPLE = {
    "id": _EXAMPLE_STORE_ID,
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
                "id": _EXAMPLE_PRODUCT_ID,
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
    "strategy": "hybrid",
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


_SEARCH_RESPONSES = {
    **_ok(SearchResponse, _SEARCH_EXAMPLE, "Products ranked by relevance, each with its nearest stores."),
    400: _BAD_REQUEST,
    503: _UNAVAILABLE,
}
_SIMILAR_RESPONSES = {**_SEARCH_RESPONSES, 404: _NOT_FOUND}


# --- conversions
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


def to_search_response(result: Any, took_ms: float) -> SearchResponse:
    hits = []
    for hit in result.results:
        p = hit.product
        hits.append(
            HitOut(
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
                    )
                    for s in hit.stores
                ],
            )
        )
    return SearchResponse(
        results=hits,
        total_candidates=int(result.total_candidates),
        strategy=str(result.strategy),
        took_ms=round(took_ms, 3),
    )


def build_tree(rows: list[Any]) -> list[CategoryNode]:
    """Nested categories from (id, parent_id, …) rows; rows unreachable from a root (a cycle) are left out."""
    nodes = {
        row["id"]: CategoryNode(id=row["id"], name=row["name"], slug=row["slug"], position=row["position"], children=[])
        for row in rows
    }
    roots: list[CategoryNode] = []
    for row in rows:  # rows come sorted by (position, name, id), so children keep that order
        node = nodes[row["id"]]
        parent = nodes.get(row["parent_id"]) if row["parent_id"] is not None else None
        if row["parent_id"] is None:
            roots.append(node)
        elif parent is not None:
            parent.children.append(node)
    return roots


# --- handlers
@get(
    "/v1/search",
    summary="Search products near a place",
    description="Natural-language product search, optionally limited to stores within `radius_m` of lat/lon.",
    tags=["search"],
    responses=_SEARCH_RESPONSES,
)
async def search_products(
    rt: NamedDependency[Runtime],
    request: Request[Any, Any, Any],
    q: P.Q,
    lat: P.Lat = None,
    lon: P.Lon = None,
    radius_m: P.RadiusM = 5000,
    limit: P.Limit = 20,
    offset: P.Offset = 0,
    category_id: P.CategoryId = None,
    min_price: P.MinPrice = None,
    max_price: P.MaxPrice = None,
    in_stock: P.InStock = True,
    stores_per_product: P.StoresPerProduct = 3,
    mode: P.ModeParam = "hybrid",
) -> SearchResponse:
    started = time.perf_counter()
    text = P.clean_query(q)
    sp = P.search_params(
        q=text,
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        limit=limit,
        offset=offset,
        category_id=category_id,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        stores_per_product=stores_per_product,
        mode=mode,
    )
    # Keyword mode needs no model (it keeps working while the model loads). Otherwise the query is embedded
    # while the database work starts; a model that is not ready answers 503 before any of it.
    embedding: asyncio.Future[np.ndarray] | None = None
    if mode != "keyword":
        rt.check_model()
        embedding = asyncio.ensure_future(rt.embed(text))
    try:
        spare = rt.spare_connection() if mode == "hybrid" else contextlib.nullcontext()
        async with rt.connection() as conn, spare as kw_conn:
            engine_started = time.perf_counter()
            result = await engine.search(
                conn, sp, embedding, rt.engine_config, vectors=rt.vectors, keyword_conn=kw_conn, stats=rt.stats
            )
    finally:
        if embedding is not None and not embedding.done():
            embedding.cancel()  # the engine answered without it (no store in the radius, say)
        elif embedding is not None and not embedding.cancelled():
            embedding.exception()  # retrieved: a failure the engine never awaited is not logged as lost
    strategy = str(result.strategy)
    rt.metrics.search_latency.labels(mode, strategy).observe(time.perf_counter() - engine_started)
    request.state.search_strategy = strategy
    return to_search_response(result, (time.perf_counter() - started) * 1000)


@get(
    "/v1/products/{product_id:str}/similar",
    summary="Products similar to a product",
    description="Products whose embedding is nearest to this product's, with the same filters as search.",
    tags=["search"],
    responses=_SIMILAR_RESPONSES,
)
async def similar_products(
    rt: NamedDependency[Runtime],
    request: Request[Any, Any, Any],
    product_id: P.ProductIdParam,
    lat: P.Lat = None,
    lon: P.Lon = None,
    radius_m: P.RadiusM = 5000,
    limit: P.Limit = 20,
    offset: P.Offset = 0,
    category_id: P.CategoryId = None,
    min_price: P.MinPrice = None,
    max_price: P.MaxPrice = None,
    in_stock: P.InStock = True,
    stores_per_product: P.StoresPerProduct = 3,
) -> SearchResponse:
    started = time.perf_counter()
    pid = UUID(P.product_id(product_id))
    sp = P.search_params(
        q="",
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        limit=limit,
        offset=offset,
        category_id=category_id,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        stores_per_product=stores_per_product,
        mode="semantic",
    )
    async with rt.connection() as conn:
        engine_started = time.perf_counter()
        result = await engine.similar(conn, pid, sp, rt.engine_config, vectors=rt.vectors, stats=rt.stats)
    strategy = str(result.strategy)
    rt.metrics.search_latency.labels("similar", strategy).observe(time.perf_counter() - engine_started)
    request.state.search_strategy = strategy
    return to_search_response(result, (time.perf_counter() - started) * 1000)


@get(
    "/v1/products/{product_id:str}",
    summary="One product",
    description="A product with its category path (root first) and its images.",
    tags=["catalog"],
    responses={
        **_ok(
            ProductDetail,
            {
                "id": _EXAMPLE_PRODUCT_ID,
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
        400: _BAD_REQUEST,
        404: _NOT_FOUND,
        503: _UNAVAILABLE,
    },
)
async def get_product(rt: NamedDependency[Runtime], product_id: P.ProductIdParam) -> ProductDetail:
    pid = UUID(P.product_id(product_id))
    async with rt.transaction() as conn:
        row = await conn.fetchrow(_sql("product_by_id"), pid)
    if row is None:
        raise P.NotFound("id", "no product with this id")
    return ProductDetail(
        id=row["id"],
        name=row["name"],
        brand=row["brand"],
        description=row["description"],
        category_id=row["category_id"],
        gtin=row["gtin"],
        attributes=json.loads(row["attributes"]),
        category_path=msgspec.convert(json.loads(row["category_path"]), list[CategoryRef]),
        images=msgspec.convert(json.loads(row["images"]), list[ImageOut]),
    )


@get(
    "/v1/stores/nearby",
    summary="Stores near a place",
    description="Active stores within `radius_m` of lat/lon, nearest first, with distances in metres.",
    tags=["catalog"],
    responses={
        **_ok(
            StoresNearbyResponse,
            {
                "stores": [
                    {
                        "id": _EXAMPLE_STORE_ID,
                        "name": "De Pijp Hardware",
                        "store_type": "hardware",
                        "address": "Ferdinand Bolstraat 1",
                        "city": "Amsterdam",
                        "postal_code": "1072 LA",
                        "country_code": "NL",
                        "location": {"lat": 52.3559, "lon": 4.8918},
                        "distance_m": 812.4,
                    }
                ]
            },
            "Stores, nearest first.",
        ),
        400: _BAD_REQUEST,
        503: _UNAVAILABLE,
    },
)
async def stores_nearby(
    rt: NamedDependency[Runtime],
    lat: P.RequiredLat,
    lon: P.RequiredLon,
    radius_m: P.RadiusM = 5000,
    limit: P.Limit = 20,
) -> StoresNearbyResponse:
    point = P.check_point(lat, lon)
    assert point is not None
    if not math.isfinite(radius_m):
        raise P.BadParameter("radius_m", f"must be between 1 and {P.MAX_RADIUS_M}")
    async with rt.transaction() as conn:
        rows = await conn.fetch(_sql("stores_nearby"), point[0], point[1], float(radius_m), limit)
    return StoresNearbyResponse(
        stores=[
            StoreNearbyOut(
                id=r["id"],
                name=r["name"],
                store_type=r["store_type"],
                address=r["address"],
                city=r["city"],
                postal_code=r["postal_code"],
                country_code=r["country_code"],
                location=Location(lat=r["lat"], lon=r["lon"]),
                distance_m=r["distance_m"],
            )
            for r in rows
        ]
    )


@get(
    "/v1/categories",
    summary="The category tree",
    description="All categories, nested: roots first, each with its `children`.",
    tags=["catalog"],
    responses={
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
    },
)
async def categories(rt: NamedDependency[Runtime]) -> CategoriesResponse:
    async with rt.transaction() as conn:
        rows = await conn.fetch(_sql("categories"))
    return CategoriesResponse(categories=build_tree(list(rows)))


@get(
    "/healthz",
    summary="Liveness",
    description="The process is up and serving HTTP (says nothing about the database or the model).",
    tags=["health"],
    responses=_ok(Health, {"status": "ok"}, "Alive."),
)
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    summary="Readiness",
    description="Ready when the database answers, migrations are at head and the model is loaded and warmed.",
    tags=["health"],
    responses={
        **_ok(
            Readiness,
            {
                "status": "ready",
                "checks": {"database": "ok", "migrations": "ok", "model": "ok"},
                "reasons": [],
            },
            "Ready to serve searches.",
        ),
        503: ResponseSpec(
            Readiness,
            description="Not ready; `reasons` says why.",
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
    },
)
async def readyz(rt: NamedDependency[Runtime]) -> Response[Readiness]:
    readiness = await rt.readiness()
    if readiness.status == "ready":
        return Response(readiness, status_code=200)
    return Response(readiness, status_code=503, headers={"Retry-After": "1"})


@get(
    "/metrics",
    summary="Prometheus metrics",
    description="Latency histograms by route and strategy, pool usage, query-embedding cache hit rate.",
    tags=["health"],
    media_type=MediaType.TEXT,
    responses={200: ResponseSpec(str, description="Prometheus text format.", media_type=MediaType.TEXT)},
)
async def metrics(rt: NamedDependency[Runtime]) -> Response[bytes]:
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _sql(name: str) -> Any:
    return load_blocks(CATALOG_SQL)[name]


ROUTES = [search_products, similar_products, get_product, stores_nearby, categories, healthz, readyz, metrics]
