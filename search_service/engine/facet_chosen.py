"""A hybrid facet set's order among the products its chosen facet values keep: search's order under those filters.

With facets the set is ranked without the facet filters (category, brand, price), so that each facet can count the
values not chosen, and `facet_set` filters it in the set's order. One side's order survives a filter; a fusion's
does not: RRF sums each product's ranks among every product, where search, filtering as it ranks, sums its ranks
among those that pass (`milk&category_id=23` put a product 4th with facets and 7th without, and page 2 repeated
it). So the products that pass are fused again from each side restricted to them, window by window as search fuses
them: the page, in the relevance order, is a slice of that order, and the scores are search's. The counts do not
depend on the order. A vector side from the API's copy (float16 rows) has the page's window among the products that
pass re-scored by PostgreSQL first (`facet_vectors.settle_window`), as search's is: the set's own window is not the
page's once a value is chosen, and the copy's order and scores showed (one side alone too: semantic search).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import numpy as np

from search_service.engine.facet_fusion import fuse_windows
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import faceted_page
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import FacetedPage, FacetFilters
from search_service.engine.fusion import Ranked, fusion_depth
from search_service.engine.store_locator import StoreLocator

# re-scores a window of a vector side from the copy (facet_vectors.settle_window): the side, the window
Settle = Callable[[Ranked, int], Awaitable[Ranked]]


@dataclass(frozen=True)
class ChosenSides:
    """The sides that order the products the chosen values keep (vector, keyword: either may be absent)."""

    vector: Ranked | None
    keyword: Ranked | None
    settle: Settle | None = None  # the vector side is the copy's: its page's window is re-scored


def left_to_facet_set(filters: FacetFilters) -> bool:
    """Whether a chosen value filters the set after its ranking: a category, brand or price range (a chosen store
    is the ranking's scope, and its page a slice of the set)."""
    chosen = bool(filters.category_ids) or filters.brand is not None
    return chosen or filters.min_price is not None or filters.max_price is not None


def refused_sides(
    facets: Sequence[str],
    filters: FacetFilters,
    vector: Ranked | None,
    keyword: Ranked | None,
    settle: Settle | None = None,
    explain: bool = False,
) -> ChosenSides | None:
    """The sides to order again when the set's order can differ from search's among the products the chosen values
    keep: two sides (their fusion), or a vector side from the copy with `settle` (its page's window); with `explain`
    a keyword side alone too, for its ranks among those products (the set's are among every match)."""
    if not (facets and left_to_facet_set(filters)) or (vector is None and keyword is None):
        return None
    if vector is None and not explain:
        return None  # keyword mode: one side, whose order survives a filter
    if keyword is None and settle is None:
        return None  # a vector side alone that the engine's plans ranked (PostgreSQL's scores): so does its order
    return ChosenSides(vector, keyword, settle)


def _kept(side: Ranked, kept: set[UUID]) -> Ranked:
    at = [i for i, pid in enumerate(side.ids) if pid in kept]
    return replace(
        side,
        ids=[side.ids[i] for i in at],
        scores={side.ids[i]: side.scores[side.ids[i]] for i in at if side.ids[i] in side.scores},
        exact_ids=side.exact_ids & kept,
        keys=None if side.keys is None else side.keys[at],
    )


async def _refused(
    passing: list[UUID], sides: ChosenSides, first_window: int, window: int
) -> tuple[list[UUID], dict[UUID, float], np.ndarray | None, ChosenSides]:
    """`passing` in the order of `sides` among them alone (two: fused, as search fuses them), their scores (RRF
    sums, or the one side's), keys, and the sides restricted to them; `window`: the vector side's to settle."""
    kept = set(passing)
    vector = None if sides.vector is None else _kept(sides.vector, kept)
    keyword = None if sides.keyword is None else _kept(sides.keyword, kept)
    if vector is not None and sides.settle is not None and window and passing:
        vector = await sides.settle(vector, window)
    restricted = ChosenSides(vector, keyword)
    if vector is None or keyword is None:
        one = vector or keyword
        assert one is not None
        return one.ids, one.scores, one.keys, restricted
    if not passing:
        return [], {}, None, restricted
    return (*fuse_windows(vector, keyword, len(kept), first_window), restricted)


def _among(ids: list[UUID], keys: np.ndarray | None, kept: set[UUID]) -> tuple[list[UUID], np.ndarray | None]:
    at = [i for i, pid in enumerate(ids) if pid in kept]
    return [ids[i] for i in at], None if keys is None else keys[at]


async def chosen_page(
    conn: Any,
    labels: ProductLabels | None,
    ranked: tuple[list[UUID], np.ndarray | None],
    stock: StockBuckets | None,
    places: StoreLocator | None,
    sides: ChosenSides | None,
    first_window: int,
    *,
    every: tuple[list[UUID], np.ndarray | None] | None = None,
    **kw: Any,
) -> tuple[FacetedPage, dict[UUID, float], ChosenSides | None]:
    """`faceted_page` over the set `ranked` (ids, keys), with `sides` (`refused_sides`) in search's order under the
    chosen values, their scores (search's) and the sides restricted to the products that pass. By relevance the
    whole filtered set is read in one call and its page cut from that order; another sort orders the set with the
    fused products first (a tie of price or distance keeps search's order), which takes a call more to learn which
    products pass, among `every` (a sort's floor: the whole sides' fusion, ux_ranking.joined) as search ranks them."""
    ids, keys = ranked
    if sides is None:
        return await faceted_page(conn, labels, ids, stock, keys, places, **kw), {}, None
    offset, limit = kw.pop("offset"), kw.pop("limit")
    if kw["sort"] == "relevance":
        whole = await faceted_page(conn, labels, ids, stock, keys, places, **kw, offset=0, limit=max(len(ids), 1))
        window = fusion_depth(offset + limit, first_window)  # the page's, among the products that pass
        fused, scores, _, restricted = await _refused(whole.ids, sides, first_window, window)
        page = fused[offset : offset + limit]
        prices, distances = whole.best_price, whole.nearest_m
        return (
            replace(
                whole,
                ids=page,
                best_price={i: prices[i] for i in page if i in prices},
                nearest_m={i: distances[i] for i in page if i in distances},
            ),
            scores,
            restricted,
        )
    ranks, ranks_keys = every or ranked
    passing = await faceted_page(
        conn, labels, ranks, stock, ranks_keys, places, **(kw | {"facets": (), "sort": "relevance"}), offset=0,
        limit=max(len(ranks), 1),
    )  # fmt: skip
    fused, scores, fused_keys, restricted = await _refused(passing.ids, sides, first_window, 0)
    if every is not None:  # the set's products among them
        fused, fused_keys = _among(fused, fused_keys, set(ids))
    rest = [i for i, pid in enumerate(ids) if pid not in scores]
    order = fused + [ids[i] for i in rest]
    order_keys = None if keys is None or fused_keys is None else np.concatenate([fused_keys, keys[rest]])
    ordered = await faceted_page(conn, labels, order, stock, order_keys, places, **kw, offset=offset, limit=limit)
    return ordered, scores, restricted
