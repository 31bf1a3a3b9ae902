"""Every product vector in the API's memory, for exact (brute-force) scoring.

HNSW with the schema's m=16 / ef_construction=64 misses true neighbours on a catalogue of near-duplicate
product texts (recall@10 0.77-0.92 even at ef_search 800, some queries 0), and exact scoring inside
PostgreSQL costs ~5-10 µs per candidate (a heap fetch of a 1.5 kB row each). An in-memory copy of all
vectors ranks 100k products in ~3 ms (int8 bounds, float32 re-scoring: below); the search engine then
checks the filters in PostgreSQL, in score order (`search.py`, strategy ``exact_scan``).

PostgreSQL stays the source of truth. `ai_embedded_at` is the vectors' change stamp (a trigger moves it on every
change of ai_vector; migration 0002) and the copy remembers the highest stamp it holds, its `watermark`:
- every search also scores, in PostgreSQL, the qualifying products stamped after the watermark (vectors embedded
  since the copy was taken), so a product embedded a moment ago is found at once;
- `refresh()` (a background task of the API) pulls the changed vectors and moves the watermark. A transaction may
  stamp rows before one refresh and commit after it, below the watermark. So before each snapshot the copy reads a
  write horizon from pg_stat_activity: the start of the oldest open transaction that has written, or now. Every row
  that snapshot misses is stamped at or after that horizon, and the next refresh reads the stamps from there:
  usually the last second. A fixed look-back (`margin`, 60 s) would re-read every vector stamped within it, once a
  second per API process (during a bulk re-embed, all of the last minute's). It stays as the bound: a writer open
  for longer than it (a session left idle in a transaction) would hold the horizon back indefinitely, and where the
  horizon cannot be known (a role without pg_read_all_stats, prepared transactions, a standby) the refresh reads the
  whole look-back.
Vectors set to NULL and deleted products stay in the copy; the engine's filter (a vector, an active product) drops them.

Scoring reads the whole copy per query, so it runs on an int8 copy of it (`quantizer.py`, ~1.5 ms for 100k
instead of ~7 ms in float32) that gives an upper bound of every row's similarity; `Ranking` re-scores in float32
the rows whose bound reaches the part of the ranking a search reads, so the order it hands out is the exact
float32 order (without a usable int8 kernel the bounds are the float32 scores themselves). Queries that arrive
while one is scored in the worker thread are scored together next (`MicroBatcher`, its `linger`; rows_kernels.py).

Shared (`shared_dir`, set by `serve`): the API's processes map one copy per machine (`vector_files.py`). The first
to load writes a generation from PostgreSQL; the others map it. Each refreshes on its own, into its own copy-on-
write pages, and scores the rows changed since the generation (and the rows added) in float32; once those pass
`private_limit`, one process writes a new generation and the others move to it after refreshing it to a snapshot no
older than their own (`_share`). Row numbers never change within a process: a generation whose rows do not extend a
process's own (new products added in another order) is taken only while no ranking of this process is alive. Packed
batches are off when shared past quantizer.SHARED_PACK_MAX_ROWS: ONNX Runtime pre-packs the codes into every
process's private memory (+0.8 GB a process at 1M; ~75 MB at 100k). A refresh may overwrite rows while a query is
scored in the thread; such rows carry stamps above the watermark the search captured before asking for scores, so
the search checks them in SQL anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import asyncpg
import numpy as np
from threadpoolctl import threadpool_limits

from search_service.db.sql import statement
from search_service.engine import vector_files as files
from search_service.engine.batcher import MicroBatcher
from search_service.engine.candidates import CandidateSets
from search_service.engine.keyindex import KeyIndex, ids_from_keys, keys_of
from search_service.engine.quantizer import BOUND_SLACK, Int8Copy, Int8Unavailable
from search_service.engine.ranking import EXACT_ORDER_MAX, Ranking, highest, score_error
from search_service.engine.session import Conn
from search_service.engine.vector_load import load_all, release_freed_memory
from search_service.engine.vector_view import CopyView, as_vector, iso, stamp_us

__all__ = ["EXACT_ORDER_MAX", "SQL_PATH", "Ranking", "VectorCache", "as_vector", "highest"]

log = logging.getLogger(__name__)

SQL_PATH = Path(__file__).resolve().parent / "sql" / "vectors.sql"


class VectorCache:
    """An L2-normalised float32 copy of product_master.ai_vector, keyed by product id: private, or shared by
    the processes of a machine through `shared_dir` (see the module docstring)."""

    def __init__(
        self,
        dim: int = 384,
        margin_s: float = 60.0,
        shared_dir: Path | None = None,
        rank_threads: int = 1,
        native_kernel: bool = True,  # rows_kernels.py's native kernel where it loads
        rank_linger: float = 0.0,  # batcher.py: how long a ranking waits for company under load (0: never)
    ) -> None:
        self.dim = dim
        self.margin = dt.timedelta(seconds=margin_s)
        self.shared_dir = shared_dir
        self._dir: Path | None = None  # shared_dir's directory of this database, once known
        self._origin: str | None = None  # its product_master table (kept_copy_origin), read at the load
        self.last_refresh_stamps = 0  # stamps the last refresh read (its cost grows with them)
        self.private_floor = 2048  # see private_limit
        self.loaded = False
        self.refreshed_at: float | None = None  # time.monotonic() of the last load or refresh
        try:
            self._int8: Int8Copy | None = Int8Copy(dim, rank_threads, native_kernel)
        except Int8Unavailable as exc:
            log.warning("vector cache: scoring in float32 (%s)", exc)
            self._int8 = None
        self._view = self._private_view()
        self._live: weakref.WeakSet[Ranking] = weakref.WeakSet()  # rankings a search may still read rows of
        self.batcher: MicroBatcher[np.ndarray, Ranking] = MicroBatcher(self.rank_many, linger=rank_linger)
        self.candidates = CandidateSets()  # per store, the products in stock (candidates.py); loaded with the copy
        # Memory-bound products: OpenBLAS's extra threads only busy-wait (2-3x the CPU: 16 -> 4 ms). Process-wide.
        threadpool_limits(limits=1, user_api="blas")

    def _private_view(self) -> CopyView:
        """An empty private view; shared, with an int8 copy of its own (the prototype's stays empty)."""
        int8 = self._int8 if self._int8 is None or self.shared_dir is None else self._int8.blank()
        return CopyView(np.zeros((0, self.dim), np.float32), np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), int8)

    def __len__(self) -> int:
        return self._view.n

    @property
    def watermark(self) -> dt.datetime | None:
        return self._view.watermark

    @property
    def write_horizon_known(self) -> bool:
        """Whether the next refresh reads from a write horizon (else from the look-back: see write_horizon)."""
        return self._view.horizon is not None

    @property
    def generation(self) -> int:
        return self._view.generation

    @property
    def private_rows(self) -> int:
        return self._view.private_rows

    @property
    def private_limit(self) -> int:
        """Private rows past which a new generation is written (each costs float32 scoring per query)."""
        return max(self.private_floor, self._view.n // 200)

    @property
    def _matrix(self) -> np.ndarray:  # the rows held (tests, facet_vectors)
        return self._view.matrix[: self._view.n]

    @property
    def nbytes(self) -> int:
        return int(self._matrix.nbytes) + (0 if self._view.int8 is None else self._view.int8.nbytes)

    @property
    def scoring(self) -> str:
        return "float32" if self._int8 is None else "int8"

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
        view = self._view
        n = view.n  # a refresh may add rows meanwhile
        matrix = view.matrix[:n]
        error = score_error(matrix)  # float16 rows: similarities within it of float32's
        if view.int8 is None:
            bounds = qs @ matrix.T + error
        else:
            bounds = view.int8.upper_bounds_many(qs, n, wide=len(qs) == 1 and self.batcher.alone)
            overlay = view.overlay()
            overlay = overlay[overlay < n]
            if len(overlay):  # exact similarities bound themselves (the slack covers a different summation)
                bounds[:, overlay] = qs @ matrix[overlay].T + (BOUND_SLACK + error)
        rankings = [Ranking(matrix, q, b) for q, b in zip(qs, bounds, strict=True)]
        self._live.update(rankings)
        return rankings

    def _repack_due(self) -> bool:
        """Whether the int8 batch snapshot should be rebuilt: the rows scored outside it (set or added since)
        cost ~1 µs each per batch in numpy, a rebuild ~2.5 µs per row once. Shared: small generations only."""
        int8, n = self._view.int8, self._view.n
        return int8 is not None and int8.batches_packed and int8.unpacked_rows(n) > max(2048, n // 100)

    async def _repack(self) -> None:
        int8 = self._view.int8
        if int8 is not None and self._repack_due():
            await asyncio.to_thread(int8.pack, self._view.n)

    def whole_ranking_pays(self, subset: float) -> bool:
        """Whether a subset of this many rows is ranked faster through the int8 bounds of every row (packed: ~2 ms
        per 100k; streamed from a large shared generation: ~15 ns a row, ~4 shared by the rankings that `linger`
        batches under load) than from its own rows (float32: ~0.35 µs a row; int8: ~80 ns gathered, ~35 in place)."""
        if self._int8 is None or (int8 := self._view.int8) is None:
            return False
        in_place = 6 if self.batcher.linger and not self.batcher.alone else 2  # the native kernel's picks
        picked_cost = in_place if int8.picks_in_place else 6 if int8.scores_rows and not int8.batches_packed else 16
        return subset * picked_cost >= len(self)

    def rank_subset(self, query: np.ndarray, packed_ids: bytes | np.ndarray, whole: Ranking | None = None) -> Ranking:
        """The exact ranking of the held rows among `packed_ids` (16 bytes per id, as uuid_send gives them; or rows,
        sorted). Ids not held are left out: their vector is NULL, or newer than the copy (the search checks those
        in SQL). `whole`: this query's ranking of the whole copy, if the caller has one (it is restricted)."""
        q = self._unit_query(query)
        rows = self.rows_of(packed_ids) if isinstance(packed_ids, bytes) else packed_ids
        if whole is None and self.whole_ranking_pays(len(rows)):
            whole = self.rank(q)
        view = self._view
        if whole is not None:
            ranking = whole.restricted(rows)
        elif view.int8 is not None and view.int8.scores_rows:  # a shared generation: its int8 rows
            ranking = Ranking(view.matrix, q, view.subset_bounds(q, rows, self.batcher.alone), rows, whole_matrix=True)
        else:
            matrix = view.matrix[rows]
            ranking = Ranking(matrix, q, matrix @ q + score_error(matrix), rows)
        self._live.add(ranking)
        return ranking

    def rows_of(self, packed_ids: bytes) -> np.ndarray:
        """Rows of the held ids among `packed_ids` (16 bytes each, repeats allowed), each once (keyindex.py)."""
        view = self._view
        return view.index.rows_of(view.key, view.n, packed_ids)

    async def rank_batched(self, query: np.ndarray) -> Ranking:
        """`rank()` in a worker thread, with the queries that arrive meanwhile ranked in the next batch (the query
        checked here, so a malformed one cannot fail the rest of its batch)."""
        return await self.batcher.submit(self._unit_query(query))

    def ids_of(self, rows: np.ndarray) -> list[UUID]:
        return ids_from_keys(self._view.key[np.asarray(rows, dtype=np.int64)])

    # --- writing
    def _apply(self, records: list[asyncpg.Record]) -> int:
        return self._view.apply(records, self.dim)

    async def _write_horizon(self, conn: Conn) -> dt.datetime | None:
        """write_horizon, read before the caller's snapshot; None when it cannot be known (also inside a
        transaction the caller opened: its snapshot may be older than this reading)."""
        if conn.is_in_transaction():
            return None
        row = await conn.fetchrow(statement("engine/vectors", "write_horizon").sql)
        return row["horizon"] if row is not None and row["complete"] else None

    async def _load_view(self, conn: Conn, batch: int) -> CopyView:
        view = self._private_view()
        horizon = await self._write_horizon(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await load_all(conn, view, self.dim, batch)
        view.horizon = horizon
        return view

    async def load(self, conn: Conn, batch: int = 5000) -> int:
        """Read every vector (a cursor in one snapshot), or map the machine's shared generation and refresh
        it; returns the number held."""
        started = time.perf_counter()
        if self.shared_dir is not None:
            await self._load_shared(conn, batch)
        else:
            self._view = await self._load_view(conn, batch)
        await self._repack()
        # sets loaded already (a supervisor's, api/shared_state.py) are brought up to date
        await (self.candidates.load(conn) if self.candidates.snapshot is None else self.candidates.refresh(conn))
        release_freed_memory()  # the load's rows (every listing, grouped by store) leave free heap behind
        self.loaded = True
        self.refreshed_at = time.monotonic()
        log.info(
            "vector cache: %d vectors (%.0f MiB, %s scoring, generation %d) ready in %.2fs",
            len(self),
            self.nbytes / 2**20,
            self.scoring,
            self.generation,
            time.perf_counter() - started,
        )
        return len(self)

    async def refresh(self, conn: Conn) -> int:
        """Pull the vectors changed since the last load or refresh; returns how many were updated. Shared:
        then write a new generation, or move to one another process wrote (`_share`)."""
        if not self.loaded:
            return await self.load(conn)
        updated = await self._refresh_view(conn, self._view)
        await self._repack()
        await self.candidates.refresh(conn)
        if self._dir is not None:
            await self._share(conn)
        self.refreshed_at = time.monotonic()
        return updated

    async def _refresh_view(self, conn: Conn, view: CopyView) -> int:
        """A row the last snapshot did not see is stamped no earlier than the write horizon read before it;
        without one, the stamps of the `margin` before the watermark are read again."""
        since = dt.datetime.min.replace(tzinfo=dt.UTC)
        if view.watermark is not None:
            since = view.watermark - self.margin
        if view.horizon is not None:
            # No earlier than the look-back: a session left open after a write would hold the horizon back.
            since = max(since, view.horizon - dt.timedelta(microseconds=1))  # the statement keeps stamps > since
        horizon = await self._write_horizon(conn)
        stamps_of, by_id = (statement("engine/vectors", n) for n in ("vectors_changed_stamps", "vectors_by_id"))
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            stamps = await conn.fetch(stamps_of.sql, *stamps_of.bind(since=since))
            rows = view.index.find(view.key, view.n, keys_of([r["id"] for r in stamps]))
            theirs = np.array([stamp_us(r["ai_embedded_at"]) for r in stamps], dtype=np.int64)
            held = view.stamp[np.maximum(rows, 0)] if view.n else theirs
            differs = (rows < 0) | (held != theirs)
            changed = [stamps[i]["id"] for i in np.flatnonzero(differs)]
            records = await conn.fetch(by_id.sql, *by_id.bind(ids=changed)) if changed else []
        view.horizon = horizon
        self.last_refresh_stamps = len(stamps)
        return view.apply(records, self.dim)

    # --- sharing (see the module docstring and vector_files.py)
    def _adopt(self, generation: files.Generation) -> CopyView:
        """A view of a mapped generation (its own int8 scorer: in-flight rankings keep the old one)."""
        a, meta = generation.arrays, generation.meta
        int8 = None if self._int8 is None else self._int8.sharing(a, meta.rounded_norm_max)
        return CopyView(
            a["matrix"],
            a["key"],
            a["stamp"],
            int8,
            n=meta.rows,
            index=KeyIndex(a["order"], a["first"]),
            watermark=meta.stamp("watermark"),
            horizon=meta.stamp("horizon"),
            generation=meta.number,
            base_rows=meta.rows,
        )

    def _write(self, directory: Path, view: CopyView) -> files.Generation:
        """Write `view` as the next generation (the caller holds the directory's lock) and map it."""
        arrays, norm = view.export(self.dim)
        meta = files.GenerationMeta(0, view.n, self.dim, iso(view.watermark), iso(view.horizon), norm, self._origin)
        return files.write_generation(directory, meta, arrays, capacity=view.n + max(4096, view.n // 16))

    async def _directory(self, conn: Conn) -> Path:
        if self._dir is None:
            assert self.shared_dir is not None
            identity = await conn.fetchval(statement("engine/vectors", "database_identity").sql)
            self._dir = files.database_dir(self.shared_dir, identity)
        return self._dir

    async def _usable(self, conn: Conn, directory: Path) -> files.Generation | None:
        [kept] = await conn.fetch(statement("engine/vectors", "kept_copy_origin").sql)  # an aggregate: one row
        self._origin = kept["origin"]  # the table the generations this process writes come from
        return files.usable_generation(directory, self.dim, kept["newest"], self._origin)

    async def _load_shared(self, conn: Conn, batch: int) -> None:
        """Map the newest generation, or load from PostgreSQL and write one, under the directory's lock (the
        other processes wait for it, then map it); then refresh to now."""
        directory = await self._directory(conn)
        fd = await asyncio.to_thread(files.acquire, directory)
        try:
            generation = await self._usable(conn, directory)
            if generation is None:
                loaded = await self._load_view(conn, batch)
                generation = await asyncio.to_thread(self._write, directory, loaded)
                del loaded
                release_freed_memory()
        finally:
            if fd is not None:
                os.close(fd)
        view = self._adopt(generation)
        await self._refresh_view(conn, view)
        self._view = view

    async def _share(self, conn: Conn) -> None:
        """Move to a newer generation once it is refreshed past this process's view, or write one when this
        view holds more than `private_limit` private rows (or outgrew its generation's room)."""
        assert self._dir is not None
        view = self._view
        found = files.latest_meta(self._dir)
        if found is not None and found[1].number > view.generation:
            try:
                candidate = self._adopt(files.open_generation(*found))
            except FileNotFoundError:  # unlinked by a newer one meanwhile: taken at a next refresh
                return
            await self._refresh_view(conn, candidate)
            self._swap(view, candidate)
            return
        if view.private_rows <= self.private_limit and not view.grown:
            return
        fd = files.acquire(self._dir, blocking=False)
        if fd is None:  # another process writes one: taken at a next refresh
            return
        try:
            generation = await asyncio.to_thread(self._write, self._dir, view)
        finally:
            os.close(fd)
        self._view = self._adopt(generation)

    def _swap(self, view: CopyView, candidate: CopyView) -> None:
        """A search may hold rows of `view` (it maps them to ids later): take `candidate` if its rows extend
        them, or once no ranking is alive; else stay (a next refresh tries again)."""
        extends = candidate.n >= view.n and np.array_equal(candidate.key[: view.n], view.key[: view.n])
        if extends or not self._live:
            self._view = candidate
