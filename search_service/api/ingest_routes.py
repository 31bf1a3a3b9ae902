"""HTTP routes of the write path: stores, listings, CSV imports, signed webhooks in (see docs/ingest.md).

Handlers stay thin: authenticate (api/auth.py guards), read the body, hand the rows to the ingest pipeline
(search_service/ingest), shape the answer. Listing writes map inline; imports and webhooks are stored and answered,
and the worker's `import` job maps them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.exceptions import TooManyRequestsException
from litestar.params import Body

from search_service.api import error_specs as E
from search_service.api import import_rows
from search_service.api import ingest_schemas as S
from search_service.api import ingest_uploads as uploads
from search_service.api.auth import key_scope, require_admin_key, require_key, require_store_key
from search_service.api.bodies import json_body, json_body_if_any
from search_service.api.import_rows import owned_batch
from search_service.api.ingest_fields import LISTING_BODY_MAX
from search_service.api.listing_reads import import_status_of, listing_of, require_store
from search_service.api.params import BadParameter, NotFound
from search_service.api.path_params import LISTING_PATH, BatchId, Sku, StoreId, listing_sku
from search_service.api.queued_writes import Committed, queued
from search_service.api.runtime import Runtime
from search_service.engine import geo_areas
from search_service.ingest import listing_writes
from search_service.ingest.imports import noted_rows
from search_service.ingest.rows import Rejected, trimmed, validate
from search_service.ingest.stores import StoreError, StoreFields, store_detail_async, update_store_async
from search_service.ingest.stores import create_store_async as create_store_row

FIELDS = ("sku", "gtin", "name", "brand", "description", "category", "price", "currency", "quantity", "is_active",
          "attributes", "updated_at", "version", "op", "row", "the")  # fmt: skip


@contextlib.asynccontextmanager
async def long_connection(rt: Runtime) -> AsyncIterator[Any]:
    """A pooled connection for writes that may take longer than a search (a big CSV, a 1,000-item batch): the
    pool's acquire bound, but a generous statement timeout set per transaction by the callers."""
    async with rt.connection() if rt.pool is None else rt.pool.acquire(timeout=10) as conn:
        yield conn


def _parameter(reason: str) -> str | None:
    first = reason.split(" ", 1)[0]
    return first if first in FIELDS and first not in ("row", "the", "op") else None


def _row_of(sku: str, body: msgspec.Struct, op: str) -> dict[str, Any]:
    row: dict[str, Any] = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
    return {**row, "op": op, "sku": sku}  # `updated_at` as sent: the pipeline reads it, as every source's


@contextlib.asynccontextmanager
async def store_turn(rt: Runtime, store_id: UUID) -> AsyncIterator[tuple[Any, float]]:
    """A listing write's turn at its store (StoreGates), then its pooled connection, and what is left of the wait
    for the store's lock; 429 + Retry-After when the store's other writes held it too long (nothing applied: the
    client sends it again). A write waiting for its turn holds no connection: searches keep theirs."""
    try:
        async with rt.store_gates.turn(store_id) as wait_s, long_connection(rt) as conn:
            yield conn, wait_s
    except listing_writes.StoreBusy as exc:
        raise TooManyRequestsException(
            f"{E.STORE_BUSY_MESSAGE} ({exc}); nothing was applied", headers={"Retry-After": "1"}
        ) from None


async def _record_and_map(
    rt: Runtime, conn: Any, store_id: UUID, rows: list[dict[str, Any]], wait_s: float
) -> listing_writes.Recorded:
    """A listing write recorded and mapped (listing_writes.record_and_map), in its turn (`store_turn`)."""
    await require_store(conn, store_id)
    return await listing_writes.record_and_map(
        conn, store_id=store_id, rows=rows, worker_id=f"api:{store_id}", lease_s=rt.settings.ingest.lease_s,
        wait_s=wait_s,
    )  # fmt: skip


async def _write_one(rt: Runtime, store_id: UUID, row: dict[str, Any]) -> S.ListingResult:
    with Committed() as written:  # committed: a database error from then on answers queued, not 503
        async with store_turn(rt, store_id) as (conn, wait_s):
            batch_id, results, why = await _record_and_map(rt, conn, store_id, [row], wait_s)
            written.batch_id, written.why = batch_id, why
            if results is not None:
                return await _answer(conn, store_id, row, batch_id, results[0])
        try:  # what needs no database is answered at once (the queued row ends rejected with the same reason)
            validate(row)
        except Rejected as exc:
            raise BadParameter(_parameter(str(exc)), str(exc)) from None
        results = await listing_writes.wait_for_results(lambda: long_connection(rt), batch_id, rt.store_gates)
        if results is None:
            raise queued(batch_id, why)
        async with long_connection(rt) as conn:
            return await _answer(conn, store_id, row, batch_id, results[0])


