"""Retention: delete old rows of the append-only tables and finished webhook records, in short transactions.

Order matters: finished deliveries (delivered, or failed for good) go before events, and an event goes only when
none of its deliveries is pending or retrying (an event still on its way is never pruned; a failed one is kept for
`webhooks replay` until the cutoff, then goes: each costs ~1 kB, and a receiver down for a day left GBs for ever).
search_index_queue has no consumer in this repository, so its rows are pruned by age alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from search_service.db.sql import statement

TABLES = ("inventory_event", "history_store_product", "search_index_queue", "webhook_delivery", "webhook_event")


@dataclass(frozen=True)
class PrunePlan:
    cutoff: datetime  # rows older than this go
    upto: dict[str, int]  # per table, the highest id when the prune started (later rows are the next prune's)
    counts: dict[str, int]  # per table, how many rows qualify

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _row(conn: psycopg.Connection, file_name: str, params: dict[str, Any]) -> Any:
    row = conn.execute(statement("events/prune", file_name).psycopg, params).fetchone()
    assert row is not None
    return row


def plan(conn: psycopg.Connection, older_than_s: float) -> PrunePlan:
    """What a prune would delete (nothing is deleted)."""
    if older_than_s < 0:
        raise ValueError("older_than_s must be >= 0")
    cutoff = _row(conn, "cutoff", {"older_than_s": older_than_s})[0]
    upto = {t: int(_row(conn, f"upto_{t}", {})[0]) for t in TABLES}
    counts = {t: int(_row(conn, f"count_{t}", {"cutoff": cutoff, "upto": upto[t]})[0]) for t in TABLES}
    return PrunePlan(cutoff, upto, counts)


def prune(
    conn: psycopg.Connection,
    plan_: PrunePlan,
    window: int = 5000,
    on_batch: Callable[[str, int], object] | None = None,
) -> dict[str, int]:
    """Delete what `plan_` counted, `window` rows per transaction; returns the rows deleted per table.
    An interrupted prune loses nothing: the next one goes on."""
    if window < 1:
        raise ValueError("window must be >= 1")
    deleted: dict[str, int] = {}
    for table in TABLES:
        deleted[table] = _prune_table(conn, table, plan_, window, on_batch)
    return deleted


def _prune_table(
    conn: psycopg.Connection,
    table: str,
    plan_: PrunePlan,
    window: int,
    on_batch: Callable[[str, int], object] | None,
) -> int:
    sql = statement("events/prune", f"prune_{table}").psycopg
    after, total = 0, 0
    while True:
        params = {"cutoff": plan_.cutoff, "after_id": after, "upto": plan_.upto[table], "window": window}
        with conn.transaction():
            row = conn.execute(sql, params).fetchone()
        if row is None or row[0] is None:
            return total
        after, count = int(row[0]), int(row[1])
        total += count
        if on_batch is not None:
            on_batch(table, count)
