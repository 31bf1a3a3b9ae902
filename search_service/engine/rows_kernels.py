"""The int8 rows kernels of a shared generation: its codes as rows (`rows8`: n x dim uint8, code +
ROW_ZERO_POINT) times a batch of int8 queries, exact integers, each kernel self-tested against numpy's.

ONNX Runtime's MatMulInteger (MLAS) streams the rows and computes 16 query columns whatever the batch: up to
16 queries cost one. SimSIMD (PyPI `simsimd`) computes each query's products on its own (AVX-512 VNNI where
the CPU has it): a cost linear in the batch. Which is faster depends on the CPU. CPU a call over 1M rows,
measured 2026-12-04 on the 2-core AMD EPYC (Zen 4) machine: MLAS 123-131 ms for 1 to 8 queries, SimSIMD 18.6
ms for one and ~19 a query more; the Intel Xeon of earlier sessions ran MLAS in 41-45 ms. So each process
measures both once (`RowsKernel.calibrate`, 32k rows) and sends a batch to SimSIMD while it is cheaper there.

Where it was built and the CPU has AVX-512 VNNI, a native kernel (native_rows.py) scores batches of
NATIVE_MIN_BATCH queries or more (it reads the rows once for the batch) and rows picked by their numbers (in
place, where the others need them gathered first).

Exact either way: a row's u8 (code + 64, ≤ 127: read as int8 by SimSIMD) times a query's s8 (±127) sums to at
most 384 x 127 x 127 < 2^24, which float32 holds exactly (SimSIMD accumulates in int32); MLAS's u8 x s8 pair
sums ≤ 32,258 stay exact in vpmaddubsw's int16.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from search_service.engine.native_rows import native_rows
from search_service.engine.row_gather import gathered

ROW_ZERO_POINT = 64  # a shared generation's rows are stored as uint8: code + 64, in 1..127
CALIBRATION_ROWS = 32_768  # 12 MiB of rows: each kernel ~1-4 ms a call here, the best of three taken
MLAS_COLUMNS = 16  # MLAS computes this many query columns whatever the batch
WIDE_MIN_ROWS = 65_536  # a lone search's rows are split between threads from this many (~1 ms of work)
NATIVE_MIN_BATCH = 2  # the native kernel reads contiguous rows once for a batch; SimSIMD is as fast for one

TestCodes = tuple[np.ndarray, np.ndarray]  # codes (dim, k) int8 within ±63 and queries (b, dim) int8


def as_rows8(codes: np.ndarray) -> np.ndarray:
    """Codes (k, dim) int8 within ±63 as a shared generation stores them (uint8, code + 64)."""
    return (np.asarray(codes, dtype=np.int8) + np.int8(ROW_ZERO_POINT)).view(np.uint8)


def onnx_rows_session(dim: int, test: TestCodes, threads: int = 1) -> Any | None:
    """MatMulInteger: rows (uint8, the zero point removed by the kernel) times queries (int8 columns) -> (rows,
    batch) int32, nothing packed; None where its products differ from numpy's on the test codes. `threads`: MLAS
    splits the rows (1M rows, one query, Xeon: 44 ms on one thread, 22 on two, the same CPU)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("MatMulInteger", ["rows", "queries", "row_zero_point"], ["dots"])
    a = helper.make_tensor_value_info("rows", TensorProto.UINT8, ["rows", dim])
    b = helper.make_tensor_value_info("queries", TensorProto.INT8, [dim, "batch"])
    y = helper.make_tensor_value_info("dots", TensorProto.INT32, ["rows", "batch"])
    zero_point = helper.make_tensor("row_zero_point", TensorProto.UINT8, [], [ROW_ZERO_POINT])
    graph = helper.make_graph([node], "int8_rows", [a, b], [y], initializer=[zero_point])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    codes, queries = test
    got = session.run(None, {"rows": as_rows8(codes.T), "queries": np.ascontiguousarray(queries.T)})[0]
    want = codes.T.astype(np.int64) @ queries.T.astype(np.int64)
    return session if np.array_equal(got.astype(np.int64), want) else None


def _simsimd() -> Any | None:
    try:
        import simsimd
    except ImportError:
        return None
    return simsimd


