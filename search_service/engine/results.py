"""What a search is asked (`SearchParams`) and what it answers (`SearchResult` and its parts)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from uuid import UUID

Mode = Literal["hybrid", "semantic", "keyword"]
# The plan that ranked a search (`strategy`; hybrid names its vector side's): vector_plans.py (`global_`: no store
# scope), facet_vectors.py, keyword.py, and the answers with no ranking (an empty scope, a product not embedded).
Strategy = Literal[
    "exact_scan", "global_exact_scan", "exact_gather", "global_exact_gather", "scan_fallback_gather", "global_hnsw",
    "hnsw_iterative", "exact", "global_exact", "hnsw_fallback_exact", "global_fallback_exact", "facet_set",
    "global_facet_set", "wide_facet_set", "keyword", "no_vector", "no_stores", "no_category",
]  # fmt: skip
MAX_OFFSET = 1000


class ProductNotFound(LookupError):
    """similar() was asked about a product id that does not exist (the HTTP layer answers 404)."""

    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"product {product_id} not found")
        self.product_id = product_id


@dataclass(frozen=True)
class SearchParams:
    q: str  # already trimmed and validated
    lat: float | None = None
    lon: float | None = None
    radius_m: float = 5000
    limit: int = 20
    offset: int = 0
    category_id: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = True
    stores_per_product: int = 3
    mode: Mode = "hybrid"
    brand: str | None = None  # case-insensitive exact match on the product's brand
    whole_last_word: bool = False  # q ended in a space as sent: its last word is typed whole, no prefix


@dataclass(frozen=True)
class ProductSummary:
    id: UUID
    name: str
    brand: str | None
    category_id: int | None
    gtin: str | None
    description: str | None


@dataclass(frozen=True)
class StoreHit:
    id: UUID
    name: str
    distance_m: float | None  # None in a global search (no point given)
    price: Decimal
    currency: str
    quantity: int
    delivers: bool = False  # the store's delivery radius or area holds the searcher's point


@dataclass(frozen=True)
class ProductHit:
    product: ProductSummary
    score: float
    stores: list[StoreHit]


@dataclass(frozen=True)
class SearchResult:
    results: list[ProductHit]
    total_candidates: int
    strategy: Strategy
    # False when total_candidates is the planner-side estimate (HNSW plans do not enumerate candidates).
    total_candidates_exact: bool = True
