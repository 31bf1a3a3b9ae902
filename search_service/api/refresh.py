"""The API's in-memory state kept fresh in the background: the vector copy (with the candidate sets), the facet
labels and listing buckets, the suggestion index. Each loads once the database answers and is refreshed every
`vector_cache_refresh_s`; until it loads, and after a failure (logged, retried), the statement plans answer."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import asyncpg
from pgvector.asyncpg import register_vector

from search_service.db.faults import connect
from search_service.db.silence import SilenceWatch
from search_service.engine import catalog
from search_service.engine.session import session_settings
from search_service.engine.vector_load import IdleTrim, release_freed_memory
from search_service.engine.vectors import VectorCache
from search_service.errortext import first_line

if TYPE_CHECKING:
    from search_service.api.runtime import Runtime
    from search_service.settings import Settings

log = logging.getLogger("search_service.api")


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


class StateConnection:
    """A background loop's own connection, outside the pool. The loads of the in-memory state read the whole
    catalogue (seconds a statement at 1M products, more on a busy machine): on a pool connection the requests'
    statement timeout (2 s) and asyncpg's command timeout cut them, and the loop retried them forever (seen at 1M
    under load). Opened on first use with the engine's settings but no statement timeout; what is bounded is the
    server's silence while it owes a reply (db/silence.py: with none, a 15 s network stall froze every loop for
    good). Closed after a failure, since a cancelled statement may leave it inside a transaction."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.conn: asyncpg.Connection | None = None
        self.watch: SilenceWatch | None = None

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            if self.conn is None or self.watch is None or self.conn.is_closed():
                config = replace(self.rt.engine_config, statement_timeout_ms=None)
                settings = {"application_name": "plinqy-search-api-state", **session_settings(config)}
                self.conn = await connect(self.rt.settings.database_url, timeout=10, server_settings=settings)
                self.watch = SilenceWatch(self.conn)
                async with self.watch.guarded() as conn:
                    await register_vector(conn)
            async with self.watch.guarded() as conn:
                yield conn
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        conn, self.conn, self.watch = self.conn, None, None
        if conn is not None:
            conn.terminate()


async def maintain_vectors(rt: Runtime) -> None:
    """Load the in-memory vector copy once the database answers, then refresh it every `vector_cache_refresh_s`,
    as `keep_fresh` keeps the other state (its backoff, its rate-limited warnings, its line on recovery; this loop
    had a copy of its own that logged every retry and never the recovery). Searches meanwhile run without it."""
    trim = IdleTrim()

    async def load_or_refresh(conn: Any) -> bool:
        vectors = rt.vectors
        if vectors is None or not await _load_or_refresh(rt, conn, vectors):
            return False
        rt.vectors_state, rt.vectors_error = "ok", None
        if trim.due(vectors.batcher.calls, busy=vectors.batcher.callers > 0):
            release_freed_memory()  # idle since the last check, after searches: what they left on the heap
        return True

    def failed(exc: Exception) -> str:
        loaded = rt.vectors is not None and rt.vectors.loaded
        rt.vectors_error = _vectors_failure(rt.settings, loaded, exc)
        if not loaded:
            rt.vectors_state = "failed"
        return rt.vectors_error

    def loaded() -> bool:
        return rt.vectors is not None and rt.vectors.loaded

    await keep_fresh(rt, "the in-memory vector copy", load_or_refresh, loaded, 1.0, failed)


# The database away or gone mid-statement (ConnectionRefusedError, an OSError, is no directory's fault).
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a statement sent on a connection the server ended (db/faults.py CONNECTION_LOST)
    asyncpg.ObjectNotInPrerequisiteStateError,  # 55000 at connect: ALLOW_CONNECTIONS false
)


def _vectors_failure(settings: Settings, loaded: bool, exc: Exception) -> str:
    """What failed (a load, or a refresh of a copy still served) and whose fault it is likely to be."""
    failed = f"the in-memory vector copy failed to {'refresh' if loaded else 'load'}"
    if isinstance(exc, DATABASE_AWAY):
        return f"{failed}: cannot reach the database ({type(exc).__name__}: {exc})"
    shared = settings.vector_copy.shared_dir
    if isinstance(exc, OSError) and shared is not None:  # say which setting the path came from
        return f"{failed} ({type(exc).__name__}: {exc}): check PLINQY_VECTOR_SHARED_DIR={shared} (a writable directory)"
    return f"{failed} ({type(exc).__name__}: {exc})"


