"""A hybrid facet set's order among the products its chosen facet values keep: search's order under those filters.

With facets the set is ranked without the facet filters (category, brand, price), so that each facet can count the
values not chosen, and `facet_set` filters it in the set's order. One side's order survives a filter; a fusion's
does not: RRF sums each product's ranks among every product, where search, filtering as it ranks, sums its ranks
among those that pass (`milk&category_id=23` put a product 4th with facets and 7th without, and page 2 repeated
it). So the products that pass are fused again from each side restricted to them, window by window as search fuses
them: the page, in the relevance order, is a slice of that order, and the scores are search's. The counts do not
depend on the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

import numpy as np

from search_service.engine.facet_fusion import fuse_windows
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import faceted_page
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import FacetedPage, FacetFilters
from search_service.engine.fusion import Ranked
from search_service.engine.store_locator import StoreLocator


def refused_sides(
    facets: Sequence[str], filters: FacetFilters, vector: Ranked | None, keyword: Ranked | None
) -> tuple[Ranked, Ranked] | None:
    """The sides to fuse again when the set's order can differ from search's among the products the chosen values
    keep: two sides, and a product filter the ranking left to `facet_set` (a chosen store is the ranking's scope)."""
    chosen = bool(filters.category_ids) or filters.brand is not None
    chosen = chosen or filters.min_price is not None or filters.max_price is not None
    if not (facets and chosen) or vector is None or keyword is None:
        return None
    return vector, keyword


def _kept(side: Ranked, kept: set[UUID]) -> Ranked:
    at = [i for i, pid in enumerate(side.ids) if pid in kept]
    return replace(
        side,
        ids=[side.ids[i] for i in at],
        scores={side.ids[i]: side.scores[side.ids[i]] for i in at if side.ids[i] in side.scores},
        exact_ids=side.exact_ids & kept,
        keys=None if side.keys is None else side.keys[at],
    )


def _refused(passing: list[UUID], sides: tuple[Ranked, Ranked], first_window: int) -> tuple[list[UUID], Any]:
    """`passing` in the order of `sides` (vector, keyword) fused among them alone, their RRF scores and keys."""
    if not passing:
        return [], ({}, None)
    kept = set(passing)
    fused, scores, keys = fuse_windows(_kept(sides[0], kept), _kept(sides[1], kept), len(kept), first_window)
    return fused, (scores, keys)


async def chosen_page(
    conn: Any,
    labels: ProductLabels | None,
    ranked: tuple[list[UUID], np.ndarray | None],
    stock: StockBuckets | None,
    places: StoreLocator | None,
    sides: tuple[Ranked, Ranked] | None,
    first_window: int,
    **kw: Any,
) -> tuple[FacetedPage, dict[UUID, float]]:
    """`faceted_page` over the set `ranked` (ids, keys), with `sides` (`refused_sides`) in search's order under the
    chosen values, and their scores (search's RRF sums). By relevance the whole filtered set is read in one call and
    its page cut from the fused order; another sort orders the set with the fused products first (a tie of price or
    distance keeps search's order), which takes a call more to learn which products pass."""
    ids, keys = ranked
    if sides is None:
        return await faceted_page(conn, labels, ids, stock, keys, places, **kw), {}
    offset, limit = kw.pop("offset"), kw.pop("limit")
    if kw["sort"] == "relevance":
        whole = await faceted_page(conn, labels, ids, stock, keys, places, **kw, offset=0, limit=max(len(ids), 1))
        fused, (scores, _) = _refused(whole.ids, sides, first_window)
        page = fused[offset : offset + limit]
        prices, distances = whole.best_price, whole.nearest_m
        return replace(
            whole,
            ids=page,
            best_price={i: prices[i] for i in page if i in prices},
            nearest_m={i: distances[i] for i in page if i in distances},
        ), scores
    passing = await faceted_page(
        conn, labels, ids, stock, keys, places, **(kw | {"facets": (), "sort": "relevance"}), offset=0,
        limit=max(len(ids), 1),
    )  # fmt: skip
    fused, (scores, fused_keys) = _refused(passing.ids, sides, first_window)
    rest = [i for i, pid in enumerate(ids) if pid not in scores]
    order = fused + [ids[i] for i in rest]
    order_keys = None if keys is None or fused_keys is None else np.concatenate([fused_keys, keys[rest]])
    return await faceted_page(conn, labels, order, stock, order_keys, places, **kw, offset=offset, limit=limit), scores
