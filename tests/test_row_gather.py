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


def test_each_thread_reuses_its_own_buffer() -> None:
    source = np.arange(2 * GATHER_ROWS * 4, dtype=np.uint8).reshape(-1, 4)
    rows = np.arange(0, len(source), 3)
    first = next(chunk for _, _, chunk in gathered(source, rows))
    again = next(chunk for _, _, chunk in gathered(source, rows))
    assert np.shares_memory(first, again)  # the same pages, call after call
    other: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: other.extend(chunk for _, _, chunk in gathered(source, rows)))
    thread.start()
    thread.join()
    assert not np.shares_memory(first, other[0])  # not shared with a thread gathering at the same time
    assert row_gather._buffer((4,), np.dtype(np.uint8)) is row_gather._buffers.rows


def _shared_copy(tmp_path: Path, rows: int) -> tuple[Int8Copy, np.ndarray]:
    rng = np.random.default_rng(5)
    private = Int8Copy(DIM)
    private.reserve(rows)
    private.set_rows(np.arange(rows), _unit(rng, rows))
    rows8 = np.lib.format.open_memmap(tmp_path / "rows8.npy", mode="w+", dtype=np.uint8, shape=(rows, DIM))
    private.write_rows8(rows8, rows)
    mapped = np.load(tmp_path / "rows8.npy", mmap_mode="r")  # mapped read-only, as a generation's rows are
    shared = Int8Copy(DIM).sharing({"rows8": mapped} | private.export(rows), private.rounded_norm_max)
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
