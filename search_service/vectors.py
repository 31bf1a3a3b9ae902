"""Every product vector in the API's memory, for exact (brute-force) scoring.

HNSW with the schema's m=16 / ef_construction=64 misses true neighbours on a catalogue of near-duplicate
product texts (recall@10 0.77-0.92 even at ef_search 800, some queries 0), and exact scoring inside
PostgreSQL costs ~5-10 µs per candidate (a heap fetch of a 1.5 kB row each). A float32 matrix of all
vectors scores 100k products in ~7 ms on two cores; the search engine then checks the filters in
PostgreSQL, in score order (`search.py`, strategy ``exact_scan``).

PostgreSQL stays the source of truth. `ai_embedded_at` is the vectors' change stamp (a trigger moves it on
every change of ai_vector; migration 0002) and the copy remembers the highest stamp it holds, its
`watermark`:
- every search also scores, in PostgreSQL, the qualifying products stamped after the watermark (vectors
  embedded since the copy was taken), so a product embedded a moment ago is found at once;
- `refresh()` (a background task of the API) pulls the changed vectors and moves the watermark. It re-reads
  the stamps of the last `margin` seconds and compares them with its own, so a transaction that stamped
  rows before the previous refresh but committed after it is caught on the next one.
Vectors set to NULL and deleted products stay in the copy; the engine's filter drops them (it requires
a vector and an existing, active product).

Scoring is memory-bound (the whole matrix is read per query), so concurrent queries are batched: while one
matrix product runs in a worker thread, the queries that arrive wait for the next one, which scores them
all in a single pass over the matrix (a matrix-matrix product costs about what one matrix-vector product
does). A lone query is scored at once.
A refresh may overwrite rows while a product runs in the thread; such rows carry stamps above the watermark
the search captured before asking for scores, so the search checks them in SQL anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy

from embeddings.sqlblocks import load_blocks
from search_service.batcher import MicroBatcher

log = logging.getLogger(__name__)

SQL_PATH = Path(__file__).resolve().parent / "sql" / "vectors.sql"
SCORE_BLOCK_ROWS = 2048  # 3 MiB of float32 x 384: stays in cache while every query of a batch scores it
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def as_vector(value: Any) -> np.ndarray:
    """A float32 numpy vector from what pgvector's asyncpg codec returns (Vector or ndarray) or a sequence."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