async def _answer(conn: Any, store_id: UUID, row: dict[str, Any], batch_id: UUID, result: Any) -> S.ListingResult:
    reason = str(result["error"])
    if reason.startswith("no listing with sku"):  # a stock write (rejected) or a delete (stale) of no listing
        raise NotFound("sku", reason)
    if result["status"] == "rejected":
        raise BadParameter(_parameter(reason), reason)
    sku = trimmed(row["sku"])  # the listing written: ` A1 ` writes `A1`
    listing = await listing_of(conn, store_id, sku)
    return S.ListingResult(
        sku=sku, status=result["status"], matched_by=result["matched_by"],
        product_id=result["matched_product_id"], notes=result["error"], listing=listing, batch_id=batch_id,
    )  # fmt: skip


# a listing write's 400s: a malformed store id, a value its row is rejected for (the same reason a batch gives)
_STORE_ID_400 = E.bad_input(E.bad_uuid("store_id"))
_LISTING_400 = E.bad_input(E.bad_uuid("store_id"), E.NEGATIVE_PRICE_CASE)
_LISTING_DOC = "Write one listing of the store, keyed by the store's own SKU; mapped at once (see docs/ingest.md)."


@put(
    LISTING_PATH,
    summary="Create or replace a listing",
    description=_LISTING_DOC + " A valid GTIN links to the global product with it (`matched_by: gtin`); else the SKU "
    "keeps its product (`sku`) or one is created (`created`). A write older than the listing (`updated_at`/`version`) "
    "changes nothing: `status: stale`; one carrying both whose `updated_at` alone is older applies its quantity alone.",
    tags=["ingest"],
    guards=[require_store_key("listings:write"), json_body],
    request_max_body_size=LISTING_BODY_MAX,
    security=key_scope("listings:write"),
    responses={
        **_LISTING_400,
        **E.WRITE_ERRORS,
        **E.NO_STORE,
        **E.LISTING_JSON_ONLY,
        **S.QUEUED,
        **E.STORE_BUSY,
        **E.BATCH_PATH,
    },
    status_code=200,
)
async def put_listing(
    rt: NamedDependency[Runtime],
    store_id: StoreId,
    sku: Sku,
    request: Request[Any, Any, Any],
    data: Annotated[S.ListingIn, Body(examples=[S.LISTING_EXAMPLE])],
) -> S.ListingResult:
    return await _write_one(rt, store_id, _row_of(listing_sku(request), data, "upsert"))


@patch(
    LISTING_PATH,
    summary="Change a listing's stock and/or price",
    description="The fast path a till uses: absolute `quantity`, `price`, and the source's `updated_at`; a `quantity` "
    "or `price` that is not null is required. 404 when the store has no listing with this SKU.",
    tags=["ingest"],
    guards=[require_store_key("listings:write"), json_body],
    request_max_body_size=LISTING_BODY_MAX,
    security=key_scope("listings:write"),
    responses={
        **_LISTING_400,
        **E.WRITE_ERRORS,
        **E.NO_LISTING,
        **E.LISTING_JSON_ONLY,
        **S.QUEUED,
        **E.STORE_BUSY,
        **E.BATCH_PATH,
    },
)
async def patch_listing(
    rt: NamedDependency[Runtime],
    store_id: StoreId,
    sku: Sku,
    request: Request[Any, Any, Any],
    data: Annotated[S.StockPatch, Body(examples=[S.STOCK_EXAMPLE])],
) -> S.ListingResult:
    if data.quantity is None and data.price is None:
        raise BadParameter("quantity", "give quantity and/or price")
    return await _write_one(rt, store_id, _row_of(listing_sku(request), data, "stock"))


@delete(
    LISTING_PATH,
    summary="Stop selling a listing",
    description="The listing stops being sellable (`is_active: false`); its history and product stay. An optional "
    "JSON body `{updated_at?, version?}` carries the source's clock: a delete older than the listing changes "
    "nothing (`status: stale`).",
    tags=["ingest"],
    guards=[require_store_key("listings:write"), json_body_if_any],
    security=key_scope("listings:write"),
    responses={
        **_STORE_ID_400,
        **E.WRITE_ERRORS,
        **E.NO_LISTING,
        **S.QUEUED,
        **E.JSON_ONLY,
        **E.STORE_BUSY,
        **E.BATCH_PATH,
    },
    status_code=200,
)
async def delete_listing(
    rt: NamedDependency[Runtime], store_id: StoreId, sku: Sku, request: Request[Any, Any, Any],
    data: Annotated[S.DeleteClock | None, Body(examples=[S.DELETE_EXAMPLE])] = None,
) -> S.ListingResult:  # fmt: skip
    clock = S.DeleteClock() if data is None else data
    return await _write_one(rt, store_id, _row_of(listing_sku(request), clock, "delete"))