RETRY_MAX_S = 60.0  # a refresher that keeps failing (the database away) waits at most this long between tries


async def keep_fresh(
    rt: Runtime,
    what: str,
    refresh: Callable[[Any], Awaitable[bool]],
    loaded: Callable[[], bool],
    retry_s: float,
    failed: Callable[[Exception], str] | None = None,
) -> None:
    """Load `what` once the database answers, then refresh it every `vector_cache_refresh_s`; failures are
    logged and retried (meanwhile the statement plans answer). `refresh` returning False ends the task.
    `failed`: what a failure's warning says (default: `what` failed to refresh, and the error)."""
    state = StateConnection(rt)
    try:
        await _keep_fresh(rt, state, what, refresh, loaded, retry_s, failed)
    finally:
        state.close()


async def _keep_fresh(
    rt: Runtime,
    state: StateConnection,
    what: str,
    refresh: Callable[[Any], Awaitable[bool]],
    loaded: Callable[[], bool],
    retry_s: float,
    failed: Callable[[Exception], str] | None,
) -> None:
    settings = rt.settings
    failures = 0
    while True:
        await asyncio.sleep(settings.vector_cache_refresh_s if loaded() else 0.2)
        if rt.pool is None:
            continue
        try:
            async with state.use() as conn:
                with collector_paused():
                    if not await refresh(conn):
                        return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if being_cancelled():  # a stop's cancel that surfaced as another error: the stop waited for ever
                raise asyncio.CancelledError from exc
            failures += 1
            pause = min(retry_s * 2 ** min(failures - 1, 16), RETRY_MAX_S)
            said = failed(exc) if failed else f"{what} failed to refresh ({type(exc).__name__}: {first_line(exc)})"
            if failures & (failures - 1) == 0:  # the 1st, 2nd, 4th, 8th... failure: an outage is a few lines
                log.warning("%s; retrying in %.1f s (failure %d in a row)", said, pause, failures)
            await asyncio.sleep(pause)
            continue
        if failures:
            log.info("%s refreshed again after %d failures in a row", what, failures)  # a recovery: not a warning
            failures = 0


def being_cancelled() -> bool:
    """Whether this task was asked to stop: a cancel inside a transaction can come out as the connection's error
    (asyncpg's `cannot switch to state 15; another operation is in progress` from the rollback), which the retry
    took for a failed refresh; `serve` then hung on SIGTERM waiting for the refresher."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def refresh_labels(rt: Runtime, conn: Any) -> bool:
    """The facet labels (facet_labels.py) and the listing buckets (facet_stock.py): their changes, or a
    rebuild when due."""
    first = not rt.labels.loaded
    await rt.labels.refresh(conn)
    await rt.stock.refresh(conn)
    if first and rt.labels.loaded:
        release_freed_memory()  # the first load's rows leave free heap behind
    return True


async def refresh_suggestions(rt: Runtime, conn: Any) -> bool:
    """Build the suggestion index, and again when a suggestion found it due, at most every REBUILD_GAP times
    its build time (suggest_index.py); off (False) for a catalogue over PLINQY_SUGGEST_INDEX_MAX."""
    index = rt.suggestions
    if not index.loaded:
        held, limit = await catalog.active_product_count(conn), rt.settings.suggest_index_max
        if held > limit:
            log.info("%d products exceed PLINQY_SUGGEST_INDEX_MAX=%d: suggestions take the statements", held, limit)
            rt.suggestions_state = "off"
            return False
    await index.refresh(conn)
    rt.suggestions_state = "ok" if index.loaded else "building"
    return True


async def _load_or_refresh(rt: Runtime, conn: Any, vectors: VectorCache) -> bool:
    """The first load (False, and the copy turned off, when the catalogue holds too many vectors for it),
    or a refresh of a loaded copy."""
    if vectors.loaded:
        await vectors.refresh(conn)
        return True
    held = await catalog.vector_count(conn)
    limit = rt.settings.vector_cache_max
    if held > limit:
        log.warning(
            "%d product vectors exceed PLINQY_VECTOR_CACHE_MAX=%d: no in-memory copy, large candidate sets use HNSW",
            held,
            limit,
        )
        rt.vectors, rt.vectors_state = None, "disabled"
        return False
    with collector_paused():
        await vectors.load(conn)
    return True
