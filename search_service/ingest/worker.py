"""The import job: claims waiting batches (SKIP LOCKED, one store's batches in order), maps them chunk by chunk
under a lease, each chunk one fenced transaction; a big batch of independent rows in lanes after its first chunk
(lanes.py). One job runs PLINQY_INGEST_CONCURRENCY claim loops (ImportJob), each on its own connections under its
own worker id, all but one of them at most mapping a big batch: one store's big import holds up no other store's
small batches.

A SIGKILLed worker loses nothing: its finished chunks are committed with their counters, the rest stay `pending`
and its lease lapses, and the next worker takes the batch over. A lost database connection (a restart,
`pg_terminate_backend`) is re-opened within a second and the job carries on: the batches it held are released (the
chunk in hand died with the connection) and claimed again at once. SIGTERM/SIGINT: the chunk in hand is finished,
the batch released (back to the queue at once), exit 0.

Fault injection for tests: `hold_s` sleeps after each chunk (so a test can kill a worker mid-batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from search_service.db.faults import CONNECTION_LOST, Outage, connect
from search_service.db.sql import statement
from search_service.ingest import groups, lanes, pipeline
from search_service.ingest.config import IngestConfig

log = logging.getLogger("plinqy.ingest")


@dataclass(frozen=True)
class ImportWorkerOptions:
    drain: bool = False
    poll_interval_s: float = 5.0
    hold_s: float = 0.0
    # After mapping a small group, wait this long before the next claim (not when draining), so that the
    # deliveries arriving meanwhile are mapped together: one transaction per few dozen deliveries instead of one
    # or two, at most this much later.
    coalesce_s: float = 0.05


COALESCE_BELOW_ROWS = 100  # a group this small means deliveries trickle in: let a few more gather first
SWEEP_EVERY_S = 60.0  # how often the job looks for uploads left `receiving` (abort_stale_uploads)
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 10.0  # the pause before re-opening a lost connection, doubling


def make_worker_id() -> str:
    return f"import:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class LoopShare:
    """What the claim loops of one import job share. A batch of more than `big_rows` rows (more than a chunk) holds
    its loop for minutes: at most all loops but one map such a batch at once, so one is always free for the other
    stores' small batches (with one loop, one store's 1M-row import held every other store's deliveries for minutes).
    The first loop claims whatever is due; the others only while a big batch is mapped (each claim of theirs beside
    the first's cost a query a delivery for nothing: +0.4 ms of PostgreSQL's CPU a delivery at the intake), and the
    first decides when a drain ends."""

    loops: int = 1
    big_rows: int = 5000
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    worker_ids: list[str] = field(default_factory=list)
    waited_for: set[UUID] = field(default_factory=set)  # batches held elsewhere a drain said it waits for
    mapping_big: int = 0  # loops holding a big slot
    big_running: asyncio.Event = field(default_factory=asyncio.Event)  # a loop maps a big batch: the others claim
    first_done: asyncio.Event = field(default_factory=asyncio.Event)  # the first loop ended (a drain is done)

    def take_big_slot(self) -> bool:
        if self.mapping_big >= max(1, self.loops - 1):
            return False
        self.mapping_big += 1
        return True

    def give_back_big_slot(self) -> None:
        self.mapping_big -= 1
        if self.mapping_big == 0:
            self.big_running.clear()


class ImportWorker:
    """One claim loop: its own connection, listener and worker id (so its leases and fences are its own)."""

    def __init__(
        self, dsn: str, config: IngestConfig, options: ImportWorkerOptions, share: LoopShare | None = None
    ) -> None:
        self.dsn, self.config, self.options = dsn, config, options
        self.worker_id = make_worker_id()
        self.share = share or LoopShare()
        self.helper = bool(self.share.worker_ids)  # not the job's first loop
        self.share.worker_ids.append(self.worker_id)
        self.stop = self.share.stop
        self.batches = 0
        self.totals = pipeline.ChunkCounts()
        self._swept_at = -SWEEP_EVERY_S
        self._reconnect_delay = RECONNECT_FIRST_S
        self._outage = Outage(log, worker=self.worker_id)
        self._connecting = False
        self._before_loss: dict[UUID, pipeline.ChunkCounts] = {}  # a batch's rows mapped here before a lost connection

    async def run(self) -> int:
        """Until stopped (or, draining, until nothing is due). Rides out a lost connection; a drain that cannot
        connect at all (not a server shutting down or starting) raises."""
        try:
            await self._run_riding_out_losses()
        finally:
            if not self.helper:
                self.share.first_done.set()
        return 0

    async def _run_riding_out_losses(self) -> None:
        lost_before = False
        while not self.stop.is_set():
            try:
                await self._run_connected(release_first=lost_before)
                break
            except CONNECTION_LOST as exc:
                server_away = isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.OperatorInterventionError)
                if self.options.drain and self._connecting and not server_away:
                    raise
                lost_before = True
                self._outage.lost(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self._reconnect_delay)
                self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_S)

    async def _run_connected(self, *, release_first: bool) -> None:
        self._connecting = True
        settings = {"application_name": self.worker_id[:63], **self.config.mapping_session()}
        conn = await connect(self.dsn, server_settings=settings)
        try:
            listener = await connect(self.dsn)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
            raise
        self._connecting = False
        self._reconnect_delay = RECONNECT_FIRST_S
        self._outage.connected()
        try:
            if release_first:  # ours before the loss: its transactions died with it, so nobody waits for the lease
                release = statement("ingest/batches", "release_worker_batches")
                await conn.execute(release.sql, *release.bind(worker_id=self.worker_id))
            await self._loop(conn, listener)
        finally:
            for c in (listener, conn):  # a dead one closes at once; a hung one is not waited for
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(c.close(), timeout=2)

    async def _loop(self, conn: asyncpg.Connection, listener: asyncpg.Connection) -> None:
        wake = asyncio.Event()
        await listener.add_listener("ingest_batch", lambda *_: wake.set())
        while not self.stop.is_set():
            if listener.is_closed():  # no more wakes: re-open both
                raise asyncpg.InterfaceError("the listening connection was lost")
            if (now := asyncio.get_running_loop().time()) - self._swept_at >= SWEEP_EVERY_S:
                self._swept_at = now
                await self._abort_stale_uploads(conn)
            if self.helper and not self.share.big_running.is_set():
                if self.share.first_done.is_set():
                    return
                await self._wait(self.share.big_running, self.share.first_done, timeout=None)
                continue
            wake.clear()  # a batch recorded from now on wakes the wait below
            rows = await self._claim_and_take(conn)
            if rows is not None:
                if rows < COALESCE_BELOW_ROWS and not self.options.drain and self.options.coalesce_s > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), self.options.coalesce_s)
                continue
            if self.helper:  # the first loop decides when a drain ends
                await self._wait(wake, self.share.first_done)
                continue
            if self.options.drain:
                if not await self._still_to_map(conn):
                    await self._abort_stale_uploads(conn)  # one whose lease lapsed while this drain waited on it
                    return
                await asyncio.sleep(0.05)  # held elsewhere or waiting behind a store's earlier batch
                continue
            await self._wait(wake)

    async def _claim_and_take(self, conn: asyncpg.Connection) -> int | None:
        """Claim a head and map it: the rows taken, None when none was due. A loop without a big slot (its
        siblings hold them) claims only a small head."""
        share = self.share
        big = share.take_big_slot()
        try:
            head = await groups.claim_next(conn, self.worker_id, self.config.lease_s, None if big else share.big_rows)
            if big and (head is None or head.total_rows <= share.big_rows):
                big = False  # a small one: the slot is free for a sibling at once
                share.give_back_big_slot()
            elif big:
                share.big_running.set()
            return None if head is None else await self._take(conn, head)
        finally:
            if big:
                share.give_back_big_slot()

    async def _still_to_map(self, conn: asyncpg.Connection) -> bool:
        """Whether a drain has batches left (`drain_state`); a batch held outside this job is said once, with its
        holder."""
        query = statement("ingest/batches", "drain_state")
        row = await conn.fetchrow(query.sql, *query.bind(worker_ids=self.share.worker_ids))
        unfinished, held, held_by, until = row  # type: ignore[misc]
        if unfinished and held is not None and held not in self.share.waited_for:
            self.share.waited_for.add(held)
            log.info(json.dumps({"event": "waiting", "batch": str(held), "held_by": held_by,
                                 "until": until.isoformat(), "worker": self.worker_id,
                                 "why": "mapped here once its holder ends or its lease lapses"}))  # fmt: skip
        return bool(unfinished)

    async def _abort_stale_uploads(self, conn: asyncpg.Connection) -> None:
        for batch_id in await pipeline.abort_stale_uploads(conn, self.config.upload_timeout_s):
            log.warning(json.dumps({"event": "upload_aborted", "batch": str(batch_id), "worker": self.worker_id,
                                    "why": "its receiver's heartbeat lapsed (the API stopped receiving it), or still "
                                           "receiving after PLINQY_INGEST_UPLOAD_TIMEOUT_S"}))  # fmt: skip

    async def _wait(self, *events: asyncio.Event, timeout: float | None = -1.0) -> None:
        """Until stopped, one of `events` is set, or `timeout` (-1: the poll interval; None: none) has passed."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self.stop, *events)]
        poll = self.options.poll_interval_s if timeout == -1.0 else timeout
        await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()

    async def _take(self, conn: asyncpg.Connection, head: groups.Claimed) -> int:
        """A small head batch takes the store's next waiting small batches along (groups), a big one is mapped
        chunk by chunk. Returns the rows taken."""
        room = self.config.batch_chunk_rows - head.total_rows
        followers = (
            await groups.claim_followers(conn, head, self.worker_id, self.config.lease_s, room) if room > 0 else []
        )
        if not followers:
            await self._map_or_record(conn, head.id)
            return head.total_rows
        try:
            counts = await groups.map_group(conn, [head, *followers], self.worker_id, self.config.lease_s)
        except pipeline.LeaseLost:
            log.warning(json.dumps({"event": "lease_lost", "batch": str(head.id), "worker": self.worker_id}))
            return 0
        except CONNECTION_LOST:
            raise
        except Exception:  # one batch of the group may be poisoned: each alone, so only that one is charged
            log.exception("a group of %d batches failed; mapping them one by one", 1 + len(followers))
            await self._one_by_one(conn, [head, *followers])
            return head.total_rows + sum(f.total_rows for f in followers)
        self.batches += 1 + len(followers)
        self.totals.add(counts)
        log.info(json.dumps({"event": "group", "batches": 1 + len(followers), **vars(counts)}))
        return head.total_rows + sum(f.total_rows for f in followers)

    async def _one_by_one(self, conn: asyncpg.Connection, batches: list[groups.Claimed]) -> None:
        """A failed group's batches, each alone, in order. One that crashes and will be tried again stops the rest:
        they go back to the queue behind it (mapped past it, an older write was applied over a newer one later)."""
        for n, batch in enumerate(batches):
            if await self._map_or_record(conn, batch.id) == "processing":
                for later in batches[n + 1 :]:
                    await pipeline.release_batch(conn, later.id, self.worker_id)
                return

    async def _map_or_record(self, conn: asyncpg.Connection, batch_id: UUID) -> str | None:
        """Map a batch; one that raises (a bug, a row the database refuses) is recorded on the batch and tried again
        later, failed after pipeline.MAX_MAPPING_ATTEMPTS: it crashed the job at every claim, for ever. Returns the
        crashed batch's status (`processing`: to be tried again; `failed`), None when it was mapped."""
        try:
            await self._map(conn, batch_id)
        except CONNECTION_LOST:
            raise  # run() re-opens the connection and claims the batch again
        except Exception as exc:
            log.exception("mapping batch %s failed", batch_id)
            status = await pipeline.batch_crashed(conn, batch_id, self.worker_id, f"{type(exc).__name__}: {exc}")
            log.warning(json.dumps({"event": "batch_crashed", "batch": str(batch_id), "status": status}))
            return status
        return None

    async def _hold(self) -> None:
        """Fault injection (tests): a pause after each chunk, cut short by a stop."""
        if self.options.hold_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.options.hold_s)

    async def _map(self, conn: asyncpg.Connection, batch_id: UUID) -> None:
        cfg = self.config
        counts = pipeline.ChunkCounts()  # this claim's rows, each chunk committed as it is counted
        try:
            chunks, last = 0, False
            while not last and not self.stop.is_set():
                chunk, last = await pipeline.map_chunk(
                    conn, batch_id, self.worker_id, cfg.batch_chunk_rows, cfg.lease_s, first=chunks == 0
                )
                counts.add(chunk)
                chunks += 1
                if not last:
                    await pipeline.refresh_statistics(conn, chunks, cfg.batch_chunk_rows)
                    await self._hold()
                if chunks == 1 and not last and not self.stop.is_set():  # duplicates marked: the rest may go in lanes
                    run = lanes.LaneRun(self.dsn, batch_id, self.worker_id, cfg, self.stop.is_set, self._hold)
                    try:
                        await lanes.map_in_lanes(conn, run)
                    finally:  # a lane's lost connection raises here: the other lanes' committed rows count all the same
                        counts.add(run.mapped)
            if not last:
                await pipeline.release_batch(conn, batch_id, self.worker_id)
        except pipeline.LeaseLost:
            log.warning(json.dumps({"event": "lease_lost", "batch": str(batch_id), "worker": self.worker_id}))
            return
        except CONNECTION_LOST:  # the chunks committed before the loss were mapped here too: kept in the counts
            self.totals.add(counts)
            self._before_loss.setdefault(batch_id, pipeline.ChunkCounts()).add(counts)
            raise
        self.totals.add(counts)
        counts.add(self._before_loss.pop(batch_id, pipeline.ChunkCounts()))
        # the counts are this worker's rows: a batch taken over, or given back on a stop, was partly mapped elsewhere
        if last:
            self.batches += 1
            log.info(json.dumps({"event": "batch", "batch": str(batch_id), "status": "completed", **vars(counts)}))
        else:
            log.info(json.dumps({"event": "batch_released", "batch": str(batch_id), "status": "pending",
                                 "why": "stopping: the next worker maps the rest", **vars(counts)}))  # fmt: skip


class ImportJob:
    """The import job: `config.concurrency` claim loops sharing a stop (LoopShare). A loop that raises stops the
    others, each after its chunk in hand."""

    def __init__(self, dsn: str, config: IngestConfig, options: ImportWorkerOptions) -> None:
        self.share = LoopShare(loops=config.concurrency, big_rows=config.batch_chunk_rows)
        self.loops = [ImportWorker(dsn, config, options, self.share) for _ in range(config.concurrency)]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.share.stop.set)
        tasks = [asyncio.ensure_future(worker.run()) for worker in self.loops]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.share.stop.set()
            await asyncio.wait(tasks)
        totals = pipeline.ChunkCounts()
        for worker in self.loops:
            totals.add(worker.totals)
        log.info(json.dumps({"event": "stopped", "workers": self.share.worker_ids,
                             "batches": sum(w.batches for w in self.loops), **vars(totals)}))  # fmt: skip
        return 0


def run_import_worker(dsn: str, config: IngestConfig, options: ImportWorkerOptions) -> int:
    async def main() -> int:
        return await ImportJob(dsn, config, options).run()

    return asyncio.run(main())
