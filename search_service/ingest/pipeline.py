"""The ingest pipeline: every source stores its rows raw first (`record_batch`), workers map them later
(`map_next_batch`), the single-listing writes map inline (`listing_writes.record_and_map`) through the same code.

THE ROW SHAPE every source produces (CSV, webhooks, the listing API, the POS connectors), one dict per row:

    {"op": "upsert" | "delete" | "stock",   # default "upsert"
     "sku": str,                             # required: the store's own id of the item
     "gtin": str?,                           # GTIN-8/12/13/14; a bad check digit is ignored (noted), not fatal
     "name": str?,                           # required for a new SKU; the listing's own title
     "brand": str?, "description": str?,
     "category": int | str?,                 # a category id, or a path "Dairy, Eggs & Plant-Based > Milk"
     "price": str | int | float?,            # decimal; "3.49" and "3,49" both work; required for upsert
     "currency": str?,                       # ISO 4217; default: the store's currency
     "quantity": int | str?,                 # absolute stock level, whole, >= 0; upsert without: kept (new: 0)
     "quantity_sent": str?,                  # a connector's fractional level as sent, rounded up in quantity: noted
     "is_active": bool?,                     # default true (upsert)
     "attributes": dict?,                    # free-form, part of the embedded text
     "updated_at": str?,                     # ISO-8601 (naive = UTC): the source's clock, for newest wins
     "version": int?,                        # or a version number, for newest wins (an upsert with both:
                                             # updated_at is the catalogue's clock, version the level's)
     "catalog_version": int?,                # a connector's product version (X-Series): the catalogue's clock
     "stock_apart": bool?,                   # a connector's catalogue row whose level comes apart (X-Series,
                                             # Erply, Shopify): a new listing without quantity is not noted
     "own_level": bool?}                     # connectors: the vendor's level, applied even if the rest is refused

- `upsert` creates or replaces a listing (price required; no quantity keeps the listing's, 0 when new). `stock`
  changes quantity and/or price of an existing listing only (the till's fast path). `delete` makes the listing
  unsellable (history stays).
- Values may be strings as a CSV gives them; validation (rows.py) types them. Missing keys mean "not given".
- Two private keys, for source adapters: `_raw` (the source's original cells, JSON; shown in the errors CSV) and
  `_error` (the source could not even read the row, e.g. a ragged CSV line: it is stored `rejected` with that reason).

Every row ends `mapped`, `stale` (older than the listing), `duplicate` (a later row of the batch has its SKU and
replaces it) or `rejected` (with the reason); one bad row never fails its batch. A mapped row whose write changed
nothing (a file sent again) is counted `unchanged` too. A batch is mapped in chunks, one transaction each, fenced
on the worker's lease: a killed worker's batch is finished by the next one, and every total adds up (the counters
move in the same transaction as the rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import psycopg

from search_service.db.sql import statement
from search_service.ingest.mapping import apply_rows
from search_service.ingest.raw_rows import by_program, decoded_rows, split_rows
from search_service.ingest.round_writes import RowResult
from search_service.ingest.threads import rows_off_loop

KINDS = ("csv", "webhook", "listing", "sync")
COPY_THRESHOLD = 200
COPY_TIMEOUT_S = 600.0


class DuplicateDelivery(Exception):
    """This connection already received this delivery id; nothing was stored. `batch_id`: the first one's."""

    def __init__(self, batch_id: UUID | None) -> None:
        super().__init__(f"delivery already received (batch {batch_id})")
        self.batch_id = batch_id


class UnknownStore(LookupError):
    pass


def _sql(name: str) -> Any:
    return statement("ingest/batches", name)


def rejected_count(split: Sequence[tuple[Any, ...]]) -> int:
    return sum(1 for r in split if r[3] == "rejected")


