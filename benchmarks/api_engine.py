"""The search engine set up as one API worker runs it, for the benchmarks' in-process ("SQL-only") part.

`plinqy-search serve` maps a shared generation of the vectors (int8 rows scored by the rows kernels, a lone
search on `PLINQY_RANK_THREADS` threads), places the stores in memory (`StoreLocator`), gives a search a second
connection of generic plans (each statement planned once) for its first and last statements and its keyword side,
and runs on connections that carry the engine's settings from their start (no transaction a search). A private
float32 copy on one plain connection measured another engine: at 1M on the AMD machine its packed int8 snapshot
cost ~130 ms of CPU a query where the API's rows kernel takes ~17; custom plans on every connection, the
statements' planning (rank_keyword's ~3 ms at 100k) that the API's generic-plan pool skips.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from search_service.db.sql import CACHEABLE_STATEMENT_BYTES
from search_service.engine.search import (
    DEFAULT_CONFIG,
    EngineConfig,
    SearchParams,
    SearchResult,
    generic_plan_settings,
    search,
)
from search_service.engine.search import session_settings as engine_session_settings
from search_service.engine.stats import StatsCache
from search_service.engine.store_locator import StoreLocator
from search_service.engine.vectors import VectorCache
from search_service.settings import Settings


@dataclass
class ApiEngine:
    """The engine's state and connections as an API worker holds them (`open_api_engine`)."""

    conn: asyncpg.Connection
    keyword_conn: asyncpg.Connection
    vectors: VectorCache
    stores: StoreLocator
    stats: StatsCache
    config: EngineConfig
    shared_dir: Path
    rank_threads: int

    async def search(self, params: SearchParams, query_vector: np.ndarray) -> SearchResult:
        """`engine.search` as the API's search route calls it (api/routes/search.py: the scope, the page and the
        keyword side on the connection of generic plans)."""
        keyword_conn = self.keyword_conn if params.mode != "semantic" else None
        return await search(
            self.conn,
            params,
            query_vector,
            self.config,
            vectors=self.vectors,
            keyword_conn=keyword_conn,
            stats=self.stats,
            stores=self.stores,
            context_conn=self.keyword_conn,
        )

    def info(self, load_s: float) -> dict[str, Any]:
        return {
            "vectors": len(self.vectors),
            "mib": self.vectors.nbytes / 2**20,
            "load_s": load_s,
            "form": "shared generation (as serve)",
            "rank_threads": self.rank_threads,
            "stores_in_memory": len(self.stores),
        }

    async def close(self) -> None:
        gc.unfreeze()
        for conn in (self.conn, self.keyword_conn):
            await conn.close()
        shutil.rmtree(self.shared_dir, ignore_errors=True)


async def _connect(url: str, config: EngineConfig, generic_plans: bool = False) -> asyncpg.Connection:
    settings = generic_plan_settings(config) if generic_plans else engine_session_settings(config)
    conn = await asyncpg.connect(
        url,
        server_settings=settings,
        max_cacheable_statement_size=CACHEABLE_STATEMENT_BYTES,
    )
    await register_vector(conn)
    return conn


async def open_api_engine(url: str, settings: Settings) -> tuple[ApiEngine, dict[str, Any]]:
    """Connections with the API's settings, the vectors mapped from a generation written for this run (removed by
    `close`), the stores in memory; then the objects loaded so far are kept out of the collector's passes, as
    `serve` freezes them before it forks (a collection over the benchmark's ground truth would land in a search)."""
    config = replace(DEFAULT_CONFIG, statement_timeout_ms=settings.statement_timeout_ms, connection_has_settings=True)
    conn = await _connect(url, config)
    keyword_conn = await _connect(url, config, generic_plans=True)  # the API's generic-plan pool
    shared_dir = Path(tempfile.mkdtemp(prefix="bench-vectors-"))
    # loaded on a connection of their own without the statement timeout, as the API's state connection does
    # (api/refresh.py): reading every vector and listing at 1M takes longer than a search may
    state = await _connect(url, replace(config, statement_timeout_ms=None))
    try:
        started = time.perf_counter()
        vectors = VectorCache(
            shared_dir=shared_dir,
            rank_threads=settings.rank_threads,
            native_kernel=settings.native_kernel,
            rank_linger=settings.rank_linger,
        )
        await vectors.load(state)
        load_s = time.perf_counter() - started
        stores = StoreLocator()
        await stores.load(state)
    finally:
        await state.close()
    engine = ApiEngine(conn, keyword_conn, vectors, stores, StatsCache(), config, shared_dir, settings.rank_threads)
    gc.collect()
    gc.freeze()
    return engine, engine.info(load_s)
