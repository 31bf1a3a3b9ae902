"""Rows gathered a chunk at a time into a buffer kept per thread (engine/row_gather.py), and the int8 bounds of a
shared generation's subset computed from them (`Int8Copy.upper_bounds_rows`)."""

from __future__ import annotations

import resource
import threading
from pathlib import Path

import numpy as np
import pytest

from search_service.engine import row_gather
from search_service.engine.quantizer import Int8Copy, _rounded
from search_service.engine.row_gather import GATHER_ROWS, gathered
from search_service.engine.rows_kernels import WIDE_MIN_ROWS

DIM = 384


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("count", [0, 1, GATHER_ROWS - 1, GATHER_ROWS, 2 * GATHER_ROWS + 5])
def test_the_chunks_hold_the_rows_asked_in_order(count: int) -> None:
    rng = np.random.default_rng(count)
    source = rng.integers(0, 255, size=(3 * GATHER_ROWS, 16), dtype=np.uint8)
    rows = np.sort(rng.choice(len(source), count, replace=False))
    seen = []
    for part, at, chunk in gathered(source, rows):
        assert np.array_equal(at, rows[part])
        assert np.array_equal(chunk, source[at])
        seen.append(at)
    assert np.array_equal(np.concatenate(seen) if seen else np.zeros(0, dtype=np.intp), rows)


def test_rows_outside_the_array_are_refused_not_clipped() -> None:
    source = np.zeros((10, 4), dtype=np.uint8)
    for rows in (np.array([0, 10]), np.array([-1, 3])):
        with pytest.raises(IndexError):
            next(gathered(source, rows))


def test_buffers_are_reused_and_never_lent_to_two_gathers_at_once() -> None:
    source = np.arange(2 * GATHER_ROWS * 4, dtype=np.uint8).reshape(-1, 4)
    rows = np.arange(0, len(source), 3)

    def pooled() -> int:  # buffers of these rows' shape the process keeps (other tests gather other shapes)
        return sum(1 for b in row_gather._free_buffers if b.shape[1:] == (4,) and b.dtype == np.uint8)

    before = pooled()
    first = [chunk.copy() for _, _, chunk in gathered(source, rows)]
    lent = [chunk for _, _, chunk in gathered(source, rows)]
    again = [chunk for _, _, chunk in gathered(source, rows)]
    assert np.shares_memory(lent[0], again[0])  # the same pages, call after call
    outer = gathered(source, rows)
    _, _, outer_chunk = next(outer)
    inner = [chunk.copy() for _, _, chunk in gathered(source, rows)]  # a second gather while the first is lent
    assert not np.shares_memory(outer_chunk, lent[0]) or not np.shares_memory(outer_chunk, inner[0])
    assert np.array_equal(outer_chunk, first[0])  # the outer gather's chunk was not overwritten by the inner one
    assert all(np.array_equal(a, b) for a, b in zip(inner, first, strict=True))
    outer.close()  # its buffer is given back
    other: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: other.extend(chunk.copy() for _, _, chunk in gathered(source, rows)))
    thread.start()
    thread.join()
    assert all(np.array_equal(a, b) for a, b in zip(other, first, strict=True))
    assert pooled() == max(before, 2)  # as many buffers as gathers ran at once


def _shared_copy(tmp_path: Path, rows: int, threads: int = 1) -> tuple[Int8Copy, np.ndarray]:
    rng = np.random.default_rng(5)
    private = Int8Copy(DIM)
    private.reserve(rows)
    private.set_rows(np.arange(rows), _unit(rng, rows))
    rows8 = np.lib.format.open_memmap(tmp_path / "rows8.npy", mode="w+", dtype=np.uint8, shape=(rows, DIM))
    private.write_rows8(rows8, rows)
    mapped = np.load(tmp_path / "rows8.npy", mmap_mode="r")  # mapped read-only, as a generation's rows are
    shared = Int8Copy(DIM, threads).sharing({"rows8": mapped} | private.export(rows), private.rounded_norm_max)
    return shared, mapped


def test_a_subsets_bounds_are_those_of_its_rows_gathered_at_once(tmp_path: Path) -> None:
    """The same floats as the bounds computed from the whole subset's rows in one take, and as the whole copy's
    bounds at those rows; no fresh pages are faulted in on a second call (the buffer is reused)."""
    shared, mapped = _shared_copy(tmp_path, 3 * GATHER_ROWS)
    query = _unit(np.random.default_rng(8), 1)[0]
    subset = np.sort(np.random.default_rng(9).choice(len(mapped), 2 * GATHER_ROWS + 100, replace=False))
    got = shared.upper_bounds_rows(query, subset)
    q8, q_scale, q_error = _rounded(query[None, :])
    at_once = np.empty((1, len(subset)), dtype=np.float32)
    dots = shared._rows_kernel.dots(q8, mapped.take(subset, axis=0))
    shared._bounds_into(at_once, dots, (q_scale, q_error), shared._scale[subset], shared._error[subset])
    assert np.array_equal(got, at_once[0])
    assert np.array_equal(got, shared.upper_bounds_many(query[None, :], len(mapped))[0, subset])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    shared.upper_bounds_rows(query, subset)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 64, faults  # the gathered rows' 6 MB would be ~1,500 pages if gathered afresh


def test_a_lone_searchs_large_subset_is_split_between_threads_with_the_same_bounds(tmp_path: Path) -> None:
    """`wide` (a lone search, two threads): a subset of WIDE_MIN_ROWS or more is gathered and scored in two halves
    at once, each into a buffer of its own; the bounds are those of one thread, MLAS's or SimSIMD's."""
    rows = WIDE_MIN_ROWS + 4096
    shared, _ = _shared_copy(tmp_path, rows, threads=2)
    query = _unit(np.random.default_rng(12), 1)[0]
    subset = np.arange(0, rows, 1)[:-3]
    want = shared.upper_bounds_many(query[None, :], rows)[0, subset]
    for simsimd_batch in (0, 16):
        shared._rows_kernel.simsimd_batch = simsimd_batch
        assert np.array_equal(shared.upper_bounds_rows(query, subset, wide=True), want)
        assert np.array_equal(shared.upper_bounds_rows(query, subset), want)
