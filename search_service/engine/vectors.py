"""Every product vector in the API's memory, for exact (brute-force) scoring.

HNSW with the schema's m=16 / ef_construction=64 misses true neighbours on a catalogue of near-duplicate
product texts (recall@10 0.77-0.92 even at ef_search 800, some queries 0), and exact scoring inside
PostgreSQL costs ~5-10 µs per candidate (a heap fetch of a 1.5 kB row each). An in-memory copy of all
vectors ranks 100k products in ~3 ms (int8 bounds, float32 re-scoring: below); the search engine then
checks the filters in PostgreSQL, in score order (`search.py`, strategy ``exact_scan``).

PostgreSQL stays the source of truth. `ai_embedded_at` is the vectors' change stamp (a trigger moves it on
every change of ai_vector; migration 0002) and the copy remembers the highest stamp it holds, its
`watermark`:
- every search also scores, in PostgreSQL, the qualifying products stamped after the watermark (vectors
  embedded since the copy was taken), so a product embedded a moment ago is found at once;
- `refresh()` (a background task of the API) pulls the changed vectors and moves the watermark. A transaction
  may stamp rows before one refresh and commit after it, below the watermark. So before each snapshot the copy
  reads a write horizon from pg_stat_activity: the start of the oldest open transaction that has written, or
  now. Every row that snapshot misses is stamped at or after that horizon, and the next refresh reads the stamps
  from there: usually the last second. A fixed look-back (`margin`, 60 s) would re-read every vector stamped
  within it, once a second per API process (during a bulk re-embed, all of the last minute's). It stays as the
  bound: a writer open for longer than it (a session left idle in a transaction) would hold the horizon back
  indefinitely, and where the horizon cannot be known (a role without pg_read_all_stats, prepared
  transactions, a standby) the refresh reads the whole look-back.
Vectors set to NULL and deleted products stay in the copy; the engine's filter drops them (it requires
a vector and an existing, active product).

Scoring reads the whole copy per query, so it runs on an int8 copy of it (`quantizer.py`, ~1.5 ms for
100k instead of ~7 ms in float32) that gives an upper bound of every row's similarity; `Ranking` re-scores
in float32 the rows whose bound reaches the part of the ranking a search reads, so the order it hands out
is the exact float32 order. Without a usable int8 kernel the bounds are the float32 scores themselves.
Queries that arrive while one is scored in the worker thread are scored together next (`MicroBatcher`),
in one call on a packed snapshot of the int8 codes (`Int8Copy.pack`, rebuilt in a thread once ~1 % of the
rows changed since): 4 queries over 100k rows cost 4.6 ms of CPU against 10.5 one by one.
A refresh may overwrite rows while a query is scored in the thread; such rows carry stamps above the
watermark the search captured before asking for scores, so the search checks them in SQL anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy
from threadpoolctl import threadpool_limits

from search_service.db.sql import statement
from search_service.engine.batcher import MicroBatcher
from search_service.engine.quantizer import Int8Copy, Int8Unavailable

log = logging.getLogger(__name__)

SQL_PATH = Path(__file__).resolve().parent / "sql" / "vectors.sql"
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def as_vector(value: Any) -> np.ndarray:
    """A float32 numpy vector from what pgvector's asyncpg codec returns (Vector or ndarray) or a sequence."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


EXACT_ORDER_MAX = 1024  # past this depth the ranking hands out rows by bound: no float32 re-scoring