def simsimd_into(out: np.ndarray, q8: np.ndarray, rows8: np.ndarray) -> None:
    """out (b, m) float32 = each query's codes times the rows' codes, exact integers, a query at a time (each
    row of `out` is contiguous even when `out` is a column slice of a wider array). On the calling thread:
    SimSIMD's own `threads` are OpenMP's, whose pool would outlive the call (spinning) and not survive a fork."""
    simsimd = _simsimd()
    assert simsimd is not None
    rows = np.ascontiguousarray(rows8).view(np.int8)  # code + 64 ≤ 127: the same bytes read as int8
    offsets = q8.sum(axis=1, dtype=np.int64) * ROW_ZERO_POINT
    for k in range(len(q8)):
        target = out[k : k + 1]
        if not target.flags.c_contiguous:
            raise ValueError("each query's row of `out` must be contiguous")
        simsimd.cdist(q8[k : k + 1], rows, metric="dot", out=target, out_dtype="float32")
        target -= np.float32(offsets[k])


def simsimd_is_exact(test: TestCodes) -> bool:
    """SimSIMD's products on the test codes equal numpy's."""
    if _simsimd() is None:
        return False
    codes, queries = test
    out = np.empty((len(queries), codes.shape[1]), dtype=np.float32)
    simsimd_into(out, queries, as_rows8(codes.T))
    return bool(np.array_equal(out.astype(np.int64), queries.astype(np.int64) @ codes.astype(np.int64)))


def in_parts(n: int, parts: int, work: Callable[[int, int], None]) -> None:
    """work(start, stop) over `parts` slices of range(n): the first on the calling thread, the others on threads
    started for the call (a thread costs ~0.1 ms; none is left behind to be forked), failures re-raised here."""
    bounds = np.linspace(0, n, max(1, parts) + 1).astype(int)
    failures: list[BaseException] = []

    def part(start: int, stop: int) -> None:
        try:
            work(start, stop)
        except BaseException as exc:  # re-raised on the calling thread
            failures.append(exc)

    helpers = [threading.Thread(target=part, args=(int(a), int(b))) for a, b in itertools.pairwise(bounds[1:])]
    for helper in helpers:
        helper.start()
    part(int(bounds[0]), int(bounds[1]))
    for helper in helpers:
        helper.join()
    if failures:
        raise failures[0]


def simsimd_split_into(out: np.ndarray, q8: np.ndarray, rows8: np.ndarray, parts: int) -> None:
    """`simsimd_into` with the rows split into `parts` slices scored at once (SimSIMD releases the GIL)."""
    in_parts(len(rows8), parts, lambda start, stop: simsimd_into(out[:, start:stop], q8, rows8[start:stop]))


