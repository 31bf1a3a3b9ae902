"""The candidate sets, facet labels and listing buckets, loaded once by `serve --workers N`'s supervisor before it
forks.

Loaded in each worker, they were private to it: at 1M products / 10M listings ~60 MiB of roaring bitmaps, ordinal
keys and their index (`engine/candidates.py`) and ~80 MiB of label arrays and packed names (`engine/facet_labels.py`)
a worker, 140 of the second worker's 272 MiB; the facets' listing buckets (`engine/facet_stock.py`) add ~80 MiB.
Loaded before the fork, their pages (numpy's and pyroaring's C heap alike) are shared copy-on-write: a worker
reads them, and copies only the pages a change writes (a store's bitmap container, a label row's page; the arrays
keep room for appended rows, so a new product does not copy them). Each worker then keeps its sets and labels
exact as before, from the supervisor's snapshot on: the changes since are read by its first refresh (the sets
rebuild privately if more than `max_changes` came since, as for a worker started much later in place of one that
died).

Without a database at the supervisor's start (or with the vector copy off) nothing is preloaded and every worker
loads its own, as before.

Start-up: the supervisor loads these (~8 s of CPU at 1M) while a process it forked first loads the vectors and
writes the shared generation (`start_generation_writer`); the workers, forked once the state is loaded, map that
generation when it is written (they wait for its lock, as for a worker loading it). One after the other, the
two loads would have added the state's seconds to every start-up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import asyncpg
from pgvector.asyncpg import register_vector

from search_service.db.faults import connect
from search_service.db.rights import LACKS_RIGHTS, lacks_rights
from search_service.engine import catalog
from search_service.engine.candidates import CandidateSets
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.vector_load import release_freed_memory, reuse_large_frees
from search_service.engine.vectors import VectorCache
from search_service.errortext import first_line
from search_service.forked import die_with
from search_service.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
Result = TypeVar("Result")


@dataclass
class SharedState:
    """What a worker takes over instead of loading it (None: the worker loads its own)."""

    candidates: CandidateSets | None = None
    labels: ProductLabels | None = None
    stock: StockBuckets | None = None


async def _on_connection(settings: Settings, body: Callable[[asyncpg.Connection], Awaitable[Result]]) -> Result:
    conn = await connect(settings.database_url, timeout=CONNECT_TIMEOUT_S)  # a timeout that says what timed out
    try:
        return await body(conn)
    finally:
        await conn.close()


async def _sets_wanted(conn: asyncpg.Connection, settings: Settings) -> bool:
    """The candidate sets are read only beside the vector copy."""
    return settings.vector_cache_max > 0 and await catalog.vector_count(conn) <= settings.vector_cache_max


async def _stock_and_sets(conn: asyncpg.Connection, stock: StockBuckets, sets: CandidateSets | None) -> None:
    """The listing buckets and the candidate sets from one read of the listings (the sets' own read if it failed)."""
    await stock.load(conn, sets)
    if sets is not None and not sets.loaded:
        await sets.load(conn)


async def load_shared_state(settings: Settings) -> SharedState:
    """The listing buckets and the candidate sets, then the labels: one after the other, as loaded at once the
    loads' freed records and rows interleaved on the heap and kept 500 MiB of it resident after malloc_trim
    (measured at 1M products), against 140 MiB one by one."""
    wanted = await _on_connection(settings, lambda conn: _sets_wanted(conn, settings))
    sets, stock, labels = CandidateSets() if wanted else None, StockBuckets(), ProductLabels()
    await _on_connection(settings, lambda conn: _stock_and_sets(conn, stock, sets))
    await _on_connection(settings, labels.load)
    return SharedState(sets if sets is not None and sets.loaded else None, labels, stock if stock.loaded else None)


def preload_shared_state(settings: Settings) -> SharedState:
    """In the supervisor, before the fork (no event loop and no thread outlive this call). Failures are logged:
    the workers then load their own."""
    started = time.perf_counter()
    was_enabled = gc.isenabled()
    gc.disable()  # ~1M long-lived records: the collector's passes over them cost seconds
    try:
        state = asyncio.run(load_shared_state(settings))
    except Exception as exc:  # any: the workers' own loads are the fallback, as without a supervisor
        log.warning("shared state: not preloaded (%s: %s); each worker loads its own", type(exc).__name__, exc)
        return SharedState()
    finally:
        if was_enabled:
            gc.enable()
    release_freed_memory()  # the load's records leave free heap behind: not to be inherited by every worker
    log.info(
        "shared state: candidate sets %s, facet labels of %d products, loaded in %.2fs before the fork",
        "loaded" if state.candidates is not None else "not loaded",
        len(state.labels) if state.labels is not None else 0,
        time.perf_counter() - started,
    )
    return state


async def _write_generation(settings: Settings) -> None:
    """The shared vector copy's generation, loaded and written unless a usable one is there (vectors.py)."""
    conn = await connect(settings.database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        await register_vector(conn)  # the refresh after the load reads vectors
        if await catalog.vector_count(conn) <= settings.vector_cache_max:
            await VectorCache(shared_dir=settings.vector_copy.shared_dir)._load_shared(conn, batch=5000)
    finally:
        await conn.close()


def start_generation_writer(settings: Settings) -> int | None:
    """Fork a process that writes the shared generation and exits (its pid; None: no shared copy). A failure
    only costs time: the first worker then loads the vectors itself."""
    if settings.vector_copy.shared_dir is None or settings.vector_cache_max <= 0:
        return None
    parent = os.getpid()
    stops = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # none reaches the child before its own handlers
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        return pid
    for signum in stops:  # serve's handler raised SystemExit inside the load: "process N failed", asyncpg's traceback
        signal.signal(signum, _leave_quietly)
    signal.pthread_sigmask(signal.SIG_SETMASK, before)
    gc.disable()  # a process that exits after the load
    reuse_large_frees()  # its memory goes with it: reused, not faulted in afresh (vector_load.py)
    exit_after(lambda: asyncio.run(_write_generation(settings)), parent, settings.database_url)


def _leave_quietly(_signum: int, _frame: object) -> None:
    """The generation writer stopped (Ctrl-C reaches the whole process group): the run that wanted it is ending."""
    os._exit(0)


# Connecting failed (no server at the address, no such database, refused credentials).
NO_DATABASE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.CannotConnectNowError,
)


def exit_after(body: Callable[[], object], parent: int | None = None, database_url: str | None = None) -> NoReturn:
    """In a forked child: run `body`, then leave at once with its outcome (1 after logging the error), without
    the parent's clean-up (atexit handlers, finalizers of what the parent owns). `parent`: the process that forked
    it, which it does not outlive. Logged as the supervisor logs (a bare print broke the log's one format);
    `database_url`: the one `body` connects to, whose role a refusal names."""
    code = 0
    try:
        if parent is not None:
            die_with(parent)
        body()
    except NO_DATABASE as exc:  # one line, not a traceback: the supervisor logs what it means for the workers
        log.warning("shared state: no database (%s: %s)", type(exc).__name__, first_line(exc))
        code = 1
    except LACKS_RIGHTS as exc:  # known as the server knows it (readyz, the routes' 503): one line, no traceback
        log.warning("shared state: not written, %s", lacks_rights(database_url, exc))
        code = 1
    except BaseException:
        log.exception("process %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
