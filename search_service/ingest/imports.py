"""Importing a CSV file end to end (the CLI's `import csv`): store it as a batch, map it here (or follow a worker
that took it), report progress and the outcome."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from search_service.db.faults import CONNECTION_LOST, connect
from search_service.db.sql import statement
from search_service.ingest import lanes, pipeline
from search_service.ingest.batch_rows import batch_status, failure_of, retry_pause
from search_service.ingest.config import IngestConfig
from search_service.ingest.csv_store import record_csv
from search_service.ingest.csvfile import CHARSET_BY_CLI, CsvRows
from search_service.timetext import utc_text


@dataclass
class ImportOutcome:
    batch_id: UUID
    status: str
    total: int
    mapped: int
    stale: int
    duplicate: int
    rejected: int
    ignored_columns: list[str]
    errors: list[tuple[int, str]]  # the first rejected rows: (row number, reason)
    noted: int = 0  # mapped rows with notes (a GTIN or category ignored, a price rounded)
    notes: list[tuple[int, str]] | None = None  # the first of them: (row number, notes)
    duplicates: list[tuple[int, str]] | None = None  # the first rows replaced by a later row: (row number, reason)
    stales: list[tuple[int, str]] | None = None  # the first stale rows, nothing to do: (row number, reason)
    unchanged: int = 0  # mapped rows whose write changed nothing (a file sent again)


Shown = list[tuple[int, str]]  # rows a summary names: (row number, reason or notes)
SHOWN_ROWS = 20  # of each kind (rejected, duplicate, stale, noted) in `import csv`'s summary


class ImportInterrupted(Exception):
    """Ctrl-C while mapping: the batch is stored whole and given back to the queue (its lease released, so a
    worker takes it at once, not when the lease lapses)."""

    def __init__(self, batch_id: UUID | None, processed: int, total: int) -> None:
        stored = f"batch {batch_id}: {processed} of {total} rows processed; the batch is stored whole: " \
            "`plinqy-search worker` maps the rest"  # fmt: skip
        super().__init__("before the file was stored: nothing imported" if batch_id is None else stored)
        self.batch_id, self.processed, self.total = batch_id, processed, total


class ImportConnectionLost(Exception):
    """The database connection was lost (a restart, `pg_terminate_backend`): what became of the file, in a line."""

    def __init__(self, batch_id: UUID | None, total: int, processed: int | None, lease_s: float) -> None:
        if batch_id is None:
            message = "lost the database connection before the file was stored: nothing imported; run this again"
        elif processed is None:  # no connection to release the batch on: a worker takes it when the lease lapses
            message = (
                f"lost the database connection: batch {batch_id} is stored ({total} rows); a worker maps "
                f"the rest once this command's lease lapses (within {lease_s:.0f} s): `plinqy-search worker --drain`"
            )
        else:
            message = (
                f"lost the database connection: batch {batch_id} is stored ({total} rows, {processed} "
                "mapped) and given back to the workers: `plinqy-search worker --drain` maps the rest"
            )
        super().__init__(message)  # fmt: skip
        self.batch_id = batch_id


class ImportMappingFailed(Exception):
    """Mapping a batch raised (a row the database refuses, a bug): recorded on the batch as the worker records it
    (pipeline.batch_crashed), which also gave the batch back; what became of it, in a line."""

    def __init__(self, batch_id: UUID, status: str | None, error: str) -> None:
        if status == "failed":
            message = (
                f"mapping batch {batch_id} failed ({error}) for the {pipeline.MAX_MAPPING_ATTEMPTS}th time: "
                "it is failed, given up (its rows stay stored); fix the cause and import the file again"
            )
        elif status is None:  # our lease lapsed meanwhile: a worker has taken the batch over
            message = f"mapping batch {batch_id} failed ({error}); a worker has taken the batch over"
        else:
            message = (
                f"mapping batch {batch_id} failed ({error}): recorded on the batch, which the workers try "
                f"again after a pause (given up after {pipeline.MAX_MAPPING_ATTEMPTS} failures): `plinqy-search "
                "imports list` shows its error, `plinqy-search worker` maps it"
            )
        super().__init__(message)
        self.batch_id, self.status = batch_id, status


def row_count_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"  # "1 rows" read as a typo


def _sql(name: str) -> Any:
    return statement("ingest/batches", name)


async def noted_rows(conn: Any, batch_id: UUID) -> int:
    return int(await conn.fetchval(_sql("batch_noted_rows").sql, *_sql("batch_noted_rows").bind(batch_id=batch_id)))


async def _follow(
    conn: Any, dsn: str, batch_id: UUID, worker_id: str, config: IngestConfig, progress: Callable[[int], None],
    notice: Callable[[str], None],
) -> None:  # fmt: skip
    """Map the batch here when it can be claimed; otherwise map the store's earlier batches first when no worker
    holds them (a store's batches are mapped in order), or wait while a worker has one of them, or this one."""
    claim, told = _sql("claim_this_batch"), set[str]()
    while True:
        if await conn.fetchval(claim.sql, *claim.bind(batch_id=batch_id, worker_id=worker_id, lease_s=config.lease_s)):
            mapping = _map_with_progress(conn, dsn, batch_id, worker_id, config, progress)
            await _mapped_or_recorded(conn, batch_id, worker_id, mapping)
            return
        status = await batch_status(conn, batch_id)
        assert status is not None
        progress(status["processed_rows"])
        if status["status"] in ("completed", "failed", "aborted"):
            return
        head = await conn.fetchrow(_sql("earlier_head").sql, *_sql("earlier_head").bind(batch_id=batch_id))
        if head is not None and not head["held"] and await _map_earlier(conn, head, worker_id, config, notice):
            continue
        waiting = _waiting_for(head, status)
        if waiting is not None and waiting not in told:  # once a state: a worker's failure meanwhile is told too
            told.add(waiting)
            notice(waiting)
        await asyncio.sleep(0.2)


def _waiting_for(head: Any, status: dict[str, Any]) -> str | None:
    if head is None:  # this import's own batch: it read as another's ("a worker is mapping batch … of this store")
        if (pause := retry_pause(status, cli=True)) is not None:  # nobody maps it: it read "a worker is mapping"
            return f"waiting: batch {status['id']} of this import: {pause}; Ctrl-C leaves it to the workers"
        if status["locked_by"] is None:  # its pause just ended: claimed next time round
            return None
        return f"waiting: a worker is mapping this import (batch {status['id']}); its progress shows here"
    if head["status"] != "receiving" and head["locked_by"] is None:  # it said "None is mapping": a failure's pause
        until = utc_text(head["locked_until"])
        why = failure_of(head)
        return (f"waiting: batch {head['id']} of this store failed to map ({head['mapping_failures']} time(s): "
                f"{why}) and is tried again at {until} (its batches are mapped in order)")  # fmt: skip
    who = "an upload is still sending" if head["status"] == "receiving" else f"{head['locked_by']} is mapping"
    return f"waiting: {who} batch {head['id']} of this store (its batches are mapped in order)"


async def _map_earlier(
    conn: Any, head: Any, worker_id: str, config: IngestConfig, notice: Callable[[str], None]
) -> bool:
    """Map one earlier batch of the store here, when no worker has taken it meanwhile."""
    claim = _sql("claim_this_batch")
    if not await conn.fetchval(
        claim.sql, *claim.bind(batch_id=head["id"], worker_id=worker_id, lease_s=config.lease_s)
    ):
        return False
    size = row_count_text(head["total_rows"])
    notice(f"mapping this store's earlier batch {head['id']} first ({head['source']}, {size})")
    mapping = pipeline.map_batch(conn, head["id"], worker_id, config.batch_chunk_rows, config.lease_s)
    await _mapped_or_recorded(conn, head["id"], worker_id, mapping)
    return True


async def _mapped_or_recorded(conn: Any, batch_id: UUID, worker_id: str, mapping: Awaitable[Any]) -> None:
    """Map a batch; one that raises is recorded on it as the worker records it and released (a traceback ended the
    command, the batch held for its lease with no error recorded): ImportMappingFailed."""
    try:
        await mapping
    except CONNECTION_LOST:
        raise
    except pipeline.LeaseLost:  # taken over: its new holder maps it, nothing to record
        raise
    except Exception as exc:  # its chunk was rolled back: the connection is usable
        error = f"{type(exc).__name__}: {exc}"
        status = await pipeline.batch_crashed(conn, batch_id, worker_id, error)
        raise ImportMappingFailed(batch_id, status, error) from None


async def _map_with_progress(
    conn: Any, dsn: str, batch_id: UUID, worker_id: str, config: IngestConfig, progress: Callable[[int], None]
) -> None:
    shown = asyncio.Lock()  # the lanes call it as each one's chunk ends: one query at a time on the connection

    async def show() -> None:  # on the main connection: idle while the lanes map
        async with shown:
            status = await batch_status(conn, batch_id)
        assert status is not None
        progress(status["processed_rows"])

    chunks, last = 0, False
    while not last:
        await show()
        _counts, last = await pipeline.map_chunk(
            conn, batch_id, worker_id, config.batch_chunk_rows, config.lease_s, first=chunks == 0
        )
        chunks += 1
        if not last:
            await pipeline.refresh_statistics(conn, chunks, config.batch_chunk_rows)
        if chunks == 1 and not last:  # the duplicates are marked: the rest may go in lanes, the bar moving
            await lanes.map_in_lanes(conn, lanes.LaneRun(dsn, batch_id, worker_id, config, after_chunk=show))
    await show()


def open_csv(conn: psycopg.Connection, path: Path, store_id: UUID, charset: str | None) -> CsvRows:
    """The file's rows once the store exists (UnknownStore) and the header reads (CsvError): checked before
    anything is shown or stored."""
    if conn.execute(_sql("store_of").psycopg, {"store_id": store_id}).fetchone() is None:
        raise pipeline.UnknownStore(f"no store with id {store_id}")
    return CsvRows(path.read_bytes(), charset, CHARSET_BY_CLI)


async def import_csv_async(
    dsn: str,
    reader: CsvRows,
    file_name: str,
    store_id: UUID,
    config: IngestConfig,
    progress: Callable[[int, int], None],
    notice: Callable[[str], None] = lambda message: None,
) -> ImportOutcome:
    conn = await connect(dsn, server_settings=config.mapping_session())  # a Ctrl-Z holds no lock for ever
    batch_id, total = None, 0
    try:
        try:
            batch_id, total = await record_csv(conn, dsn, store_id, reader, file_name)
        except asyncio.CancelledError:  # Ctrl-C while storing: its rows rolled back, its batch aborted
            raise ImportInterrupted(None, 0, 0) from None
        notice(f"batch {batch_id} stored: {total} row{'' if total == 1 else 's'}")  # named before anything can fail
        worker_id = f"cli-import:{batch_id}"
        try:
            await _follow(conn, dsn, batch_id, worker_id, config, lambda done: progress(done, total), notice)
        except asyncio.CancelledError:  # Ctrl-C (asyncio.run cancels this task)
            raise await _give_back(dsn, batch_id, worker_id) from None
        status = await batch_status(conn, batch_id)
        assert status is not None
        shown = await _shown_rows(conn, batch_id)
    except CONNECTION_LOST:
        raise await _after_lost_connection(dsn, batch_id, total, config.lease_s) from None
    finally:
        with contextlib.suppress(Exception):  # a lost one has nothing left to close
            await asyncio.wait_for(conn.close(), timeout=2)
    return ImportOutcome(
        batch_id, status["status"], status["total_rows"], status["mapped_rows"], status["stale_rows"],
        status["duplicate_rows"], status["error_rows"], reader.ignored_columns, *shown,
        unchanged=status["unchanged_rows"],
    )  # fmt: skip


async def _shown_rows(conn: Any, batch_id: UUID) -> tuple[Shown, int, Shown, Shown, Shown]:
    """What a summary names: the first rejected rows, the count of noted rows and the first of them, the first
    duplicates and stale rows; each read alone, SHOWN_ROWS at most: every bad row fetched to show 20 grew with them
    (463 MB for 600k rejected rows)."""
    first, notes = _sql("batch_first_errors"), _sql("batch_notes")
    rejected, duplicates, stales = [
        _first(await conn.fetch(first.sql, *first.bind(batch_id=batch_id, status=status, limit=SHOWN_ROWS)))
        for status in ("rejected", "duplicate", "stale")
    ]
    noted = await conn.fetch(notes.sql, *notes.bind(batch_id=batch_id, after=0, limit=SHOWN_ROWS))
    return rejected, await noted_rows(conn, batch_id), _first(noted), duplicates, stales


def _first(rows: Iterable[Any]) -> Shown:
    """The rows a summary names: (row number, reason or notes)."""
    return [(r["row_number"], r["error"]) for r in rows]


async def _give_back(dsn: str, batch_id: UUID, worker_id: str) -> ImportInterrupted:
    """What this import holds (its batch, or a store's earlier one it maps first) released to the workers (on a
    connection of its own: the one in use was cancelled mid-query)."""
    conn = await connect(dsn)
    try:
        release = _sql("release_worker_batches")
        await conn.execute(release.sql, *release.bind(worker_id=worker_id))
        status = await batch_status(conn, batch_id)
    finally:
        await conn.close()
    assert status is not None
    return ImportInterrupted(batch_id, status["processed_rows"], status["total_rows"])


async def _after_lost_connection(dsn: str, batch_id: UUID | None, total: int, lease_s: float) -> ImportConnectionLost:
    """The stored batch released on a new connection when one opens, so a worker need not wait for the lease."""
    if batch_id is None:
        return ImportConnectionLost(None, 0, None, lease_s)
    try:
        given_back = await asyncio.wait_for(_give_back(dsn, batch_id, f"cli-import:{batch_id}"), timeout=10)
    except CONNECTION_LOST:
        return ImportConnectionLost(batch_id, total, None, lease_s)
    except TimeoutError:  # a server that accepts and never answers
        return ImportConnectionLost(batch_id, total, None, lease_s)
    return ImportConnectionLost(batch_id, total, given_back.processed, lease_s)
