"""Hydration: the page's products and, per product, its nearest qualifying stores (one statement). A product with
no qualifying store left (sold out after the ranking read it, on another connection or snapshot) leaves the page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine.results import ProductHit, ProductSummary, StoreHit
from search_service.engine.scope import Scope
from search_service.engine.session import Conn


def _summary(r: Any) -> ProductSummary:
    return ProductSummary(
        id=r["id"],
        name=r["name"],
        brand=r["brand"],
        category_id=r["category_id"],
        gtin=r["gtin"],
        description=r["description"],
    )


def _store(r: Any) -> StoreHit:
    return StoreHit(
        id=r["store_id"],
        name=r["store_name"],
        distance_m=None if r["distance_m"] is None else float(r["distance_m"]),
        price=r["price"],
        currency=r["currency"],
        quantity=r["quantity"],
        delivers=r["delivers"],
    )


async def hydrate(
    conn: Conn, scope: Scope, ids: list[UUID], scores: dict[UUID, float], cheapest_first: bool = False
) -> list[ProductHit]:
    """`ids` in their order, each with its score and its nearest (globally, or `cheapest_first`: cheapest) stores
    in scope, each store saying whether it delivers to the searcher's point. A product none of whose stores
    qualifies any more is left out (the page is shorter): a hit never comes without a store."""
    if not ids:
        return []
    lon, lat = scope.point
    stmt = statement("engine/search", "hydrate")
    home = {"home_lon": scope.params.lon, "home_lat": scope.params.lat}
    values = scope.bind(stmt, product_ids=ids, lon=lon, lat=lat, cheapest_first=cheapest_first, **home)
    hits: dict[UUID, ProductHit] = {}
    for r in await conn.fetch(stmt.sql, *values):
        if r["store_id"] is None:  # LEFT JOIN's row of a product with no qualifying store: sold out since the ranking
            continue
        hit = hits.get(r["id"])
        if hit is None:
            hit = hits[r["id"]] = ProductHit(product=_summary(r), score=scores[r["id"]], stores=[])
        hit.stores.append(_store(r))
    return [hits[i] for i in ids if i in hits]
