"""The litestar application: `create_app(settings)`.

Lifespan: an asyncpg pool (pgvector codec registered on every connection) and the encoder, loaded and warmed
in the background, so `/healthz` answers at once and `/readyz` turns ready when both are usable. Every pool
connection runs under the statement timeout (and the search engine's settings) from its start; a timeout, an
exhausted pool or an unreachable database become 503 + Retry-After, bad input 400, unknown ids 404 — one JSON
error format.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Server
from pgvector.asyncpg import register_vector

from embeddings.encoder import Encoder, load_encoder
from embeddings.sqlblocks import load_blocks
from search_service.api import page
from search_service.api import routes as routes_mod
from search_service.api.metrics import Metrics
from search_service.api.params import RULES, BadParameter, NotFound
from search_service.api.query_cache import QueryEmbeddingCache
from search_service.db import migrate
from search_service.engine import search as engine
from search_service.engine.batcher import MicroBatcher
from search_service.engine.stats import StatsCache
from search_service.engine.vectors import SQL_PATH as VECTORS_SQL
from search_service.engine.vectors import VectorCache
from search_service.settings import Settings

log = logging.getLogger("search_service.api")

RETRY_AFTER_S = 1
# Errors that mean "the database is busy or away", not "our SQL is wrong": 503, never 500.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.QueryCanceledError,  # statement_timeout, or cancelled by an operator
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, out of memory, disk full
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.InterfaceError,  # connection closed underneath us
    ConnectionError,
    OSError,
)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored as it was, errors included). Loading the vector
    copy creates ~100k long-lived objects (its ids, the cursor's records), and the collector's full passes over
    the growing heap took ~1 s of each worker's 5 s load (measured with a gc callback)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Unavailable(Exception):
    """503 + Retry-After: the request could not be served now but may succeed soon."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Runtime:
    """What handlers need, created with the app and filled in by its lifespan."""

    settings: Settings
    cache: QueryEmbeddingCache
    metrics: Metrics
    pool: asyncpg.Pool | None = None
    encoder: Encoder | None = None
    model_ready: bool = False
    model_error: str | None = None
    database_error: str | None = None
    head_revision: str = ""
    vectors: VectorCache | None = None  # None: turned off (PLINQY_VECTOR_CACHE_MAX=0) or too many vectors
    vectors_state: str = "loading"  # loading | ok | disabled | failed
    vectors_error: str | None = None
    stats: StatsCache = field(default_factory=StatsCache)  # the plan choice's catalogue statistics
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Concurrent cache misses share one model call (a batch of short texts costs little more than one).
    embed_batcher: MicroBatcher[str, np.ndarray] | None = None

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
    async def connection(self) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection, bounded in time: the acquire waits at most `pool_acquire_timeout_s`, and the
        whole block at most a few statement timeouts (client side, in case the server does not answer)."""
        pool = self.pool
        if pool is None:
            raise Unavailable("database", self.database_error or "the database is not connected yet")
        settings = self.settings
        try:
            conn = await pool.acquire(timeout=settings.pool_acquire_timeout_s)
        except TimeoutError:
            raise Unavailable("pool_exhausted", "all database connections are busy; retry shortly") from None
        budget_s = 3 * settings.statement_timeout_ms / 1000 + 1
        try:
            async with asyncio.timeout(budget_s):
                yield conn
        except TimeoutError:
            raise Unavailable("statement_timeout", "the database took too long; retry shortly") from None
        finally:
            await pool.release(conn, timeout=5)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection (as `connection()`) in a read-only transaction (its statements each run under the
        statement timeout every pool connection carries)."""
        async with self.connection() as conn, conn.transaction(readonly=True):
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

    async def readiness(self) -> routes_mod.Readiness:
        checks: dict[str, str] = {}
        reasons: list[str] = []
        if self.model_ready:
            checks["model"] = "ok"
        elif self.model_error:
            checks["model"] = "failed"
            reasons.append(self.model_error)
        else:
            checks["model"] = "loading"
            reasons.append("the model is loading")
        try:
            async with self.transaction() as conn:
                versions = [row["version_num"] for row in await conn.fetch(_catalog_sql("readiness"))]
            checks["database"] = "ok"
            if versions == [self.head_revision]:
                checks["migrations"] = "ok"
            else:
                checks["migrations"] = "behind"
                reasons.append(
                    f"the database is at revision {', '.join(versions) or 'none'}, the code expects "
                    f"{self.head_revision}: run `plinqy-search migrate`"
                )
        except asyncpg.UndefinedTableError:
            checks["database"] = "ok"
            checks["migrations"] = "missing"
            reasons.append("the database has no migrations applied: run `plinqy-search migrate`")
        except Unavailable as exc:
            checks["database"] = exc.reason
            reasons.append(exc.message)
        except TRANSIENT_DB_ERRORS as exc:
            checks["database"] = "unreachable"
            reasons.append(f"database: {type(exc).__name__}: {exc}")
        checks["vectors"] = self.vectors_state
        if self.vectors_state in ("loading", "failed"):
            reasons.append(self.vectors_error or "the in-memory vector copy is loading")
        status = "ready" if not reasons else "not ready"
        return routes_mod.Readiness(status=status, checks=dict(sorted(checks.items())), reasons=reasons)

    # --- lifecycle
    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._connect(), name="plinqy-db-pool"))
        self.tasks.append(asyncio.create_task(self._load_model(), name="plinqy-model"))
        if self.settings.vector_cache_max > 0:
            self.vectors = VectorCache(shared_dir=self.settings.vector_copy.shared_dir)  # scale: one copy a machine
            self.tasks.append(asyncio.create_task(self._maintain_vectors(), name="plinqy-vectors"))
        else:
            self.vectors_state = "disabled"

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, Exception):
                log.warning("the database pool did not close in time; terminating its connections")
                pool.terminate()

    async def _connect(self) -> None:
        """Create the pool, retrying until the database answers (readiness says why meanwhile)."""
        settings = self.settings
        delay = 0.5
        while self.pool is None:
            try:
                self.pool = await asyncpg.create_pool(
                    settings.database_url,
                    min_size=min(settings.pool_min_size, settings.pool_max_size),
                    max_size=settings.pool_max_size,
                    init=_init_connection,
                    connection_class=ApiConnection,
                    command_timeout=3 * settings.statement_timeout_ms / 1000 + 1,
                    max_inactive_connection_lifetime=300,
                    # The search engine's settings and the statement timeout, for every statement on them.
                    server_settings={
                        "application_name": "plinqy-search-api",
                        **engine.session_settings(self.engine_config),
                    },
                    timeout=10,
                )
                self.database_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.database_error = f"cannot connect to the database ({type(exc).__name__}: {exc})"
                log.warning("%s; retrying in %.1fs", self.database_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _maintain_vectors(self) -> None:
        """Load the in-memory vector copy once the database answers, then refresh it every
        `vector_cache_refresh_s`. Failures are retried; searches meanwhile run without the copy."""
        settings = self.settings
        delay = settings.vector_cache_refresh_s
        while True:
            await asyncio.sleep(delay)
            vectors, pool = self.vectors, self.pool
            if vectors is None:
                return
            if pool is None:
                delay = 0.2
                continue
            try:
                async with pool.acquire(timeout=settings.pool_acquire_timeout_s * 5) as conn:
                    if not vectors.loaded:
                        held = await conn.fetchval(load_blocks(VECTORS_SQL)["vector_count"])
                        if held > settings.vector_cache_max:
                            log.warning(
                                "%d product vectors exceed PLINQY_VECTOR_CACHE_MAX=%d: no in-memory copy,"
                                " large candidate sets use HNSW",
                                held,
                                settings.vector_cache_max,
                            )
                            self.vectors, self.vectors_state = None, "disabled"
                            return
                        with collector_paused():
                            await vectors.load(conn)
                    else:
                        await vectors.refresh(conn)
                self.vectors_state, self.vectors_error = "ok", None
                delay = settings.vector_cache_refresh_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.vectors_error = f"the in-memory vector copy failed to load ({type(exc).__name__}: {exc})"
                if not vectors.loaded:
                    self.vectors_state = "failed"
                log.warning("%s; retrying", self.vectors_error)
                delay = min(max(delay * 2, 1.0), 30.0)

    async def _load_model(self) -> None:
        try:
            encoder = self.encoder
            if encoder is None:
                config = replace(self.settings.encoder, threads=self.settings.query_encoder_threads)
                encoder = await anyio.to_thread.run_sync(load_encoder, config)
                self.encoder = encoder
            assert encoder is not None
            await anyio.to_thread.run_sync(encoder.encode, ["warm up the model"])
            self.embed_batcher = MicroBatcher(lambda texts: list(encoder.encode(texts)), max_batch=32)
            self.model_ready = True
            log.info("model %s loaded and warmed", encoder.model_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.model_error = f"the model failed to load ({type(exc).__name__}: {exc})"
            log.exception("model load failed")


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)


class ApiConnection(asyncpg.Connection):
    """Pool connections without the reset query on release: requests change no session state (the engine's
    settings are the connection's own from its start; no SET, LISTEN, cursors or advisory locks), so the
    default one (a round trip per request) buys nothing. An open transaction is still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


def _catalog_sql(name: str) -> Any:
    return load_blocks(routes_mod.CATALOG_SQL)[name]


# --- errors
def _error(status: int, parameter: str | None, message: str, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        {"error": {"parameter": parameter, "message": message}},
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def _runtime_of(request: Request[Any, Any, Any]) -> Runtime | None:
    runtime = request.app.state.get("runtime")
    return runtime if isinstance(runtime, Runtime) else None


def _unavailable(request: Request[Any, Any, Any], reason: str, message: str) -> Response[Any]:
    runtime = _runtime_of(request)
    if runtime is not None:
        runtime.metrics.unavailable.labels(reason).inc()
    return _error(503, None, message, {"Retry-After": str(RETRY_AFTER_S)})


def handle_bad_parameter(request: Request[Any, Any, Any], exc: BadParameter) -> Response[Any]:
    return _error(400, exc.parameter, exc.message)


def handle_not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return _error(404, exc.parameter, exc.message)


def handle_product_not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error(404, "id", "no product with this id")


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """litestar's parameter errors, in our format: the first offending parameter and what it accepts."""
    parameter: str | None = None
    detail = str(exc.detail)
    if isinstance(exc.extra, list) and exc.extra and isinstance(exc.extra[0], dict):
        first = exc.extra[0]
        parameter = str(first["key"]) if first.get("key") is not None else None
        detail = str(first.get("message") or detail)
    elif detail.startswith("Missing required"):
        # "Missing required query parameter 'q' for path /v1/search"
        parts = detail.split("'")
        parameter = parts[1] if len(parts) >= 3 else None
        detail = "is required"
    if parameter == "product_id":
        parameter = "id"
    rule = RULES.get(parameter or "")
    message = detail if rule is None or detail == "is required" else f"{rule} ({detail})"
    return _error(400, parameter, message)


def handle_unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Any]:
    return _unavailable(request, exc.reason, exc.message)


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers or {})
    return _error(exc.status_code, None, str(exc.detail), headers)