def highest(bounds: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """Positions of the m highest `bounds` (in no order; 0 < m < len(bounds)) and the highest bound left out,
    as an argpartition of all of them gives, found by partitioning only the bounds at or above a threshold read
    from a sample: one pass over 100k bounds and a small partition take ~0.07 ms, the full one ~0.5 ms."""
    n = len(bounds)
    sample = bounds[:: max(1, n // 4096)]
    k = len(sample)
    rank = min(k - 1, 2 * (m + 1) * k // n + 16)  # twice the share wanted, and a margin: m+1 reach it, mostly
    threshold = np.partition(sample, k - 1 - rank)[k - 1 - rank]
    candidates = np.flatnonzero(bounds >= threshold)
    if len(candidates) <= m:  # the sample misled: every bound left out must be seen
        candidates = np.arange(n)
    # every bound not among the candidates is below each of theirs, so the (m+1)-th is the highest left out
    part = np.argpartition(-bounds[candidates], m)
    return candidates[part[:m]], float(bounds[candidates[part[m]]])


class Ranking:
    """One query's held rows, handed out best first, each hand-out with a similarity no row left out exceeds.

    `bounds[i]` ≥ the similarity of row i (int8 bounds, or the float32 similarities themselves). Up to
    EXACT_ORDER_MAX rows are handed out in exact float32 order: re-scoring the m rows of highest bound
    certifies every one of them whose similarity is at least the highest bound left out (x4 until enough
    are). Deeper, rows go out by bound and the threshold is the highest bound left out, which needs no
    re-scoring (a 10k-row slice would otherwise re-score 20k rows); the search checks a few more ids for it.
    """

    def __init__(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        bounds: np.ndarray,
        rows: np.ndarray | None = None,
        *,
        whole_matrix: bool = False,
    ) -> None:
        """`rows`: when the ranking covers a subset, the rows of the copy that `bounds` holds, and `matrix`
        too unless `whole_matrix` (then `matrix` is the whole copy); `top()` hands out rows of the copy."""
        self._matrix = matrix
        self._query = query
        self._bounds = bounds
        self._subset = rows
        self._matrix_rows = rows if whole_matrix else None  # local position -> matrix row; None: the same
        self._rows = np.zeros(0, dtype=np.int64)  # the certified exact prefix (local positions)
        self._scores = np.zeros(0, dtype=np.float32)
        self.rescored = 0  # rows re-scored in float32 so far (the cost of the bounds' looseness)

    def __len__(self) -> int:
        return len(self._bounds)

    def restricted(self, rows: np.ndarray) -> Ranking:
        """This ranking (of the whole copy) restricted to `rows` of the copy: their bounds, no re-scoring."""
        if self._subset is not None:
            raise ValueError("only a ranking of the whole copy can be restricted")
        return Ranking(self._matrix, self._query, self._bounds[rows], rows, whole_matrix=True)

    def top(self, stop: int) -> tuple[np.ndarray, float]:
        """(rows, threshold): the min(stop, n) best rows (best first up to EXACT_ORDER_MAX, unordered past
        it) and a similarity that no other row of the ranking exceeds (-inf once every row is handed out)."""
        local, threshold = self._top(stop)
        return (local if self._subset is None else self._subset[local]), threshold

    def _top(self, stop: int) -> tuple[np.ndarray, float]:
        n = len(self._bounds)
        if stop >= n:
            return np.argsort(-self._bounds, kind="stable"), -np.inf
        if stop > EXACT_ORDER_MAX:
            return highest(self._bounds, stop)
        if len(self._rows) < stop:
            self._certify(stop)
        return self._rows[:stop], float(self._scores[stop - 1])

    def _certify(self, stop: int) -> None:
        n = len(self._bounds)
        m = max(2 * stop, stop + 64)
        while True:
            if m >= n:
                candidates, limit = np.arange(n), -np.inf
            else:
                candidates, limit = highest(self._bounds, m)
            in_matrix = candidates if self._matrix_rows is None else self._matrix_rows[candidates]
            scores = self._matrix[in_matrix] @ self._query
            self.rescored += len(candidates)
            certified = scores >= limit
            if int(certified.sum()) >= stop or m >= n:
                rows, scores = candidates[certified], scores[certified]
                order = np.argsort(-scores, kind="stable")
                self._rows, self._scores = rows[order], scores[order]
                return
            m *= 4


class VectorCache:
    """An in-memory, L2-normalised float32 copy of product_master.ai_vector, keyed by product id."""

    def __init__(self, dim: int = 384, margin_s: float = 60.0) -> None:
        self.dim = dim
        self.margin = dt.timedelta(seconds=margin_s)
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[UUID] = []
        self._row_of: dict[UUID, int] = {}
        # The ids' 16 bytes as two big-endian uint64 per row, and the rows sorted by the first: the gather plan
        # receives its ids packed (listed_products) and maps thousands of them to rows with one searchsorted.
        self._key = np.zeros((0, 2), dtype=np.uint64)
        # (rows, their _key[:, 0]) sorted by the latter, and whether two rows share it; None: stale
        self._by_key: tuple[np.ndarray, np.ndarray, bool] | None = None
        self._stamp_of: dict[UUID, dt.datetime | None] = {}
        self.watermark: dt.datetime | None = None  # highest ai_embedded_at held; None: none held
        # The write horizon read before the last load's or refresh's snapshot: the next refresh reads the stamps
        # from it on. None: unknown (see write_horizon), the next refresh reads from watermark - margin.
        self._horizon: dt.datetime | None = None
        self.last_refresh_stamps = 0  # stamps the last refresh read (its cost grows with them)
        self.loaded = False
        self.refreshed_at: float | None = None  # time.monotonic() of the last load or refresh
        try:
            self._int8: Int8Copy | None = Int8Copy(dim)
        except Int8Unavailable as exc:
            log.warning("vector cache: scoring in float32 (%s)", exc)
            self._int8 = None
        self.batcher: MicroBatcher[np.ndarray, Ranking] = MicroBatcher(self.rank_many)
        # The copy's products with one query are memory-bound; OpenBLAS's extra threads only busy-wait, and
        # that spin cost 2-3x the process's CPU per search under load (measured: 16 -> 4 ms at 2 km).
        # Process-wide on purpose: every BLAS call of a process serving searches is one of these.
        threadpool_limits(limits=1, user_api="blas")

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def write_horizon_known(self) -> bool:
        """Whether the next refresh reads from a write horizon (else from the look-back: see write_horizon)."""
        return self._horizon is not None

    @property
    def nbytes(self) -> int:
        return int(self._matrix.nbytes) + (0 if self._int8 is None else self._int8.nbytes)

    @property
    def scoring(self) -> str:
        return "float32" if self._int8 is None else "int8"

    # --- reading
    def _unit_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        if q.shape != (self.dim,):
            raise ValueError(f"a query vector of shape {q.shape}, expected ({self.dim},)")
        norm = float(np.linalg.norm(q))
        return q / norm if norm > 0 else q

    def rank(self, query: np.ndarray) -> Ranking:
        """The exact ranking of every held row by cosine similarity to `query`."""
        return self.rank_many([query])[0]

    def rank_many(self, queries: Sequence[np.ndarray]) -> list[Ranking]:
        """`rank()` of each query, scored together: the copy is read once for the batch (int8: see `pack`)."""
        qs = np.stack([self._unit_query(q) for q in queries])
        n = len(self._ids)
        matrix = self._matrix[:n]
        bounds = qs @ matrix.T if self._int8 is None else self._int8.upper_bounds_many(qs, n)
        return [Ranking(matrix, q, b) for q, b in zip(qs, bounds, strict=True)]

    def _repack_due(self) -> bool:
        """Whether the int8 batch snapshot should be rebuilt: the rows scored outside it (set or added since)
        cost ~1 µs each per batch in numpy, a rebuild ~2.5 µs per row once."""
        n = len(self._ids)
        return self._int8 is not None and self._int8.unpacked_rows(n) > max(2048, n // 100)

    async def _repack(self) -> None:
        if self._int8 is not None and self._repack_due():
            await asyncio.to_thread(self._int8.pack, len(self._ids))

    def whole_ranking_pays(self, subset: float) -> bool:
        """Whether a subset of this many rows is ranked faster through the int8 bounds of every row (~2 ms per
        100k) than by gathering its float32 rows (~0.35 µs a row: 20k rows, a 30 MiB copy, took 13 ms)."""
        return self._int8 is not None and subset * 16 >= len(self)

    def rank_subset(self, query: np.ndarray, packed_ids: bytes, whole: Ranking | None = None) -> Ranking:
        """The exact ranking of the held rows among `packed_ids` (16 bytes per id, as uuid_send gives them).
        Ids not held are left out: their vector is NULL, or newer than the copy (the search checks those in
        SQL). `whole`: this query's ranking of the whole copy, if the caller has one (it is restricted)."""
        q = self._unit_query(query)
        rows = self.rows_of(packed_ids)
        if whole is None and self.whole_ranking_pays(len(rows)):
            whole = self.rank(q)
        if whole is not None:
            return whole.restricted(rows)
        matrix = self._matrix[rows]
        return Ranking(matrix, q, matrix @ q, rows)

    def rows_of(self, packed_ids: bytes) -> np.ndarray:
        """Rows of the held ids among `packed_ids` (16 bytes each, repeats allowed), each once, in the order of
        the ids' first 8 bytes (the ranking does not care); ids not held are dropped.

        The lookup goes by the ids' first 8 bytes, sorted (3x faster than in the given order). An id not held
        that shares them with a held one (odds ~2^-64 a pair) yields that held row: the search's filter
        statement checks it like any other row, and the id not held (no vector, or one newer than the copy,
        which the search checks in SQL anyway) is lost to nothing. Two held ids sharing them would hide one
        another, so with such twins in the copy every asked id is matched on all 16 bytes."""
        want = np.frombuffer(packed_ids, dtype=">u8").reshape(-1, 2).astype(np.uint64)
        n = len(self._ids)
        if n == 0 or len(want) == 0:
            return np.zeros(0, dtype=np.int64)
        if self._by_key is None or len(self._by_key[0]) != n:
            order = np.argsort(self._key[:n, 0], kind="stable")
            sorted_first = self._key[order, 0]
            self._by_key = (order, sorted_first, bool((sorted_first[1:] == sorted_first[:-1]).any()))
        order, sorted_first, twins = self._by_key
        if twins:
            return self._rows_of_all_bytes(want, order, sorted_first)
        first = np.sort(want[:, 0])
        first = first[np.concatenate(([True], first[1:] != first[:-1]))]
        pos = np.minimum(np.searchsorted(sorted_first, first), n - 1)
        return order[pos[sorted_first[pos] == first]].astype(np.int64, copy=False)

    def _rows_of_all_bytes(self, want: np.ndarray, order: np.ndarray, sorted_first: np.ndarray) -> np.ndarray:
        n = len(self._ids)
        pos = np.minimum(np.searchsorted(sorted_first, want[:, 0]), n - 1)
        rows = order[pos]
        hit = (sorted_first[pos] == want[:, 0]) & (self._key[rows, 1] == want[:, 1])
        row_of = self._row_of
        for i in np.flatnonzero(~hit):  # not held, or a twin: ask the dict
            rows[i] = row_of.get(UUID(bytes=want[i].astype(">u8").tobytes()), -1)
        return np.unique(rows[rows >= 0]).astype(np.int64, copy=False)

    async def rank_batched(self, query: np.ndarray) -> Ranking:
        """`rank()` in a worker thread, with the queries that arrive meanwhile ranked in the next batch."""
        # checked here, so a malformed query cannot fail the rest of its batch
        return await self.batcher.submit(self._unit_query(query))

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
            key = np.zeros((len(grown), 2), dtype=np.uint64)
            key[: len(self._ids)] = self._key[: len(self._ids)]
            self._key = key
            if self._int8 is not None:
                self._int8.reserve(len(grown))
        rows = np.empty(len(records), dtype=np.int64)
        for i, r in enumerate(records):
            vec = as_vector(r["ai_vector"])
            if vec.shape != (self.dim,):
                raise ValueError(f"product {r['id']}: a {vec.shape[0]}-dimensional vector, expected {self.dim}")
            pid = r["id"]
            row = self._row_of.get(pid)
            if row is None:
                row = self._row_of[pid] = len(self._ids)
                self._ids.append(pid)
                self._key[row] = np.frombuffer(pid.bytes, dtype=">u8")
                self._by_key = None
            norm = float(np.linalg.norm(vec))
            self._matrix[row] = vec / norm if norm > 0 else vec
            rows[i] = row
            stamp = r["ai_embedded_at"]
            self._stamp_of[pid] = stamp
            if stamp is not None and (self.watermark is None or stamp > self.watermark):
                self.watermark = stamp
        if self._int8 is not None:
            self._int8.set_rows(rows, self._matrix[rows])
        return len(records)

    async def _write_horizon(self, conn: Conn) -> dt.datetime | None:
        """write_horizon, read before the caller's snapshot; None when it cannot be known (also inside a
        transaction the caller opened: its snapshot may be older than this reading)."""
        if conn.is_in_transaction():
            return None
        row = await conn.fetchrow(statement("engine/vectors", "write_horizon").sql)
        return row["horizon"] if row is not None and row["complete"] else None

    async def load(self, conn: Conn, batch: int = 5000) -> int:
        """Read every vector (a cursor in one snapshot); returns the number held."""
        started = time.perf_counter()
        horizon = await self._write_horizon(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = conn.cursor(statement("engine/vectors", "vectors_all").sql, prefetch=batch)
            chunk: list[asyncpg.Record] = []
            async for record in cursor:
                chunk.append(record)
                if len(chunk) >= batch:
                    self._apply(chunk)
                    chunk = []
            self._apply(chunk)
        self._horizon = horizon
        await self._repack()
        self.loaded = True
        self.refreshed_at = time.monotonic()
        log.info(
            "vector cache: %d vectors (%.0f MiB, %s scoring) loaded in %.2fs",
            len(self),
            self.nbytes / 2**20,
            self.scoring,
            time.perf_counter() - started,
        )
        return len(self)

    async def refresh(self, conn: Conn) -> int:
        """Pull the vectors changed since the last load or refresh; returns how many were updated. A row that
        snapshot did not see is stamped no earlier than the write horizon read before it; without one, the
        stamps of the `margin` before the watermark are read again."""
        if not self.loaded:
            return await self.load(conn)
        since = dt.datetime.min.replace(tzinfo=dt.UTC)
        if self.watermark is not None:
            since = self.watermark - self.margin
        if self._horizon is not None:
            # No earlier than the look-back: a session left open after a write would hold the horizon, and the
            # stamps read each second would pile up behind it.
            since = max(since, self._horizon - dt.timedelta(microseconds=1))  # the statement keeps stamps > since
        horizon = await self._write_horizon(conn)
        stamps_of, by_id = (statement("engine/vectors", n) for n in ("vectors_changed_stamps", "vectors_by_id"))
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            stamps = await conn.fetch(stamps_of.sql, *stamps_of.bind(since=since))
            changed = [r["id"] for r in stamps if self._stamp_of.get(r["id"], False) != r["ai_embedded_at"]]
            records = await conn.fetch(by_id.sql, *by_id.bind(ids=changed)) if changed else []
        self._horizon = horizon
        self.last_refresh_stamps = len(stamps)
        updated = self._apply(records)
        await self._repack()
        self.refreshed_at = time.monotonic()
        return updated
