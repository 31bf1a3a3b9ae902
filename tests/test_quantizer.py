"""The int8 copy's bounds and the lazily certified ranking built on them (no database needed)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search_service.demo.synthetic import random_unit_vectors
from search_service.engine import quantizer, rows_kernels
from search_service.engine.quantizer import Int8Copy, Int8Unavailable
from search_service.engine.ranking import FLOAT16_ERROR
from search_service.engine.vectors import EXACT_ORDER_MAX, Ranking, VectorCache

DIM = 384


def unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)).astype(np.float32)


def near_duplicates(rng: np.random.Generator, n: int, clusters: int = 40, spread: float = 0.05) -> np.ndarray:
    """A catalogue like the real one: many products that differ in a size or a colour (cosine ~0.99)."""
    centres = rng.standard_normal((clusters, DIM))
    return unit(centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, DIM)))


def int8_copy(matrix: np.ndarray) -> Int8Copy:
    copy = Int8Copy(DIM)
    copy.reserve(len(matrix) + 100)  # unused capacity must not leak into the bounds
    copy.set_rows(np.arange(len(matrix)), matrix)
    return copy


def test_bounds_are_upper_bounds_and_tight() -> None:
    rng = np.random.default_rng(3)
    matrix = np.concatenate([near_duplicates(rng, 3000), unit(rng.standard_normal((1000, DIM)))])
    matrix[0] = unit(np.eye(DIM)[0])  # one huge component: the coarsest rounding
    copy = int8_copy(matrix)
    queries = np.concatenate([unit(rng.standard_normal((20, DIM))), matrix[:5], -matrix[5:10]])
    for q in queries:
        bounds = copy.upper_bounds(q, len(matrix))
        exact = matrix.astype(np.float64) @ q.astype(np.float64)
        assert bounds.shape == (len(matrix),)
        assert np.all(bounds >= exact)
        assert float(np.max(bounds - exact)) < 0.06  # loose enough to be safe, tight enough to prune


def test_ranking_hands_out_the_best_rows_with_a_sound_threshold() -> None:
    rng = np.random.default_rng(5)
    matrix = near_duplicates(rng, 20_000)
    copy = int8_copy(matrix)
    for q in [*unit(rng.standard_normal((5, DIM))), *matrix[:5]]:
        exact = matrix @ q
        ranking = Ranking(matrix, q, copy.upper_bounds(q, len(matrix)))
        for stop in (1, 10, 40, 160, 640, 2560, 10240):
            rows, threshold = ranking.top(stop)
            assert len(rows) == stop and len(set(rows.tolist())) == stop
            left_out = np.ones(len(matrix), dtype=bool)
            left_out[rows] = False
            assert float(exact[left_out].max()) <= threshold + 1e-6  # nothing left out beats the threshold
            if stop <= EXACT_ORDER_MAX:  # exact order: the true top `stop`, best first
                np.testing.assert_allclose(exact[rows], np.sort(exact)[::-1][:stop], rtol=0, atol=1e-6)
                assert threshold == pytest.approx(float(exact[rows[-1]]), abs=1e-6)
            else:  # by bound: the threshold is the highest bound left out, within the bound's error of exact
                assert threshold - float(np.sort(exact)[::-1][stop]) < 0.06
        assert ranking.rescored < len(matrix) // 2  # the bounds pruned most of the matrix


def test_ranking_of_a_small_copy_returns_every_row() -> None:
    rng = np.random.default_rng(8)
    matrix = unit(rng.standard_normal((30, DIM)))
    q = unit(rng.standard_normal(DIM))
    ranking = Ranking(matrix, q, int8_copy(matrix).upper_bounds(q, 30))
    rows, threshold = ranking.top(100)
    assert sorted(rows.tolist()) == list(range(30)) and threshold == -np.inf
    rows, threshold = ranking.top(10)
    np.testing.assert_allclose(matrix[rows] @ q, np.sort(matrix @ q)[::-1][:10], rtol=0, atol=1e-6)


def test_an_inexact_kernel_turns_int8_off(monkeypatch: pytest.MonkeyPatch) -> None:
    real = quantizer._session()

    class Saturating:  # what an int16-saturating kernel with ±127 codes would give
        def run(self, names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            out = real.run(names, feeds)[0]
            return [np.clip(out, -30000, 30000)]

    monkeypatch.setattr(quantizer, "_session", Saturating)
    with pytest.raises(Int8Unavailable):
        Int8Copy(DIM)
    vectors = VectorCache(DIM)  # falls back to float32 scores, still exact
    assert vectors.scoring == "float32"
    rng = np.random.default_rng(9)
    matrix = near_duplicates(rng, 500)
    vectors._apply([{"id": uuid.uuid4(), "ai_vector": v, "ai_embedded_at": None} for v in matrix])  # type: ignore[misc]
    q = matrix[7]
    rows, threshold = vectors.rank(q).top(10)
    np.testing.assert_allclose(matrix[rows] @ q, np.sort(matrix @ q)[::-1][:10], rtol=0, atol=1e-6)
    assert rows[0] == 7 and threshold == pytest.approx(float(matrix[rows[-1]] @ q), abs=1e-6)


def test_vector_cache_scores_in_int8_here() -> None:
    assert VectorCache(DIM).scoring == "int8"


def test_packed_ids_map_to_rows_including_unknown_and_colliding_ids() -> None:
    rng = np.random.default_rng(12)
    vectors = VectorCache(DIM)
    ids = [uuid.uuid4() for _ in range(300)]
    # two held ids sharing their first 8 bytes: the sorted lookup finds one, the dict must find the other
    twin = uuid.UUID(bytes=ids[0].bytes[:8] + bytes(8))
    ids.append(twin)
    records = [
        {"id": i, "ai_vector": v, "ai_embedded_at": None}
        for i, v in zip(ids, unit(rng.standard_normal((301, DIM))), strict=True)
    ]
    vectors._apply(records)  # type: ignore[arg-type]
    unknown = uuid.uuid4()
    asked = [ids[5], unknown, twin, ids[0], ids[299]]
    rows = vectors.rows_of(b"".join(i.bytes for i in asked))
    assert sorted(vectors.ids_of(rows)) == sorted([ids[5], twin, ids[0], ids[299]])
    assert len(vectors.rows_of(b"")) == 0
    q = unit(rng.standard_normal(DIM))
    ranking = vectors.rank_subset(q, b"".join(i.bytes for i in asked))
    got, _ = ranking.top(10)
    want = sorted(rows.tolist(), key=lambda r: -float(vectors._matrix[r] @ q))
    assert got.tolist() == want


def test_packed_ids_with_repeats_map_to_each_held_row_once() -> None:
    rng = np.random.default_rng(13)
    vectors = VectorCache(DIM)
    ids = [uuid.uuid4() for _ in range(200)]
    vectors._apply(
        [
            {"id": i, "ai_vector": v, "ai_embedded_at": None}
            for i, v in zip(ids, unit(rng.standard_normal((200, DIM))), strict=True)
        ]
    )  # type: ignore[misc]
    asked = [ids[3], ids[150], uuid.uuid4(), ids[3], ids[77], ids[150], ids[3]]  # one id per listing
    rows = vectors.rows_of(b"".join(i.bytes for i in asked))
    assert sorted(rows.tolist()) == [3, 77, 150]
    # an id not held sharing its first 8 bytes with a held one yields nothing: every match is on all 16 bytes
    lookalike = uuid.UUID(bytes=ids[42].bytes[:8] + bytes(8))
    assert vectors.rows_of(lookalike.bytes).tolist() == []
    assert vectors.rows_of(lookalike.bytes + ids[42].bytes).tolist() == [42]


@pytest.mark.parametrize("share", [0.02, 0.5])
def test_subset_ranking_is_exact_whether_gathered_or_restricted_from_the_whole(share: float) -> None:
    """A small subset is ranked on its gathered float32 rows; a large one through the whole copy's int8
    bounds, restricted to it (and re-scored against the whole matrix): the same exact ranking either way."""
    rng = np.random.default_rng(21)
    vectors = VectorCache(DIM)
    matrix = near_duplicates(rng, 4000)
    ids = [uuid.uuid4() for _ in range(len(matrix))]
    vectors._apply([{"id": i, "ai_vector": v, "ai_embedded_at": None} for i, v in zip(ids, matrix, strict=True)])  # type: ignore[misc]
    subset = rng.choice(len(matrix), int(share * len(matrix)), replace=False)
    assert vectors.whole_ranking_pays(len(subset)) == (share > 0.1)
    packed = b"".join(ids[i].bytes for i in subset)
    for q in [matrix[int(subset[0])], *unit(rng.standard_normal((3, DIM)))]:
        exact = {int(r): float(matrix[r] @ q) for r in subset}
        best = sorted(exact, key=lambda r: -exact[r])
        for ranking in (vectors.rank_subset(q, packed), vectors.rank_subset(q, packed, vectors.rank(q))):
            rows, threshold = ranking.top(10)
            assert rows.tolist() == best[:10]
            assert threshold == pytest.approx(exact[best[9]], abs=1e-6)
            rows, threshold = ranking.top(len(subset) // 2)  # deeper: by bound, nothing left out beats it
            left_out = set(exact) - set(rows.tolist())
            assert max(exact[r] for r in left_out) <= threshold + 1e-6


def test_packed_batches_give_the_bounds_of_single_queries_for_rows_set_before_and_after_the_pack() -> None:
    rng = np.random.default_rng(17)
    matrix = near_duplicates(rng, 5000)
    copy = int8_copy(matrix[:4000])
    assert copy.batches_packed  # the packed kernel passed its self-test here
    copy.pack(4000)
    assert copy.unpacked_rows(4000) == 0
    changed = rng.choice(4000, 50, replace=False)
    matrix[changed] = near_duplicates(rng, 50)
    copy.set_rows(changed, matrix[changed])  # newer than the snapshot
    copy.reserve(5100)
    copy.set_rows(np.arange(4000, 5000), matrix[4000:])  # added after it
    assert copy.unpacked_rows(5000) == 1050
    queries = np.concatenate([unit(rng.standard_normal((3, DIM))), matrix[changed[:2]], matrix[4990:4991]])
    batch = copy.upper_bounds_many(queries, 5000)
    for q, bounds in zip(queries, batch, strict=True):
        assert np.array_equal(bounds, copy.upper_bounds(q, 5000))  # the same integers, the same bounds
        assert np.all(bounds >= matrix.astype(np.float64) @ q.astype(np.float64))


def test_vector_copy_ranks_a_batch_as_it_ranks_each_query() -> None:
    rng = np.random.default_rng(19)
    matrix = near_duplicates(rng, 3000)
    cache = VectorCache(DIM)
    assert cache._int8 is not None
    cache._apply([{"id": uuid.uuid4(), "ai_vector": v, "ai_embedded_at": None} for v in matrix])  # type: ignore[misc]
    cache._int8.pack(len(cache))
    queries = [*unit(rng.standard_normal((3, DIM))), matrix[7]]
    for q, ranking in zip(queries, cache.rank_many(queries), strict=True):
        alone = cache.rank(q)
        rows, threshold = ranking.top(40)
        assert np.array_equal(rows, alone.top(40)[0]) and threshold == alone.top(40)[1]
        best = matrix @ q
        assert np.all(best[rows] >= np.sort(best)[-40] - 1e-6)  # the true 40 best, whatever the ties


def test_vector_copy_repacks_once_enough_rows_changed_since_the_snapshot() -> None:
    rng = np.random.default_rng(23)
    matrix = near_duplicates(rng, 3000)
    ids = [uuid.uuid4() for _ in matrix]
    cache = VectorCache(DIM)
    assert cache._int8 is not None
    cache._apply([{"id": i, "ai_vector": v, "ai_embedded_at": None} for i, v in zip(ids, matrix, strict=True)])  # type: ignore[misc]
    assert cache._repack_due()  # nothing packed yet
    asyncio.run(cache._repack())
    assert cache._int8.unpacked_rows(len(cache)) == 0 and not cache._repack_due()
    cache._apply(
        [{"id": i, "ai_vector": v, "ai_embedded_at": None} for i, v in zip(ids[:40], matrix[:40], strict=True)]
    )  # type: ignore[misc]
    assert cache._int8.unpacked_rows(len(cache)) == 40 and not cache._repack_due()  # a few: scored in numpy
    more = near_duplicates(rng, 2100)
    cache._apply([{"id": uuid.uuid4(), "ai_vector": v, "ai_embedded_at": None} for v in more])  # type: ignore[misc]
    assert cache._repack_due()
    asyncio.run(cache._repack())
    assert cache._int8.unpacked_rows(len(cache)) == 0


def test_a_float16_ranking_widens_its_thresholds_by_the_rounding_error() -> None:
    """Near-duplicate rows (a catalogue's variants): float16 rounding reorders them, and a threshold read off
    the float16 scores alone is below the float32 similarity of rows it leaves out; the widened one never is."""
    rng = np.random.default_rng(11)
    base = random_unit_vectors(1, rng)[0]
    rows = base + 0.05 * random_unit_vectors(3000, rng)
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    half = rows.astype(np.float16)
    unwidened_misses = 0
    for q in base + 0.05 * random_unit_vectors(20, rng):
        q = (q / np.linalg.norm(q)).astype(np.float32)
        true = rows @ q
        ranking = Ranking(half, q, half @ q + FLOAT16_ERROR)
        for stop in (1, 10, 100, 2000):
            handed, threshold = ranking.top(stop)
            left = np.ones(len(rows), dtype=bool)
            left[handed] = False
            assert true[left].max() <= threshold
            unwidened_misses += int(true[left].max() > threshold - FLOAT16_ERROR)
    assert unwidened_misses > 0  # the widening is what keeps these thresholds sound


@pytest.mark.parametrize("kernel", ["onnx", "simsimd", "numpy"])
def test_a_shared_generations_rows_give_the_private_copys_bounds(kernel: str) -> None:
    """The codes as rows (`rows8`, as a shared generation stores them) give the very bounds of the columns: the
    whole copy through the rows kernel (or numpy's integers where it fails its self-test), a subset from its
    own rows, a batch as each query."""
    rng = np.random.default_rng(5)
    matrix = np.concatenate([near_duplicates(rng, 2000), unit(rng.standard_normal((500, DIM)))])
    matrix[0] = unit(np.eye(DIM)[0])  # the extreme codes: ±63
    private, n = int8_copy(matrix), len(matrix)
    rows8 = np.zeros((n, DIM), dtype=np.uint8)
    private.write_rows8(rows8, n, chunk=1000)
    assert rows8.min() >= 1 and rows8.max() <= 127
    shared = private.sharing({"rows8": rows8} | private.export(n), private.rounded_norm_max)
    rows_kernel = shared._rows_kernel
    assert shared.scores_rows and rows_kernel.onnx is not None  # MLAS passed its self-test here
    assert rows_kernel.calibrated and rows_kernels.simsimd_is_exact(quantizer._test_codes(DIM))
    rows_kernel.simsimd_batch = 16 if kernel == "simsimd" else 0  # every batch to SimSIMD, or none
    if kernel == "numpy":
        rows_kernel.onnx = None
    queries = np.concatenate([unit(rng.standard_normal((3, DIM))), -matrix[:1]])
    subset = np.sort(rng.choice(n, 300, replace=False))
    for q in queries:
        want = private.upper_bounds(q, n)
        assert np.array_equal(shared.upper_bounds(q, n), want)
        assert np.array_equal(shared.upper_bounds_rows(q, subset), want[subset])
        assert np.all(want >= matrix.astype(np.float64) @ q.astype(np.float64))
    assert np.array_equal(shared.upper_bounds_many(queries, n), private.upper_bounds_many(queries, n))


def test_the_rows_kernel_on_two_threads_gives_numpys_integer_products() -> None:
    """PLINQY_RANK_THREADS: MLAS splits a large block of rows between the threads; every product stays exact (a
    block this size is split: 200k rows x 384 is ~6 ms of work), so the bounds are those of one thread."""
    rng = np.random.default_rng(11)
    rows8 = rng.integers(1, 128, size=(200_000, DIM), dtype=np.uint8)
    rows8[0], rows8[1] = 127, 1  # the extremes of a stored row (code ±63 + 64)
    queries = rng.integers(-127, 128, size=(DIM, 3), dtype=np.int8)
    queries[:, 0] = 127
    session = rows_kernels.onnx_rows_session(DIM, quantizer._test_codes(DIM), threads=2)
    assert session is not None and session.get_session_options().intra_op_num_threads == 2
    got = session.run(None, {"rows": rows8, "queries": queries})[0]  # the codes' products: the zero point removed
    want_dots = (rows8.astype(np.int64) - quantizer.ROW_ZERO_POINT) @ queries.astype(np.int64)
    assert np.array_equal(got, want_dots)
    simsimd_dots = np.empty((3, len(rows8)), dtype=np.float32)
    rows_kernels.simsimd_split_into(simsimd_dots, np.ascontiguousarray(queries.T), rows8, parts=2)
    assert np.array_equal(simsimd_dots.astype(np.int64), want_dots.T)  # SimSIMD on two threads too
    matrix = unit(rng.standard_normal((3000, DIM)))
    private = int8_copy(matrix)
    rows8 = np.zeros((len(matrix), DIM), dtype=np.uint8)
    private.write_rows8(rows8, len(matrix))
    wide = Int8Copy(DIM, threads=2).sharing({"rows8": rows8} | private.export(len(matrix)), private.rounded_norm_max)
    assert wide._rows_kernel.onnx_wide is not None  # the two-thread kernel passed the self-test too
    query, subset = unit(rng.standard_normal((2, DIM))), np.arange(0, len(matrix), 7)
    want = private.upper_bounds_many(query, len(matrix))
    for simsimd_batch in (0, 16):  # MLAS, SimSIMD
        wide._rows_kernel.simsimd_batch = simsimd_batch
        assert np.array_equal(wide.upper_bounds_many(query, len(matrix), wide=True), want)
        assert np.array_equal(wide.upper_bounds_rows(query[0], subset, wide=True), want[0, subset])


def test_a_shared_copys_subset_ranking_is_sound_over_changed_and_added_rows(tmp_path: Path) -> None:
    """A gather on a shared generation ranks a small subset from its int8 rows, and the rows changed or added
    since from the matrix: every row it leaves out is below its threshold, and the best rows come first."""
    rng = np.random.default_rng(29)
    cache = VectorCache(DIM, shared_dir=tmp_path)
    ids = [uuid.uuid4() for _ in range(4000)]
    matrix = unit(rng.standard_normal((4000, DIM)))
    cache._apply([{"id": i, "ai_vector": v, "ai_embedded_at": None} for i, v in zip(ids, matrix, strict=True)])  # type: ignore[misc]
    cache._view = cache._adopt(cache._write(tmp_path, cache._view))
    assert cache._view.int8 is not None and cache._view.int8.scores_rows
    written = {v: i for i, v in enumerate(ids)}  # the generation holds the rows in id order
    order = np.array([written[i] for i in cache.ids_of(np.arange(4000))])
    ids, matrix = [ids[i] for i in order], matrix[order]
    changed = rng.choice(4000, 40, replace=False)
    matrix[changed] = unit(rng.standard_normal((40, DIM)))
    extra = [uuid.uuid4() for _ in range(30)]
    added = unit(rng.standard_normal((30, DIM)))
    records = [*zip([ids[i] for i in changed], matrix[changed], strict=True), *zip(extra, added, strict=True)]
    cache._apply([{"id": i, "ai_vector": v, "ai_embedded_at": None} for i, v in records])  # type: ignore[misc]
    whole = np.concatenate([matrix, added])
    subset = np.sort(np.concatenate([rng.choice(4000, 150, replace=False), changed[:10], np.arange(4000, 4030)]))
    subset = np.unique(subset)
    assert not cache.whole_ranking_pays(len(subset))
    if cache._view.int8.picks_in_place:  # the native kernel: a picked row costs ~2 streamed ones, alone
        quarter = len(cache) // 4
        assert not cache.whole_ranking_pays(quarter)
        with cache.batcher.caller(), cache.batcher.caller():
            assert not cache.whole_ranking_pays(quarter)  # no linger: the rankings are not batched
            cache.batcher.linger = 3.0
            assert cache.whole_ranking_pays(quarter)  # under load they share one read of the rows
        assert not cache.whole_ranking_pays(quarter)  # alone again
    for q in [whole[int(changed[0])], whole[4005], *unit(rng.standard_normal((3, DIM)))]:
        ranking = cache.rank_subset(q, subset)
        true = {int(r): float(whole[r] @ q) for r in subset}
        for stop in (1, 10, 100):
            rows, threshold = ranking.top(stop)
            left_out = set(true) - set(rows.tolist())
            assert max(true[r] for r in left_out) <= threshold
        assert int(ranking.top(1)[0][0]) == max(true, key=lambda r: true[r])


@pytest.mark.parametrize("simsimd_batch", [0, 16])
def test_a_shared_generation_written_empty_ranks_the_rows_added_since(tmp_path: Path, simsimd_batch: int) -> None:
    """An API started before any product had a vector shares a generation of no rows; the products embedded since
    are ranked from the matrix (found by a 100k-row import's benchmark: SimSIMD refused the empty rows, a 500)."""
    rng = np.random.default_rng(31)
    cache = VectorCache(DIM, shared_dir=tmp_path)
    cache._view = cache._adopt(cache._write(tmp_path, cache._view))
    assert cache._view.int8 is not None and cache._view.int8.frozen_rows == 0
    cache._view.int8._rows_kernel.simsimd_batch = simsimd_batch  # SimSIMD for every batch, or for none
    ids, added = [uuid.uuid4() for _ in range(3)], unit(rng.standard_normal((3, DIM)))
    cache._apply([{"id": i, "ai_vector": v, "ai_embedded_at": None} for i, v in zip(ids, added, strict=True)])  # type: ignore[misc]
    for row, query in enumerate(added):
        for ranking in (cache.rank(query), cache.rank_subset(query, np.arange(3)), cache.rank_many([query])[0]):
            best, threshold = ranking.top(1)
            assert cache.ids_of(best) == [ids[row]]
            assert threshold >= max(float(added[r] @ query) for r in range(3) if r != row) - 1e-6  # sound


def test_a_staged_generation_holds_the_private_copys_codes_as_rows_and_its_bounds() -> None:
    """`blank()` stages a shared generation: set_rows writes its codes as the generation's rows (no transposing in
    and out), in batches and out of order, growing as rows come; they are the rows a private copy writes, and the
    staged copy scores them (rows kernel) to the private copy's bounds."""
    rng = np.random.default_rng(8)
    matrix = np.concatenate([near_duplicates(rng, 1500), unit(rng.standard_normal((500, DIM)))])
    matrix[0] = unit(np.eye(DIM)[0])
    private, n = int8_copy(matrix), len(matrix)
    staged = private.blank()
    assert staged.scores_rows and not staged.batches_packed
    order = rng.permutation(n)
    for batch in np.array_split(order, 7):
        staged.reserve(int(batch.max()) + 1)
        staged.set_rows(batch, matrix[batch])
    want, got = np.zeros((n, DIM), dtype=np.uint8), np.zeros((n, DIM), dtype=np.uint8)
    private.write_rows8(want, n, chunk=700)
    staged.write_rows8(got, n, chunk=700)
    assert np.array_equal(got, want)
    for name, terms in staged.export(n).items():
        assert np.array_equal(terms, private.export(n)[name])
    queries = np.concatenate([unit(rng.standard_normal((3, DIM))), -matrix[:1]])
    assert np.array_equal(staged.upper_bounds_many(queries, n), private.upper_bounds_many(queries, n))


def test_rounding_error_norms_bound_the_exact_residual_of_every_row() -> None:
    """quantize works in float32: each row's error norm must still be at least the exact (float64) norm of x - x̂,
    with x̂ = code x the stored scale, for coarse and fine rows alike (one spike, a flat row, a zero row), and the
    largest ‖x̂‖ at least every row's."""
    rng = np.random.default_rng(9)
    flat = np.full((1, DIM), 1.0 / np.sqrt(DIM))
    spiky = np.zeros((1, DIM))
    spiky[0, 7] = -1.0
    matrix = np.concatenate([unit(rng.standard_normal((3000, DIM))), flat, spiky, np.zeros((1, DIM))])
    matrix = matrix.astype(np.float32)
    codes, offset, scale, error, rounded_norm = quantizer.quantize(matrix)
    x_hat = codes.astype(np.float64) * scale.astype(np.float64)[:, None]
    residual = np.linalg.norm(matrix.astype(np.float64) - x_hat, axis=1)
    assert np.all(error.astype(np.float64) >= residual)
    assert float(np.max(error.astype(np.float64) - residual)) < 1e-6  # and no looser than float32 needs
    assert rounded_norm >= float(np.linalg.norm(x_hat, axis=1).max())
    assert np.all(np.abs(codes) <= quantizer.VECTOR_LEVELS)
    assert np.array_equal(offset, quantizer.ZERO_POINT * codes.sum(axis=1, dtype=np.int32))
