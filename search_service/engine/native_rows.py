"""The native int8 rows kernel (native/rowdot.c, AVX-512 VNNI), where it was built and this CPU runs it.

It scores a batch of queries over rows read once (a block of rows for every query while in cache; the model's
384 codes two queries at a time in registers, the rows prefetched ahead), and rows picked by their numbers in
place, prefetched ahead, where the other kernels need them copied out first. Measured on the 2-core AMD EPYC
(Zen 4) machine, 1M generation rows (rows-kernel-2026-12-04-session12): every row, two / four / eight queries
20.4 / 15.4 / 25.1 ms against SimSIMD's 31.2 / 61.7 / 121.9 (one query 19.9 against 15.1: a lone query over
contiguous rows stays with SimSIMD); one query's picked rows, 136k / 400k, 5.8 / 13.5 ms against 12.1 / 31.6
gathered for SimSIMD (the gather is bound by memory latency). Loaded once per process, self-tested against
numpy's integers; None where absent (no C compiler at install: setup.py's extension is optional), unsupported or
wrong.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from collections.abc import Callable
from functools import cache

import numpy as np

log = logging.getLogger(__name__)

_MODULE = "search_service.engine._rowdot"
_POINTER, _INT = ctypes.c_void_p, ctypes.c_int64


class NativeRows:
    """`into(out, q8, rows8, idx)`: out (b, k) float32 = the int8 queries times rows8[idx] (every row when idx is
    None), exact integers. The GIL is released during the call (ctypes), so threads split a scan."""

    def __init__(self, function: Callable[..., None]) -> None:
        self._function = function

    def into(self, out: np.ndarray, q8: np.ndarray, rows8: np.ndarray, idx: np.ndarray | None = None) -> None:
        rows = np.asarray(rows8)
        queries = np.ascontiguousarray(q8, dtype=np.int8)
        count = len(rows) if idx is None else len(idx)
        picked = None if idx is None else np.ascontiguousarray(idx, dtype=np.int64)
        if rows.dtype != np.uint8 or rows.ndim != 2 or not rows.flags.c_contiguous:
            raise ValueError("rows8 must be a C-contiguous (n, dim) uint8 array")
        if queries.shape[1:] != rows.shape[1:] or out.shape != (len(queries), count):
            raise ValueError(f"shapes differ: queries {queries.shape}, rows {rows.shape}, out {out.shape}")
        if out.dtype != np.float32 or (count and out.strides[1] != 4) or (len(queries) > 1 and out.strides[0] % 4):
            raise ValueError("out must be float32 with contiguous rows")
        if picked is not None and count and (int(picked.min()) < 0 or int(picked.max()) >= len(rows)):
            raise IndexError(f"rows outside 0..{len(rows) - 1}")
        if count == 0 or len(queries) == 0:
            return
        self._function(
            rows.ctypes.data,
            rows.shape[1],
            None if picked is None else picked.ctypes.data,
            count,
            queries.ctypes.data,
            len(queries),
            out.ctypes.data,
            out.strides[0] // 4,
        )


def _self_test(kernel: NativeRows, dim: int) -> bool:
    """Exact on random codes at their extremes (rows 0..127, queries ±127), in place and picked."""
    rng = np.random.default_rng(7)
    rows8 = rng.integers(0, 128, size=(67, dim), dtype=np.uint8)
    rows8[0], q8 = 127, rng.integers(-127, 128, size=(3, dim), dtype=np.int8)
    q8[0] = -127
    idx = rng.integers(0, len(rows8), size=41)
    want = q8.astype(np.int64) @ rows8.astype(np.int64).T
    whole = np.empty((3, len(rows8)), dtype=np.float32)
    kernel.into(whole, q8, rows8)
    picked = np.empty((3, len(idx)), dtype=np.float32)
    kernel.into(picked, q8, rows8, idx)
    return bool(np.array_equal(whole.astype(np.int64), want) and np.array_equal(picked.astype(np.int64), want[:, idx]))


@cache
def native_rows(dim: int) -> NativeRows | None:
    """The kernel for rows of `dim` codes, or None (why: logged once)."""
    if dim % 64 or dim > 1024:
        return None
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.origin is None:
        log.info("native int8 rows kernel not built (no C compiler at install): SimSIMD and MLAS score the rows")
        return None
    library = ctypes.CDLL(spec.origin)
    if not library.rowdot_supported():
        log.info("this CPU has no AVX-512 VNNI: SimSIMD and MLAS score the int8 rows")
        return None
    function = library.rowdot_u8s8
    function.restype = None
    function.argtypes = [_POINTER, _INT, _POINTER, _INT, _POINTER, _INT, _POINTER, _INT]
    kernel = NativeRows(function)
    if not _self_test(kernel, dim):
        log.warning("native int8 rows kernel failed its self-test: SimSIMD and MLAS score the rows")
        return None
    return kernel