# --- storing (psycopg: the CLI, the worker's connectors) -------------------------------------------------------
def record_batch(
    conn: psycopg.Connection,
    *,
    store_id: UUID,
    source: str,
    kind: str,
    rows: Iterable[dict[str, Any]],
    connection_id: UUID | None = None,
    delivery_id: str | None = None,
    file_name: str | None = None,
) -> UUID:
    """Store a batch of raw rows as they came, in ONE transaction, and wake the workers; returns its id.

    source: api | csv | webhook | lightspeed-r | lightspeed-x | erply | shopify. kind: csv | webhook | listing | sync.
    With a delivery_id (per connection_id), a replay raises DuplicateDelivery and stores nothing."""
    split = split_rows(rows)
    with conn.transaction():
        if conn.execute(_sql("store_of").psycopg, {"store_id": store_id}).fetchone() is None:
            raise UnknownStore(f"no store with id {store_id}")
        delivery_row = _claim_delivery_sync(conn, connection_id, delivery_id)
        params = {
            "store_id": store_id, "source": source, "kind": kind, "status": "receiving",
            "connection_id": connection_id, "delivery_id": delivery_id, "file_name": file_name,
            "locked_by": None, "lease_s": 0.0, "upload_lease_s": None,
        }  # fmt: skip
        row = conn.execute(_sql("insert_batch").psycopg, params).fetchone()
        assert row is not None
        batch_id: UUID = row[0]
        if delivery_row is not None:
            conn.execute(_sql("link_delivery").psycopg, {"delivery_row": delivery_row, "batch_id": batch_id})
        with conn.cursor() as cur, cur.copy(_sql("copy_rows").psycopg) as copy:
            for number, payload, raw, status, error in split:
                copy.write_row((batch_id, number, payload, raw, status, error))
        finish = {"batch_id": batch_id, "total_rows": len(split), "rejected_rows": rejected_count(split)}
        conn.execute(_sql("finish_receiving").psycopg, finish)
        conn.execute(_sql("notify").psycopg)
    return batch_id


def _claim_delivery_sync(conn: psycopg.Connection, connection_id: UUID | None, delivery_id: str | None) -> int | None:
    if delivery_id is None or connection_id is None:
        return None
    params = {"connection_id": connection_id, "delivery_id": delivery_id}
    row = conn.execute(_sql("insert_delivery").psycopg, params).fetchone()
    if row is None:
        seen = conn.execute(_sql("delivery_batch").psycopg, params).fetchone()
        raise DuplicateDelivery(seen[0] if seen else None)
    return int(row[0])


# --- storing (asyncpg: the API) ----------------------------------------------------------------------------------
async def fetch(conn: Any, name: str, **params: Any) -> list[Any]:
    """The rows of one of the batches statements (asyncpg)."""
    stmt = _sql(name)
    return list(await conn.fetch(stmt.sql, *stmt.bind(**params)))


async def open_batch(
    conn: Any,
    *,
    store_id: UUID,
    source: str,
    kind: str,
    connection_id: UUID | None = None,
    delivery_id: str | None = None,
    file_name: str | None = None,
    locked_by: str | None = None,
    lease_s: float = 60.0,
    upload: bool = False,
) -> UUID:
    """A `receiving` batch (an upload about to stream in); `store_rows` completes it, `abort_batch` ends it. An
    `upload` (committed before its rows arrive) holds the store's later batches back from its insert on: its
    heartbeat lease is set in the same statement (`beat_upload` renews it)."""
    rows = await fetch(
        conn, "insert_batch", store_id=store_id, source=source, kind=kind,
        status="processing" if locked_by else "receiving", connection_id=connection_id,
        delivery_id=delivery_id, file_name=file_name, locked_by=locked_by, lease_s=lease_s,
        upload_lease_s=UPLOAD_LEASE_S if upload else None,
    )  # fmt: skip
    return rows[0]["id"]


async def store_rows(conn: Any, batch_id: UUID, rows: Iterable[dict[str, Any]] | list[tuple[Any, ...]]) -> str:
    """Store a received batch's rows (or their `split_rows`) and mark it whole; its status. Call in a transaction."""
    given: list[Any] = list(rows)
    split: list[tuple[Any, ...]] = given if given and isinstance(given[0], tuple) else split_rows(given)
    await copy_rows(conn, batch_id, split)
    return await finish_stored(conn, batch_id, len(split), rejected_count(split))


async def copy_rows(conn: Any, batch_id: UUID, split: Sequence[tuple[Any, ...]]) -> None:
    """Add rows (`split_rows`) to a receiving batch: COPY, or one statement for a few. The COPY's own timeout: the
    API pool's command timeout is sized for searches."""
    if len(split) >= COPY_THRESHOLD:
        records = [(batch_id, n, p, r, s, e) for n, p, r, s, e in split]
        columns = ["import_batch_id", "row_number", "payload", "raw", "status", "error"]
        await conn.copy_records_to_table(
            "imported_product_raw", records=records, columns=columns, timeout=COPY_TIMEOUT_S
        )
    elif split:
        numbers, payloads, raws, statuses, errors = (list(c) for c in zip(*split, strict=True))
        await fetch(
            conn, "insert_rows", batch_id=batch_id, numbers=numbers, payloads=payloads, raws=raws,
            statuses=statuses, errors=errors,
        )  # fmt: skip


async def finish_stored(conn: Any, batch_id: UUID, total_rows: int, rejected_rows: int) -> str:
    """Mark a receiving batch whole (`pending`, or `completed` when it has no row to map) and wake the workers."""
    done = await fetch(conn, "finish_receiving", batch_id=batch_id, total_rows=total_rows, rejected_rows=rejected_rows)
    await fetch(conn, "notify")
    return str(done[0]["status"]) if done else "aborted"


