"""The one ranked shape every side of every mode returns, and the one merge that orders a page from them.

Scores: one side keeps its own (``semantic``: cosine similarity, 1 - cosine distance; ``keyword``: the match's
tier and its rank in it, 2-3 the words as typed, 1-2 the last word as a prefix only, 0-0.999 a typo's trigram
similarity (search.sql's keyword_scored), plus 1.0 for an exact name/brand/GTIN match); two sides (``hybrid``: the
vector side first, the keyword side last) are fused with Reciprocal Rank Fusion, Σ 1/(60 + rank), at most 2/61.
Exact matches lead; a tie of RRF goes to the keyword side (the last): a product at keyword rank n before one at
vector rank n, since a typed word is stronger evidence than a neighbour in meaning (broken by the vector side,
`gu10` alternated a smartphone, vector rank 1, with the GU10 bulbs from #1).

Pages of one order: RRF over the sides' top w changes with w (a product 40th on both sides outranks one first on
one side only once both lists reach 40), so fusing as deep as each page needs made page 2 repeat and skip page 1's
products. A hybrid ranking is fused in fixed windows instead (`windows`): the first window's fusion orders the
first ranks, each larger window's adds the products it brings after them, and a side ranks as deep as the window
that holds the page (`fusion_depth`). Each side's order is the same at every depth, so every page is a slice of
one order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np

from search_service.engine.results import Strategy

RRF_K = 60
FUSION_WINDOWS = (100, 300, 1000, 1100)  # the windows after the first (EngineConfig.rrf_depth); 1100: offset + limit


def fusion_depth(top_n: int, first: int) -> int:
    """How deep each side of a hybrid ranking goes for a page ending at rank `top_n`: the window that holds it."""
    return next((w for w in (first, *FUSION_WINDOWS) if w >= top_n), top_n)


def windows(depth: int, first: int) -> list[int]:
    """The windows whose fusions, each after the one before, order a hybrid ranking whose sides are `depth` deep."""
    return [w for w in (first, *FUSION_WINDOWS) if w < depth] + [depth]


@dataclass(frozen=True)
class Ranked:
    """One side's ranked candidates, best first."""

    ids: list[UUID]
    scores: dict[UUID, float]  # higher is better; ordering `ids` by it (ties by position) keeps their order
    total: int  # candidates that qualified (or the estimate, when `total_exact` is False)
    total_exact: bool
    strategy: Strategy
    exact_ids: frozenset[UUID] = frozenset()  # exact name/brand/GTIN matches: they sort first
    # `ids` as keyindex keys ((k, 2) uint64) when the side had them at hand (the facet sets' in-memory ranking)
    keys: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Candidate:
    product_id: UUID
    score: float
    ranks: tuple[int | None, ...]  # the rank on each side (from 1); None: not on that side


@dataclass(frozen=True)
class Merged:
    candidates: list[Candidate]  # best first
    total: int
    total_exact: bool
    strategy: Strategy  # the first side's (the vector plan's, in hybrid mode)


def rrf_fuse(lists: Sequence[Sequence[UUID]], k: int = RRF_K) -> dict[UUID, float]:
    """Reciprocal Rank Fusion: score(d) = Σ over lists containing d of 1 / (k + rank), rank from 1."""
    scores: dict[UUID, float] = {}
    for ranked in lists:
        for rank, pid in enumerate(ranked, start=1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return scores


def merge(sides: Sequence[Ranked], k: int = RRF_K, first_window: int | None = None) -> Merged:
    """Exact matches first, then the score (a lone side's own, else RRF), then the rank on the last side (the
    keyword side in hybrid), then on the first, then the id. Two sides with `first_window` are fused window by
    window (`windows`)."""
    if not sides:
        raise ValueError("merge needs at least one ranked side")
    ranks = [{pid: rank for rank, pid in enumerate(side.ids, start=1)} for side in sides]
    exact = frozenset().union(*(side.exact_ids for side in sides))
    first, keyword = ranks[0], ranks[-1]
    depth = max(len(side.ids) for side in sides)
    unranked = depth + 1
    scores: dict[UUID, float] = {}
    order: list[UUID] = []
    for window in [depth] if len(sides) == 1 or first_window is None else windows(depth, first_window):
        level = dict(sides[0].scores) if len(sides) == 1 else rrf_fuse([side.ids[:window] for side in sides], k)
        fresh = [pid for pid in level if pid not in scores]
        # ties by id: a UUID orders as its text does (fixed-width hex), without formatting one per candidate
        fresh.sort(
            key=lambda pid: (pid not in exact, -level[pid], keyword.get(pid, unranked), first.get(pid, unranked), pid)
        )
        order += fresh
        scores.update((pid, level[pid]) for pid in fresh)
    candidates = [Candidate(pid, scores[pid], tuple(r.get(pid) for r in ranks)) for pid in order]
    total = max(side.total for side in sides)
    return Merged(candidates, total, sides[0].total_exact, sides[0].strategy)
