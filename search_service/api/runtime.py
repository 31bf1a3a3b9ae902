"""What the handlers need at run time, created with the app and filled in by its lifespan: the asyncpg pool
(pgvector codec on every connection, the engine's settings and the statement timeout from each connection's
start), the encoder (loaded and warmed in the background), the in-memory vector copy and its upkeep, and the
readiness report. `/healthz` answers at once; `/readyz` turns ready when all of them are usable."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy

from embeddings.encoder import Encoder
from search_service.api import refresh
from search_service.api.errors import Unavailable
from search_service.api.log_repeats import RepeatedWarning
from search_service.api.metrics import Metrics
from search_service.api.model_load import load_and_warm
from search_service.api.pool_connections import ApiConnection, NotMigrated, init_connection
from search_service.api.query_cache import QueryEmbeddingCache
from search_service.api.readiness import check_key_at_start, readiness_of
from search_service.api.schemas import Readiness
from search_service.api.shared_state import SharedState
from search_service.db import migrate, sql
from search_service.db.faults import silent_at_connect
from search_service.engine import search as engine
from search_service.engine.batcher import MicroBatcher
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.stats import StatsCache
from search_service.engine.store_locator import StoreLocator
from search_service.engine.suggest_index import SuggestIndex
from search_service.engine.vectors import VectorCache
from search_service.ingest.listing_writes import StoreGates
from search_service.settings import Settings

log = logging.getLogger("search_service.api")
CONNECT_TIMEOUT_S = 10.0  # a pool's new connection, the database silent
VECTORS_FIRST_S = 120.0  # a replacement worker's wait for its vector copy (mapped: ~1 s; loaded alone at 1M: ~50 s)
# A database away fails every request that needs a new connection: one line a minute (it was one a request).
unreachable_log = RepeatedWarning(log)


@dataclass
class Runtime:
    """What handlers need, created with the app and filled in by its lifespan."""

    settings: Settings
    cache: QueryEmbeddingCache
    metrics: Metrics
    pool: asyncpg.Pool | None = None
    generic_pool: asyncpg.Pool | None = None  # connections that plan a statement once: `generic_connection()`
    generic_pool_failed: bool = False  # an acquire from it failed (logged once)
    encoder: Encoder | None = None
    model_ready: bool = False
    model_error: str | None = None
    database_error: str | None = None
    database_failure: Exception | None = None  # why the pool could not be made (NotMigrated: readiness says so)
    wrong_key_logged: bool = False  # the start or readiness found the key opens no stored secret, and logged it
    head_revision: str = ""
    schema_ahead_logged: bool = False  # readiness found the database migrated past this code, and said so in the log
    may_write: bool = False  # readiness found the role has the rights the API's writes need: not asked again
    vectors: VectorCache | None = None  # None: turned off (PLINQY_VECTOR_CACHE_MAX=0) or too many vectors
    vectors_state: str = "loading"  # loading | ok | disabled | failed
    # building | ok | off (over PLINQY_SUGGEST_INDEX_MAX): said by /readyz, not waited for (the statements answer)
    suggestions_state: str = "building"
    vectors_error: str | None = None
    stats: StatsCache = field(default_factory=StatsCache)  # the plan choice's catalogue statistics
    labels: ProductLabels = field(default_factory=ProductLabels)  # facet counts in memory once loaded
    suggestions: SuggestIndex = field(default_factory=SuggestIndex)  # suggestions in memory once loaded
    stock: StockBuckets = field(default_factory=StockBuckets)  # the facet sets' listings in memory once loaded
    stores: StoreLocator = field(default_factory=StoreLocator)  # the stores' places, once loaded (store_locator.py)
    shared: SharedState = field(default_factory=SharedState)  # preloaded before a fork
    store_gates: StoreGates = field(default_factory=StoreGates)  # listing writers of a store, in turn
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    collector_was_enabled: bool = True  # the garbage collector's state when the runtime started
    # Concurrent cache misses share one model call (a batch of short texts costs little more than one).
    embed_batcher: MicroBatcher[str, np.ndarray] | None = None
    embeddings_in_flight: int = 0  # searches' query embeddings started and not resolved (`start_embedding`)

    @classmethod
    def build(cls, settings: Settings, encoder: Encoder | None = None, shared: SharedState | None = None) -> Runtime:
        """A runtime with its query cache and metrics (which read the runtime's pool and vector copy); `shared`:
        the supervisor's candidate sets, labels and listing buckets, taken over (shared_state.py)."""
        cache = QueryEmbeddingCache(settings.query_cache_size)
        holder: list[Runtime] = []
        metrics = Metrics(
            cache,
            lambda: holder[0].pool if holder else None,
            lambda: holder[0].vectors if holder else None,
        )
        runtime = cls(
            settings=settings, cache=cache, metrics=metrics, encoder=encoder, shared=shared or SharedState(),
            store_gates=StoreGates(settings.pool_max_size),
        )  # fmt: skip
        if runtime.shared.labels is not None:
            runtime.labels = runtime.shared.labels
        if runtime.shared.stock is not None:
            runtime.stock = runtime.shared.stock
        runtime.head_revision = migrate.head_revision()
        sql.check_all()  # every SQL file parses and each block's header matches its body, or start-up fails
        holder.append(runtime)
        return runtime

    # --- embedding
    def check_model(self) -> Encoder:
        """The loaded encoder, or Unavailable (HTTP 503) while it loads or after it failed to."""
        encoder = self.encoder
        if encoder is None or not self.model_ready:
            raise Unavailable("model", self.model_error or "the model is still loading; retry shortly")
        return encoder

    async def embed(self, text: str) -> np.ndarray:
        encoder = self.check_model()

        batcher = self.embed_batcher
        assert batcher is not None  # set with model_ready

        async def compute() -> np.ndarray:
            started = time.perf_counter()
            vector = await batcher.submit(text)
            self.metrics.embed_latency.observe(time.perf_counter() - started)
            return np.asarray(vector, dtype=np.float32)

        hits_before = self.cache.hits
        vector = await self.cache.get_or_compute(QueryEmbeddingCache.key(encoder.model_id, text), compute)
        self.metrics.cache_lookups.labels("hit" if self.cache.hits > hits_before else "miss").inc()
        return vector

    def start_embedding(self, text: str) -> asyncio.Future[np.ndarray]:
        """A search's query embedding, started now (the search's database work overlaps it), and counted."""
        embedding = asyncio.ensure_future(self.embed(text))
        self.embeddings_in_flight += 1

        def resolved(_: asyncio.Future[np.ndarray]) -> None:
            self.embeddings_in_flight -= 1

        embedding.add_done_callback(resolved)
        return embedding

    async def embedding_first(self, embedding: asyncio.Future[np.ndarray] | None) -> None:
        """Wait for a query's embedding before the search takes a connection when the encoder is busy with another
        batch, or when more embeddings are in flight than the pool has connections to spare. A search plans its
        vector side while its query is embedded (1-5 ms saved, performance.md), but behind a batch the wait is at
        least that batch's model call, and a connection held idle meanwhile starved the others: a burst of
        distinct queries with the model busy for seconds got 503 pool_exhausted with the database idle. A lone
        search (c=1: the encoder idle, a connection to spare) overlaps as before."""
        if embedding is None or embedding.done():
            return
        batcher, pool = self.embed_batcher, self.pool
        spare = 0 if pool is None else pool.get_idle_size() + pool.get_max_size() - pool.get_size()
        if (batcher is not None and batcher.busy) or self.embeddings_in_flight > spare:
            await asyncio.wait([embedding])  # its outcome, an error included, is the engine's to read

    # --- database
    @functools.cached_property
    def engine_config(self) -> engine.EngineConfig:
        """The engine's settings with the API's statement timeout, which every pool connection carries from its
        start (`_connect`), so a search opens no transaction of its own."""
        return replace(
            engine.DEFAULT_CONFIG,
            statement_timeout_ms=self.settings.statement_timeout_ms,
            connection_has_settings=True,
        )

    @contextlib.asynccontextmanager
    async def connection(self, budget_s: float | None = None) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection, bounded in time: the acquire waits at most `pool_acquire_timeout_s`, and the block
        a few statement timeouts (client side: a server not answering); a `budget_s` bounds both together."""
        pool = self.pool
        if pool is None:
            if isinstance(self.database_failure, NotMigrated):
                raise Unavailable("schema", str(self.database_failure))
            # the cause (a host, a database's name) is the operator's: logged, and on /readyz
            raise Unavailable("database", "the database is unavailable; retry shortly", self.database_error)
        settings, began = self.settings, time.monotonic()
        try:
            conn = await pool.acquire(timeout=min(settings.pool_acquire_timeout_s, budget_s or float("inf")))
        except TimeoutError:
            raise Unavailable("pool_exhausted", "all database connections are busy; retry shortly") from None
        except NotMigrated as exc:
            raise Unavailable("schema", str(exc)) from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # a new connection refused: a 500
            cause = f"cannot connect to the database ({type(exc).__name__}: {exc})"
            unreachable_log.warning("cannot connect to the database (%s: %s)", type(exc).__name__, exc)
            raise Unavailable("database", "the database is unavailable; retry shortly", cause) from None
        # a given budget is what is left after the wait (readyz behind searches took 2.9 s of its 2.5)
        budget_s = budget_s - (time.monotonic() - began) if budget_s else 3 * settings.statement_timeout_ms / 1000 + 1
        try:
            async with asyncio.timeout(budget_s):
                yield conn
        except TimeoutError:
            # a server that does not answer: releasing resets the connection, a round trip it would wait 5 s for
            # before the 503 went out (12 s with a 2 s statement timeout, not the budget's 7)
            conn.terminate()
            raise Unavailable("statement_timeout", "the database took too long; retry shortly") from None
        finally:
            await pool.release(conn, timeout=5)

    @contextlib.asynccontextmanager
    async def transaction(self, budget_s: float | None = None) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection (as `connection()`) in a read-only transaction (its statements each run under the
        statement timeout every pool connection carries)."""
        async with self.connection(budget_s) as conn, conn.transaction(readonly=True):
            yield conn

    @contextlib.asynccontextmanager
    async def spare_connection(self) -> AsyncIterator[PoolConnectionProxy[Any] | None]:
        """A second connection for one request when the pool can spare one, else None (the request then does
        its work on one connection): extra parallelism, never a wait for it. One idle connection is left for
        the next request unless the pool may still grow (under saturation, spares cost the first acquires)."""
        pool = self.pool
        if pool is None:
            yield None
            return
        idle = pool.get_idle_size()
        if idle == 0 or (idle == 1 and pool.get_size() >= pool.get_max_size()):
            yield None
            return
        async with self.connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def generic_connection(self) -> AsyncIterator[PoolConnectionProxy[Any] | None]:
        """A connection whose statements reuse one generic plan (engine.generic_plan_settings), for the search's
        statements that are planned for longer than they run; None when the pool has none to give at once (those
        statements then run, planned each time, on the search's own connection): never a wait."""
        pool = self.generic_pool
        if pool is None or (pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size()):
            yield None
            return
        try:
            conn = await pool.acquire(timeout=self.settings.pool_acquire_timeout_s)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # max_connections, say
            level = logging.DEBUG if self.generic_pool_failed else logging.WARNING  # once, not per search
            log.log(level, "no generic-plan connection (%s): searches plan on their own connections", exc)
            self.generic_pool_failed = True
            yield None
            return
        try:
            yield conn
        finally:
            await pool.release(conn, timeout=5)

    # --- readiness
    async def readiness(self) -> Readiness:
        return await readiness_of(self)

    # --- lifecycle
    async def start(self) -> None:
        self.collector_was_enabled = gc.isenabled()
        self.tasks.append(asyncio.create_task(self._connect(), name="plinqy-db-pool"))
        self.tasks.append(asyncio.create_task(self._load_model(), name="plinqy-model"))
        if self.settings.vector_cache_max > 0:
            shared_dir = self.settings.vector_copy.shared_dir  # scale: one copy a machine
            self.vectors = VectorCache(
                shared_dir=shared_dir,
                rank_threads=self.settings.rank_threads,
                native_kernel=self.settings.native_kernel,
                rank_linger=self.settings.rank_linger,
            )
            if self.shared.candidates is not None:
                self.vectors.candidates = self.shared.candidates
            self.tasks.append(asyncio.create_task(refresh.maintain_vectors(self), name="plinqy-vectors"))
        else:
            self.vectors_state = "disabled"
        labels = refresh.keep_fresh(
            self, "the facet labels", functools.partial(refresh.refresh_labels, self), lambda: self.labels.loaded, 1.0
        )
        self.tasks.append(asyncio.create_task(labels, name="plinqy-facet-labels"))
        index = refresh.keep_fresh(
            self,
            "the suggestion index",
            functools.partial(refresh.refresh_suggestions, self),
            lambda: self.suggestions.loaded,
            10.0,
        )
        self.tasks.append(asyncio.create_task(index, name="plinqy-suggestion-index"))
        if self.settings.store_locator:
            places = refresh.keep_fresh(self, "the store places", self.stores.refresh, lambda: self.stores.loaded, 1.0)
            self.tasks.append(asyncio.create_task(places, name="plinqy-store-places"))

    async def first_answers(self, timeout_s: float = 10.0, vectors_first: bool = False) -> None:
        """Wait until the database pool and the model have each been tried once (at most `timeout_s`): a worker that
        `serve` starts again after a crash takes requests from the shared socket once it can answer them (it
        answered 503 for ~2.5 s while its sibling was ready), and one whose database is down starts at once.
        `vectors_first` (such a worker): also until its vector copy is mapped or failed (at most VECTORS_FIRST_S),
        since without it searches take the approximate HNSW plan (it answered them for ~1 s after 'serving')."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            tried_db = self.pool is not None or self.database_error is not None
            if tried_db and (self.model_ready or self.model_error is not None):
                break
            await asyncio.sleep(0.02)
        deadline = time.monotonic() + VECTORS_FIRST_S
        while vectors_first and self.pool is not None and self.vectors_state == "loading":
            if time.monotonic() > deadline:
                log.warning("the vector copy is not loaded after %g s: serving without it meanwhile", VECTORS_FIRST_S)
                break
            await asyncio.sleep(0.02)
        if self.pool is not None:
            await check_key_at_start(self)  # a wrong key in the log before the server says it is serving

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.collector_was_enabled:
            gc.enable()  # the loops pause it across awaits (refresh.collector_paused): none may leave it off
        pools, self.pool, self.generic_pool = (self.pool, self.generic_pool), None, None
        for pool in pools:
            if pool is None:
                continue
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, Exception):
                log.warning("the database pool did not close in time; terminating its connections")
                pool.terminate()

    async def _create_pool(self, *, generic_plans: bool = False) -> asyncpg.Pool:
        settings = self.settings
        config = self.engine_config
        engine_settings = engine.generic_plan_settings(config) if generic_plans else engine.session_settings(config)
        try:
            return await asyncpg.create_pool(
                settings.database_url,
                min_size=1 if generic_plans else min(settings.pool_min_size, settings.pool_max_size),
                max_size=settings.pool_max_size,
                init=init_connection,
                connection_class=ApiConnection,
                command_timeout=3 * settings.statement_timeout_ms / 1000 + 1,
                max_inactive_connection_lifetime=300,
                max_cacheable_statement_size=sql.CACHEABLE_STATEMENT_BYTES,
                # The search engine's settings and the statement timeout, for every statement on them.
                server_settings={
                    "application_name": "plinqy-search-api-generic" if generic_plans else "plinqy-search-api",
                    **engine_settings,
                },
                timeout=CONNECT_TIMEOUT_S,
            )
        except TimeoutError:  # asyncpg's is empty: 'cannot connect to the database (TimeoutError: )'
            raise silent_at_connect(CONNECT_TIMEOUT_S) from None

    async def _connect(self) -> None:
        """Create the pool, retrying until the database answers (readiness says why meanwhile)."""
        delay = 0.5
        while self.pool is None:
            try:
                pool = await self._create_pool()
                try:
                    self.generic_pool = await self._create_pool(generic_plans=True)
                except BaseException:
                    pool.terminate()
                    raise
                self.pool = pool
                self.database_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if refresh.being_cancelled():  # a stop's cancel surfacing as a connection's error
                    raise asyncio.CancelledError from exc
                self.database_failure = exc
                self.database_error = str(exc) if isinstance(exc, NotMigrated) else (
                    f"cannot connect to the database ({type(exc).__name__}: {exc})")  # fmt: skip
                log.warning("%s; retrying in %.1fs", self.database_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _load_model(self) -> None:
        await load_and_warm(self)  # model_load.py