async def abort_batch(conn: Any, batch_id: UUID, reason: str) -> None:
    await fetch(conn, "abort_batch", batch_id=batch_id, reason=reason)


UPLOAD_LEASE_S = 120.0  # an upload's heartbeat lease: how long a dead API's upload holds its store's batches back
UPLOAD_BEAT_S = 10.0  # how often a live upload renews it (the body's idle limit is 30 s by default)


async def beat_upload(conn: Any, batch_id: UUID) -> None:
    await fetch(conn, "beat_upload", batch_id=batch_id, lease_s=UPLOAD_LEASE_S)


async def abort_stale_uploads(conn: Any, older_than_s: float) -> list[UUID]:
    """Abort the batches still `receiving` after `older_than_s` (their API process stopped mid-upload)."""
    return [r["id"] for r in await fetch(conn, "abort_stale_uploads", older_than_s=older_than_s)]


async def store_of(conn: Any, store_id: UUID) -> tuple[UUID, str] | None:
    rows = await fetch(conn, "store_of", store_id=store_id)
    return (rows[0]["id"], rows[0]["currency"].strip()) if rows else None


async def record_batch_async(
    conn: Any,
    *,
    store_id: UUID,
    source: str,
    kind: str,
    rows: Iterable[dict[str, Any]],
    connection_id: UUID | None = None,
    delivery_id: str | None = None,
) -> UUID:
    """`record_batch` on an asyncpg connection: one transaction, DuplicateDelivery on a replayed delivery id. (A CSV
    file: csv_store.record_csv.)"""
    split = split_rows(rows)
    if len(split) < COPY_THRESHOLD:
        return await _record_small(conn, store_id, source, kind, split, connection_id, delivery_id)
    async with conn.transaction():
        if await store_of(conn, store_id) is None:
            raise UnknownStore(f"no store with id {store_id}")
        delivery_row = await _claim_delivery(conn, connection_id, delivery_id)
        batch_id = await open_batch(
            conn, store_id=store_id, source=source, kind=kind, connection_id=connection_id, delivery_id=delivery_id
        )
        if delivery_row is not None:
            await fetch(conn, "link_delivery", delivery_row=delivery_row, batch_id=batch_id)
        await store_rows(conn, batch_id, split)
    return batch_id


async def _record_small(
    conn: Any,
    store_id: UUID,
    source: str,
    kind: str,
    split: list[tuple[int, str, str | None, str, str | None]],
    connection_id: UUID | None,
    delivery_id: str | None,
) -> UUID:
    """One statement, one round trip (record_small): what makes webhook intake fast."""
    batch_id = uuid.uuid4()
    numbers, payloads, raws, statuses, errors = (list(c) for c in zip(*split, strict=True)) if split else ([],) * 5
    try:
        got = await fetch(
            conn, "record_small", batch_id=batch_id, store_id=store_id, source=source, kind=kind,
            connection_id=connection_id, delivery_id=delivery_id, numbers=numbers, payloads=payloads, raws=raws,
            statuses=statuses, errors=errors, total_rows=len(split), rejected_rows=rejected_count(split),
        )  # fmt: skip
    except asyncpg.ForeignKeyViolationError:
        raise UnknownStore(f"no store with id {store_id}") from None
    if got[0]["stored"] == 0:
        seen = await fetch(conn, "delivery_batch", connection_id=connection_id, delivery_id=delivery_id)
        raise DuplicateDelivery(seen[0]["import_batch_id"] if seen else None)
    return batch_id


async def _claim_delivery(conn: Any, connection_id: UUID | None, delivery_id: str | None) -> int | None:
    if delivery_id is None or connection_id is None:
        return None
    got = await fetch(conn, "insert_delivery", connection_id=connection_id, delivery_id=delivery_id)
    if not got:
        seen = await fetch(conn, "delivery_batch", connection_id=connection_id, delivery_id=delivery_id)
        raise DuplicateDelivery(seen[0]["import_batch_id"] if seen else None)
    return int(got[0]["id"])


# --- mapping --------------------------------------------------------------------------------------------------------
@dataclass
class ChunkCounts:
    mapped: int = 0
    stale: int = 0
    duplicate: int = 0
    rejected: int = 0
    unchanged: int = 0  # of `mapped`: rows whose write changed nothing (a file sent again)

    def add(self, other: ChunkCounts) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)

    def count(self, result: RowResult) -> None:
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.unchanged += result.status == "mapped" and not result.changed


class LeaseLost(Exception):
    """Another worker took the batch over (our lease lapsed): the chunk was rolled back."""


