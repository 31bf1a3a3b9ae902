"""The int8 rows kernels (engine/rows_kernels.py): SimSIMD's products equal MLAS's and numpy's integers, on the
extreme codes too; a batch goes to SimSIMD only up to the calibrated size."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from search_service.engine import quantizer
from search_service.engine.quantizer import Int8Copy
from search_service.engine.rows_kernels import (
    ROW_ZERO_POINT,
    WIDE_MIN_ROWS,
    RowsKernel,
    simsimd_into,
    simsimd_is_exact,
    simsimd_split_into,
)

DIM = 384


def _rows_and_queries(rows: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows8 = rng.integers(1, 128, size=(rows, DIM), dtype=np.uint8)  # code ±63 + 64, as a generation stores them
    rows8[0], rows8[1] = 127, 1
    rows8[2, ::2], rows8[2, 1::2] = 127, 1
    q8 = rng.integers(-127, 128, size=(batch, DIM), dtype=np.int8)
    q8[0] = 127
    if batch > 1:
        q8[1] = -127
    return rows8, q8


def _numpy(rows8: np.ndarray, q8: np.ndarray) -> np.ndarray:
    return q8.astype(np.int64) @ (rows8.astype(np.int64) - ROW_ZERO_POINT).T


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_simsimd_gives_numpys_integers_on_the_extreme_codes(parts: int) -> None:
    rows8, q8 = _rows_and_queries(5000, 3)
    out = np.empty((3, len(rows8)), dtype=np.float32)
    threads_before, tasks_before = threading.active_count(), len(os.listdir("/proc/self/task"))
    simsimd_split_into(out, q8, rows8, parts)
    assert threading.active_count() == threads_before  # no thread left behind,
    # nor an OpenMP pool (it would not survive a fork); a joined thread may take a moment to leave /proc
    deadline = time.monotonic() + 2.0
    while len(os.listdir("/proc/self/task")) != tasks_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(os.listdir("/proc/self/task")) == tasks_before
    assert np.array_equal(out.astype(np.int64), _numpy(rows8, q8))
    assert np.abs(out).max() > 2**21  # the extremes reach far: float32 would round past 2^24, not below
    assert simsimd_is_exact(quantizer._test_codes(DIM))


def test_simsimd_writes_a_column_slice_and_refuses_rows_that_are_not_contiguous() -> None:
    rows8, q8 = _rows_and_queries(700, 2)
    wide = np.full((2, 1000), -1.0, dtype=np.float32)
    simsimd_into(wide[:, :700], q8, rows8)  # each query's row of the slice is contiguous
    assert np.array_equal(wide[:, :700].astype(np.int64), _numpy(rows8, q8))
    assert np.all(wide[:, 700:] == -1.0)  # nothing written past the slice
    with pytest.raises(ValueError, match="contiguous"):
        simsimd_into(np.empty((700, 2), dtype=np.float32).T, q8, rows8)


def test_every_path_of_the_kernel_gives_the_same_integers() -> None:
    rows8, q8 = _rows_and_queries(WIDE_MIN_ROWS + 7, 5, seed=3)  # a lone (wide) search splits these rows
    want = _numpy(rows8, q8)
    kernel = RowsKernel(DIM, quantizer._test_codes(DIM), threads=2)
    kernel.calibrate()
    assert kernel.calibrated and 0 <= kernel.simsimd_batch <= 16
    for simsimd_batch, onnx in ((16, True), (0, True), (0, False), (2, True)):  # SimSIMD, MLAS, numpy, mixed
        kernel.simsimd_batch = simsimd_batch
        if not onnx:
            kernel.onnx = None
        for batch in (1, 2, 5):
            for wide in (False, True):
                out = np.empty((batch, len(rows8)), dtype=np.float32)
                kernel.into(out, q8[:batch], rows8, wide=wide)
                assert np.array_equal(out.astype(np.int64), want[:batch]), (simsimd_batch, onnx, batch, wide)


def test_calibration_is_measured_once_and_takes_simsimd_where_mlas_is_missing() -> None:
    kernel = RowsKernel(DIM, quantizer._test_codes(DIM))
    kernel.onnx = None  # as where MLAS failed its self-test: numpy's integers are far slower than SimSIMD
    kernel.calibrate()
    assert kernel.simsimd_batch == 16
    kernel.simsimd_batch = 3
    kernel.calibrate()  # measured already: kept
    assert kernel.simsimd_batch == 3


def test_a_packed_small_generation_scores_a_small_batch_through_simsimd_with_the_same_bounds() -> None:
    """A shared generation of at most 120k rows is packed (MLAS, codes as a constant); `pack` measures SimSIMD
    against that snapshot on its rows, and a batch up to the size measured goes to SimSIMD: the same bounds."""
    rng = np.random.default_rng(17)
    matrix = rng.standard_normal((6000, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    private = Int8Copy(DIM)
    private.reserve(len(matrix))
    private.set_rows(np.arange(len(matrix)), matrix)
    rows8 = np.zeros((len(matrix), DIM), dtype=np.uint8)
    private.write_rows8(rows8, len(matrix))
    shared = private.sharing({"rows8": rows8} | private.export(len(matrix)), private.rounded_norm_max)
    shared.pack(len(matrix))
    assert shared._packed is not None and 0 <= shared._packed_simsimd_batch <= shared._rows_kernel.simsimd_batch
    queries = matrix[:3] * 0.5 + rng.standard_normal((3, DIM)).astype(np.float32) * 0.05
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    want = private.upper_bounds_many(queries, len(matrix))
    for simsimd_batch in (0, 1, 3):  # packed MLAS for every batch; SimSIMD for one query; for all three
        shared._packed_simsimd_batch = simsimd_batch
        shared._rows_kernel.simsimd_batch = max(simsimd_batch, 1)
        assert np.array_equal(shared.upper_bounds_many(queries[:1], len(matrix)), want[:1])
        assert np.array_equal(shared.upper_bounds_many(queries, len(matrix)), want)
    packed = shared._packed

    class Refusing:
        def run(self, *args: object) -> object:
            raise AssertionError("the packed session scored a batch SimSIMD should have")

    shared._packed = packed._replace(session=Refusing())
    assert np.array_equal(shared.upper_bounds_many(queries, len(matrix)), want)  # batch 3 ≤ 3: SimSIMD only
    shared._packed_simsimd_batch = 2
    with pytest.raises(AssertionError, match="packed session"):
        shared.upper_bounds_many(queries, len(matrix))  # batch 3 > 2: the packed snapshot's
