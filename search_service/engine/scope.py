"""The scope of one search: the stores and category subtree its filters resolve to, and the values it binds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine.results import SearchParams, SearchResult
from search_service.engine.session import Conn


@dataclass(frozen=True)
class Scope:
    store_ids: list[UUID] | None  # None: global (any active store)
    category_ids: list[int] | None  # None: any category
    params: SearchParams
    exclude_id: UUID | None = None  # similar(): the product asked about

    def listing_values(self) -> dict[str, Any]:
        """The parameters of search.sql's listing filter fragments (`listing_filter`, `listing_terms`, …)."""
        p = self.params
        return {"store_ids": self.store_ids, "in_stock": p.in_stock, "min_price": p.min_price, "max_price": p.max_price}

    def filter_values(self) -> dict[str, Any]:
        """The listing filter's parameters and the `product_filter` fragment's."""
        product = {"category_ids": self.category_ids, "exclude_id": self.exclude_id, "brand": self.params.brand}
        return {**self.listing_values(), **product}

    @property
    def point(self) -> tuple[float | None, float | None]:
        """(lon, lat) of a search near a point; (None, None) for a global one."""
        return (self.params.lon, self.params.lat) if self.store_ids is not None else (None, None)


def _empty(strategy: str) -> SearchResult:
    return SearchResult(results=[], total_candidates=0, strategy=strategy)


async def resolve_scope(conn: Conn, params: SearchParams, exclude_id: UUID | None) -> Scope | SearchResult:
    """Round trip 1 (search_context): the active stores in the radius and the category subtree; an empty
    result when nothing can qualify. A global search without a category has nothing to look up."""
    geo = params.lat is not None and params.lon is not None
    store_ids: list[UUID] | None = None
    category_ids: list[int] | None = None
    if geo or params.category_id is not None:
        stmt = statement("engine/search", "search_context")
        values = stmt.bind(
            lon=params.lon if geo else None,
            lat=params.lat if geo else None,
            radius_m=float(params.radius_m),
            category_id=params.category_id,
        )
        ctx = await conn.fetchrow(stmt.sql, *values)
        assert ctx is not None
        category_ids = ctx["category_ids"]
        if geo:
            store_ids = list(ctx["store_ids"] or [])
            if not store_ids:
                return _empty("no_stores")
    if category_ids is not None and not category_ids:  # unknown category: nothing qualifies
        return _empty("no_category")
    return Scope(store_ids=store_ids, category_ids=category_ids, params=params, exclude_id=exclude_id)
