"""`fusion.merge`'s order for the two sides of a hybrid facet set, in arrays.

A facet set fuses two sides up to PLINQY_FACET_DEPTH (1000) deep each; `merge` keys dicts and a sort by UUID
(whose hash is Python code) some ten times a candidate, ~4 ms of a hybrid facet request's CPU. Here the ids are
told apart by their keys and the scores and the order are numpy's: the same RRF sums (the same float additions, in
the same order) and the same order (exact matches first, the score, the rank on the second side (the keyword
side), on the first, the id).
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import numpy as np

from search_service.engine.fusion import RRF_K, Ranked, windows
from search_service.engine.keyindex import keys_of


def fuse_two(
    first: Ranked, second: Ranked, depth: int, k: int = RRF_K
) -> tuple[list[UUID], dict[UUID, float], np.ndarray]:
    """The `depth` best of `merge([first, second])`, their RRF scores and their keys (keyindex.py). The ids are
    told apart by their keys, sorted (a side's own keys when it has them: the in-memory vector side's), not by a
    dict of UUIDs (~1,500 setdefaults a hybrid facet set)."""
    n_first = len(first.ids)
    both = np.concatenate([keys_of(first.ids) if first.keys is None else first.keys, keys_of(second.ids)])
    by_key = np.lexsort((both[:, 1], both[:, 0]))
    sorted_keys = both[by_key]
    new = np.ones(len(both), dtype=bool)
    new[1:] = (sorted_keys[1:] != sorted_keys[:-1]).any(axis=1)
    at = np.empty(len(both), dtype=np.int64)  # each entry's distinct id
    at[by_key] = np.cumsum(new) - 1
    entry = by_key[new]  # an entry of each distinct id, in key order
    on_first, on_second = at[:n_first], at[n_first:]
    scores = np.zeros(len(entry), dtype=np.float64)
    scores[on_first] += 1.0 / (k + np.arange(1, len(on_first) + 1, dtype=np.float64))
    scores[on_second] += 1.0 / (k + np.arange(1, len(on_second) + 1, dtype=np.float64))
    first_rank = np.full(len(entry), n_first + 1, dtype=np.int64)
    first_rank[on_first] = np.arange(1, n_first + 1)
    second_rank = np.full(len(entry), len(on_second) + 1, dtype=np.int64)
    second_rank[on_second] = np.arange(1, len(on_second) + 1)
    inexact = np.ones(len(entry), dtype=bool)
    exact = first.exact_ids | second.exact_ids
    if exact:  # found among the distinct keys (a few dozen ids; hashing every id, a Python call each, cost more)
        distinct = sorted_keys[new]
        wanted = keys_of(list(exact))
        starts = np.searchsorted(distinct[:, 0], wanted[:, 0], "left")
        stops = np.searchsorted(distinct[:, 0], wanted[:, 0], "right")
        for (start, stop), low in zip(zip(starts.tolist(), stops.tolist(), strict=True), wanted[:, 1], strict=True):
            inexact[start + np.flatnonzero(distinct[start:stop, 1] == low)] = False
    # distinct ids are numbered in key order, and lexsort is stable: ties fall to the id (a UUID's order)
    order = np.lexsort((first_rank, second_rank, -scores, inexact))[:depth]
    ids = [first.ids[i] if i < n_first else second.ids[i - n_first] for i in entry[order].tolist()]
    return ids, dict(zip(ids, scores[order].tolist(), strict=True)), both[entry[order]]


def fuse_windows(
    first: Ranked, second: Ranked, depth: int, first_window: int, k: int = RRF_K
) -> tuple[list[UUID], dict[UUID, float], np.ndarray]:
    """`fuse_two` window by window (`fusion.windows`), as `merge` fuses a hybrid ranking: each window's fusion adds
    the products it brings after those of the windows before, so that every page is a slice of one order."""
    ids: list[UUID] = []
    scores: dict[UUID, float] = {}
    keys: list[np.ndarray] = []
    for window in windows(min(depth, max(len(first.ids), len(second.ids))), first_window):  # sides one deeper: ux
        level_ids, level_scores, level_keys = fuse_two(_head(first, window), _head(second, window), 2 * window, k)
        fresh = [i for i, pid in enumerate(level_ids) if pid not in scores]
        ids += [level_ids[i] for i in fresh]
        scores.update((level_ids[i], level_scores[level_ids[i]]) for i in fresh)
        keys.append(level_keys[fresh])
    return ids[:depth], scores, np.concatenate(keys)[:depth]


def _head(side: Ranked, n: int) -> Ranked:
    return replace(side, ids=side.ids[:n], keys=None if side.keys is None else side.keys[:n])
