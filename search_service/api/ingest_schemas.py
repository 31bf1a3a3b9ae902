"""Request and response bodies of the ingest endpoints (msgspec structs: also their OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from search_service.api.ingest_fields import (
    Attributes,
    Currency,
    ItemQuantity,
    Price,
    Quantity,
    SourceClock,
    StoredGtin,
    Version,
)
from search_service.db.schema.base import BatchStatus, IngestSource

EXAMPLE_STORE = "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b"
EXAMPLE_PRODUCT = "6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a"
EXAMPLE_BATCH = "0b7f6c2e-3f4a-4c1e-9a51-2f1d7c7f9e10"


class StoreIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    lat: float
    lon: float
    address: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    store_type: str | None = None
    currency: str = "EUR"
    phone: str | None = None
    website: str | None = None


class StorePatch(msgspec.Struct, forbid_unknown_fields=True):
    """The fields to change. Absent or null: kept; a blank string (text is trimmed) clears an optional text field
    (address, city, postal_code, country_code, store_type, phone, website); the delivery fields: null clears."""

    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    store_type: str | None = None
    currency: str | None = None
    phone: str | None = None
    website: str | None = None
    is_active: bool | None = None
    delivery_radius_m: int | msgspec.UnsetType | None = msgspec.field(default=msgspec.UNSET)
    delivery_area: dict[str, Any] | msgspec.UnsetType | None = msgspec.field(default=msgspec.UNSET)


class StoreOut(msgspec.Struct):
    id: UUID
    name: str
    lat: float
    lon: float
    address: str | None
    city: str | None
    postal_code: str | None
    country_code: str | None
    store_type: str | None
    currency: str
    phone: str | None
    website: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    delivery_radius_m: int | None = None
    delivery_area: dict[str, Any] | None = None  # GeoJSON MultiPolygon


class ListingIn(msgspec.Struct, forbid_unknown_fields=True):
    price: Price
    quantity: Quantity
    name: Annotated[str, msgspec.Meta(description="Required for a new SKU; the store's own title.")] | None = None
    gtin: str | None = None
    brand: str | None = None
    description: str | None = None
    category: int | str | None = None
    currency: Currency | None = None
    is_active: bool | None = None
    attributes: Attributes | None = None
    updated_at: SourceClock | None = None
    version: Version | None = None


class StockPatch(msgspec.Struct, forbid_unknown_fields=True):
    quantity: Quantity | None = None
    price: Price | None = None
    updated_at: SourceClock | None = None
    version: Version | None = None


class DeleteClock(msgspec.Struct, forbid_unknown_fields=True):
    """A DELETE's optional body: the source's clock, so that a delete older than the listing changes nothing."""

    updated_at: SourceClock | None = None
    version: Version | None = None


class BatchItem(msgspec.Struct, forbid_unknown_fields=True):
    sku: str
    op: Literal["upsert", "stock", "delete"] = "upsert"
    name: str | None = None
    price: Price | None = None
    quantity: ItemQuantity | None = None
    gtin: str | None = None
    brand: str | None = None
    description: str | None = None
    category: int | str | None = None
    currency: Currency | None = None
    is_active: bool | None = None
    attributes: Attributes | None = None
    updated_at: SourceClock | None = None
    version: int | None = None  # a negative one rejects its item


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    items: Annotated[list[BatchItem], msgspec.Meta(min_length=1, max_length=1000)]


# The bodies whose rules (`ge=0`, no unknown field) the OpenAPI states (app.py, openapi_fixes.py).
BODY_STRUCTS = (ListingIn, StockPatch, DeleteClock, BatchItem, BatchIn, StoreIn, StorePatch)


class ListingOut(msgspec.Struct):
    id: UUID
    sku: str
    product_id: UUID
    title: str
    gtin: StoredGtin | None
    price: float
    currency: str
    quantity: int
    is_active: bool
    source_updated_at: datetime | None
    updated_at: datetime


class ListingPage(msgspec.Struct):
    items: list[ListingOut]
    next_after: str | None  # the `after` of the next page; None on the last


# A written row's outcome, and how a mapped one found its product (a single write's and a batch item's).
RowOutcome = Literal["mapped", "stale", "duplicate", "rejected"]
MatchedBy = Literal["gtin", "sku", "created"]
RowMatchedBy = Annotated[
    MatchedBy | None,
    msgspec.Meta(
        description="How an upsert (`PUT`, a batch's or file's upsert row) found its product: `gtin`, `sku` (its SKU's "
        "listing: also when stale, or when only its stock level applied) or `created`; null for a stock change "
        "(`PATCH`), a delete, and a row that found no listing"
    ),
]
RowProduct = Annotated[
    UUID | None,
    msgspec.Meta(
        description="The product of the SKU's listing, a stale write's too; null for a rejected row or a SKU with no "
        "listing"
    ),
]


class ListingResult(msgspec.Struct):
    sku: str
    status: RowOutcome
    matched_by: RowMatchedBy
    product_id: RowProduct
    notes: str | None
    listing: ListingOut | None
    batch_id: UUID


class WriteQueued(msgspec.Struct):
    batch_id: UUID
    status: Literal["queued"]
    status_url: str  # GET: the batch's status; its rows' results once mapped (`/v1/imports/{id}`)
    message: str


QUEUED_MESSAGE = (
    "the store has an earlier import or delivery still waiting or being mapped: this write is applied after it, "
    "in order, by a worker; its outcome is at status_url (whose `waiting` names the earlier batch, if a failed "
    "mapping of it holds this one)"
)
# its own inline mapping ran past the statement timeout (listing_writes.map_inline): no earlier batch to name
TIMED_OUT_MESSAGE = (
    "mapping this write took longer than the server's statement timeout (a busy database, or its listings locked by "
    "another write), so it was stopped and handed to the workers: its rows are stored and nothing is lost. Do not "
    "send it again: a worker applies it, and its outcome is at status_url"
)
# mapped inline and committed, then its answer's read failed (queued_writes.Committed): applied, not waiting
UNREAD_MESSAGE = (
    "this write was stored and mapped, but the database failed before its answer could be read: nothing is lost. "
    "Do not send it again: its outcome, each item's, is at status_url"
)
_QUEUED_EXAMPLE = {"batch_id": "0b7f6c2e-3f4a-4c1e-9a51-2f1d7c7f9e10", "status": "queued",
                   "status_url": "/v1/imports/0b7f6c2e-3f4a-4c1e-9a51-2f1d7c7f9e10"}  # fmt: skip
QUEUED = {
    202: ResponseSpec(
        WriteQueued,
        description="Queued behind the store's earlier batches (an uploaded CSV, a delivery): a store's batches are "
        "applied in order. Not applied yet; `status_url` (also `Location`) gives its outcome. Also the answer for a "
        "write whose own mapping ran past the statement timeout (no earlier batch holds it), stored and applied by "
        "the workers, and for one stored, then its outcome unread (the database failed; one mapped inline is "
        "applied already): `message` says which; never a 503 saying retry.",
        generate_examples=False,
        examples=[
            Example(summary="queued", value={**_QUEUED_EXAMPLE, "message": QUEUED_MESSAGE}),
            Example(summary="its mapping timed out", value={**_QUEUED_EXAMPLE, "message": TIMED_OUT_MESSAGE}),
            Example(summary="applied, its answer unread", value={**_QUEUED_EXAMPLE, "message": UNREAD_MESSAGE}),
        ],
    )
}  # fmt: skip


class BatchResultItem(msgspec.Struct):
    sku: str | None
    status: RowOutcome
    matched_by: RowMatchedBy
    product_id: RowProduct
    error: str | None = None  # why the item was not applied (rejected, stale, duplicate); None when mapped
    notes: str | None = None  # a mapped item's notes (a GTIN ignored, a price rounded), as a single write's `notes`


class BatchResult(msgspec.Struct):
    batch_id: UUID
    results: list[BatchResultItem]


class ImportAccepted(msgspec.Struct):
    batch_id: UUID
    status: BatchStatus  # pending; completed (no row to map) or aborted
    status_url: str
    errors_url: str
    ignored_columns: list[str] = []  # the file's columns that are none of the known ones, left out of every row


class ImportStatus(msgspec.Struct):
    batch_id: UUID
    store_id: UUID
    source: IngestSource
    status: BatchStatus
    total_rows: int
    processed_rows: int
    mapped_rows: int
    stale_rows: int
    duplicate_rows: int
    error_rows: int
    unchanged_rows: Annotated[
        int,
        msgspec.Meta(
            description="Of `mapped_rows`, those whose write changed nothing: their listing (and product) held their "
            "values already, so nothing was written (no history, no event). A file sent again counts every row here."
        ),
    ]
    unprocessed_rows: Annotated[
        int,
        msgspec.Meta(
            description="Rows not processed (`total_rows` less `processed_rows`): while the import is pending or "
            "processing, those still to map; of a `failed` or `aborted` one, those never processed, neither applied "
            "nor rejected (its `error_rows` counts only rows rejected), in no list of `…/errors`. 0 once completed."
        ),
    ]
    error: str | None
    file_name: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # When `imports prune` before migration 0036 deleted its raw rows alone: its `results` and errors CSV are gone
    # (410); the prune now deletes a finished batch whole (404).
    rows_pruned_at: datetime | None = None
    noted_rows: Annotated[
        int | None,
        msgspec.Meta(
            description="Of `mapped_rows`, those applied with notes (a GTIN or category ignored, a price rounded, a "
            "shared product's text kept): `…/notes` lists them. Counted for one import (`GET /v1/imports/{batch_id}`)"
            "; null in a list of imports (`GET /v1/stores/{store_id}/imports`): not counted there, which is not none "
            "(ask the import itself). Its count said nothing of this: a list's null read as no notes."
        ),
    ] = None
    waiting: Annotated[
        str | None,
        msgspec.Meta(
            description="Why no worker maps this unfinished import now: the pause after a failed mapping, its own or "
            "that of the store's earlier batch it waits behind (a store's batches are mapped in order), naming that "
            "batch, its error, and when it is tried again (`…/errors` answers the same, with `Retry-After` counting "
            "to it). Null otherwise, and in a list of imports."
        ),
    ] = None
    # A listing write's batch (the listing API's), once mapped: each item's result, as the write would have
    # answered (a queued write's 202 points here); none once its rows are pruned.
    results: list[BatchResultItem] | None = None


class ImportPage(msgspec.Struct):
    items: list[ImportStatus]
    next_before: int | None  # the `before` of the next (older) page; None on the last


class IngestAccepted(msgspec.Struct):
    batch_id: UUID | None
    duplicate: bool = False
    # a duplicate whose first delivery's batch `imports prune` deleted: its batch_id null said nothing of why
    batch_pruned: bool | msgspec.UnsetType = msgspec.UNSET


class WebhookListing(msgspec.Struct):
    """A listing as a webhook carries it: the pipeline's row shape; `op` is not read (the type says it)."""

    sku: str
    name: str | None = None
    price: Price | None = None
    quantity: Quantity | None = None
    gtin: str | None = None
    currency: Currency | None = None
    updated_at: SourceClock | None = None
    version: int | None = None


