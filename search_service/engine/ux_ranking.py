"""The ranked result set of a search with the shopper-facing extras (ux.py): the sides joined, `depth` deep.

A price or distance sort keeps the relevant products only (SortFloor; docs/search-features.md, "The set a sort by
price or distance orders"). Sorted by relevance, a semantic or hybrid set's weak tail comes last and does no harm;
sorted by price or distance it came first (`shampoo` by price opened on yoghurt, and a query of nonsense listed
1,000 products).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from uuid import UUID

import numpy as np

from search_service.engine import search as engine
from search_service.engine.facet_chosen import Settle
from search_service.engine.facet_fusion import fuse_windows
from search_service.engine.fusion import Ranked, merge
from search_service.engine.results import Strategy


@dataclass
class RankedSet:
    ids: list[UUID]
    scores: dict[UUID, float]
    strategy: Strategy
    candidates: int
    vector: Ranked | None = None  # the vector side (scores: cosine similarity)
    keyword: Ranked | None = None  # the keyword side (scores: text rank, + 1 for an exact match)
    keys: np.ndarray | None = None  # `ids` as keyindex keys, when the ranking had them (the facet set needs them)
    more: bool = False  # more products matched than `ids` holds (a whole set's sides are ranked one deeper)
    settle: Settle | None = None  # the vector side is the copy's: re-scores a window of it (facet_chosen.py)
    matches_none: bool = False  # a chosen store out of scope or an unknown category: ranked for the facets only
    every: tuple[list[UUID], np.ndarray | None] | None = None  # a sort's floor: the sides' whole fusion (joined)

    def cut(self, depth: int, exclude_id: UUID | None) -> None:
        """Without the product asked about (similar: ranked one deeper for it, it may be there), `depth` deep."""
        if exclude_id is not None:
            self.ids, self.keys = [i for i in self.ids if i != exclude_id], None
            self.more, self.ids = self.more or len(self.ids) > depth, self.ids[:depth]


@dataclass(frozen=True)
class SortFloor:
    """A sort by price or distance keeps the vector side's products at least `ratio` as similar to the query as
    the best in scope (`anchor`; None: the vector side's own best), none if that best is below `minimum`; and the
    keyword side's exact matches, its matches of the best tier present (the words as typed, or the last as a
    prefix: `whole mi` keeps Whole Milk), and those at least `words_ratio` as similar (a typo's match alone is no
    evidence: `watch` by price listed ham and rum, through `catch` and `batch`)."""

    ratio: float
    minimum: float
    words_ratio: float
    anchor: float | None = None
    exclude_id: UUID | None = None  # similar: the product asked about, which the side may hold
    scores: dict[UUID, float] = field(default_factory=dict)  # PostgreSQL's, near the floors (ux_sides.py)

    def best(self, side: Ranked | None) -> float | None:
        """The similarity of the side's best product (not the one asked about)."""
        best = None if side is None else next((pid for pid in side.ids if pid != self.exclude_id), None)
        return None if side is None or best is None else side.scores.get(best)

    def cut(self, vector: Ranked, words: Ranked | None, depth: int) -> tuple[Ranked, Ranked | None]:
        """The sides without the products under their floors: which products the set keeps (joined fuses the
        whole sides, so that a faceted set and a filtered search fuse the same ranks). A word match the vector
        side does not hold is as similar as its last (`depth` deep: it holds every product of the scope with a
        vector otherwise, and one without, not embedded yet, is kept)."""
        anchor = self.anchor if self.anchor is not None else self.best(vector)
        floor = self.ratio * anchor if anchor is not None and anchor >= self.minimum else math.inf

        def similarity(pid: UUID, default: float) -> float:
            return self.scores.get(pid, vector.scores.get(pid, default))

        kept = _kept(vector, lambda pid: similarity(pid, -math.inf) >= floor)
        if words is None or anchor is None:
            return kept, words
        least = similarity(vector.ids[-1], math.inf) if len(vector.ids) >= depth else math.inf
        words_floor, tiers = self.words_ratio * anchor, _tiers(words)
        top = max(tiers.values(), default=0)
        best = top if top >= 1 else math.inf  # typo matches alone are no evidence

        def relevant(pid: UUID) -> bool:
            return pid in words.exact_ids or tiers[pid] >= best or similarity(pid, least) >= words_floor

        return kept, _kept(words, relevant)


