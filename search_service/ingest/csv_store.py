"""A CSV file stored as a batch, its rows parsed a block at a time: a thread reads the next block while
PostgreSQL stores the one before (one COPY per block, all in the caller's transaction), so the upload's parsing
and its COPY overlap instead of following each other, and no more than two blocks of parsed rows are held at once
(a 100 MB file parsed whole held every row as Python objects)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from uuid import UUID

import asyncpg

from search_service.db.faults import connect
from search_service.ingest import pipeline
from search_service.ingest.csvfile import CsvError, CsvRows
from search_service.ingest.raw_rows import split_rows

BLOCK_ROWS = 5000


class _Blocks:
    """The reader's rows as `split_rows` tuples, numbered on from block to block. Called one block at a time."""

    def __init__(self, reader: CsvRows, size: int) -> None:
        self.reader, self.size = reader, size
        self.rows = self.rejected = 0

    def next(self) -> list[tuple[Any, ...]]:
        split = split_rows(self.reader.block(self.size), start=self.rows + 1)
        self.rows += len(split)
        self.rejected += pipeline.rejected_count(split)
        return split


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a block nobody awaits (the COPY before it failed): its error is not reported twice


async def store_csv_rows(conn: Any, batch_id: UUID, reader: CsvRows, block_rows: int | None = None) -> tuple[str, int]:
    """Copy the reader's rows into the receiving batch block by block and mark it whole: (its status, its rows).
    Call in a transaction: a failure leaves none of its rows."""
    blocks = _Blocks(reader, block_rows or BLOCK_ROWS)
    pending = asyncio.ensure_future(asyncio.to_thread(blocks.next))
    try:
        while split := await pending:
            pending = asyncio.ensure_future(asyncio.to_thread(blocks.next))  # read on while this block is copied
            await pipeline.copy_rows(conn, batch_id, split)
    finally:
        pending.add_done_callback(_retrieved)
    status = await pipeline.finish_stored(conn, batch_id, blocks.rows, blocks.rejected)
    return status, blocks.rows


async def record_csv(conn: Any, dsn: str, store_id: UUID, reader: CsvRows, file_name: str | None) -> tuple[UUID, int]:
    """A CSV file as a new batch of the store (the CLI's `import csv`): (its id, its rows). UnknownStore if there
    is no such store. Its place in the store's order is where it began, as for an API upload: the `receiving`
    batch is committed first, leased, and its heartbeat renewed on a connection of its own while the rows are
    stored in one transaction (storing all in one hid the batch, and a till's write meanwhile was mapped before
    it, then set back to the file's level). A failure or Ctrl-C while storing aborts it: nothing of it applied."""
    if await pipeline.store_of(conn, store_id) is None:
        raise pipeline.UnknownStore(f"no store with id {store_id}")
    side = await connect(dsn)
    try:
        batch_id = await pipeline.open_batch(
            conn, store_id=store_id, source="csv", kind="csv", file_name=file_name, upload=True
        )
        rows = await _store_beating(conn, side, batch_id, reader, dsn)
    finally:
        with contextlib.suppress(Exception):  # a lost one has nothing left to close
            await asyncio.wait_for(side.close(), timeout=2)
    return batch_id, rows


async def _store_beating(conn: Any, side: Any, batch_id: UUID, reader: CsvRows, dsn: str) -> int:
    """The rows stored in one transaction on `conn`, the heartbeat renewed on `side`; aborted on any failure."""
    try:
        beating = asyncio.ensure_future(_beat(side, batch_id))
        try:
            async with conn.transaction():
                _status, rows = await store_csv_rows(conn, batch_id, reader)
        finally:
            beating.cancel()
            await asyncio.wait([beating])
            _retrieved(beating)
    except BaseException as exc:
        why = "the import was interrupted" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
        reason = (
            str(exc) if isinstance(exc, CsvError) else f"the file could not be stored ({why}): nothing of it applied"
        )
        await _abort(side, dsn, batch_id, reason)
        raise
    return rows


async def _beat(conn: Any, batch_id: UUID) -> None:
    """The upload's heartbeat while its rows are stored (the storing connection is inside its transaction)."""
    while True:
        await asyncio.sleep(pipeline.UPLOAD_BEAT_S)
        await pipeline.beat_upload(conn, batch_id)


async def _abort(side: Any, dsn: str, batch_id: UUID, reason: str) -> None:
    """The batch aborted on `side`, or on a new connection when `side` went with the failure (a restart, a
    terminated backend): left `receiving`, it held the store's writes back until its lease lapsed. Given up (the
    sweep aborts it then) only when no connection opens within a few seconds."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pipeline.abort_batch(side, batch_id, reason), timeout=5)
        return
    with contextlib.suppress(Exception):
        fresh = await asyncio.wait_for(asyncpg.connect(dsn), timeout=5)
        try:
            await asyncio.wait_for(pipeline.abort_batch(fresh, batch_id, reason), timeout=5)
        finally:
            await fresh.close()
