"""Facet counts and the distance/price sorts over a search's result set.

The result set: for keyword search every product the query matches in scope (up to the keyword side's caps); for
semantic and hybrid search the `FacetConfig.depth` (PLINQY_FACET_DEPTH, default 1000) most relevant products in
scope. `facet_set` filters it by the chosen facet values (category subtree, brand, store, price range), orders it
(relevance, nearest store with stock, lowest price; stable) and counts each requested facet over the products that
pass every filter but that facet's own: a count is the number of results choosing its value would give.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine.results import SearchParams
from search_service.envconfig import env_float, env_int

FACETS = ("category", "brand", "price", "store")
SORTS = ("relevance", "distance", "price")
Sort = Literal["relevance", "distance", "price"]
# Lower bounds of the price buckets; a bucket runs to the next bound minus a cent (prices have two decimals).
PRICE_EDGES = tuple(Decimal(v) for v in ("0", "5", "10", "20", "50", "100", "200", "500", "1000"))
CENT = Decimal("0.01")
FACET_VALUES = 50  # brand and store values: the most frequent, and a chosen one past them
DEFAULT_DEPTH = 1000
# a sort by price or distance keeps the products at least RELATIVE times as similar as the best in scope, none if
# that is below MIN, and the word matches exact or at least WORDS times as similar (ux_ranking.py)
DEFAULT_SORT_RELATIVE_SIMILARITY = 0.75
DEFAULT_SORT_MIN_SIMILARITY = 0.2
SORT_WORDS_SIMILARITY = 0.6
NARROW_STORES = 4  # scopes of at most this many stores: the set's listings read store by store (facets.sql)


@dataclass(frozen=True)
class FacetConfig:
    depth: int = DEFAULT_DEPTH  # semantic/hybrid: facets and sorts cover this many top results
    sort_relative_similarity: float = DEFAULT_SORT_RELATIVE_SIMILARITY
    sort_min_similarity: float = DEFAULT_SORT_MIN_SIMILARITY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FacetConfig:
        depth = env_int(env, "PLINQY_FACET_DEPTH", DEFAULT_DEPTH, 10, 10_000)
        relative = env_float(env, "PLINQY_SORT_RELATIVE_SIMILARITY", DEFAULT_SORT_RELATIVE_SIMILARITY, 0.0, 1.0)
        return cls(
            depth, relative, env_float(env, "PLINQY_SORT_MIN_SIMILARITY", DEFAULT_SORT_MIN_SIMILARITY, -1.0, 1.0)
        )


@dataclass(frozen=True)
class FacetFilters:
    """Chosen facet values; each is also a filter of the results."""

    category_ids: Sequence[int] | None = None  # the chosen category and its subtree
    brand: str | None = None
    store_id: UUID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None


@dataclass(frozen=True)
class CategoryCount:
    id: int
    name: str
    parent_id: int | None
    count: int


@dataclass(frozen=True)
class ValueCount:
    value: str
    count: int


@dataclass(frozen=True)
class StoreCount:
    id: UUID
    name: str
    count: int


@dataclass(frozen=True)
class PriceBucket:
    min: Decimal
    max: Decimal | None  # None: no upper bound
    count: int


@dataclass(frozen=True)
class Facets:
    category: list[CategoryCount] | None = None
    brand: list[ValueCount] | None = None
    price: list[PriceBucket] | None = None
    store: list[StoreCount] | None = None


@dataclass(frozen=True)
class FacetedPage:
    total: int  # results passing every filter
    ids: list[UUID]  # the page, in the chosen order
    best_price: dict[UUID, Decimal]  # lowest qualifying price in scope
    nearest_m: dict[UUID, float]  # nearest qualifying store (sort=distance only)
    facets: Facets = field(default_factory=Facets)


async def chosen_filters(conn: Any, params: SearchParams, store_id: UUID | None) -> FacetFilters:
    """The chosen values as filters: a category as its subtree."""
    category_ids = None
    if params.category_id is not None:
        stmt = statement("engine/facets", "category_subtree")
        category_ids = list(await conn.fetchval(stmt.sql, *stmt.bind(category_id=params.category_id)))
    return FacetFilters(category_ids, params.brand, store_id, params.min_price, params.max_price)


def price_bucket(index: int) -> tuple[Decimal, Decimal | None]:
    """Bucket `index` (1-based, as width_bucket numbers them) as an inclusive [min, max] in cents."""
    low = PRICE_EDGES[index - 1]
    high = PRICE_EDGES[index] - CENT if index < len(PRICE_EDGES) else None
    return low, high


def _facets(row: Any, wanted: set[str]) -> Facets:
    def rows(column: str) -> list[Any]:
        return json.loads(row[column]) if row[column] else []

    return Facets(
        category=[CategoryCount(int(i), n, p, c) for i, n, p, c in rows("categories")]
        if "category" in wanted
        else None,
        brand=[ValueCount(v, c) for v, c in rows("brands")] if "brand" in wanted else None,
        price=[PriceBucket(*price_bucket(b), c) for b, c in rows("prices")] if "price" in wanted else None,
        store=[StoreCount(UUID(i), n, c) for i, n, c in rows("stores")] if "store" in wanted else None,
    )


def check_request(facets: Sequence[str], sort: str, point: tuple[float, float] | None) -> None:
    unknown = set(facets) - set(FACETS)
    if unknown:
        raise ValueError(f"unknown facets: {sorted(unknown)}")
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    if sort == "distance" and point is None:
        raise ValueError("sort=distance needs lat and lon")


async def facet_set(
    conn: Any,
    product_ids: Sequence[UUID],
    *,
    store_ids: Sequence[UUID] | None,
    in_stock: bool = True,
    point: tuple[float, float] | None = None,
    filters: FacetFilters = FacetFilters(),
    facets: Sequence[str] = (),
    sort: Sort = "relevance",
    offset: int = 0,
    limit: int = 20,
) -> FacetedPage:
    """Filter, order and count the result set `product_ids` (best first). `point`: (lat, lon)."""
    check_request(facets, sort, point)
    stmt = statement("engine/facets", "facet_set")
    row = await conn.fetchrow(
        stmt.sql,
        *stmt.bind(
            product_ids=list(product_ids),
            store_ids=None if store_ids is None else list(store_ids),
            in_stock=in_stock,
            lon=None if point is None else point[1],
            lat=None if point is None else point[0],
            category_ids=None if filters.category_ids is None else list(filters.category_ids),
            facet_brand=filters.brand,
            store_id=filters.store_id,
            min_price=filters.min_price,
            max_price=filters.max_price,
            price_edges=list(PRICE_EDGES),
            facets=list(facets),
            facet_values=FACET_VALUES,
            sort=sort,
            page_offset=offset,
            page_limit=limit,
            narrow_stores=NARROW_STORES,
        ),
    )
    ids = list(row["page_ids"])
    return FacetedPage(
        total=int(row["total"]),
        ids=ids,
        best_price=dict(zip(ids, row["page_prices"], strict=True)),
        nearest_m={i: float(d) for i, d in zip(ids, row["page_distances"], strict=True) if d is not None},
        facets=_facets(row, set(facets)),
    )