@post(
    "/v1/stores/{store_id:uuid}/listings/batch",
    summary="Write up to 1,000 listings",
    description="Each item is an upsert (default), `stock` or `delete`; each gets its own result. Items that fail "
    "validation are `rejected` with a reason; the others are applied.",
    tags=["ingest"],
    guards=[require_store_key("listings:write"), json_body],
    security=key_scope("listings:write"),
    responses={**_STORE_ID_400, **E.WRITE_ERRORS, **E.NO_STORE, **E.JSON_ONLY, **S.QUEUED, **E.STORE_BUSY},
    status_code=200,
)
async def batch_listings(
    rt: NamedDependency[Runtime], store_id: StoreId, data: Annotated[S.BatchIn, Body(examples=[S.BATCH_EXAMPLE])]
) -> S.BatchResult:
    rows = [_row_of(item.sku, item, item.op) for item in data.items]
    with Committed() as written:  # as a single write's
        async with store_turn(rt, store_id) as (conn, wait_s):
            batch_id, results, why = await _record_and_map(rt, conn, store_id, rows, wait_s)
            written.batch_id, written.why = batch_id, why
        if results is None:
            results = await listing_writes.wait_for_results(lambda: long_connection(rt), batch_id, rt.store_gates)
    if results is None:
        raise queued(batch_id, why)
    return S.BatchResult(batch_id, _result_items(results))


def _result_items(rows: list[Any]) -> list[S.BatchResultItem]:
    """A mapped row's text is its notes, any other's the reason it was not applied (a client counts a non-null
    `error` as a failure)."""
    items = []
    for r in rows:
        mapped = r["status"] == "mapped"
        text = {"notes": r["error"]} if mapped else {"error": r["error"]}
        sku = None if r["sku"] is None else trimmed(r["sku"])  # the SKU written, as a single write answers
        items.append(S.BatchResultItem(sku, r["status"], r["matched_by"], r["matched_product_id"], **text))
    return items


# --- stores (admin)
def _fields(data: msgspec.Struct) -> StoreFields:
    values = msgspec.structs.asdict(data)
    for not_a_field in ("is_active", "delivery_radius_m", "delivery_area"):
        values.pop(not_a_field, None)
    return StoreFields(**values)


async def _store_out(conn: Any, store_id: UUID) -> S.StoreOut:
    detail = await store_detail_async(conn, store_id)
    if detail is None:
        raise NotFound("store_id", "no store with this id")
    detail["currency"] = detail["currency"].strip()
    area = detail.pop("delivery_area", None)
    return S.StoreOut(**detail, delivery_area=None if area is None else json.loads(area))


async def _patch_delivery(conn: Any, store_id: UUID, data: S.StorePatch) -> None:
    """The delivery radius and polygon (validated by PostGIS; a self-intersecting polygon is a 400)."""
    radius, area = data.delivery_radius_m, data.delivery_area
    set_radius, set_area = radius is not msgspec.UNSET, area is not msgspec.UNSET
    if not (set_radius or set_area):
        return
    try:
        await geo_areas.set_delivery(
            conn,
            store_id,
            None if radius is msgspec.UNSET else radius,
            None if area is msgspec.UNSET else area,
            set_radius=set_radius,
            set_area=set_area,
        )
    except geo_areas.InvalidArea as exc:
        parameter = "delivery_radius_m" if str(exc).startswith("delivery_radius_m") else "delivery_area"
        raise BadParameter(parameter, str(exc)) from None


@post(
    "/v1/stores",
    summary="Create a store (admin)",
    description="Admin keys only (`stores:write`). `currency` is the store's default for listings that send none. "
    "Text is trimmed (surrounding whitespace, invisible characters such as a BOM): a blank optional field is left "
    "empty, a blank name is a 400.",
    tags=["ingest"],
    guards=[require_admin_key("stores:write"), json_body],
    security=key_scope("stores:write"),
    responses={**E.bad_input(E.EMPTY_NAME_CASE), **E.WRITE_ERRORS, **E.JSON_ONLY},
    status_code=201,
    response_description="Created: the store; `Location` is its URL (`GET /v1/stores/{store_id}`).",
)
async def create_store(
    rt: NamedDependency[Runtime], data: Annotated[S.StoreIn, Body(examples=[S.STORE_EXAMPLE])]
) -> Response[S.StoreOut]:
    async with rt.connection() as conn:
        try:
            store_id = await create_store_row(conn, _fields(data))
        except StoreError as exc:
            raise BadParameter(exc.field, exc.message) from None
        store = await _store_out(conn, store_id)
    return Response(store, status_code=201, headers={"Location": f"/v1/stores/{store_id}"})