def _tiers(words: Ranked) -> dict[UUID, int]:
    """Each word match's tier (fusion.py: 2 the words as typed, 1 the last word as a prefix only, 0 a typo only)."""
    return {pid: int(words.scores.get(pid, 0.0) - (pid in words.exact_ids)) for pid in words.ids}


def _kept(side: Ranked, keep: Callable[[UUID], bool]) -> Ranked:
    rows = [i for i, pid in enumerate(side.ids) if keep(pid)]
    if len(rows) == len(side.ids):
        return side
    ids = [side.ids[i] for i in rows]
    keys = None if side.keys is None else side.keys[rows]
    return replace(side, ids=ids, keys=keys, exact_ids=side.exact_ids & frozenset(ids))


def joined(
    vector_side: Ranked | None,
    keyword_side: Ranked | None,
    depth: int,
    config: engine.EngineConfig,
    floor: SortFloor | None = None,
) -> RankedSet:
    """The sides as one ranking, `depth` deep; `more`: the sides (ranked deeper) hold more products than that.
    `floor`: a sort by price or distance's, which keeps the products it keeps (SortFloor.cut) in the whole sides'
    fusion: their order, scores and explained ranks are relevance's (fused after the cut, a hit's keyword rank
    and score changed with the sort), and `every` holds that fusion for the chosen values' (facet_chosen.py)."""
    if vector_side is None or floor is None:
        return _joined(vector_side, keyword_side, depth, config)
    cut_vector, cut_words = floor.cut(vector_side, keyword_side, depth)
    kept = {*cut_vector.ids, *(cut_words.ids if cut_words is not None else ())}
    whole = _joined(vector_side, keyword_side, len(vector_side.ids) + len(keyword_side.ids if keyword_side else ()),
                    config)  # fmt: skip
    at = [i for i, pid in enumerate(whole.ids) if pid in kept][:depth]
    keys = None if whole.keys is None else whole.keys[at]
    every = (whole.ids, whole.keys)
    return replace(whole, ids=[whole.ids[i] for i in at], keys=keys, more=len(kept) > depth, every=every)


def _joined(
    vector_side: Ranked | None, keyword_side: Ranked | None, depth: int, config: engine.EngineConfig
) -> RankedSet:
    if keyword_side is None and vector_side is not None:  # one side, best first: merge would keep its order
        keys = None if vector_side.keys is None else vector_side.keys[:depth]
        return RankedSet(vector_side.ids[:depth], vector_side.scores, vector_side.strategy, vector_side.total,
                        vector_side, keys=keys, more=len(vector_side.ids) > depth)  # fmt: skip
    if keyword_side is not None and vector_side is not None:  # merge's order, in arrays (facet_fusion.py)
        ids, scores, keys = fuse_windows(vector_side, keyword_side, depth, config.rrf_depth)
        total, more = max(vector_side.total, keyword_side.total), len({*vector_side.ids, *keyword_side.ids}) > depth
        return RankedSet(ids, scores, vector_side.strategy, total, vector_side, keyword_side, keys, more)
    merged = merge([side for side in (vector_side, keyword_side) if side is not None], first_window=config.rrf_depth)
    ids = [c.product_id for c in merged.candidates][:depth]
    scores = {c.product_id: c.score for c in merged.candidates}
    more = len(merged.candidates) > depth
    return RankedSet(ids, scores, merged.strategy, merged.total, vector_side, keyword_side, more=more)
