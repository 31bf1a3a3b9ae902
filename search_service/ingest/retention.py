"""`imports prune`: delete finished batches (their raw rows by cascade) and old delivery records, a chunk per short
transaction, so a long history neither holds locks long nor makes one huge transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from search_service.db.sql import statement

# A delivery record is kept at least this long whatever the cutoff: a replay needs catching only while a sender
# may retry (Shopify: 48 h) and while its signature's timestamp is within the tolerance (5 minutes).
DELIVERY_KEEP_S = 2 * 86400
BATCH_WINDOW = 10_000  # batches per transaction at most
ROW_WINDOW = 100_000  # and about this many raw rows (one big CSV batch goes alone)
DELIVERY_WINDOW = 10_000


@dataclass
class PruneCounts:
    batches: int = 0
    raw_rows: int = 0
    deliveries: int = 0


def _one(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> Any:
    row = conn.execute(statement("ingest/batches", name).psycopg, params).fetchone()
    assert row is not None
    return row


def prune_imports(
    conn: psycopg.Connection,
    older_than_s: float,
    dry_run: bool,
    on_chunk: Callable[[PruneCounts], object] = lambda counts: None,
) -> PruneCounts:
    """Delete the batches finished longer ago than `older_than_s` with their raw rows, and the delivery records
    received before then (kept DELIVERY_KEEP_S at least); with `dry_run` count them. Unfinished batches stay."""
    if older_than_s < 0:
        raise ValueError("older_than_s must be >= 0")
    batch_cutoff, delivery_cutoff = _one(
        conn, "prune_cutoffs", {"older_than_s": older_than_s, "delivery_keep_s": DELIVERY_KEEP_S}
    )
    if dry_run:
        counts = _one(conn, "prunable_counts", {"batch_cutoff": batch_cutoff, "delivery_cutoff": delivery_cutoff})
        return PruneCounts(*(int(n) for n in counts))
    total = PruneCounts()
    while True:  # deliveries first: the batches' deletes then find fewer of them to unlink
        with conn.transaction():
            (count,) = _one(conn, "prune_deliveries", {"cutoff": delivery_cutoff, "window": DELIVERY_WINDOW})
        total.deliveries += int(count)
        on_chunk(PruneCounts(deliveries=int(count)))
        if count < DELIVERY_WINDOW:
            break
    after: datetime = datetime.min.replace(tzinfo=batch_cutoff.tzinfo)
    while True:
        params = {"cutoff": batch_cutoff, "after": after, "window": BATCH_WINDOW, "max_rows": ROW_WINDOW}
        with conn.transaction():
            batches, raw_rows, last = _one(conn, "prune_batches", params)
        if not batches:
            return total
        total.batches, total.raw_rows, after = total.batches + batches, total.raw_rows + raw_rows, last
        on_chunk(PruneCounts(batches=int(batches), raw_rows=int(raw_rows)))