@patch(
    "/v1/stores/{store_id:uuid}",
    summary="Edit a store (admin)",
    description="Only the fields given change, but `lat` and `lon` move the store together: give both or neither "
    "(one alone is a 400 naming the other). `delivery_radius_m` (metres, 1-1,000,000) and `delivery_area` (a "
    "GeoJSON Polygon or MultiPolygon, holes allowed, an altitude dropped; checked with PostGIS as the globe reads "
    "it: a self-intersecting one is a 400, as is one with an edge 180 degrees of longitude long or one with no area "
    "on the globe (an edge from -180 to 180 has zero length); one across the antimeridian is judged where its edges "
    "run; its edges are geodesics, not straight lon/lat lines: draw a long edge with more corners) say where the "
    "store delivers (`fulfilment=delivery` in "
    "search); `null` clears either. Text is trimmed (surrounding whitespace, invisible characters such as a BOM): "
    "an empty or blank string clears an optional text field (address, city, postal_code, country_code, store_type, "
    "phone, website), a blank name is a 400; `null` keeps a field. A body that changes nothing (`{}`, or only "
    "`null`s for the fields it keeps) writes nothing: the store is answered as it is; one that repeats the store's "
    "values leaves `updated_at` as it was. `is_active: false` hides the "
    "store from shoppers only: its listings leave search (suggestions, facets, delivery) until it is active again; "
    "its keys, listing writes and webhooks keep working, and a listing write's `notes` say the store is inactive.",
    tags=["ingest"],
    guards=[require_admin_key("stores:write"), json_body],
    security=key_scope("stores:write"),
    responses={**E.bad_input(E.bad_uuid("store_id"), E.EMPTY_NAME_CASE), **E.WRITE_ERRORS, **E.NO_STORE, **E.JSON_ONLY},
)
async def patch_store(
    rt: NamedDependency[Runtime], store_id: StoreId, data: Annotated[S.StorePatch, Body()]
) -> S.StoreOut:
    fields = _fields(data)
    async with rt.connection() as conn, conn.transaction():
        # None given: nothing written (an UPDATE bumped updated_at, and the stores' version every API reloads on)
        if fields != StoreFields() or data.is_active is not None:
            try:
                found = await update_store_async(conn, store_id, fields, data.is_active)
            except StoreError as exc:
                raise BadParameter(exc.field, exc.message) from None
            if not found:
                raise NotFound("store_id", "no store with this id")
        await _patch_delivery(conn, store_id, data)
        return await _store_out(conn, store_id)


@get(
    "/v1/stores/{store_id:uuid}",
    summary="A store",
    description="What a store page shows: name, place, address, contact, currency and where it delivers. Open, as "
    "search is.",
    tags=["catalog"],
    responses={**E.BAD_STORE_ID, **E.NO_STORE, 503: E.WRITE_ERRORS[503]},
)
async def get_store(rt: NamedDependency[Runtime], store_id: StoreId) -> S.StoreOut:
    async with rt.connection() as conn:
        return await _store_out(conn, store_id)


# --- imports
@get(
    "/v1/imports/{batch_id:uuid}",
    summary="An import's status",
    description="Status (`receiving`, `pending`, `processing`, `completed`, `failed`, `aborted`) and row counts "
    "(of the mapped rows, `unchanged_rows` changed nothing: a file sent again; `unprocessed_rows`: a failed "
    "import's rows never processed, neither applied nor rejected); for a listing write's batch (a queued write's "
    "`status_url`), each item's result once mapped (`results`), until `imports prune` deletes the import once "
    "finished longer ago than its retention (then 404). Another store's import is answered as an unknown id (404); "
    "an admin key sees every store's.",
    tags=["ingest"],
    guards=[require_key("listings:write")],
    security=key_scope("listings:write"),
    responses={**E.bad_input(E.bad_uuid("batch_id")), **E.WRITE_ERRORS, **E.NO_IMPORT},
)
async def import_status(
    rt: NamedDependency[Runtime], request: Request[Any, Any, Any], batch_id: BatchId
) -> S.ImportStatus:
    row = await owned_batch(rt, request, batch_id)
    status = import_status_of(row)
    async with rt.connection() as conn:
        status.noted_rows = await noted_rows(conn, batch_id)
    if row["kind"] == "listing" and row["status"] == "completed" and row["rows_pruned_at"] is None:
        async with rt.connection() as conn:
            status.results = _result_items(await listing_writes.results_of(conn, batch_id))
    return status


ROUTES = [
    get_store, put_listing, patch_listing, delete_listing, batch_listings, create_store, patch_store, import_status,
    *import_rows.ROUTES, *uploads.ROUTES,
]  # fmt: skip