class WebhookBody(msgspec.Struct):
    type: Literal["listing.upsert", "listing.delete", "stock.set", "listings.upsert"]
    data: WebhookListing | list[WebhookListing]


LISTING_EXAMPLE = Example(
    summary="A listing",
    value={"gtin": "4006381333931", "name": "Oat drink barista 1 L", "brand": "Avena", "price": "2.49",
           "quantity": 24, "category": "Dairy, Eggs & Plant-Based > Plant-Based Drinks",
           "updated_at": "2026-12-03T08:00:00Z"},
)  # fmt: skip
STOCK_EXAMPLE = Example(summary="Sold out", value={"quantity": 0, "updated_at": "2026-12-03T08:05:00Z"})
DELETE_EXAMPLE = Example(summary="Deleted at the till", value={"updated_at": "2026-12-03T08:05:00Z"})
BATCH_EXAMPLE = Example(
    summary="Two upserts and a stock change",
    value={"items": [
        {"sku": "KB-001", "name": "Hafer Barista 1 L", "price": "2,49", "quantity": 24},
        {"sku": "KB-002", "name": "Roggenbrot", "price": 3.9, "quantity": 12},
        {"op": "stock", "sku": "KB-003", "quantity": 0},
    ]},
)  # fmt: skip
STORE_EXAMPLE = Example(
    summary="A shop in Kreuzberg",
    value={"name": "Kiez Laden", "lat": 52.4986, "lon": 13.4030, "city": "Berlin", "country_code": "DE",
           "store_type": "grocery", "currency": "EUR"},
)  # fmt: skip
WEBHOOK_EXAMPLES = [
    Example(summary="stock.set", value={"type": "stock.set", "data": {"sku": "KB-001", "quantity": 0}}),
    Example(
        summary="listing.upsert",
        value={
            "type": "listing.upsert",
            "data": {
                "sku": "KB-001",
                "name": "Hafer Barista 1 L",
                "price": "2.49",
                "quantity": 24,
                "updated_at": "2026-12-03T08:00:00Z",
            },
        },
    ),
    Example(summary="listing.delete", value={"type": "listing.delete", "data": {"sku": "KB-001"}}),
    Example(
        summary="listings.upsert",
        value={"type": "listings.upsert", "data": [{"sku": "A", "name": "Apple", "price": 0.5, "quantity": 100}]},
    ),
]
