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


class Ranking:
    """One query's held rows, handed out best first, each hand-out with a similarity no row left out exceeds.

    `bounds[i]` ≥ the similarity of row i (int8 bounds, or the float32 similarities themselves). Up to
    EXACT_ORDER_MAX rows are handed out in exact float32 order: re-scoring the m rows of highest bound
    certifies every one of them whose similarity is at least the highest bound left out (x4 until enough
    are). Deeper, rows go out by bound and the threshold is the highest bound left out, which needs no
    re-scoring (a 10k-row slice would otherwise re-score 20k rows); the search checks a few more ids for it.

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
        self._matrix = matrix
        self._query = query
        self._bounds = bounds
        self._subset = rows
        self._matrix_rows = rows if whole_matrix else None  # local position -> matrix row; None: the same
        self._rows = np.zeros(0, dtype=np.int64)  # the certified exact prefix (local positions)
        self._scores = np.zeros(0, dtype=np.float32)
        self._error = score_error(matrix)
        self.rescored = 0  # rows re-scored in float32 so far (the cost of the bounds' looseness)

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
        n = len(self._bounds)
        m = max(2 * stop, stop + 64)
        while True:
            if m >= n:
                candidates, limit = np.arange(n), -np.inf
            else:
                candidates, limit = highest(self._bounds, m)
            in_matrix = candidates if self._matrix_rows is None else self._matrix_rows[candidates]
            scores = self._matrix[in_matrix] @ self._query
            self.rescored += len(candidates)
            certified = scores >= limit
            if int(certified.sum()) >= stop or m >= n:
                rows, scores = candidates[certified], scores[certified]
                order = np.argsort(-scores, kind="stable")
                self._rows, self._scores = rows[order], scores[order]
                return
            m *= 4
