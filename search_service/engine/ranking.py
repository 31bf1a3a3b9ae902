"""One query's ranking of the vector copy's rows (`vectors.py`): exact order from upper bounds."""

from __future__ import annotations

import numpy as np

EXACT_ORDER_MAX = 1024  # past this depth the ranking hands out rows by bound: no float32 re-scoring
# A unit vector rounded to float16 moves by at most 2^-11 of its norm (normal range: relative rounding 2^-11
# per element; subnormals, below 2^-14, by at most 2^-25 each: sqrt(384) x 2^-25 < 1e-6), so a unit query's
# similarity to it moves by at most this much (Cauchy-Schwarz).
FLOAT16_ERROR = 2.0**-11 + 1e-6


def score_error(matrix: np.ndarray) -> float:
    """How far a unit query's similarity to a row of `matrix` may be from its similarity to the float32 row."""
    return FLOAT16_ERROR if matrix.dtype == np.float16 else 0.0


def highest(bounds: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """Positions of the m highest `bounds` (in no order; 0 < m < len(bounds)) and the highest bound left out,
    as an argpartition of all of them gives, found by partitioning only the bounds at or above a threshold read
    from a sample: one pass over 100k bounds and a small partition take ~0.07 ms, the full one ~0.5 ms."""
    n = len(bounds)
    sample = bounds[:: max(1, n // 4096)]
    k = len(sample)
    rank = min(k - 1, 2 * (m + 1) * k // n + 16)  # twice the share wanted, and a margin: m+1 reach it, mostly
    threshold = np.partition(sample, k - 1 - rank)[k - 1 - rank]
    candidates = np.flatnonzero(bounds >= threshold)
    if len(candidates) <= m:  # the sample misled: every bound left out must be seen
        candidates = np.arange(n)
    # every bound not among the candidates is below each of theirs, so the (m+1)-th is the highest left out
    part = np.argpartition(-bounds[candidates], m)
    return candidates[part[:m]], float(bounds[candidates[part[m]]])


def _kth_highest(values: np.ndarray, k: int) -> float:
    return float(np.partition(values, len(values) - k)[len(values) - k])


class Ranking:
    """One query's held rows, handed out best first, each hand-out with a similarity no row left out exceeds.

    `bounds[i]` ≥ the similarity of row i (int8 bounds, or the float32 similarities themselves). Up to
    EXACT_ORDER_MAX rows are handed out in exact float32 order: the m rows of highest bound are re-scored, then
    every row whose bound reaches the stop-th similarity found among them (no other row can beat it); the rows
    scoring at least that are certified, in order. Deeper, rows go out by bound and the threshold is the highest
    bound left out, which needs no re-scoring (a 10k-row slice would otherwise re-score 20k rows); the search
    checks a few more ids for it.

    A float16 matrix (a shared generation's, `vector_files.py`) re-scores within `score_error` of float32:
    the order handed out is float16's, and each threshold is raised by the error, so it still bounds every
    row left out (the search checks the true distances in PostgreSQL).
    """

    def __init__(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        bounds: np.ndarray,
        rows: np.ndarray | None = None,
        *,
        whole_matrix: bool = False,
    ) -> None:
        """`rows`: when the ranking covers a subset, the rows of the copy that `bounds` holds, and `matrix`
        too unless `whole_matrix` (then `matrix` is the whole copy); `top()` hands out rows of the copy."""
        self._matrix = np.asarray(matrix)  # a memmap's rows as a plain array: np.memmap's own indexing costs ~10 µs
        self._query = query
        self._bounds = bounds
        self._subset = rows
        self._matrix_rows = rows if whole_matrix else None  # local position -> matrix row; None: the same
        self._rows = np.zeros(0, dtype=np.int64)  # the certified exact prefix (local positions)
        self._scores = np.zeros(0, dtype=np.float32)
        self._error = score_error(matrix)
        self.rescored = 0  # rows re-scored in float32 so far (the cost of the bounds' looseness)
        self._known = np.zeros(0, dtype=np.int64)  # local positions re-scored so far, sorted, and their scores
        self._known_scores = np.zeros(0, dtype=np.result_type(matrix.dtype, query.dtype))

    def __len__(self) -> int:
        return len(self._bounds)

    def restricted(self, rows: np.ndarray) -> Ranking:
        """This ranking (of the whole copy) restricted to `rows` of the copy: their bounds, no re-scoring."""
        if self._subset is not None:
            raise ValueError("only a ranking of the whole copy can be restricted")
        return Ranking(self._matrix, self._query, self._bounds[rows], rows, whole_matrix=True)

    def top(self, stop: int) -> tuple[np.ndarray, float]:
        """(rows, threshold): the min(stop, n) best rows (best first up to EXACT_ORDER_MAX, unordered past
        it) and a similarity that no other row of the ranking exceeds (-inf once every row is handed out)."""
        local, threshold = self._top(stop)
        return (local if self._subset is None else self._subset[local]), threshold

    def best(self, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding the `stop` best at any depth, best first, with their re-scored similarities: every row
        scoring at least the highest bound left unscored (facet sets take 1,000 of them)."""
        if len(self._rows) < min(stop, len(self)):
            self._certify(min(stop, len(self)))
        return (self._rows if self._subset is None else self._subset[self._rows]), self._scores

    def _top(self, stop: int) -> tuple[np.ndarray, float]:
        n = len(self._bounds)
        if stop >= n:
            return np.argsort(-self._bounds, kind="stable"), -np.inf
        if stop > EXACT_ORDER_MAX:
            return highest(self._bounds, stop)
        if len(self._rows) < stop:
            self._certify(stop)
        return self._rows[:stop], float(self._scores[stop - 1]) + self._error

    def _certify(self, stop: int) -> None:
        """Re-score the m rows of highest bound, then the rows whose bound still reaches the stop-th similarity
        found, best bound first, in doubling slices, that similarity rising as they go; certify the rows scoring at
        least the highest bound left unscored (no fewer than `stop`). Two passes over the bounds whatever their
        looseness (growing m x4 until enough rows were certified took 3-4 passes, re-scoring each round's rows
        again)."""
        n = len(self._bounds)
        m = max(2 * stop, stop + 64)
        if m >= n:
            candidates, limit = np.arange(n), -np.inf
            scores = self._rescore(candidates)
        else:
            candidates, left_out = highest(self._bounds, m)
            scores = self._rescore(candidates)
            floor = _kth_highest(scores, stop)
            limit = min(left_out, floor)  # no row left unscored has a higher bound (rows in reach aside)
            reach = self._in_reach(candidates, floor, left_out)
            reach = reach[np.argsort(-self._bounds[reach], kind="stable")]
            start, size = 0, m
            while start < len(reach) and self._bounds[reach[start]] >= floor:
                chunk = reach[start : start + size]  # doubling: a few rounds even when most of `reach` is needed
                start, size = start + len(chunk), 2 * size
                candidates = np.concatenate([candidates, chunk])
                scores = np.concatenate([scores, self._rescore(chunk)])
                floor = _kth_highest(scores, stop)
            if start < len(reach):
                limit = float(self._bounds[reach[start]])
        certified = scores >= limit  # every row scoring at least the highest bound left unscored: ≥ stop rows
        rows, scores = candidates[certified], scores[certified]
        order = np.argsort(-scores, kind="stable")
        self._rows, self._scores = rows[order], scores[order]

    def _in_reach(self, scored: np.ndarray, floor: float, left_out: float) -> np.ndarray:
        """The rows not in `scored` whose bound reaches `floor` (every other row is below it, and it only rises);
        none when the highest bound left out is below it. A mask, not np.isin's sort (~0.3 ms at 100k rows)."""
        if left_out < floor:
            return np.zeros(0, dtype=np.int64)
        inside = self._bounds >= floor
        inside[scored] = False
        return np.flatnonzero(inside)

    def _rescore(self, local: np.ndarray) -> np.ndarray:
        """The scores of rows `local`, each row re-scored once per ranking (a deeper `top()` asks for most of them
        again)."""
        scores = np.empty(len(local), dtype=np.result_type(self._matrix.dtype, self._query.dtype))
        at = np.searchsorted(self._known, local)
        known = at < len(self._known)
        known[known] = self._known[at[known]] == local[known]
        scores[known] = self._known_scores[at[known]]
        new = local[~known]
        if len(new):
            in_matrix = new if self._matrix_rows is None else self._matrix_rows[new]
            scores[~known] = self._matrix[in_matrix] @ self._query
            self.rescored += len(new)
            merged = np.concatenate([self._known, new])
            order = np.argsort(merged, kind="stable")
            self._known = merged[order]
            self._known_scores = np.concatenate([self._known_scores, scores[~known]])[order]
        return scores
