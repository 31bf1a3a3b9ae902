"""An int8 copy of the product vectors, scored by ONNX Runtime, with a guaranteed bound of its error.

Scoring the float32 copy reads the whole matrix per query (154 MiB for 100k x 384: ~7 ms, memory-bound).
The int8 copy is a quarter of that and largely stays in the L3 cache; ONNX Runtime's MatMulInteger scores
it in ~1.5 ms. Its scores are not the ranking: each row gets an upper bound of its true similarity, and
`vectors.Ranking` re-scores in float32 every row whose bound reaches the part of the ranking a search
reads, so the exact scan stays exact.

The bound: with unit vectors q, x and their rounded forms q̂ = s_q·q8, x̂ = s_x·x8,
    q·x − q̂·x̂ = q·(x − x̂) + (q − q̂)·x̂,  so  |q·x − q̂·x̂| ≤ ‖x − x̂‖ + ‖q − q̂‖·‖x̂‖   (Cauchy-Schwarz),
with ‖x − x̂‖ and ‖x̂‖ kept per row. Integer products are exact; `BOUND_SLACK` covers float32 rounding.

Levels: vectors are rounded to ±63, queries to ±127. On x86 with AVX2 the kernel multiplies u8 x s8 pairs
into saturating int16 sums (vpmaddubsw); 2·255·63 < 32767 keeps every sum exact, ±127 would not. A
self-test at start-up compares the kernel with numpy's integer product; if they differ (another CPU,
another ONNX Runtime), `Int8Unavailable` is raised and the caller scores in float32 instead.

Batches: with the codes as a graph input, a batch of queries is slower than scoring them one by one (ONNX
Runtime packs the 38 MB of codes on every call: 2 queries 9.7 ms against 2 × 2.5). `pack()` builds a second
session that holds a snapshot of the codes as a constant, packed once (~0.25 s per 100k rows, in a thread):
4 queries then cost ~3.2 ms for 100k rows. Rows set after the snapshot are scored exactly in numpy until the
next pack. The packed kernel passes the same self-test, or batches stay one query at a time. One query goes to
the packed session too (with the codes as an input, ONNX Runtime 1.32 packs them on every call: 100k rows, one
query, 21 ms of CPU against 1.5 packed). A shared generation of at most SHARED_PACK_MAX_ROWS rows is packed.

A shared generation stores its codes as rows (`rows8`: n x dim uint8, code + ROW_ZERO_POINT), scored by the
kernels of rows_kernels.py, each self-tested against numpy's integers; a subset of rows (a gather's candidates)
is scored from its int8 rows.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np

from search_service.engine.rows_kernels import ROW_ZERO_POINT, WIDE_MIN_ROWS, RowsKernel, as_rows8, in_parts

VECTOR_LEVELS = 63
QUERY_LEVELS = 127
ZERO_POINT = 128  # queries go in as uint8: q8 + 128 (the kernel's fast path is u8 x s8)
SHARED_PACK_MAX_ROWS = 120_000  # a shared generation up to this size is packed in each process (~75 MB, above)
BOUND_SLACK = 1e-5  # float32 rounding of scales and bounds is ~1e-7; exactness needs an upper bound


class Int8Unavailable(RuntimeError):
    """The int8 kernel is missing or gives inexact integer products here: score in float32."""


def _session(packed_codes: np.ndarray | None = None) -> Any:
    """One query against the codes as an input; or, with `packed_codes`, a batch against those as a constant."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise Int8Unavailable(f"onnxruntime/onnx not importable: {exc}") from exc
    node = helper.make_node("MatMulInteger", ["query", "codes"], ["dots"])
    if packed_codes is None:
        a = helper.make_tensor_value_info("query", TensorProto.UINT8, [1, "dim"])
        b = helper.make_tensor_value_info("codes", TensorProto.INT8, ["dim", "rows"])
        y = helper.make_tensor_value_info("dots", TensorProto.INT32, [1, "rows"])
        graph = helper.make_graph([node], "int8_scores", [a, b], [y])
    else:
        dim, rows = packed_codes.shape
        a = helper.make_tensor_value_info("query", TensorProto.UINT8, ["batch", dim])
        y = helper.make_tensor_value_info("dots", TensorProto.INT32, ["batch", rows])
        # The constant is declared as external data and handed over in memory (below): written into the model,
        # its 38 MB were copied three times on the way in (tensor, serialised model, parsed initializer), which
        # raised the API's peak RSS by ~150 MB per pack (measured: +230 MB against +84 MB now).
        codes = TensorProto(name="codes", data_type=TensorProto.INT8, dims=[dim, rows])
        codes.data_location = TensorProto.EXTERNAL
        codes.external_data.add(key="location", value="codes")
        graph = helper.make_graph([node], "int8_scores_packed", [a], [y], initializer=[codes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    # One query is a matrix-vector product, which ONNX Runtime runs on one thread anyway; concurrency comes
    # from requests in other threads.
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    held = []
    if packed_codes is not None:  # an OrtValue over the array itself (no copy); it must outlive the session
        held.append(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(packed_codes)))
        options.add_external_initializers(["codes"], held)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    session.held_initializers = held  # the session keeps them (and their arrays) alive as long as it lives
    return session


def _test_codes(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Extreme and random codes (dim, 67) and queries (4, dim), the extremes where saturation would show."""
    rng = np.random.default_rng(0)
    codes = rng.integers(-VECTOR_LEVELS, VECTOR_LEVELS + 1, size=(dim, 67), dtype=np.int8)
    codes[:, 0], codes[:, 1] = VECTOR_LEVELS, -VECTOR_LEVELS
    codes[::2, 2], codes[1::2, 2] = VECTOR_LEVELS, -VECTOR_LEVELS
    queries = rng.integers(-QUERY_LEVELS, QUERY_LEVELS + 1, size=(4, dim), dtype=np.int8)
    queries[0], queries[1] = QUERY_LEVELS, -QUERY_LEVELS
    return codes, queries


def _self_test(session: Any, dim: int) -> None:
    """The kernel's integer products on the test codes must equal numpy's."""
    codes, queries = _test_codes(dim)
    for q8 in queries:
        got = session.run(None, {"query": _as_input(q8), "codes": codes})[0][0].astype(np.int64)
        want = codes.T.astype(np.int64) @ q8.astype(np.int64)
        if not np.array_equal(got - ZERO_POINT * codes.sum(axis=0, dtype=np.int64), want):
            raise Int8Unavailable("ONNX Runtime's MatMulInteger gives inexact integer products on this machine")


def _packed_kernel_is_exact(dim: int) -> bool:
    """The packed (batch) kernel on the same test codes, all queries in one call, against numpy."""
    codes, queries = _test_codes(dim)
    inputs = _as_inputs(queries)
    got = _session(codes).run(None, {"query": inputs})[0].astype(np.int64)
    return bool(np.array_equal(got, inputs.astype(np.int64) @ codes.astype(np.int64)))


def _as_input(q8: np.ndarray) -> np.ndarray:
    return _as_inputs(q8[None, :])


def _as_inputs(q8: np.ndarray) -> np.ndarray:
    return (q8.astype(np.int16) + ZERO_POINT).astype(np.uint8)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Unit rows (k, dim) rounded: codes (k, dim), ZERO_POINT x code sums, scales, error norms (up), max norm. In
    float32, QUANTIZE_ROWS at a time in reused buffers (whole batches in float64: ~7 s of CPU at 1M, mostly page
    faults); x̂ and x - x̂ are within 2^-24 of their size in float32, covered by `_widened`: a bound stays a bound."""
    v = np.asarray(vectors, dtype=np.float32)
    k = len(v)
    codes, offset = np.empty(v.shape, dtype=np.int8), np.empty(k, dtype=np.int32)
    scale, error = np.empty(k, dtype=np.float32), np.empty(k, dtype=np.float32)
    rounded, residual = np.empty_like(v[:QUANTIZE_ROWS]), np.empty_like(v[:QUANTIZE_ROWS])
    top = 0.0
    for at in range(0, k, QUANTIZE_ROWS):
        part, n = slice(at, at + QUANTIZE_ROWS), min(QUANTIZE_ROWS, k - at)
        x, x_hat, r = v[part], rounded[:n], residual[:n]
        peak = np.abs(x).max(axis=1)
        live = peak > 0
        scale[part] = np.where(live, peak / np.float32(VECTOR_LEVELS), np.float32(1.0))
        inverse = np.where(live, np.float32(VECTOR_LEVELS) / np.where(live, peak, np.float32(1.0)), np.float32(0.0))
        np.multiply(x, inverse.astype(np.float32)[:, None], out=x_hat)
        np.clip(np.rint(x_hat, out=x_hat), -VECTOR_LEVELS, VECTOR_LEVELS, out=x_hat)
        codes[part] = x_hat
        offset[part] = ZERO_POINT * codes[part].sum(axis=1, dtype=np.int32)
        x_hat *= scale[part, None]
        norms = _widened(_row_dots(np.subtract(x, x_hat, out=r))).astype(np.float32)
        error[part] = np.nextafter(norms, np.float32(np.inf))  # rounded up: a float32 that is still a bound
        top = max(top, float(_row_dots(x_hat).max()))
    return codes, offset, scale, error, float(np.nextafter(_widened(top), np.inf))


QUANTIZE_ROWS = 256
_ROUNDING = 2.0**-22  # covers float32's rounding of x̂ and x - x̂ (~1.1 x 2^-24 of a unit row), with room


def _widened(squares: np.ndarray | float) -> np.ndarray:
    """Norms from float64 sums of squares of float32 terms, widened past the terms' rounding."""
    return np.sqrt(np.asarray(squares, dtype=np.float64) * (1.0 + _ROUNDING)) + _ROUNDING


def _row_dots(rows: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", rows, rows, dtype=np.float64)


def _rounded(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit queries (b, dim) rounded to ±QUERY_LEVELS: (codes int8, scales, error norms)."""
    queries = np.asarray(queries, dtype=np.float64)
    peak = np.abs(queries).max(axis=1)
    q_scale = np.where(peak > 0, peak / QUERY_LEVELS, 1.0)
    q8 = np.rint(queries / q_scale[:, None]).astype(np.int8)
    return q8, q_scale, np.linalg.norm(queries - q8 * q_scale[:, None], axis=1)


class _Packed(NamedTuple):
    session: Any
    rows: int  # the rows of the snapshot: 0..rows-1
    generation: int  # rows set after it are scored from the codes


class Int8Copy:
    """Rounded rows (stored transposed: one column per row, as MatMulInteger wants them) and their error norms."""

    def __init__(self, dim: int, threads: int = 1, native: bool = True) -> None:
        self.dim = dim
        self._session = _session()
        _self_test(self._session, dim)
        self._codes = np.zeros((dim, 0), dtype=np.int8)
        self._offset = np.zeros(0, dtype=np.int32)  # ZERO_POINT x column sum: removes the query's offset
        self._scale = np.zeros(0, dtype=np.float32)  # s_x per row
        self._error = np.zeros(0, dtype=np.float32)  # ‖x − x̂‖ per row, rounded up
        self._rounded_norm_max = 0.0  # max ‖x̂‖ over the rows held
        self._generation = 0  # bumped by every set_rows
        self._set_at = np.zeros(0, dtype=np.int64)  # the generation of each row's last set_rows
        self._packed: _Packed | None = None
        self._packed_simsimd_batch = 0  # a packed shared generation's batches up to this size go to SimSIMD (pack)
        self.batches_packed = _packed_kernel_is_exact(dim)
        self.frozen_rows: int | None = None  # a shared generation's rows (adopt), scored as they were written
        self._rows8: np.ndarray | None = None  # a shared generation's codes as rows (adopt)
        self._rows_kernel = RowsKernel(dim, _test_codes(dim), threads, native)  # scores them (rows_kernels.py)

    @property
    def nbytes(self) -> int:
        packed = 0 if self._packed is None else 2 * self.dim * self._packed.rows  # the constant, and packed
        rows8 = 0 if self._rows8 is None else self._rows8.nbytes
        return int(self._codes.nbytes + self._offset.nbytes + self._scale.nbytes + self._error.nbytes) + packed + rows8

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` rows (the float32 copy's capacity); unused columns are zero and never read."""
        old = len(self._offset)
        if capacity <= old or self.frozen_rows is not None:
            return
        if self._rows8 is not None:  # staged as a generation's rows (blank)
            rows8 = np.zeros((capacity, self.dim), dtype=np.uint8)
            rows8[:old] = self._rows8[:old]
            self._rows8 = rows8
        else:
            codes = np.zeros((self.dim, capacity), dtype=np.int8)
            codes[:, :old] = self._codes
            self._codes = codes
        for name in ("_offset", "_scale", "_error", "_set_at"):
            grown = np.zeros(capacity, dtype=getattr(self, name).dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)

    def set_rows(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Round `vectors` (k, dim), already unit length, into `rows`."""
        if len(rows) == 0:
            return
        if self.frozen_rows is not None:
            raise ValueError("the int8 copy is a shared generation's: rows changed since are scored in float32")
        codes, offset, scale, error, rounded_norm = quantize(vectors)
        if self._rows8 is not None:
            self._rows8[rows] = as_rows8(codes)
        else:
            self._codes[:, rows] = codes.T
        self._offset[rows] = offset
        self._scale[rows] = scale
        self._error[rows] = error
        self._rounded_norm_max = max(self._rounded_norm_max, rounded_norm)
        # stamped after the codes are written: a pack that snapshots them meanwhile sees these rows as newer
        self._generation += 1
        self._set_at[rows] = self._generation

    def export(self, n: int) -> dict[str, np.ndarray]:
        """The first n rows' bounds terms, for a shared generation (`vector_files.py`; the codes: write_rows8)."""
        return {"offset": self._offset[:n], "scale": self._scale[:n], "error": self._error[:n]}

    def write_rows8(self, out: np.ndarray, n: int, order: np.ndarray | None = None, chunk: int = 65536) -> None:
        """The first n rows' codes (rows `order`, if given) into `out` as a shared generation stores them, by chunks."""
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            rows = slice(start, stop) if order is None else order[start:stop]
            out[start:stop] = self._rows8[rows] if self._rows8 is not None else as_rows8(self._codes[:, rows].T)

    @property
    def rounded_norm_max(self) -> float:
        return self._rounded_norm_max

    def sharing(self, arrays: dict[str, np.ndarray], rounded_norm_max: float) -> Int8Copy:
        """A scorer of a shared generation's codes, on this one's (self-tested) session."""
        shared = copy.copy(self)
        shared.adopt(arrays, rounded_norm_max)
        return shared

    def blank(self) -> Int8Copy:
        """An empty copy on this one's session, staging a shared generation: codes kept as its rows (transposed in
        and out, 1M rows took ~4.5 s of CPU), scored by the rows kernel, never packed."""
        fresh = copy.copy(self)
        fresh._codes = np.zeros((self.dim, 0), dtype=np.int8)
        for name, dtype in (("_offset", np.int32), ("_scale", np.float32), ("_error", np.float32)):
            setattr(fresh, name, np.zeros(0, dtype=dtype))
        fresh._set_at = np.zeros(0, dtype=np.int64)
        fresh._rounded_norm_max, fresh._generation, fresh._packed = 0.0, 0, None
        fresh._rows8, fresh.frozen_rows, fresh.batches_packed = np.zeros((0, self.dim), dtype=np.uint8), None, False
        return fresh

    def adopt(self, arrays: dict[str, np.ndarray], rounded_norm_max: float) -> None:
        """Score a shared generation's codes (mapped read-only) from now on, and no more set_rows; packed only when
        small (ONNX Runtime holds a private, pre-packed copy of them in every process)."""
        # plain views of the mappings: numpy.memmap's own indexing costs ~0.6 ms a gather's subset (1M rows)
        mapped = {name: np.asarray(arrays[name]) for name in ("rows8", "offset", "scale", "error")}
        self._rows8, self._codes = mapped["rows8"], np.zeros((self.dim, 0), dtype=np.int8)
        self._offset, self._scale, self._error = mapped["offset"], mapped["scale"], mapped["error"]
        self._rounded_norm_max = rounded_norm_max
        self._set_at = np.zeros(0, dtype=np.int64)
        self._packed = None
        self.frozen_rows = len(self._rows8)
        self.batches_packed = self.batches_packed and self.frozen_rows <= SHARED_PACK_MAX_ROWS
        self._rows_kernel.calibrate()

    def pack(self, n: int) -> None:
        """Snapshot the first n rows' codes into a session that scores batches (blocking: ~0.25 s per 100k
        rows; callers run it in a thread). A no-op where the packed kernel failed its self-test."""
        if not self.batches_packed or n == 0:
            return
        generation = self._generation  # read before the snapshot: rows set during it count as newer
        if self._rows8 is None:
            codes = np.ascontiguousarray(self._codes[:, :n])
        else:  # a small shared generation's rows: transposed, their zero point removed
            codes = np.ascontiguousarray(self._rows8[:n].T).view(np.int8)
            codes -= np.int8(ROW_ZERO_POINT)
        packed = _Packed(_session(codes), n, generation)
        if self._rows8 is not None:  # one query over 100k rows on the AMD machine: packed MLAS 3.4 ms, SimSIMD 1.7
            run = packed.session.run
            self._packed_simsimd_batch = self._rows_kernel.simsimd_beats(
                lambda q8: run(None, {"query": _as_inputs(q8)}), self._rows8[:n]
            )
        self._packed = packed

    def unpacked_rows(self, n: int) -> int:
        """How many of the first n rows a batch scores outside the packed snapshot (set or added since)."""
        packed = self._packed
        if packed is None:
            return n
        m = min(packed.rows, n)
        return int(np.count_nonzero(self._set_at[:m] > packed.generation)) + (n - m)

    def upper_bounds(self, query: np.ndarray, n: int) -> np.ndarray:
        """(n,) float32, each ≥ a unit `query`'s similarity to that row; +inf past a shared generation's rows."""
        return self.upper_bounds_many(np.asarray(query)[None, :], n)[0]

    def upper_bounds_many(self, queries: np.ndarray, n: int, wide: bool = False) -> np.ndarray:
        """`upper_bounds` of each unit row of `queries` (b, dim): (b, n). Several queries go to the packed session in
        one call, once there is one; else on the codes as they are (`wide`: a lone search, on the kernel's threads)."""
        q8, q_scale, q_error = _rounded(queries)
        m = n if self.frozen_rows is None else min(n, self.frozen_rows)
        bounds = np.empty((len(q8), n), dtype=np.float32)  # each column written once (np.full: a pass more)
        bounds[:, m:] = np.inf
        dots: np.ndarray | None = None  # the rows kernel writes into the bounds themselves
        if self._rows8 is not None and (self._packed is None or len(q8) <= self._packed_simsimd_batch):
            self._rows_kernel.into(bounds[:, :m], q8, self._rows8[:m], wide=wide)
        else:
            dots = self._dots(_as_inputs(q8), m)
            dots -= self._offset[:m]
        self._bounds_into(bounds[:, :m], dots, (q_scale, q_error), self._scale[:m], self._error[:m])
        return bounds

    @property
    def scores_rows(self) -> bool:  # whether `upper_bounds_rows` can score a subset (a shared generation's codes)
        return self._rows8 is not None

    @property
    def picks_in_place(self) -> bool:  # whether that subset is scored in place (the native kernel), not gathered
        return self._rows8 is not None and self._rows_kernel.native is not None

    def upper_bounds_rows(self, query: np.ndarray, rows: np.ndarray, wide: bool = False) -> np.ndarray:
        """`upper_bounds` of some rows (each below frozen_rows) of a shared generation, from their int8 rows (384
        bytes a row read, against 768 of float16), in place or gathered (`RowsKernel.picked_into`)."""
        rows8 = self._rows8
        assert rows8 is not None
        q8, q_scale, q_error = _rounded(np.asarray(query)[None, :])
        bounds = np.empty((1, len(rows)), dtype=np.float32)

        def bounds_of(start: int, stop: int) -> None:
            out, at = bounds[:, start:stop], rows[start:stop]
            self._rows_kernel.picked_into(out, q8, rows8, at)
            self._bounds_into(out, None, (q_scale, q_error), self._scale[at], self._error[at])

        in_parts(len(rows), self._rows_kernel.threads if wide and len(rows) >= WIDE_MIN_ROWS else 1, bounds_of)
        return bounds[0]

    def _bounds_into(
        self,
        out: np.ndarray,
        dots: np.ndarray | None,
        query: tuple[np.ndarray, np.ndarray],
        scale: np.ndarray,
        error: np.ndarray,
    ) -> None:
        """out (b, m) = the bounds of rows with these integer products (None: already in `out`), scales and error
        norms (module docstring)."""
        q_scale, q_error = query
        if dots is not None:
            out[...] = dots
        out *= scale
        out *= q_scale.astype(np.float32)[:, None]
        out += error
        out += (q_error * self._rounded_norm_max + BOUND_SLACK).astype(np.float32)[:, None]

    def _dots(self, inputs: np.ndarray, n: int) -> np.ndarray:
        """(b, n) int32: each query input (uint8, offset by ZERO_POINT) times the first n rows' codes."""
        packed = self._packed
        if packed is None:
            return np.stack(
                [self._session.run(None, {"query": q[None, :], "codes": self._codes})[0][0, :n] for q in inputs]
            )
        m = min(packed.rows, n)
        dots = np.empty((len(inputs), n), dtype=np.int32)
        dots[:, :m] = packed.session.run(None, {"query": inputs})[0][:, :m]
        newer = np.flatnonzero(self._set_at[:m] > packed.generation)
        if m < n:
            newer = np.concatenate([newer, np.arange(m, n)])
        if len(newer):  # exact integers either way
            dots[:, newer] = inputs.astype(np.int32) @ self._codes[:, newer].astype(np.int32)
        return dots