class VectorCache:
    """An in-memory, L2-normalised float32 copy of product_master.ai_vector, keyed by product id."""

    def __init__(self, dim: int = 384, margin_s: float = 60.0) -> None:
        self.dim = dim
        self.margin = dt.timedelta(seconds=margin_s)
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[UUID] = []
        self._row_of: dict[UUID, int] = {}
        self._stamp_of: dict[UUID, dt.datetime | None] = {}
        self.watermark: dt.datetime | None = None  # highest ai_embedded_at held; None: none held
        self.loaded = False
        self.refreshed_at: float | None = None  # time.monotonic() of the last load or refresh
        self.batcher: MicroBatcher[np.ndarray, np.ndarray] = MicroBatcher(
            lambda queries: list(self._score_many(np.stack(queries)))
        )

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        return int(self._matrix.nbytes)

    # --- reading
    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of every held vector to `query` (row order)."""
        return self._score_many(np.asarray(query, dtype=np.float32)[None, :])[0]

    def _score_many(self, queries: np.ndarray) -> np.ndarray:
        """(b, dim) queries → (b, n) similarities: one pass over the matrix for the whole batch.

        Block by block, each block scored for every query while it is in cache (OpenBLAS's sgemm packs the
        whole matrix first and is slower here than b matrix-vector products: measured 19-24 ms vs 11-14 ms
        for b = 2-4 over 100k x 384)."""
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        queries = queries / np.where(norms > 0, norms, 1.0)
        matrix = self._matrix[: len(self._ids)]
        if len(queries) == 1:
            return (matrix @ queries[0])[None, :]
        out = np.empty((len(queries), len(matrix)), dtype=np.float32)
        for start in range(0, len(matrix), SCORE_BLOCK_ROWS):
            block = matrix[start : start + SCORE_BLOCK_ROWS]
            for j, q in enumerate(queries):
                np.matmul(block, q, out=out[j, start : start + len(block)])
        return out

    async def scores_batched(self, query: np.ndarray) -> np.ndarray:
        """`scores()` in a worker thread, batched with the queries that arrive while a product runs."""
        q = np.asarray(query, dtype=np.float32)
        if q.shape != (self.dim,):  # checked here, so a malformed query cannot fail the rest of its batch
            raise ValueError(f"a query vector of shape {q.shape}, expected ({self.dim},)")
        return await self.batcher.submit(q)

    @staticmethod
    def top_rows(scores: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Rows ranked start..stop-1 by descending score."""
        n = len(scores)
        stop = min(stop, n)
        if start >= stop:
            return np.zeros(0, dtype=np.int64)
        if stop >= n:
            order = np.argsort(-scores, kind="stable")
        else:
            part = np.argpartition(-scores, stop - 1)[:stop]
            order = part[np.argsort(-scores[part], kind="stable")]
        return order[start:stop]

    def ids_of(self, rows: np.ndarray) -> list[UUID]:
        ids = self._ids
        return [ids[int(i)] for i in rows]

    # --- writing
    def _apply(self, records: list[asyncpg.Record]) -> int:
        if not records:
            return 0
        new = [r for r in records if r["id"] not in self._row_of]
        need = len(self._ids) + len(new)
        if need > self._matrix.shape[0]:
            grown = np.zeros((max(need, int(self._matrix.shape[0] * 1.25) + 1024), self.dim), dtype=np.float32)
            grown[: len(self._ids)] = self._matrix[: len(self._ids)]
            self._matrix = grown
        for r in records:
            vec = as_vector(r["ai_vector"])
            if vec.shape != (self.dim,):
                raise ValueError(f"product {r['id']}: a {vec.shape[0]}-dimensional vector, expected {self.dim}")
            pid = r["id"]
            row = self._row_of.get(pid)
            if row is None:
                row = self._row_of[pid] = len(self._ids)
                self._ids.append(pid)
            norm = float(np.linalg.norm(vec))
            self._matrix[row] = vec / norm if norm > 0 else vec
            stamp = r["ai_embedded_at"]
            self._stamp_of[pid] = stamp
            if stamp is not None and (self.watermark is None or stamp > self.watermark):
                self.watermark = stamp
        return len(records)

    async def load(self, conn: Conn, batch: int = 5000) -> int:
        """Read every vector (a cursor in one snapshot); returns the number held."""
        started = time.perf_counter()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = conn.cursor(load_blocks(SQL_PATH)["vectors_all"], prefetch=batch)
            chunk: list[asyncpg.Record] = []
            async for record in cursor:
                chunk.append(record)
                if len(chunk) >= batch:
                    self._apply(chunk)
                    chunk = []
            self._apply(chunk)
        self.loaded = True
        self.refreshed_at = time.monotonic()
        log.info(
            "vector cache: %d vectors (%.0f MiB) loaded in %.2fs",
            len(self),
            self.nbytes / 2**20,
            time.perf_counter() - started,
        )
        return len(self)

    async def refresh(self, conn: Conn) -> int:
        """Pull the vectors changed since the watermark (minus the margin); returns how many were updated."""
        if not self.loaded:
            return await self.load(conn)
        since = dt.datetime.min.replace(tzinfo=dt.UTC) if self.watermark is None else self.watermark - self.margin
        blocks = load_blocks(SQL_PATH)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            stamps = await conn.fetch(blocks["vectors_changed_stamps"], since)
            changed = [r["id"] for r in stamps if self._stamp_of.get(r["id"], False) != r["ai_embedded_at"]]
            records = await conn.fetch(blocks["vectors_by_id"], changed) if changed else []
        updated = self._apply(records)
        self.refreshed_at = time.monotonic()
        return updated
