"""`fusion.merge`'s order for the two sides of a hybrid facet set, in arrays.

A facet set fuses two sides up to PLINQY_FACET_DEPTH (1000) deep each; `merge` keys dicts and a sort by UUID
(whose hash is Python code) some ten times a candidate, ~4 ms of a hybrid facet request's CPU. Here each id is
hashed once (by its int) and the scores and the order are numpy's: the same RRF sums (the same float additions, in
the same order) and the same order (exact matches first, the score, the rank on the first side, the id).
"""

from __future__ import annotations

from uuid import UUID

import numpy as np

from search_service.engine.fusion import RRF_K, Ranked
from search_service.engine.keyindex import keys_of


def fuse_two(
    first: Ranked, second: Ranked, depth: int, k: int = RRF_K
) -> tuple[list[UUID], dict[UUID, float], np.ndarray]:
    """The `depth` best of `merge([first, second])`, their RRF scores and their keys (keyindex.py)."""
    index: dict[int, int] = {}
    ids: list[UUID] = []

    def positions(side: Ranked) -> np.ndarray:
        out = np.empty(len(side.ids), dtype=np.int64)
        for i, pid in enumerate(side.ids):
            at = index.setdefault(pid.int, len(ids))
            if at == len(ids):
                ids.append(pid)
            out[i] = at
        return out

    on_first, on_second = positions(first), positions(second)
    scores = np.zeros(len(ids), dtype=np.float64)
    scores[on_first] += 1.0 / (k + np.arange(1, len(on_first) + 1, dtype=np.float64))
    scores[on_second] += 1.0 / (k + np.arange(1, len(on_second) + 1, dtype=np.float64))
    first_rank = np.full(len(ids), len(on_first) + 1, dtype=np.int64)
    first_rank[on_first] = np.arange(1, len(on_first) + 1)
    exact = first.exact_ids | second.exact_ids
    inexact = np.array([pid not in exact for pid in ids], dtype=bool) if exact else np.ones(len(ids), dtype=bool)
    key = keys_of(ids)  # big-endian halves: a UUID's order
    order = np.lexsort((key[:, 1], key[:, 0], first_rank, -scores, inexact))[:depth]
    ranked = [ids[i] for i in order.tolist()]
    return ranked, dict(zip(ranked, scores[order].tolist(), strict=True)), key[order]
