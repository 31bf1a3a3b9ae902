"""The listing API's writes: stored raw as a batch of their own and mapped inline, through the pipeline's code, or
queued behind the store's earlier batches (a store's batches are mapped in order, whatever their source)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, NamedTuple
from uuid import UUID

import asyncpg

from search_service.db.sql import statement
from search_service.ingest.pipeline import fetch, map_batch, open_batch, release_batch, store_rows

log = logging.getLogger(__name__)

QUEUED_WAIT_S = 2.0  # a queued listing write waits this long for a worker to map it before answering "queued"
POLL_S = 0.1
STORE_WAIT_S = 5.0  # a write waits this long for the store's lock (other writers of the store), then StoreBusy


# Why a listing write is left to the workers (answered 202 queued): the store's earlier batch still waiting or being
# mapped, or its own mapping cancelled past the statement timeout (map_inline). Each is answered in its own words.
Queued = Literal["behind", "timed_out"]


class Recorded(NamedTuple):
    """A listing write stored: its batch, and its rows' results when mapped inline; None when left to the workers
    (`queued` says why)."""

    batch_id: UUID
    results: list[Any] | None
    queued: Queued | None = None


class StoreBusy(Exception):
    """The store's other writers held its lock for over STORE_WAIT_S: the write was rolled back, nothing applied."""


class StoreGates:
    """A process's listing writers of one store wait here in turn, before they take a pooled connection: each one
    waiting on the store's lock held one, so a burst of ten at one store held every connection of an API worker,
    and its searches (and the writes themselves) answered 503 'all database connections are busy'. Then they take
    one of the process's write slots, half its pool (`write_slots`): writes to many stores at once took every
    connection too, and searches answered 503 as well."""

    def __init__(self, pool_size: int = 10) -> None:
        self._gates: dict[UUID, tuple[asyncio.Lock, int]] = {}  # a store's gate, and how many hold or want it
        self._slots = write_slots(pool_size)
        self._writers: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None  # bound to one loop

    def _writer_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._writers is None or self._writers[0] is not loop:  # a test's app may run on a new loop
            self._writers = (loop, asyncio.Semaphore(self._slots))
        return self._writers[1]

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A write slot alone, no store's turn: a queued write's look at its results (`wait_for_results`) takes its
        connection within the writes' half of the pool; forty queued batches looking ten times a second took the
        searches' half too (503 'all database connections are busy')."""
        async with self._writer_slots():
            yield

    @contextlib.asynccontextmanager
    async def turn(self, store_id: UUID, wait_s: float = STORE_WAIT_S) -> AsyncIterator[float]:
        """The store's turn, then a write slot, waited for at most `wait_s` in all (StoreBusy past it); yields
        what is left of `wait_s`, the wait the store's lock may still take (the writers in other processes)."""
        deadline = time.monotonic() + wait_s
        gate, users = self._gates.get(store_id, (asyncio.Lock(), 0))
        self._gates[store_id] = (gate, users + 1)
        try:
            await _acquire(gate, deadline, f"the store's other writes held it for over {wait_s:g} s")
            try:
                slots = self._writer_slots()
                await _acquire(slots, deadline, f"other stores' writes held the API's for over {wait_s:g} s")
                try:
                    yield max(deadline - time.monotonic(), 0.001)
                finally:
                    slots.release()
            finally:
                gate.release()
        finally:
            gate, users = self._gates[store_id]
            if users > 1:
                self._gates[store_id] = (gate, users - 1)
            else:
                del self._gates[store_id]


async def _acquire(lock: asyncio.Lock | asyncio.Semaphore, deadline: float, busy: str) -> None:
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
            await lock.acquire()
    except TimeoutError:
        raise StoreBusy(busy) from None


