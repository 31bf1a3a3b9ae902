"""One state of the vector copy (`vectors.py`): its arrays, private or a mapped generation's, and what a refresh
goes on from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from search_service.engine.keyindex import KeyIndex, keys_of
from search_service.engine.quantizer import BOUND_SLACK, Int8Copy, as_rows8, quantize
from search_service.engine.ranking import score_error
from search_service.engine.vector_files import Filled, gathered

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NO_STAMP = np.iinfo(np.int64).min  # ai_embedded_at NULL


def as_vector(value: Any) -> np.ndarray:
    """A float32 numpy vector from what pgvector's asyncpg codec returns (Vector or ndarray) or a sequence."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def stamp_us(stamp: dt.datetime | None) -> int:
    return int(NO_STAMP) if stamp is None else (stamp - EPOCH) // dt.timedelta(microseconds=1)


def iso(stamp: dt.datetime | None) -> str | None:
    return None if stamp is None else stamp.isoformat()


@dataclass
class CopyView:
    """One state of the copy: rows [0, n) of the arrays, and what a refresh goes on from."""

    matrix: np.ndarray  # (capacity, dim) float32, unit rows
    key: np.ndarray  # (capacity, 2) uint64: the ids' bytes (keyindex.py)
    stamp: np.ndarray  # (capacity,) int64 µs since the epoch, NO_STAMP for NULL
    int8: Int8Copy | None
    n: int = 0
    index: KeyIndex = field(default_factory=KeyIndex)
    watermark: dt.datetime | None = None  # highest ai_embedded_at held; None: none held
    # The write horizon read before the last snapshot: the next refresh reads the stamps from it on. None:
    # unknown (see _write_horizon), the next refresh reads from watermark - margin.
    horizon: dt.datetime | None = None
    generation: int = 0  # the shared generation mapped; 0: private arrays
    base_rows: int = 0  # rows [0, base_rows) are the generation's, its int8 codes as written
    # base rows set since (scored in float32), sorted; replaced, never changed in place: a ranking thread reads it
    changed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    grown: bool = False  # outgrew the generation's room: private arrays until the next one

    def overlay(self) -> np.ndarray:
        """Rows whose int8 codes are not the generation's: changed since, or added past it (shared only)."""
        if self.generation == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.changed, np.arange(self.base_rows, self.n, dtype=np.int64)])

    def subset_bounds(self, query: np.ndarray, rows: np.ndarray, wide: bool = False) -> np.ndarray:
        """Upper bounds of a unit query's similarity to `rows` (sorted) of a shared view: int8 for the
        generation's rows as written, the similarity itself (within the matrix's error) for rows changed or
        added since."""
        assert self.int8 is not None
        overlay = self.overlay()
        fresh = np.isin(rows, overlay, assume_unique=True) if len(overlay) else np.zeros(len(rows), dtype=bool)
        bounds = np.empty(len(rows), dtype=np.float32)
        frozen = np.flatnonzero(~fresh)
        bounds[frozen] = self.int8.upper_bounds_rows(query, rows[frozen], wide=wide)
        changed = rows[fresh]
        if len(changed):
            matrix = self.matrix[changed]
            bounds[fresh] = matrix @ query + (BOUND_SLACK + score_error(matrix))
        return bounds

    @property
    def private_rows(self) -> int:
        return self.n if self.generation == 0 else len(self.changed) + self.n - self.base_rows

    def reserve(self, need: int, dim: int) -> None:
        capacity = self.matrix.shape[0]
        if need <= capacity:
            return
        capacity = max(need, int(capacity * 1.25) + 1024)
        for name in ("matrix", "key", "stamp"):
            old = getattr(self, name)
            grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            grown[: self.n] = old[: self.n]
            setattr(self, name, grown)
        if self.generation:
            self.grown = True
        elif self.int8 is not None:
            self.int8.reserve(capacity)

    def apply(self, records: list[asyncpg.Record], dim: int) -> int:
        if not records:
            return 0
        vecs = np.empty((len(records), dim), dtype=np.float32)
        for i, r in enumerate(records):
            vec = as_vector(r["ai_vector"])
            if vec.shape != (dim,):
                raise ValueError(f"product {r['id']}: a {vec.shape[0]}-dimensional vector, expected {dim}")
            vecs[i] = vec
        stamps = np.array([stamp_us(r["ai_embedded_at"]) for r in records], dtype=np.int64)
        return self.apply_arrays(keys_of([r["id"] for r in records]), vecs, stamps, dim)

    def apply_arrays(
        self, want: np.ndarray, vecs: np.ndarray, stamps: np.ndarray, dim: int, *, fresh: bool = False
    ) -> int:
        """Set the rows of ids `want` (keys, each once) to `vecs` (normalised here) and `stamps` (µs). `fresh`:
        ids the view does not hold (a full load: the caller rebuilds the index once, at the end)."""
        if len(want) == 0:
            return 0
        rows = np.full(len(want), -1, dtype=np.int64) if fresh else self.index.find(self.key, self.n, want)
        new = np.flatnonzero(rows < 0)
        self.reserve(self.n + len(new), dim)
        rows[new] = np.arange(self.n, self.n + len(new))
        self.key[rows[new]] = want[new]
        self.n += len(new)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        self.matrix[rows] = np.divide(vecs, norms, out=vecs.copy(), where=norms > 0)
        self.stamp[rows] = stamps
        top = int(stamps.max())
        if top != NO_STAMP:
            newest = EPOCH + dt.timedelta(microseconds=top)
            if self.watermark is None or newest > self.watermark:
                self.watermark = newest
        if self.generation:
            self.changed = np.union1d(self.changed, rows[rows < self.base_rows])
        elif self.int8 is not None:
            self.int8.set_rows(rows, self.matrix[rows])
        if not fresh and not self.generation and self.index.tail_rows(self.n) > max(4096, self.n // 32):
            self.index = KeyIndex.rebuilt(self.key, self.n)
        return len(want)

    def export(self, dim: int) -> tuple[dict[str, np.ndarray | Filled], float]:
        """The arrays of a generation holding this state, and its int8 codes' largest rounded norm. A private
        copy's rows are written in id order (`_export_in_id_order`); a shared one's keep their rows."""
        n = self.n
        int8 = self.int8
        if int8 is None or not self.generation:
            return self._export_in_id_order(dim)
        index = KeyIndex.rebuilt(self.key, n)
        arrays: dict[str, np.ndarray | Filled] = {"matrix": self.matrix, "key": self.key, "stamp": self.stamp}
        arrays |= {"order": index.order, "first": index.first}
        base = int8.export(self.base_rows)
        tail = n - self.base_rows
        terms = {
            k: np.concatenate([base[k], np.zeros(tail, dtype=base[k].dtype)]) for k in ("offset", "scale", "error")
        }
        overlay = self.overlay()
        norm = int8.rounded_norm_max
        codes = np.zeros((0, dim), dtype=np.int8)
        if len(overlay):
            codes, terms["offset"][overlay], terms["scale"][overlay], terms["error"][overlay], top = quantize(
                self.matrix[overlay]
            )
            # rounded from float16 rows: the bound must also cover their distance from the float32 vectors
            terms["error"][overlay] += np.float32(score_error(self.matrix))
            norm = max(norm, top)

        def fill(out: np.ndarray) -> None:
            int8.write_rows8(out, self.base_rows)
            out[self.base_rows :] = 0
            out[overlay] = as_rows8(codes)

        return arrays | terms | {"rows8": Filled((n, dim), np.uint8, fill)}, norm

    def _export_in_id_order(self, dim: int) -> tuple[dict[str, np.ndarray | Filled], float]:
        """A private copy's arrays with its rows in id order: the candidate sets number the products in that order
        too, so the rows of a search's products come out sorted (candidates.rows_in_copy skips a sort of them)."""
        n = self.n
        order = id_order(self.key[:n])
        keys = self.key[order]
        index = KeyIndex.rebuilt(keys, n)
        arrays: dict[str, np.ndarray | Filled] = {"matrix": gathered(self.matrix, order), "key": keys}
        arrays |= {"stamp": self.stamp[order], "order": index.order, "first": index.first}
        int8 = self.int8
        if int8 is None:
            empty = np.zeros(0, dtype=np.float32)
            rows8 = np.zeros((0, dim), dtype=np.uint8)
            return arrays | {"rows8": rows8, "offset": empty.astype(np.int32), "scale": empty, "error": empty}, 0.0
        terms = {name: values[order] for name, values in int8.export(n).items()}
        rows = Filled((n, dim), np.uint8, lambda out: int8.write_rows8(out, n, order))
        return arrays | terms | {"rows8": rows}, int8.rounded_norm_max


def id_order(keys: np.ndarray) -> np.ndarray:
    """Rows ordered by id (keys (n, 2): first halves, then second), as `candidates.number_listings` numbers them."""
    order = np.argsort(keys[:, 0], kind="stable")
    firsts = keys[order, 0]
    if np.any(firsts[1:] == firsts[:-1]):  # two ids share their first 8 bytes
        order = np.lexsort((keys[:, 1], keys[:, 0]))
    return order
