"""An import batch as its user sees it: its status, why it has no list of rows yet (unfinished, waiting out the
pause after a failed mapping, aborted, failed, pruned), and its rows as CSV (`…/errors`, `…/notes`, `imports
errors`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from search_service.db.sql import statement
from search_service.ingest import pipeline
from search_service.ingest.csv_errors import errors_csv
from search_service.timetext import utc_text


def _sql(name: str) -> Any:
    return statement("ingest/batches", name)


async def batch_status(conn: Any, batch_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_sql("batch_status").sql, *_sql("batch_status").bind(batch_id=batch_id))
    return None if row is None else dict(row)


def rows_csv(rows: Iterable[Any], reason_column: str, first: bool = True) -> str:
    """A page of batch_errors or batch_notes as the CSV a user gets (`…/errors`, `…/notes`), the first page with a
    UTF-8 BOM and the header (Excel read a CSV without a BOM in the ANSI code page: GewÃ¼rzgurken), a duplicate's
    or a stale row's reason saying so."""
    table = [
        (r["row_number"], _reason(r), _json(r["raw"]), _json(r["payload"]))  # asyncpg: JSON text; psycopg: decoded
        for r in rows
    ]
    return ("\ufeff" if first else "") + errors_csv(table, reason_column, header=first)


ROWS_PAGE = 5000  # rows a statement of batch_errors or batch_notes reads: each one short, whatever the batch's size


def reason_column(which: str) -> str:
    return "reason" if which == "batch_errors" else "note"


def failure_of(batch: Any, error_key: str = "error") -> str:
    """The error a batch's last failed mapping kept, its first line (batch_crashed's prefix left out)."""
    error = (batch[error_key] or "").removeprefix("mapping failed: ")
    return error.splitlines()[0][:200] if error.strip() else "no error recorded"


def retry_pause(batch: Any, cli: bool = False) -> str | None:
    """What failed and when it is tried again, for a batch waiting out the pause after a failed mapping, its own
    (batch_crashed) or that of the store's earlier batch it waits behind (`held_by`); None for any other: both read
    as "processing", retry in 2 s, for up to 2 minutes, nothing naming the failing batch. The time in UTC, for the
    `cli` as every command writes one (utc_text)."""
    if batch["retry_in_s"] is not None:
        when = _retry_at(batch["locked_until"], batch["retry_in_s"], batch["mapping_failures"], cli)
        return f"mapping it failed ({failure_of(batch)}); it is tried again at {when}"
    if batch.get("held_by") is None:
        return None
    when = _retry_at(batch["held_until"], batch["held_retry_in_s"], batch["held_failures"], cli)
    return (
        f"it waits behind batch {batch['held_by']} of this store (a store's batches are mapped in order), whose "
        f"mapping failed ({failure_of(batch, 'held_error')}); that one is tried again at {when}, this one after it"
    )


def retry_after_s(batch: Any) -> int | None:
    """The seconds until the failed mapping that holds an unfinished batch is tried again (retry_pause), or None."""
    return batch["retry_in_s"] or batch.get("held_retry_in_s")


def _retry_at(until: Any, in_s: int, failures: int, cli: bool) -> str:
    at = utc_text(until) if cli else f"{until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, in {in_s} s"
    return f"{at} (attempt {failures + 1} of {pipeline.MAX_MAPPING_ATTEMPTS})"


class BatchRowsUnavailable(Exception):
    """Why an import's rows cannot be listed (`imports errors`): unknown, not finished, aborted, failed, pruned."""


def no_rows_message(batch: Any) -> str | None:
    """Why a finished import lists no rows (None when it does): an aborted one applied nothing of its file (an
    upload cut off or refused); a failed one's mapping was given up, the rows never processed are in no list (a
    header line alone, or a part of its rows, looked like a clean file)."""
    why = f" ({batch['error']})" if batch["error"] else ""
    if batch["status"] == "aborted":
        return (
            f"this import was aborted{why}: nothing of it was applied, and it has no rows to list; import the file "
            "again"
        )
    if batch["status"] == "failed":
        return (
            f"this import failed{why}: {batch['processed_rows']} of {batch['total_rows']} rows processed, the others "
            "never will be, so it has no list of rows; fix the cause and import the file again"
        )
    return None


def batch_rows_csv(conn: psycopg.Connection, batch_id: UUID, which: str) -> str:
    """The CSV `…/errors` (which: batch_errors) or `…/notes` (batch_notes) answers, read on a psycopg connection."""
    with conn.cursor(row_factory=dict_row) as cur:
        batch = cur.execute(_sql("batch_status").psycopg, {"batch_id": batch_id}).fetchone()
        if batch is None:
            raise BatchRowsUnavailable(f"no import batch with id {batch_id}")
        if batch["status"] in ("receiving", "pending", "processing"):  # the list would be incomplete
            pause = retry_pause(batch)
            raise BatchRowsUnavailable(
                f"batch {batch_id} is {batch['status']} ({batch['processed_rows']} of {batch['total_rows']} rows "
                f"processed): {pause + '; ' if pause else ''}its rows are listed once it is completed "
                "(`plinqy-search worker --drain` maps it)"
            )
        if (why := no_rows_message(batch)) is not None:  # aborted, failed
            raise BatchRowsUnavailable(why)
        if batch["rows_pruned_at"] is not None:
            raise BatchRowsUnavailable(
                f"the rows of batch {batch_id} were pruned at {batch['rows_pruned_at']:%Y-%m-%d %H:%M} UTC "
                "(imports prune); its counts stay: `imports list`"
            )
        pages: list[str] = []
        after = 0
        while True:
            rows = cur.execute(
                _sql(which).psycopg, {"batch_id": batch_id, "after": after, "limit": ROWS_PAGE}
            ).fetchall()
            pages.append(rows_csv(rows, reason_column(which), first=not pages))
            if len(rows) < ROWS_PAGE:
                return "".join(pages)
            after = rows[-1]["row_number"]


def _reason(row: Any) -> str:
    kind = row.get("status")
    return f"{kind}: {row['error']}" if kind in ("duplicate", "stale") else row["error"] or ""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
