"""`/v1/products/{id}`, `/v1/stores/nearby`, `/v1/categories`: catalogue reads (engine.catalog) shaped as JSON."""

from __future__ import annotations

import math
from typing import Any

import msgspec
from litestar import get
from litestar.di import NamedDependency

from search_service.api import params as P
from search_service.api.runtime import Runtime
from search_service.api.schemas import (
    CATEGORIES_RESPONSES,
    PRODUCT_RESPONSES,
    STORES_NEARBY_RESPONSES,
    CategoriesResponse,
    CategoryNode,
    Location,
    ProductDetail,
    StoreNearbyOut,
    StoresNearbyResponse,
)
from search_service.engine import catalog


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


def _store_out(r: Any) -> StoreNearbyOut:
    return StoreNearbyOut(
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


@get(
    "/v1/products/{product_id:str}",
    summary="One product",
    description="A product with its category path (root first) and its images: each `url` an http(s) address or a "
    "path on this site (never `//host/…`), the primary one (at most one) first, then by `position`.",
    tags=["catalog"],
    responses=PRODUCT_RESPONSES,
)
async def get_product(rt: NamedDependency[Runtime], product_id: P.ProductIdParam) -> ProductDetail:
    pid = P.parse_uuid("product_id", product_id)
    async with rt.transaction() as conn:
        product = await catalog.get_product(conn, pid)
    if product is None:
        raise P.NotFound("product_id", "no product with this id")
    return msgspec.convert(product, ProductDetail)


@get(
    "/v1/stores/nearby",
    summary="Stores near a place",
    description="Active stores within `radius_m` of lat/lon, nearest first, with distances in metres; `total`: how "
    "many the radius holds (page with `offset`).",
    tags=["catalog"],
    responses=STORES_NEARBY_RESPONSES,
)
async def stores_nearby(
    rt: NamedDependency[Runtime],
    lat: P.RequiredLat,
    lon: P.RequiredLon,
    radius_m: P.RadiusM = 5000,
    limit: P.NearbyLimit = 20,
    offset: P.NearbyOffset = 0,
) -> StoresNearbyResponse:
    point = P.check_point(lat, lon)
    assert point is not None
    if not math.isfinite(radius_m):
        raise P.BadParameter("radius_m", f"must be between 1 and {P.MAX_RADIUS_M}")
    async with rt.transaction() as conn:
        rows, total = await catalog.stores_nearby(
            conn, lat=point[0], lon=point[1], radius_m=float(radius_m), limit=limit, offset=offset
        )
    return StoresNearbyResponse(stores=[_store_out(r) for r in rows], total=total)


@get(
    "/v1/categories",
    summary="The category tree",
    description="All categories, nested: roots first, each with its `children`.",
    tags=["catalog"],
    responses=CATEGORIES_RESPONSES,
)
async def categories(rt: NamedDependency[Runtime]) -> CategoriesResponse:
    async with rt.transaction() as conn:
        rows = await catalog.categories(conn)
    return CategoriesResponse(categories=build_tree(rows))


CATALOG_ROUTES = [get_product, stores_nearby, categories]
