"""The exact ranking of the in-memory copy (engine/ranking.py `Ranking.top`): CPU a search's calls, against the
certification it replaced, in the same run.

    python -m benchmarks.bench_ranking --rows 1000000 --name ranking-2026-12-03

Rows: clustered unit vectors (a catalogue's near-duplicates), their int8 bounds (`Int8Copy`), re-scored from a
float16 matrix as a shared generation's are. Queries near the rows and far from all of them (loose bounds). Each
call pattern is what a search asks of one ranking: one slice (top 40), a slice and a deeper one (60, 240), a
deepening sequence (10, 40, 160, 640). The replaced form re-scored the m rows of highest bound, m growing x4 until
enough of them scored above the highest bound left out (a pass over every bound a round, and each round's rows
re-scored again). CPU of the calling thread. Both must hand out the same rows (ties in either order) and
thresholds; medians of `--repeats` per query and pattern.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.output import measured_run, save_and_show
from search_service.engine.quantizer import Int8Copy
from search_service.engine.ranking import Ranking, highest

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 384
PATTERNS = ((40,), (60, 240), (10, 40, 160, 640))


class ReplacedRanking(Ranking):
    """The certification before this change (m x4 until enough rows are certified), for the baseline."""

    def _certify(self, stop: int) -> None:
        n = len(self._bounds)
        m = max(2 * stop, stop + 64)
        while True:
            candidates, limit = (np.arange(n), -np.inf) if m >= n else highest(self._bounds, m)
            scores = self._matrix[candidates] @ self._query
            self.rescored += len(candidates)
            certified = scores >= limit
            if int(certified.sum()) >= stop or m >= n:
                rows, scores = candidates[certified], scores[certified]
                order = np.argsort(-scores, kind="stable")
                self._rows, self._scores = rows[order], scores[order]
                return
            m *= 4


def _catalogue(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, Int8Copy]:
    centres = rng.standard_normal((max(1, rows // 2500), DIM)).astype(np.float32)
    matrix = centres[rng.integers(0, len(centres), rows)] + 0.3 * rng.standard_normal((rows, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    copy = Int8Copy(DIM)
    copy.reserve(rows + 1)
    for start in range(0, rows, 100_000):
        copy.set_rows(np.arange(start, min(rows, start + 100_000)), matrix[start : start + 100_000])
    return matrix, copy


def _cpu_ms(ranking_class: type[Ranking], args: tuple[Any, ...], pattern: tuple[int, ...]) -> tuple[float, list[Any]]:
    before = time.thread_time()  # this thread's: BLAS's idle workers would count in the process's
    ranking = ranking_class(*args)
    handed = [ranking.top(stop) for stop in pattern]
    return (time.thread_time() - before) * 1000, handed


def _same(old: tuple[np.ndarray, float], new: tuple[np.ndarray, float], scores: np.ndarray) -> bool:
    """The same rows with the same scores in the same order and the same threshold; rows of equal (float16)
    score may come in either order."""
    return (
        old[1] == new[1]
        and set(old[0].tolist()) == set(new[0].tolist())
        and np.array_equal(scores[old[0]], scores[new[0]])
    )


def measure(rows: int, queries: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    matrix, copy = _catalogue(rows, rng)
    half = matrix.astype(np.float16)
    result: dict[str, Any] = {}
    for kind, spread in (("near", 0.1), ("far", 3.0)):
        times: dict[str, dict[str, list[float]]] = {str(p): {"replaced": [], "current": []} for p in PATTERNS}
        for _ in range(queries):
            q = matrix[rng.integers(0, rows)] + spread * rng.standard_normal(DIM).astype(np.float32)
            q = (q / np.linalg.norm(q)).astype(np.float32)
            args = (half, q, copy.upper_bounds(q, rows))
            scores = half @ q
            for pattern in PATTERNS:
                for _ in range(repeats):
                    t_old, old = _cpu_ms(ReplacedRanking, args, pattern)
                    t_new, new = _cpu_ms(Ranking, args, pattern)
                    if not all(_same(a, b, scores) for a, b in zip(old, new, strict=True)):
                        raise SystemExit(f"{kind} query, {pattern}: the two forms handed out different rows")
                    times[str(pattern)]["replaced"].append(t_old)
                    times[str(pattern)]["current"].append(t_new)
        result[kind] = {
            pattern: {name: float(np.median(values)) for name, values in by_form.items()}
            for pattern, by_form in times.items()
        }
    return result


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# The exact ranking: {result['rows']:,} rows, {result['when']}",
        "",
        f"Load {result['load_before']} before, {result['load_after']} after; CPU medians over {result['queries']} "
        f"queries x {result['repeats']} repeats.",
        "",
        "| queries | top() calls | replaced (x4 rounds) | current (two passes) | ratio |",
        "|---|---|---|---|---|",
    ]
    for kind in ("near", "far"):
        for pattern, m in result["by_query"][kind].items():
            ratio = m["current"] / m["replaced"] if m["replaced"] else float("nan")
            lines.append(f"| {kind} | {pattern} | {m['replaced']:.2f} ms | {m['current']:.2f} ms | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="file stem (default ranking-<date>)")
    args = parser.parse_args(argv)
    result = measured_run(
        "bench_ranking",
        lambda: {
            "rows": args.rows,
            "queries": args.queries,
            "repeats": args.repeats,
            "by_query": measure(args.rows, args.queries, args.repeats),
        },
    )
    save_and_show(result, _markdown(result), args.out, args.name or f"ranking-{datetime.now(UTC):%Y-%m-%d}")
    return result


if __name__ == "__main__":
    main()
