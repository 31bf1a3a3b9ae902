"""Reading back what a store wrote: one listing by its SKU, or all of them a page at a time (a store's system
reconciles its stock against them), and its imports newest first. Store keys, as for the writes."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from search_service.api import error_specs as E
from search_service.api import ingest_schemas as S
from search_service.api.auth import key_scope, require_store_key
from search_service.api.params import LISTINGS_PAGE_MAX, BadParameter, NotFound
from search_service.api.path_params import LISTING_PATH, Sku, StoreId, listing_sku
from search_service.api.runtime import Runtime
from search_service.db.schema.base import INGEST_SOURCES
from search_service.db.sql import statement
from search_service.ingest import pipeline
from search_service.ingest.batch_rows import retry_pause
from search_service.ingest.rows import MAX_TEXT, trimmed


def listing_out(row: Any) -> S.ListingOut:
    return S.ListingOut(
        id=row["id"], sku=row["sku"], product_id=row["product_master_id"], title=row["title"], gtin=row["gtin"],
        price=float(row["price"]), currency=row["currency"], quantity=row["quantity"], is_active=row["is_active"],
        source_updated_at=row["source_updated_at"], updated_at=row["updated_at"],
    )  # fmt: skip


# not shown: `waiting` says what the pause's columns hold
INTERNAL = (
    "id", "kind", "seq", "locked_by", "locked_until", "mapping_failures", "retry_in_s",
    "held_by", "held_error", "held_failures", "held_until", "held_retry_in_s",
)  # fmt: skip


def import_status_of(row: Any) -> S.ImportStatus:
    """A batch's row (`batch_status`, `store_batches`) as the API shows it."""
    fields = dict(row)
    values = {k: v for k, v in fields.items() if k not in INTERNAL}
    waiting = retry_pause(fields) if "retry_in_s" in fields else None  # batch_status's row: a list's has no pause
    return S.ImportStatus(batch_id=row["id"], waiting=waiting, **values)


async def require_store(conn: Any, store_id: UUID) -> None:
    """404 naming `store_id` unless the store exists."""
    if await pipeline.store_of(conn, store_id) is None:
        raise NotFound("store_id", "no store with this id")


async def listing_of(conn: Any, store_id: UUID, sku: str) -> S.ListingOut | None:
    stmt = statement("ingest/mapping", "listings_of")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(store_id=store_id, skus=[sku]))
    return None if row is None else listing_out(row)


@get(
    LISTING_PATH,
    summary="A listing of the store",
    description="The listing as the store's writes left it (a deleted one with `is_active: false`).",
    tags=["ingest"],
    guards=[require_store_key("listings:write")],
    security=key_scope("listings:write"),
    responses={**E.bad_input(E.bad_uuid("store_id")), **E.WRITE_ERRORS, **E.NO_LISTING, **E.BATCH_PATH},
)
async def get_listing(
    rt: NamedDependency[Runtime], store_id: StoreId, sku: Sku, request: Request[Any, Any, Any]
) -> S.ListingOut:
    key = trimmed(listing_sku(request))  # as the writes key it: ` A1 ` reads `A1`
    if len(key) > MAX_TEXT["sku"]:  # as the writes refuse it (rows.py); it was a 404 echoing the whole SKU
        raise BadParameter("sku", f"sku is longer than {MAX_TEXT['sku']} characters")
    async with rt.connection() as conn:
        listing = await listing_of(conn, store_id, key)
        if listing is None:
            await require_store(conn, store_id)
    if listing is None:
        raise NotFound("sku", f"no listing with sku {key!r} in this store")
    return listing


@get(
    "/v1/stores/{store_id:uuid}/listings",
    summary="The store's listings, a page at a time",
    description="By SKU (byte order). The next page: `after` = the answer's `next_after`, null on the last page. "
    "Deleted listings are included (`is_active: false`).",
    tags=["ingest"],
    guards=[require_store_key("listings:write")],
    security=key_scope("listings:write"),
    responses={**E.bad_input(E.bad_uuid("store_id"), E.BAD_PAGE_SIZE), **E.WRITE_ERRORS, **E.NO_STORE},
)
async def list_listings(
    rt: NamedDependency[Runtime],
    store_id: StoreId,
    after: Annotated[
        str | None, Parameter(description="The last SKU of the page before.", max_length=MAX_TEXT["sku"])
    ] = None,
    page_size: Annotated[int, Parameter(ge=1, le=LISTINGS_PAGE_MAX, description="Listings a page.")] = 100,
) -> S.ListingPage:
    if after is not None and "\x00" in after:  # no SKU holds one (text cannot)
        raise BadParameter("after", "must not hold a NUL character: give the answer's next_after")
    stmt = statement("ingest/mapping", "listings_page")
    async with rt.connection() as conn:
        await require_store(conn, store_id)
        rows = await conn.fetch(stmt.sql, *stmt.bind(store_id=store_id, after=after, limit=page_size + 1))
    items = [listing_out(r) for r in rows[:page_size]]
    return S.ListingPage(items, items[-1].sku if len(rows) > page_size else None)


@get(
    "/v1/stores/{store_id:uuid}/imports",
    summary="The store's imports, newest first",
    description="Every batch the store's writes made (CSV uploads, listing writes, deliveries, POS syncs), with "
    "its status and counts, a page at a time; `source` keeps one kind. The next (older) page: `before` = the "
    "answer's `next_before`, null on the last.",
    tags=["ingest"],
    guards=[require_store_key("listings:write")],
    security=key_scope("listings:write"),
    responses={**E.bad_input(E.bad_uuid("store_id"), E.BAD_PAGE_SIZE), **E.WRITE_ERRORS, **E.NO_STORE},
)
async def list_imports(
    rt: NamedDependency[Runtime],
    store_id: StoreId,
    source: Annotated[
        str | None,
        Parameter(description=f"One of {', '.join(INGEST_SOURCES)}.", schema_extra={"enum": list(INGEST_SOURCES)}),
    ] = None,
    before: Annotated[
        int | None, Parameter(ge=1, le=2**63 - 1, description="The `next_before` of the page before.")
    ] = None,
    page_size: Annotated[int, Parameter(ge=1, le=LISTINGS_PAGE_MAX, description="Imports a page.")] = 100,
) -> S.ImportPage:
    if source is not None and source not in INGEST_SOURCES:
        raise BadParameter("source", f"must be one of {', '.join(INGEST_SOURCES)}")
    stmt = statement("ingest/batches", "store_batches")
    async with rt.connection() as conn:
        await require_store(conn, store_id)
        found = await conn.fetch(
            stmt.sql, *stmt.bind(store_id=store_id, before=before, source=source, limit=page_size + 1)
        )
    items = [import_status_of(r) for r in found[:page_size]]
    return S.ImportPage(items, found[page_size - 1]["seq"] if len(found) > page_size else None)


LISTING_READ_ROUTES = [get_listing, list_listings, list_imports]