def handle_other(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, asyncpg.QueryCanceledError):
        return _unavailable(request, "statement_timeout", "the search took too long; retry shortly")
    if isinstance(exc, TimeoutError):
        return _unavailable(request, "statement_timeout", "the database took too long; retry shortly")
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return _unavailable(request, "database", "the database is unavailable; retry shortly")
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, None, "internal error")


def _exception_handlers() -> dict[Any, Any]:
    handlers: dict[Any, Any] = {
        BadParameter: handle_bad_parameter,
        NotFound: handle_not_found,
        ValidationException: handle_validation,
        Unavailable: handle_unavailable,
        HTTPException: handle_http,
        Exception: handle_other,
    }
    product_not_found = getattr(engine, "ProductNotFound", None)
    if isinstance(product_not_found, type) and issubclass(product_not_found, Exception):
        handlers[product_not_found] = handle_product_not_found
    return handlers


# --- factory
def create_app(settings: Settings, *, encoder: Encoder | None = None) -> Litestar:
    """The API. `encoder`: an already loaded one (tests share one); otherwise loaded from settings.encoder."""
    cache = QueryEmbeddingCache(settings.query_cache_size)
    holder: dict[str, Runtime] = {}
    metrics = Metrics(
        cache,
        lambda: holder["runtime"].pool if "runtime" in holder else None,
        lambda: holder["runtime"].vectors if "runtime" in holder else None,
    )
    runtime = Runtime(settings=settings, cache=cache, metrics=metrics, encoder=encoder)
    holder["runtime"] = runtime
    runtime.head_revision = migrate.head_revision()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    def provide_runtime() -> Runtime:
        return runtime

    return Litestar(
        route_handlers=[*routes_mod.ROUTES, *page.PAGE_ROUTES],
        dependencies={"rt": Provide(provide_runtime, use_cache=True, sync_to_thread=False)},
        exception_handlers=_exception_handlers(),
        middleware=[metrics.middleware],
        lifespan=[lifespan],
        state=State({"runtime": runtime}),
        openapi_config=OpenAPIConfig(
            title="Plinqy Search",
            version="1.0.0",
            description="Semantic + geo 'search near me' over the products of local stores.",
            servers=[Server(url="/")],
            use_handler_docstrings=False,
        ),
        signature_namespace={"Runtime": Runtime},
    )


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` (serve --workers N): settings come from each worker's environment."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(Settings.from_env())