def _best_ms(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        before = time.thread_time()
        run()
        best = min(best, time.thread_time() - before)
    return best * 1000


class RowsKernel:
    """Scores rows for a batch of queries: the native kernel (native_rows.py) from NATIVE_MIN_BATCH queries where
    it runs, else SimSIMD up to `simsimd_batch` queries, else MLAS, else numpy; rows picked by their numbers with
    the native kernel, else gathered a chunk at a time for SimSIMD."""

    def __init__(self, dim: int, test: TestCodes, threads: int = 1, native: bool = True) -> None:
        self.dim, self.threads, self._test = dim, threads, test
        self.onnx = onnx_rows_session(dim, test)  # None: numpy's integers instead (see the quantizer's docstring)
        self.onnx_wide = onnx_rows_session(dim, test, threads) if threads > 1 else None  # `wide`: a lone search
        self.simsimd_batch = 0  # set by calibrate(); 0: never SimSIMD
        self.calibrated = False
        self.native = native_rows(dim) if native else None  # native=False: PLINQY_NATIVE_KERNEL=0

    def calibrate(self) -> None:
        """Measure once (~30 ms): SimSIMD's time a query against MLAS's time a call, on random codes."""
        if self.calibrated:
            return
        self.calibrated = True
        if not simsimd_is_exact(self._test):
            return
        onnx = self.onnx
        if onnx is None:
            self.simsimd_batch = MLAS_COLUMNS
            return
        rows8 = np.random.default_rng(0).integers(1, 128, size=(CALIBRATION_ROWS, self.dim), dtype=np.uint8)

        def mlas(q8: np.ndarray) -> object:
            return onnx.run(None, {"rows": rows8, "queries": np.ascontiguousarray(q8.T)})

        self.simsimd_batch = self._batch_beating(mlas, rows8, MLAS_COLUMNS)

    def simsimd_beats(self, other: Callable[[np.ndarray], object], rows8: np.ndarray) -> int:
        """The largest batch SimSIMD scores `rows8` in less time than `other(q8)` takes for one query (0: never; at
        most `simsimd_batch`): a small shared generation's packed MLAS snapshot, measured once on its own rows."""
        self.calibrate()
        if self.simsimd_batch == 0 or len(rows8) == 0:
            return 0
        return self._batch_beating(other, rows8, self.simsimd_batch)

    def _batch_beating(self, other: Callable[[np.ndarray], object], rows8: np.ndarray, most: int) -> int:
        """How many queries SimSIMD scores over `rows8` in the time `other` takes for one (at most `most`)."""
        q8 = np.random.default_rng(1).integers(-127, 128, size=(1, self.dim), dtype=np.int8)
        out = np.empty((1, len(rows8)), dtype=np.float32)
        other_ms = _best_ms(lambda: other(q8))
        simsimd_ms = _best_ms(lambda: simsimd_into(out, q8, rows8))
        return min(most, int(other_ms // max(simsimd_ms, 1e-6)))

    def into(self, out: np.ndarray, q8: np.ndarray, rows8: np.ndarray, wide: bool = False) -> None:
        """out (b, m) float32 = each query's codes (int8) times the rows' (uint8, code + 64): `dots`, or SimSIMD's."""
        if out.size == 0:  # no rows (a shared generation written while no product had a vector): SimSIMD refuses
            return
        if self.native is not None and len(q8) >= NATIVE_MIN_BATCH:
            parts = self.threads if wide and len(rows8) >= WIDE_MIN_ROWS else 1
            in_parts(
                len(rows8), parts, lambda start, stop: self._native_into(out[:, start:stop], q8, rows8[start:stop])
            )
        elif len(q8) <= self.simsimd_batch:
            if wide and self.threads > 1 and len(rows8) >= WIDE_MIN_ROWS:
                simsimd_split_into(out, q8, rows8, self.threads)
            else:
                simsimd_into(out, q8, rows8)
        else:
            out[...] = self.dots(q8, rows8, wide=wide)

    def picked_into(self, out: np.ndarray, q8: np.ndarray, rows8: np.ndarray, picked: np.ndarray) -> None:
        """out (b, k) float32 = the queries times rows8[picked]: in place (native), else gathered a chunk at a time
        into a reused buffer (row_gather.py) and scored there."""
        if out.size == 0:
            return
        if self.native is not None:
            self._native_into(out, q8, rows8, picked)
            return
        for part, _, chunk in gathered(rows8, picked):
            self.into(out[:, part], q8, chunk)

    def _native_into(
        self, out: np.ndarray, q8: np.ndarray, rows8: np.ndarray, picked: np.ndarray | None = None
    ) -> None:
        assert self.native is not None
        self.native.into(out, q8, rows8, picked)
        out -= (q8.sum(axis=1, dtype=np.int64) * ROW_ZERO_POINT).astype(np.float32)[:, None]  # the rows' zero point

    def dots(self, q8: np.ndarray, rows8: np.ndarray, wide: bool = False, chunk: int = 65536) -> np.ndarray:
        """(b, m) int32 by MLAS (the kernel takes the zero point off itself: removing it afterwards was a pass over
        (b, m): 1M rows, 4 queries, 48 -> 41 ms), or numpy's integers where MLAS failed its self-test."""
        session = self.onnx_wide if wide and self.onnx is not None and self.onnx_wide is not None else self.onnx
        if session is not None:
            return np.asarray(session.run(None, {"rows": rows8, "queries": np.ascontiguousarray(q8.T)})[0].T)
        raw = np.empty((len(q8), len(rows8)), dtype=np.int32)  # numpy's exact integers, a chunk of rows at a time
        for start in range(0, len(rows8), chunk):
            raw[:, start : start + chunk] = q8.astype(np.int32) @ rows8[start : start + chunk].T.astype(np.int32)
        return raw - ROW_ZERO_POINT * q8.sum(axis=1, dtype=np.int32)[:, None]
