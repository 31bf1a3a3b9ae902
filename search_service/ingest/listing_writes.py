"""The listing API's writes: stored raw as a batch of their own and mapped inline, through the pipeline's code, or
queued behind the store's earlier batches (a store's batches are mapped in order, whatever their source)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from search_service.ingest.pipeline import fetch, map_batch, open_batch, store_rows

QUEUED_WAIT_S = 2.0  # a queued listing write waits this long for a worker to map it before answering "queued"


async def record_and_map(
    conn: Any,
    *,
    store_id: UUID,
    rows: Sequence[dict[str, Any]],
    worker_id: str,
    lease_s: float = 60.0,
    wait_s: float = QUEUED_WAIT_S,
) -> tuple[UUID, list[Any] | None]:
    """A listing write: store the rows (source api, kind listing) and map them at once, through the same code and
    leaving the same record as any batch. Returns the batch id and its rows' results (batch_rows). A store with
    an earlier batch still waiting or mapping (an uploaded CSV, a delivery) gets the write queued behind it, as
    any batch, for the workers: its results if one maps it within `wait_s`, else None (it stays queued)."""
    async with conn.transaction():
        queued = bool((await fetch(conn, "earlier_work", store_id=store_id))[0]["queued"])
        batch_id = await open_batch(
            conn, store_id=store_id, source="api", kind="listing", locked_by=None if queued else worker_id,
            lease_s=lease_s,
        )  # fmt: skip
        await store_rows(conn, batch_id, rows)
        if queued:
            await fetch(conn, "notify")
    if not queued:
        await map_batch(conn, batch_id, worker_id, max(len(rows), 1), lease_s)
    elif not await _finished_within(conn, batch_id, wait_s):
        return batch_id, None
    return batch_id, await fetch(conn, "batch_rows", batch_id=batch_id)


async def _finished_within(conn: Any, batch_id: UUID, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        status = (await fetch(conn, "batch_status", batch_id=batch_id))[0]["status"]
        if status not in ("pending", "processing") or time.monotonic() >= deadline:
            return status not in ("pending", "processing")
        await asyncio.sleep(0.05)
