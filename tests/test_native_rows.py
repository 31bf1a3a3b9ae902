"""The native int8 rows kernel (search_service/engine/native/rowdot.c): built by `make setup`, exact where the
CPU runs it, refusing rows it would read out of bounds, and the gather path's products where it does not run."""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from search_service.engine import native_rows as native_module
from search_service.engine import quantizer, rows_kernels
from search_service.engine.native_rows import native_rows
from search_service.engine.vectors import VectorCache
from search_service.settings import Settings, SettingsError

DIM = 384


def _vnni_cpu() -> bool:
    flags = Path("/proc/cpuinfo").read_text()
    return all(f" {flag}" in flags for flag in ("avx512f", "avx512bw", "avx512_vnni"))


def _kernel() -> native_module.NativeRows:
    kernel = native_rows(DIM)
    if kernel is None:
        pytest.fail("the native rows kernel did not load on a CPU with AVX-512 VNNI")
    return kernel


def test_the_extension_is_built_and_loads_where_the_cpu_runs_it() -> None:
    spec = importlib.util.find_spec("search_service.engine._rowdot")
    assert spec is not None and spec.origin, "setup.py's extension was not built: is a C compiler installed?"
    supported = bool(ctypes.CDLL(spec.origin).rowdot_supported())
    assert supported == _vnni_cpu()
    assert (native_rows(DIM) is not None) == supported
    assert native_rows(100) is None  # not a multiple of 64: never handed to it


@pytest.mark.skipif(not _vnni_cpu(), reason="this CPU has no AVX-512 VNNI: the kernel is not used here")
@pytest.mark.parametrize("batch", [1, 2, 3, 5])
def test_the_products_are_numpys_integers_in_place_and_picked(batch: int) -> None:
    rng = np.random.default_rng(batch)
    rows8 = rng.integers(0, 128, size=(1003, DIM), dtype=np.uint8)  # not a multiple of the 32-row block
    rows8[0], rows8[1] = 127, 0
    q8 = rng.integers(-127, 128, size=(batch, DIM), dtype=np.int8)
    q8[0, :] = 127 if batch == 1 else -127
    want = q8.astype(np.int64) @ rows8.astype(np.int64).T
    wide = np.zeros((batch, 1003 + 7), dtype=np.float32)  # a column slice of a wider array, as a scan writes
    _kernel().into(wide[:, 3:1006], q8, rows8)
    assert np.array_equal(wide[:, 3:1006].astype(np.int64), want) and not wide[:, :3].any()
    picked = np.concatenate([rng.integers(0, 1003, size=500), [1002, 0, 0]])  # unsorted, repeated, the last row
    out = np.empty((batch, len(picked)), dtype=np.float32)
    _kernel().into(out, q8, rows8, picked)
    assert np.array_equal(out.astype(np.int64), want[:, picked])


@pytest.mark.skipif(not _vnni_cpu(), reason="this CPU has no AVX-512 VNNI: the kernel is not used here")
@pytest.mark.parametrize("dim", [64, 128, 1024])
def test_dims_other_than_the_models_take_the_general_path_exactly(dim: int) -> None:
    """The 384-code fast path (two queries in registers) is the model's; any other multiple of 64 up to 1024
    takes the general loop, just as exact."""
    rng = np.random.default_rng(dim)
    rows8 = rng.integers(0, 128, size=(77, dim), dtype=np.uint8)
    q8 = rng.integers(-127, 128, size=(3, dim), dtype=np.int8)
    rows8[5], q8[1] = 127, -127  # the largest sum: 1024 x 127 x 127 < 2^24, still exact in float32
    want = q8.astype(np.int64) @ rows8.astype(np.int64).T
    kernel = native_rows(dim)
    assert kernel is not None
    whole = np.empty((3, 77), dtype=np.float32)
    kernel.into(whole, q8, rows8)
    picked = np.array([76, 5, 5, 0, 40])
    out = np.empty((3, len(picked)), dtype=np.float32)
    kernel.into(out, q8, rows8, picked)
    assert np.array_equal(whole.astype(np.int64), want) and np.array_equal(out.astype(np.int64), want[:, picked])


@pytest.mark.skipif(not _vnni_cpu(), reason="this CPU has no AVX-512 VNNI: the kernel is not used here")
def test_rows_outside_the_array_or_wrong_shapes_are_refused_before_any_read() -> None:
    rows8 = np.ones((10, DIM), dtype=np.uint8)
    q8 = np.ones((1, DIM), dtype=np.int8)
    out = np.empty((1, 2), dtype=np.float32)
    with pytest.raises(IndexError):
        _kernel().into(out, q8, rows8, np.array([3, 10]))
    with pytest.raises(IndexError):
        _kernel().into(out, q8, rows8, np.array([-1, 2]))
    with pytest.raises(ValueError):
        _kernel().into(out, q8, rows8.astype(np.int8), np.array([1, 2]))
    with pytest.raises(ValueError):
        _kernel().into(np.empty((1, 3), dtype=np.float32), q8, rows8, np.array([1, 2]))
    empty = np.empty((1, 0), dtype=np.float32)
    _kernel().into(empty, q8, rows8, np.array([], dtype=np.int64))  # nothing to score: no call


def test_picked_rows_score_alike_in_place_and_gathered() -> None:
    """RowsKernel.picked_into: the native kernel where it loads, the gather and SimSIMD without it; a batch of
    two or more over contiguous rows goes to the native kernel (NATIVE_MIN_BATCH), one to SimSIMD."""
    rng = np.random.default_rng(3)
    rows8 = rng.integers(1, 128, size=(20_000, DIM), dtype=np.uint8)
    q8 = rng.integers(-127, 128, size=(4, DIM), dtype=np.int8)
    codes_products = q8.astype(np.int64) @ (rows8.astype(np.int64) - rows_kernels.ROW_ZERO_POINT).T
    picked = np.sort(rng.choice(len(rows8), 9000, replace=False))  # more than one gather buffer of rows
    kernel = rows_kernels.RowsKernel(DIM, quantizer._test_codes(DIM))
    kernel.calibrate()
    assert (kernel.native is not None) == _vnni_cpu()
    results = []
    for native in (kernel.native, None):
        kernel.native = native
        out = np.empty((1, len(picked)), dtype=np.float32)
        kernel.picked_into(out, q8[:1], rows8, picked)
        batch = np.empty((4, len(rows8)), dtype=np.float32)
        kernel.into(batch, q8, rows8)
        results.append((out, batch))
    for out, batch in results:
        assert np.array_equal(out[0].astype(np.int64), codes_products[0, picked])
        assert np.array_equal(batch.astype(np.int64), codes_products)


def test_plinqy_native_kernel_0_leaves_it_out_of_the_vector_copy() -> None:
    """The operators' switch (and a benchmark's baseline): PLINQY_NATIVE_KERNEL=0 reaches the rows kernel of the
    API's vector copy; a value other than 0 or 1 is refused with the variable named."""
    assert Settings.from_env({}).native_kernel and not Settings.from_env({"PLINQY_NATIVE_KERNEL": "0"}).native_kernel
    with pytest.raises(SettingsError, match="PLINQY_NATIVE_KERNEL"):
        Settings.from_env({"PLINQY_NATIVE_KERNEL": "2"})
    for wanted in (True, False):
        copy = VectorCache(dim=DIM, native_kernel=wanted)._int8
        assert copy is not None
        assert (copy._rows_kernel.native is not None) == (wanted and _vnni_cpu())