def write_slots(pool_size: int) -> int:
    """How many listing writes of a process may hold a pooled connection at once: half the pool (at least one),
    the rest kept for searches, which wait at most PLINQY_POOL_TIMEOUT_S for one."""
    return max(1, pool_size // 2)


async def record_and_map(
    conn: Any, *, store_id: UUID, rows: Sequence[dict[str, Any]], worker_id: str, lease_s: float = 60.0,
    wait_s: float = STORE_WAIT_S,
) -> Recorded:  # fmt: skip
    """A listing write: store the rows (source api, kind listing) and map them at once, through the same code and
    leaving the same record as any batch. Returns the batch id and its rows' results (batch_rows). A store with
    an earlier batch still waiting or mapping (an uploaded CSV, a delivery) gets the write queued behind it, as
    any batch, for the workers: no results then (`wait_for_results`), and `queued` "behind"; "timed_out" when its own
    mapping ran past the statement timeout (map_inline). `wait_s`: the wait for the store's lock."""
    # One transaction for the record and its mapping: an API process killed between the two left a batch held by
    # no one, which a worker applied a minute later, over the writes answered meanwhile (the client never had an
    # answer for it). Now such a write is not there at all, as its missing answer says.
    async with conn.transaction():
        queued = bool((await fetch(conn, "earlier_work", store_id=store_id))[0]["queued"])
        batch_id = await open_batch(
            conn, store_id=store_id, source="api", kind="listing", locked_by=None if queued else worker_id,
            lease_s=lease_s,
        )  # fmt: skip
        await store_rows(conn, batch_id, rows)
        if queued:
            await fetch(conn, "notify")
            return Recorded(batch_id, None, "behind")
        await take_store_lock(conn, store_id, wait_s)
        if not await map_inline(conn, batch_id, worker_id, len(rows), lease_s):
            return Recorded(batch_id, None, "timed_out")
        await fetch(conn, "synchronous_commit")  # the chunk's fence turned it off: this commit is an answer
        return Recorded(batch_id, await results_of(conn, batch_id))


async def map_inline(conn: Any, batch_id: UUID, worker_id: str, rows: int, lease_s: float) -> bool:
    """Map a listing write's batch in its transaction; False when its mapping ran past the statement timeout (sized
    for a search): the mapping (its savepoint) is rolled back and the batch, its rows stored, left to the workers,
    which map it unbounded (queued). A full batch on a loaded machine, 1,000 new products' INSERT with its triggers
    (search terms, the GIN flush, embedding tasks, events), ran past 2 s: 503, though its store was only busy."""
    try:
        # One chunk, its last: a chunk of exactly its rows read as more to come (an empty second chunk, and at 1,000
        # items the statistics refreshed, an ANALYZE of four tables inside the write).
        await map_batch(conn, batch_id, worker_id, rows + 1, lease_s)
    except asyncpg.QueryCanceledError as exc:
        log.warning("listing write %s (%d rows): mapping it inline was cancelled (%s); queued for the workers",
                    batch_id, rows, exc)  # fmt: skip
        await release_batch(conn, batch_id, worker_id)
        await fetch(conn, "notify")
        return False
    return True


async def take_store_lock(conn: Any, store_id: UUID, wait_s: float = STORE_WAIT_S) -> None:
    """The store's lock, waited for at most `wait_s` (StoreBusy past it) apart from the statement timeout, which
    then bounds the write's work alone."""
    before = (await fetch(conn, "store_wait", wait=f"{max(int(wait_s * 1000), 1)}ms"))[0]  # 0 would wait for ever
    lock = statement("ingest/batches", "store_lock")
    params = lock.bind(
        store_id=store_id, work_timeout=before["work_timeout"], work_lock_timeout=before["work_lock_timeout"]
    )
    try:  # the pool's client-side timeout is sized for a search's statements
        await conn.fetch(lock.sql, *params, timeout=wait_s + 5)
    except asyncpg.exceptions.LockNotAvailableError:
        raise StoreBusy(f"the store's other writes held it for over {STORE_WAIT_S:g} s") from None  # all told


async def results_if_mapped(conn: Any, batch_id: UUID) -> list[Any] | None:
    """A batch's rows' results once it is completed, else None (waiting, being mapped, or failed: a given-up
    write's rows say `pending`, which a till would read as "may still be applied")."""
    status = (await fetch(conn, "batch_status", batch_id=batch_id))[0]["status"]
    return await results_of(conn, batch_id) if status == "completed" else None


async def results_of(conn: Any, batch_id: UUID) -> list[Any]:
    """A batch's rows' results (batch_rows), whatever its status."""
    return await fetch(conn, "batch_rows", batch_id=batch_id)


async def wait_for_results(
    connection: Callable[[], AbstractAsyncContextManager[Any]], batch_id: UUID, gates: StoreGates | None = None,
    wait_s: float = QUEUED_WAIT_S,
) -> list[Any] | None:  # fmt: skip
    """A queued write's results if a worker maps it within `wait_s`. Each look takes a pooled connection for
    itself alone: one held for the whole wait let a burst of a store's queued writes take every connection,
    and searches answered 503. With `gates`, within a write slot (StoreGates.slot)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        async with gates.slot() if gates is not None else contextlib.nullcontext(), connection() as conn:
            results = await results_if_mapped(conn, batch_id)
        if results is not None:
            return results
    return None
