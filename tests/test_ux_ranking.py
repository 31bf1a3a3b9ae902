"""The floor of a sort by price or distance (engine/ux_ranking.py SortFloor), on sides built by hand: which word
matches and which nearest neighbours it keeps. The API's tests (test_api_search_ux.py) hold it on the real model."""

from __future__ import annotations

import uuid

from search_service.engine.fusion import Ranked
from search_service.engine.ux_ranking import SortFloor

IDS = [uuid.UUID(int=i) for i in range(1, 9)]


def _side(scores: dict[uuid.UUID, float], exact: frozenset[uuid.UUID] = frozenset()) -> Ranked:
    return Ranked(list(scores), scores, len(scores), True, "exact", exact)


def test_word_matches_keep_the_exact_and_the_similar_enough_only() -> None:
    """`watch` by price listed ham and rum (typo matches `catch`, `batch`: similarity ~0.1) and no smartwatch:
    a word match stays if it is an exact match or at least `words_ratio` times as similar as the best."""
    vector = _side({IDS[0]: 0.50, IDS[1]: 0.40, IDS[2]: 0.32, IDS[3]: 0.10})
    words = _side({IDS[3]: 3.0, IDS[2]: 2.0, IDS[4]: 1.0, IDS[5]: 0.5}, exact=frozenset({IDS[5]}))
    floor = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6)
    kept_vector, kept_words = floor.cut(vector, words, depth=4)
    assert kept_vector.ids == [IDS[0], IDS[1]]  # 0.75 * 0.50 = 0.375
    # IDS[3] at 0.10 and IDS[4] past a full vector side (at most its last, 0.10) go; IDS[2] (0.32 >= 0.30) and
    # the exact match IDS[5] stay
    assert kept_words is not None and kept_words.ids == [IDS[2], IDS[5]]
    # a vector side that is not full holds every product in scope with a vector: one it lacks has none yet (not
    # embedded): its word match stays
    _, words_of_all = floor.cut(vector, words, depth=10)
    assert words_of_all is not None and words_of_all.ids == [IDS[2], IDS[4], IDS[5]]


def test_a_best_under_the_minimum_keeps_no_neighbour_and_the_given_anchor_rules() -> None:
    vector = _side({IDS[0]: 0.18, IDS[1]: 0.17})
    floor = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6)
    assert floor.cut(vector, None, depth=2)[0].ids == []  # nonsense: its meaning matches nothing
    anchored = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6, anchor=0.22)  # the best without the filters
    assert anchored.cut(vector, None, depth=2)[0].ids == [IDS[0], IDS[1]]  # 0.75 * 0.22 = 0.165
    similar = SortFloor(ratio=0.75, minimum=0.2, words_ratio=0.6, exclude_id=IDS[0])  # similar: not the product
    side = _side({IDS[0]: 1.0, IDS[1]: 0.6, IDS[2]: 0.4})
    assert similar.best(side) == 0.6 and similar.cut(side, None, depth=3)[0].ids == [IDS[0], IDS[1]]
