"""Small batches mapped together: a worker holding a store's head batch takes the store's next waiting small
batches too (webhook deliveries, mostly: one row each) and maps them in ONE transaction.

Mapped one by one, a delivery cost a claim, a fence, a lookup, a write (its statement triggers: history, index
queue, inventory, outbox), a save and a commit: ~1 ms of PostgreSQL for a one-row change, competing with the
intake for the same cores. A group pays each once. Every batch still ends `completed` with its own counters and
its rows with their own outcomes; the rows are applied in the order they came (batch by batch, row by row), so a
SKU changed by several deliveries ends as the last one says (newest wins still compares each row's clock). The
group commits or rolls back whole: a worker killed meanwhile leaves every batch of it to the next worker (their
leases lapse; claim_followers takes lapsed batches over).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from search_service.db.schema.base import CONNECTOR_SOURCES
from search_service.db.sql import statement
from search_service.ingest.mapping import apply_rows
from search_service.ingest.pipeline import ChunkCounts, LeaseLost

MAX_GROUP_BATCHES = 1000
COUNTERS = ("mapped", "stale", "duplicate", "rejected", "unchanged")
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Claimed:
    id: UUID
    store_id: UUID
    total_rows: int
    seq: int


async def _fetch(conn: Any, file: str, name: str, **params: Any) -> list[Any]:
    stmt = statement(file, name)
    return list(await conn.fetch(stmt.sql, *stmt.bind(**params)))


async def claim_next(conn: Any, worker_id: str, lease_s: float, max_rows: int | None = None) -> Claimed | None:
    """The oldest batch heading its store's queue (batches.claim_batch), with what grouping needs; with max_rows,
    only a head of at most that many rows."""
    rows = await _fetch(conn, "ingest/batches", "claim_batch", worker_id=worker_id, lease_s=lease_s, max_rows=max_rows)
    if not rows:
        return None
    row = rows[0]
    return Claimed(row["id"], row["store_id"], int(row["total_rows"]), int(row["seq"]))


async def claim_followers(conn: Any, head: Claimed, worker_id: str, lease_s: float, max_rows: int) -> list[Claimed]:
    """The store's next waiting batches after `head` (held by this worker), in order, up to `max_rows` rows."""
    rows = await _fetch(
        conn, "ingest/groups", "claim_followers", store_id=head.store_id, after_seq=head.seq, worker_id=worker_id,
        lease_s=lease_s, max_batches=MAX_GROUP_BATCHES, max_rows=max_rows,
    )  # fmt: skip
    ordered = sorted(rows, key=lambda r: r["seq"])
    return [Claimed(r["id"], head.store_id, int(r["total_rows"]), int(r["seq"])) for r in ordered]


async def map_group(conn: Any, group: list[Claimed], worker_id: str, lease_s: float) -> ChunkCounts:
    """Map every pending row of these batches (one store's, held by this worker, in seq order) in one
    transaction, fenced on all their leases, and complete them. Raises LeaseLost (rolled back) if any lapsed."""
    batch_ids = [b.id for b in group]
    async with conn.transaction():
        fenced = await _fetch(conn, "ingest/groups", "fence_group", batch_ids=batch_ids, worker_id=worker_id,
                              lease_s=lease_s)  # fmt: skip
        if not fenced or fenced[0]["held"] != len(batch_ids):
            raise LeaseLost(", ".join(str(b) for b in batch_ids))
        store_id, currency = fenced[0]["store_id"], fenced[0]["currency"].strip()
        # One-row batches (deliveries) have no duplicates: a statement saved.
        dedupe = [b.id for b in group if b.total_rows > 1]
        marked = await _fetch(conn, "ingest/groups", "mark_duplicates_group", batch_ids=dedupe) if dedupe else []
        duplicates = Counter({r["import_batch_id"]: int(r["duplicates"]) for r in marked})
        pending = await _fetch(conn, "ingest/groups", "pending_rows_group", batch_ids=batch_ids)
        batch_of = {r["id"]: r["import_batch_id"] for r in pending}
        rows = [(r["id"], _decode(r["payload"])) for r in pending]
        programs = [r["id"] for r in pending if r["source"] in CONNECTOR_SOURCES]  # raw_rows.by_program, batch by batch
        results = await apply_rows(conn, store_id, currency, rows, store_active=fenced[0]["store_active"],
                                   programs=programs)  # fmt: skip
        per_batch = {batch: ChunkCounts(duplicate=duplicates[batch]) for batch in batch_ids}
        for row_id, result in results.items():
            per_batch[batch_of[row_id]].count(result)
        ids = list(results)
        await _fetch(
            conn, "ingest/groups", "save_group_results", ids=ids, statuses=[results[i].status for i in ids],
            errors=[results[i].error for i in ids], matched_by=[results[i].matched_by for i in ids],
            products=[results[i].product_id for i in ids], batch_ids=batch_ids,
            **{key: [getattr(per_batch[b], key) for b in batch_ids] for key in COUNTERS},
        )  # fmt: skip
    totals = ChunkCounts()
    for counts in per_batch.values():
        totals.add(counts)
    return totals
