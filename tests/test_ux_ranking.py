"""The floor of a sort by price or distance (engine/ux_ranking.py SortFloor), on sides built by hand: which word
matches and which nearest neighbours it keeps. The API's tests (test_api_search_ux.py) hold it on the real model."""

from __future__ import annotations

import uuid

from search_service.engine.fusion import Ranked
from search_service.engine.ux_ranking import SortFloor

IDS = [uuid.UUID(int=i) for i in range(1, 9)]


def _side(scores: dict[uuid.UUID, float], exact: frozenset[uuid.UUID] = frozenset()) -> Ranked:
    return Ranked(list(scores), scores, len(scores), True, "exact", exact)


def test_word_matches_keep_the_exact_the_best_tier_and_the_similar_enough() -> None:
    """`watch` by price listed ham and rum (typo matches `catch`, `batch`: tier 0, similarity ~0.1) and no
    smartwatch; `whole mi` dropped Whole Milk (the last word a prefix: tier 1) for Wholewheat bread, nearer in
    meaning. A word match stays if it is exact, of the best tier present (from 1: the words as typed, or the last as
    a prefix), or at least `words_ratio` times as similar as the best (fusion.py: the score's whole part is the
    tier, + 1 for an exact match)."""
    vector = _side({IDS[0]: 0.50, IDS[1]: 0.40, IDS[2]: 0.32, IDS[3]: 0.10})
    floor = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6)
    typos = _side({IDS[3]: 0.9, IDS[2]: 0.8, IDS[4]: 0.7, IDS[5]: 2.5}, exact=frozenset({IDS[5]}))
    kept_vector, kept_words = floor.cut(vector, typos, depth=4)
    assert kept_vector.ids == [IDS[0], IDS[1]]  # 0.75 * 0.50 = 0.375
    # typos only (IDS[5] is an exact match, its tier 1.5 - 1): IDS[3] at 0.10 and IDS[4] past a full vector side
    # (at most its last, 0.10) go; IDS[2] (0.32 >= 0.30) and the exact match stay
    assert kept_words is not None and kept_words.ids == [IDS[2], IDS[5]]
    # a vector side that is not full holds every product in scope with a vector: one it lacks has none yet (not
    # embedded): its word match stays
    _, words_of_all = floor.cut(vector, typos, depth=10)
    assert words_of_all is not None and words_of_all.ids == [IDS[2], IDS[4], IDS[5]]
    # the best tier present (1: a prefix) stays whatever its meaning; a lower one needs the similarity
    prefixes = _side({IDS[6]: 1.8, IDS[3]: 1.2, IDS[4]: 0.9})
    assert floor.cut(vector, prefixes, depth=4)[1].ids == [IDS[6], IDS[3]]  # type: ignore[union-attr]
    typed = _side({IDS[6]: 2.7, IDS[7]: 2.1, IDS[3]: 1.9, IDS[2]: 0.5})
    assert floor.cut(vector, typed, depth=4)[1].ids == [IDS[6], IDS[7], IDS[2]]  # type: ignore[union-attr]


def test_a_best_under_the_minimum_keeps_no_neighbour_and_the_given_anchor_rules() -> None:
    vector = _side({IDS[0]: 0.18, IDS[1]: 0.17})
    floor = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6)
    assert floor.cut(vector, None, depth=2)[0].ids == []  # nonsense: its meaning matches nothing
    anchored = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6, anchor=0.22)  # the best without the filters
    assert anchored.cut(vector, None, depth=2)[0].ids == [IDS[0], IDS[1]]  # 0.75 * 0.22 = 0.165
    similar = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6, exclude_id=IDS[0])  # similar: not the product
    side = _side({IDS[0]: 1.0, IDS[1]: 0.6, IDS[2]: 0.4})
    assert similar.best(side) == 0.6 and similar.cut(side, None, depth=3)[0].ids == [IDS[0], IDS[1]]
