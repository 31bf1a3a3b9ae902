"""`facet_fusion.fuse_two` gives `fusion.merge`'s order and RRF scores for two sides (overlapping, with exact
matches, ties of score, with and without the first side's keys), and the keys of the ids it returns."""

from __future__ import annotations

import random
import uuid

import pytest

from search_service.engine.facet_fusion import fuse_two
from search_service.engine.fusion import Ranked, merge
from search_service.engine.keyindex import keys_of


def _side(ids: list[uuid.UUID], exact: set[uuid.UUID], keys: bool) -> Ranked:
    scores = {pid: 1.0 / (i + 1) for i, pid in enumerate(ids)}
    return Ranked(ids, scores, len(ids), True, "x", frozenset(exact & set(ids)), keys_of(ids) if keys else None)


@pytest.mark.parametrize("seed", range(6))
def test_fuse_two_is_merges_order(seed: int) -> None:
    rng = random.Random(seed)
    pool = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(600)]
    pool += [uuid.UUID(int=(pool[0].int >> 64 << 64) | i) for i in range(5)]  # ids sharing their first half
    first = rng.sample(pool, rng.randint(0, 400))
    second = rng.sample(pool, rng.randint(0, 300))  # overlaps the first side in about half its ids
    exact = set(rng.sample(pool, 20)) if seed % 2 else set()
    a, b = _side(first, exact, keys=seed % 3 == 0), _side(second, exact, keys=False)
    depth = rng.choice([10, 200, 1000])
    ids, scores, keys = fuse_two(a, b, depth)
    merged = merge([a, b]).candidates[:depth]
    assert ids == [c.product_id for c in merged]
    assert [scores[i] for i in ids] == [c.score for c in merged]  # the same float additions
    assert keys.tolist() == keys_of(ids).tolist()
