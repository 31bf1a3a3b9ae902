"""Response parts of the search features: facets, explain, suggestions (msgspec structs: also the OpenAPI schema)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from search_service.engine.results import Strategy
from search_service.engine.suggest import Kind


class CategoryFacet(msgspec.Struct):
    id: int
    name: str
    parent_id: int | None
    count: int


class BrandFacet(msgspec.Struct):
    value: str
    count: int


class PriceFacet(msgspec.Struct):
    min: float
    max: float | None  # None: no upper bound
    count: int


class StoreFacet(msgspec.Struct):
    id: UUID
    name: str
    count: int


class FacetsOut(msgspec.Struct, omit_defaults=True):
    """Only the facets asked for are present."""

    category: list[CategoryFacet] | None = None
    brand: list[BrandFacet] | None = None
    price: list[PriceFacet] | None = None
    store: list[StoreFacet] | None = None


class HitExplainOut(msgspec.Struct):
    vector_similarity: float | None
    keyword_rank: int | None
    keyword_score: float | None
    typo_corrections: list[str]
    exact_match: bool


class ExplainOut(msgspec.Struct):
    plan: Strategy
    candidates: int
    stage_ms: dict[str, float]


class SuggestionOut(msgspec.Struct):
    kind: Kind
    text: str
    ref: str | None  # product id, brand, category id; null for a query completion


class SuggestResponse(msgspec.Struct):
    suggestions: list[SuggestionOut]
    took_ms: float
