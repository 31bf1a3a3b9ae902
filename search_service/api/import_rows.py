"""An import's rows as CSV: those not applied (`…/errors`: rejected, or replaced by a later row) and those mapped
with notes (`…/notes`: a GTIN, a category ignored, a price rounded), each with the original cells. Both answer 409 +
Retry-After until the import is finished (a list read earlier was incomplete and looked clean), and 409 for an
aborted or failed one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import anyio
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.response import Stream

from search_service.api import error_specs as E
from search_service.api.auth import key_scope, principal_of, require_key
from search_service.api.params import Gone, NotFound
from search_service.api.path_params import BatchId
from search_service.api.runtime import Runtime
from search_service.db.sql import statement
from search_service.ingest.batch_rows import (
    ROWS_PAGE,
    batch_status,
    no_rows_message,
    reason_column,
    retry_after_s,
    retry_pause,
    rows_csv,
)

_CELLS = (
    "the original cells, every cell quoted. Cells starting (past any whitespace) with = + - @ | (or their full-width "
    "forms), a tab or a CR are prefixed with ' so a spreadsheet does not run them. The body starts with a UTF-8 BOM "
    "(Excel reads it as UTF-8 only then) and comes as an attachment, `import-<batch_id>-errors.csv` (or `-notes`). "
    "409 + Retry-After while the import is not finished (`receiving`, `pending`, `processing`): its list would be "
    "incomplete (in the pause after a failed mapping, its own or that of the store's earlier batch it waits behind, "
    "the message names the batch, the error and when it is tried again, and Retry-After points there); 409 without "
    "it for an `aborted` import, naming why (nothing of it was applied), and for a `failed` one, naming its error "
    "and its rows processed (the others never will be: its list would look clean)."
)
UNFINISHED = ("receiving", "pending", "processing")
RETRY_UNFINISHED_S = 2
NOT_FINISHED = {
    409: E.error_spec(
        409,
        "batch_id",
        "this import is processing (120 of 5000 rows processed): its rows are listed once it is completed; "
        "retry after Retry-After",
        "The import is not finished (its status is named; in the pause after a failed mapping, its own or an "
        "earlier batch's it waits behind, that batch, the error and when it is tried again): retry after "
        "Retry-After; or it was aborted or failed (no Retry-After: the message says why; import the file again).",
    )
}


async def owned_batch(rt: Runtime, request: Request[Any, Any, Any], batch_id: UUID) -> dict[str, Any]:
    """The import, if the key's store made it (an admin key: any). Another store's is answered as an unknown one:
    a 403 told a key which ids exist elsewhere."""
    async with rt.connection() as conn:
        status = await batch_status(conn, batch_id)
    if status is None or not principal_of(request).may("listings:write", status["store_id"]):
        raise NotFound("batch_id", E.NO_IMPORT_MESSAGE)
    return status


def _finished(batch: dict[str, Any]) -> dict[str, Any]:
    """The import, once no row of it is left to map; a 409 naming its status before, or why it has no list."""
    if batch["status"] in UNFINISHED:
        pause = retry_pause(batch)  # a failed mapping's pause, its own or its store's earlier batch's: "retry in 2 s"
        raise ClientException(
            status_code=409,
            detail=f"this import is {batch['status']} ({batch['processed_rows']} of {batch['total_rows']} rows "
            f"processed): {pause + '; ' if pause else ''}its rows are listed once it is completed; retry after "
            "Retry-After",
            headers={"Retry-After": str(retry_after_s(batch) or RETRY_UNFINISHED_S)},
            extra={"parameter": "batch_id"},
        )
    if (why := no_rows_message(batch)) is not None:  # aborted, failed: a header alone looked like a clean file
        raise ClientException(status_code=409, detail=why, extra={"parameter": "batch_id"})
    return batch


async def _rows_csv(rt: Runtime, batch_id: UUID, which: str, name: str) -> Stream:
    """The CSV a page of rows at a time, each page its own short statement: half a million rejected rows read in
    one ran past the API's statement timeout (503 "retry shortly", for ever). The first page is read before the
    answer starts, so a database too slow for it is still a 503."""
    stmt, column = statement("ingest/batches", which), reason_column(which)

    async def page(after: int) -> tuple[str, int | None]:
        async with rt.connection() as conn:
            rows = await conn.fetch(stmt.sql, *stmt.bind(batch_id=batch_id, after=after, limit=ROWS_PAGE))
        # built in a thread: a page's CSV held every request of this process meanwhile
        text = await anyio.to_thread.run_sync(rows_csv, rows, column, after == 0)
        return text, rows[-1]["row_number"] if len(rows) == ROWS_PAGE else None

    first, after = await page(0)

    async def pages() -> AsyncIterator[str]:
        yield first
        nonlocal after
        while after is not None:
            text, after = await page(after)
            yield text

    disposition = f'attachment; filename="import-{batch_id}-{name}.csv"'
    return Stream(pages(), media_type="text/csv", headers={"Content-Disposition": disposition})


@get(
    "/v1/imports/{batch_id:uuid}/errors",
    summary="An import's rows not applied, as CSV",
    description="The rows rejected, the stale ones (nothing to do: older than the listing, or a retired SKU's row in "
    "a file sent again; reason starting `stale: `) and the duplicates: an earlier row of a SKU that a later row of the "
    "file replaced (the last one wins, even when it is rejected: its reason then says the SKU was left as it was), its "
    f"reason starting `duplicate: `. Row number, reason, {_CELLS} 410 once `imports prune` deleted the rows of an "
    "import that had such rows. Rows mapped with notes are at `…/notes`.",
    tags=["ingest"],
    guards=[require_key("listings:write")],
    security=key_scope("listings:write"),
    responses={**E.bad_input(E.bad_uuid("batch_id")), **E.WRITE_ERRORS, **E.NO_IMPORT, **NOT_FINISHED, **E.PRUNED_ROWS},
    media_type="text/csv",
)
async def import_errors(rt: NamedDependency[Runtime], request: Request[Any, Any, Any], batch_id: BatchId) -> Stream:
    batch = _finished(await owned_batch(rt, request, batch_id))
    if batch["rows_pruned_at"] is not None and (batch["error_rows"] or batch["duplicate_rows"] or batch["stale_rows"]):
        counts = f"{batch['error_rows']} rejected, {batch['duplicate_rows']} duplicate, {batch['stale_rows']} stale"
        raise _pruned(batch, f"; its counts stay: {counts}")
    return await _rows_csv(rt, batch_id, "batch_errors", "errors")


@get(
    "/v1/imports/{batch_id:uuid}/notes",
    summary="An import's rows mapped with notes, as CSV",
    description="The rows that were applied, but not all as written: a GTIN ignored (its check digit, scientific "
    "notation that lost digits), a category not found, a price rounded to cents, a price read with a decimal point "
    "before three digits (`2.500` is 2.50; 2500 in German), the brand, description or category a row left out kept "
    "from the product a new GTIN moved its listing off. Row number, note (several joined "
    f"by `; `), {_CELLS} Their count is the status's `noted_rows`. 410 once `imports prune` deleted its rows.",
    tags=["ingest"],
    guards=[require_key("listings:write")],
    security=key_scope("listings:write"),
    responses={**E.bad_input(E.bad_uuid("batch_id")), **E.WRITE_ERRORS, **E.NO_IMPORT, **NOT_FINISHED, **E.PRUNED_ROWS},
    media_type="text/csv",
)
async def import_notes(rt: NamedDependency[Runtime], request: Request[Any, Any, Any], batch_id: BatchId) -> Stream:
    batch = _finished(await owned_batch(rt, request, batch_id))
    if batch["rows_pruned_at"] is not None:
        raise _pruned(batch, "")
    return await _rows_csv(rt, batch_id, "batch_notes", "notes")


def _pruned(batch: Any, counts: str) -> Gone:
    return Gone("batch_id", f"the rows of this import were pruned at {batch['rows_pruned_at']:%Y-%m-%d %H:%M} UTC "
                f"(imports prune){counts}")  # fmt: skip


ROUTES = [import_errors, import_notes]
