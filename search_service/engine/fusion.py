"""The one ranked shape every side of every mode returns, and the one merge that orders a page from them.

Scores: one side keeps its own (``semantic``: cosine similarity, 1 - cosine distance; ``keyword``: the text
rank, ts_rank_cd, or the trigram word similarity of a typo match, plus 1.0 for an exact name/brand/GTIN
match); two sides (``hybrid``) are fused with Reciprocal Rank Fusion, Σ 1/(60 + rank), at most 2/61.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np

RRF_K = 60


@dataclass(frozen=True)
class Ranked:
    """One side's ranked candidates, best first."""

    ids: list[UUID]
    scores: dict[UUID, float]  # higher is better; ordering `ids` by it (ties by position) keeps their order
    total: int  # candidates that qualified (or the estimate, when `total_exact` is False)
    total_exact: bool
    strategy: str
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
    strategy: str  # the first side's (the vector plan's, in hybrid mode)


def rrf_fuse(lists: Sequence[Sequence[UUID]], k: int = RRF_K) -> dict[UUID, float]:
    """Reciprocal Rank Fusion: score(d) = Σ over lists containing d of 1 / (k + rank), rank from 1."""
    scores: dict[UUID, float] = {}
    for ranked in lists:
        for rank, pid in enumerate(ranked, start=1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return scores


def merge(sides: Sequence[Ranked], k: int = RRF_K) -> Merged:
    """Exact matches first, then the score (a lone side's own, else RRF), then the rank on the first side,
    then the id."""
    if not sides:
        raise ValueError("merge needs at least one ranked side")
    ranks = [{pid: rank for rank, pid in enumerate(side.ids, start=1)} for side in sides]
    scores = dict(sides[0].scores) if len(sides) == 1 else rrf_fuse([side.ids for side in sides], k)
    exact = frozenset().union(*(side.exact_ids for side in sides))
    first, last = ranks[0], len(ranks[0]) + 1
    # ties by id: a UUID orders as its text does (fixed-width hex), without formatting one per candidate
    order = sorted(scores, key=lambda pid: (pid not in exact, -scores[pid], first.get(pid, last), pid))
    candidates = [Candidate(pid, scores[pid], tuple(r.get(pid) for r in ranks)) for pid in order]
    total = max(side.total for side in sides)
    return Merged(candidates, total, sides[0].total_exact, sides[0].strategy)
