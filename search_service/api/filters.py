"""The filters `/v1/search` and `/v1/similar` share, declared once: one litestar dependency whose query
parameters OpenAPI documents for both routes, returning a checked, frozen `SearchFilters`; and the shopper-facing
options both take (facets, sort, bbox, fulfilment, explain, store_id: `ux_params.py`), the `ux` dependency.

A new filter is one parameter here (its declared type in params.py), one field, and one line in `params()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from litestar.di import Provide

from search_service.api import params as P
from search_service.api.ux_params import SIMILAR_UX_DEPENDENCIES, UX_DEPENDENCIES
from search_service.engine.search import SearchParams


@dataclass(frozen=True)
class SearchFilters:
    """Where and what to search, checked: lat/lon together or neither, prices as exact decimals."""

    lat: float | None
    lon: float | None
    radius_m: float
    limit: int
    offset: int
    category_id: int | None
    min_price: Decimal | None
    max_price: Decimal | None
    in_stock: bool
    stores_per_product: int
    brand: str | None

    def params(self, *, q: str, mode: P.Mode, whole_last_word: bool = False) -> SearchParams:
        """The engine's parameters for a query text (`""` for /similar, which has none) and a mode."""
        return SearchParams(
            q=q,
            whole_last_word=whole_last_word,
            lat=self.lat,
            lon=self.lon,
            radius_m=self.radius_m,
            limit=self.limit,
            offset=self.offset,
            category_id=self.category_id,
            min_price=self.min_price,
            max_price=self.max_price,
            in_stock=self.in_stock,
            stores_per_product=self.stores_per_product,
            mode=mode,
            brand=self.brand,
        )


def provide_search_filters(
    lat: P.Lat = None,
    lon: P.Lon = None,
    radius_m: P.PointRadiusM = None,
    limit: P.Limit = 20,
    offset: P.Offset = 0,
    category_id: P.CategoryId = None,
    min_price: P.MinPrice = None,
    max_price: P.MaxPrice = None,
    in_stock: P.InStock = True,
    stores_per_product: P.StoresPerProduct = 3,
    brand: P.Brand = None,
) -> SearchFilters:
    """Types and ranges are checked by litestar (400 naming the parameter); the rest here, as BadParameter."""
    point = P.check_point(lat, lon)
    radius = P.check_radius(radius_m)
    low, high = P.check_prices(min_price, max_price)
    return SearchFilters(
        lat=point[0] if point else None,
        lon=point[1] if point else None,
        radius_m=radius,
        limit=limit,
        offset=offset,
        category_id=category_id,
        min_price=low,
        max_price=high,
        in_stock=in_stock,
        stores_per_product=stores_per_product,
        brand=P.clean_brand(brand),
    )


# Handlers declare `filters: NamedDependency[SearchFilters]`, `ux: NamedDependency[UxOptions]` and these.
FILTER_DEPENDENCIES = {"filters": Provide(provide_search_filters, sync_to_thread=False), **UX_DEPENDENCIES}
# /similar's: the same, its options described as it ranks (by the product, no query or mode)
SIMILAR_FILTER_DEPENDENCIES = {
    "filters": Provide(provide_search_filters, sync_to_thread=False),
    **SIMILAR_UX_DEPENDENCIES,
}