async def map_chunk(
    conn: Any, batch_id: UUID, worker_id: str, limit: int, lease_s: float, *, first: bool = False
) -> tuple[ChunkCounts, bool]:
    """Map the batch's next `limit` pending rows in one transaction, fenced on our lease. Returns the chunk's counts
    and whether the batch is now complete (its last chunk completes it in the same transaction). `first`: the first
    chunk of this hold also marks the batch's duplicates (mark_duplicates), in the same transaction."""
    async with conn.transaction():
        fenced = await fetch(conn, "fence", batch_id=batch_id, worker_id=worker_id, lease_s=lease_s)
        if not fenced:
            raise LeaseLost(str(batch_id))
        store_id, currency = fenced[0]["store_id"], fenced[0]["currency"].strip()
        dedupe = first and fenced[0]["total_rows"] > 1  # a one-row batch (a delivery, mostly) has none: a trip saved
        marked = int((await fetch(conn, "mark_duplicates", batch_id=batch_id))[0][0]) if dedupe else 0
        pending = await fetch(conn, "pending_rows", batch_id=batch_id, limit=limit)
        # Fewer than `limit`: these are all that is left (a stored batch never grows), so this chunk is the last.
        last = len(pending) < limit
        rows = await rows_off_loop(len(pending), decoded_rows, pending)  # (id, payload)
        results = await apply_rows(conn, store_id, currency, rows, store_active=fenced[0]["store_active"],
                                   programs=by_program(rows, fenced[0]["source"]))  # fmt: skip
        return await save_results(conn, batch_id, worker_id, lease_s, results, last=last, duplicates=marked), last


async def save_results(
    conn: Any,
    batch_id: UUID,
    worker_id: str,
    lease_s: float,
    results: dict[int, RowResult],
    *,
    last: bool,
    duplicates: int = 0,
) -> ChunkCounts:
    """Save a chunk's row outcomes and add them to the batch's counters (save_results); LeaseLost (roll the chunk
    back) when the batch is no longer ours."""
    counts = ChunkCounts(duplicate=duplicates)
    for result in results.values():
        counts.count(result)
    ids = list(results)
    saved = await fetch(
        conn, "save_results", batch_id=batch_id, worker_id=worker_id, lease_s=lease_s, ids=ids,
        statuses=[results[i].status for i in ids], errors=[results[i].error for i in ids],
        matched_by=[results[i].matched_by for i in ids], products=[results[i].product_id for i in ids], last=last,
        **vars(counts),
    )  # fmt: skip
    if not saved:
        raise LeaseLost(str(batch_id))
    return counts


ANALYZE_EVERY = 8  # chunks


async def refresh_statistics(conn: Any, chunks_done: int, chunk_rows: int) -> None:
    """After the first full chunk of a big batch and every ANALYZE_EVERY chunks (see analyze_targets)."""
    if chunk_rows >= 1000 and chunks_done % ANALYZE_EVERY == 1:
        await conn.execute(_sql("analyze_targets").sql)


async def map_batch(conn: Any, batch_id: UUID, worker_id: str, chunk_rows: int, lease_s: float) -> ChunkCounts:
    """Map a batch this worker holds, chunk by chunk, then complete it."""
    totals = ChunkCounts()
    chunks, last = 0, False
    while not last:
        counts, last = await map_chunk(conn, batch_id, worker_id, chunk_rows, lease_s, first=chunks == 0)
        totals.add(counts)
        chunks += 1
        if not last:
            await refresh_statistics(conn, chunks, chunk_rows)
    return totals


async def complete(conn: Any, batch_id: UUID, worker_id: str) -> bool:
    return bool(await fetch(conn, "complete_batch", batch_id=batch_id, worker_id=worker_id))


async def claim_batch(conn: Any, worker_id: str, lease_s: float) -> UUID | None:
    rows = await fetch(conn, "claim_batch", worker_id=worker_id, lease_s=lease_s, max_rows=None)
    return rows[0]["id"] if rows else None


async def release_batch(conn: Any, batch_id: UUID, worker_id: str) -> None:
    await fetch(conn, "release_batch", batch_id=batch_id, worker_id=worker_id)


MAX_MAPPING_ATTEMPTS = 5
CRASH_PAUSE_S = 30.0  # times the attempts so far: 30 s, 60 s, … before the batch is tried again


async def batch_crashed(conn: Any, batch_id: UUID, worker_id: str, error: str) -> str | None:
    """Record that mapping `batch_id` raised; returns its status (`failed` once its attempts are spent)."""
    found = await fetch(
        conn, "batch_crashed", batch_id=batch_id, worker_id=worker_id, error=error,
        max_attempts=MAX_MAPPING_ATTEMPTS, pause_s=CRASH_PAUSE_S,
    )  # fmt: skip
    return found[0]["status"] if found else None
