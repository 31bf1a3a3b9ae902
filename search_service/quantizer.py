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
"""

from __future__ import annotations

from typing import Any

import numpy as np

VECTOR_LEVELS = 63
QUERY_LEVELS = 127
ZERO_POINT = 128  # queries go in as uint8: q8 + 128 (the kernel's fast path is u8 x s8)
BOUND_SLACK = 1e-5  # float32 rounding of scales and bounds is ~1e-7; exactness needs an upper bound


class Int8Unavailable(RuntimeError):
    """The int8 kernel is missing or gives inexact integer products here: score in float32."""


def _session() -> Any:
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise Int8Unavailable(f"onnxruntime/onnx not importable: {exc}") from exc
    a = helper.make_tensor_value_info("query", TensorProto.UINT8, [1, "dim"])
    b = helper.make_tensor_value_info("codes", TensorProto.INT8, ["dim", "rows"])
    y = helper.make_tensor_value_info("dots", TensorProto.INT32, [1, "rows"])
    node = helper.make_node("MatMulInteger", ["query", "codes"], ["dots"])
    graph = helper.make_graph([node], "int8_scores", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    # One query is a matrix-vector product, which ONNX Runtime runs on one thread anyway; concurrency comes
    # from requests in other threads.
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _self_test(session: Any, dim: int) -> None:
    """Extreme and random codes: the kernel's integer products must equal numpy's."""
    rng = np.random.default_rng(0)
    codes = rng.integers(-VECTOR_LEVELS, VECTOR_LEVELS + 1, size=(dim, 67), dtype=np.int8)
    codes[:, 0], codes[:, 1] = VECTOR_LEVELS, -VECTOR_LEVELS
    codes[::2, 2], codes[1::2, 2] = VECTOR_LEVELS, -VECTOR_LEVELS
    queries = rng.integers(-QUERY_LEVELS, QUERY_LEVELS + 1, size=(4, dim), dtype=np.int8)
    queries[0], queries[1] = QUERY_LEVELS, -QUERY_LEVELS
    for q8 in queries:
        got = session.run(None, {"query": _as_input(q8), "codes": codes})[0][0].astype(np.int64)
        want = codes.T.astype(np.int64) @ q8.astype(np.int64)
        if not np.array_equal(got - ZERO_POINT * codes.sum(axis=0, dtype=np.int64), want):
            raise Int8Unavailable("ONNX Runtime's MatMulInteger gives inexact integer products on this machine")


def _as_input(q8: np.ndarray) -> np.ndarray:
    return (q8.astype(np.int16) + ZERO_POINT).astype(np.uint8)[None, :]


class Int8Copy:
    """Rounded rows (stored transposed: one column per row, as MatMulInteger wants them) and their error norms."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._session = _session()
        _self_test(self._session, dim)
        self._codes = np.zeros((dim, 0), dtype=np.int8)
        self._offset = np.zeros(0, dtype=np.int32)  # ZERO_POINT x column sum: removes the query's offset
        self._scale = np.zeros(0, dtype=np.float32)  # s_x per row
        self._error = np.zeros(0, dtype=np.float32)  # ‖x − x̂‖ per row, rounded up
        self._rounded_norm_max = 0.0  # max ‖x̂‖ over the rows held

    @property
    def nbytes(self) -> int:
        return int(self._codes.nbytes + self._offset.nbytes + self._scale.nbytes + self._error.nbytes)

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` rows (the float32 copy's capacity); unused columns are zero and never read."""
        old = self._codes.shape[1]
        if capacity <= old:
            return
        codes = np.zeros((self.dim, capacity), dtype=np.int8)
        codes[:, :old] = self._codes
        self._codes = codes
        for name in ("_offset", "_scale", "_error"):
            grown = np.zeros(capacity, dtype=getattr(self, name).dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)

    def set_rows(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Round `vectors` (k, dim), already unit length, into `rows`."""
        if len(rows) == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float64)
        peak = np.abs(vectors).max(axis=1)
        scale = np.where(peak > 0, peak / VECTOR_LEVELS, 1.0)
        codes = np.rint(vectors / scale[:, None]).astype(np.int8)
        rounded = codes * scale[:, None]
        self._codes[:, rows] = codes.T
        self._offset[rows] = ZERO_POINT * codes.sum(axis=1, dtype=np.int32)
        self._scale[rows] = scale
        self._error[rows] = np.nextafter(np.linalg.norm(vectors - rounded, axis=1), np.inf).astype(np.float32)
        self._rounded_norm_max = max(self._rounded_norm_max, float(np.linalg.norm(rounded, axis=1).max()))

    def upper_bounds(self, query: np.ndarray, n: int) -> np.ndarray:
        """For a unit `query`: (n,) float32, each ≥ the true similarity of that row (and within ~0.03 of it)."""
        query = np.asarray(query, dtype=np.float64)
        peak = float(np.abs(query).max())
        q_scale = peak / QUERY_LEVELS if peak > 0 else 1.0
        q8 = np.rint(query / q_scale).astype(np.int8)
        q_error = float(np.linalg.norm(query - q8 * q_scale))
        dots = self._session.run(None, {"query": _as_input(q8), "codes": self._codes})[0][0, :n]
        dots -= self._offset[:n]
        bounds = dots.astype(np.float32)
        bounds *= self._scale[:n]
        bounds *= np.float32(q_scale)
        bounds += self._error[:n]
        bounds += np.float32(q_error * self._rounded_norm_max + BOUND_SLACK)
        return bounds
