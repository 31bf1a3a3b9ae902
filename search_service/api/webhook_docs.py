"""The outbound webhooks in the OpenAPI document (3.1's `webhooks`): what a subscriber receives, one entry a
event type, so a receiver can generate its models and check a delivery against them (the body was only described
in docs/events.md). The shapes are msgspec structs, their JSON Schema turned into the spec's objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)

from search_service.events.config import EVENT_TYPES, PING_TYPE, EventType, PingType

Instant = Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class ListingRef(msgspec.Struct, forbid_unknown_fields=True):
    id: UUID
    sku: str


class ProductRef(msgspec.Struct, forbid_unknown_fields=True):
    id: UUID
    gtin: str | None
    name: str


class ListingSnapshot(msgspec.Struct, forbid_unknown_fields=False):
    """The listing's columns before or after the change, each one always sent (more may follow: read what you
    know). Its title and the source's clocks were sent too, documented nowhere: a generated model dropped them."""

    sku: str
    price: float
    currency: str
    quantity: int
    is_active: bool
    title: Annotated[
        str | None,
        msgspec.Meta(description="The store's own title of the listing (`title` of `GET …/listings/{sku}`, `name` of "
                     "its writes and CSV rows); null when it wrote none: `product.name` then names it."),
    ]  # fmt: skip
    source_updated_at: Annotated[
        Instant | None,
        msgspec.Meta(description="The source's clock of the write last applied (its `updated_at`: an older write is "
                     "stale); null when its writes sent none."),
    ]  # fmt: skip
    source_version: Annotated[
        int | None,
        msgspec.Meta(description="The source's version of the listing last applied (a delivery's `version`, a POS's "
                     "item version; a lower one is stale); null when its writes sent none."),
    ]  # fmt: skip
    product_id: UUID | None = None  # the listing's product (migration 0031): a GTIN re-coded moves it
    source_catalog_version: Annotated[
        int | None,
        msgspec.Meta(description="The catalogue version a POS sync last applied (Lightspeed X-Series, migration "
                     "0041); null otherwise, absent from an event stored before that migration."),
    ] = None  # fmt: skip


class ImportOutcome(msgspec.Struct, forbid_unknown_fields=True):
    id: UUID
    source: str
    status: Literal["completed", "failed"]
    total_rows: int
    processed_rows: int
    error_rows: int
    error: str | None
    started_at: Instant | None
    finished_at: Instant | None
    # Of the processed rows, as `GET /v1/imports/{batch_id}` counts them (migration 0045; absent from an event
    # stored before it): applied, older than the listing, replaced by a later row of their SKU.
    mapped_rows: int | None = None
    stale_rows: int | None = None
    duplicate_rows: int | None = None
    # Of the mapped rows, those whose write changed nothing (a file sent again): migration 0050.
    unchanged_rows: int | None = None
    # Rows never processed, total less processed (migration 0052): a failed import's rows neither applied nor
    # rejected (its error_rows 0 read as a clean import's); 0 on import.completed.
    unprocessed_rows: int | None = None


class EventData(msgspec.Struct, forbid_unknown_fields=True):
    """A listing event carries listing, product, old and new; an import event `import`; a ping neither, nor the
    numbers."""

    store_id: UUID
    occurred_at: Instant
    webhook_id: UUID
    sequence: int | None = None  # the subscription's deliveries 1, 2, 3... without gaps (not on a ping)
    store_sequence: int | None = None  # the store's event number
    event_type: str | None = None
    listing: ListingRef | None = None
    product: ProductRef | None = None
    old: ListingSnapshot | None = None  # null on listing.created
    new: ListingSnapshot | None = None  # null on listing.deleted
    import_: ImportOutcome | None = msgspec.field(default=None, name="import")


class WebhookDelivery(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal[EventType, PingType]
    timestamp: Instant
    data: EventData


_HEADERS = (
    ("webhook-id", "The message id: the same on every attempt and replay of this delivery (deduplicate on it)."),
    ("webhook-timestamp", "Unix seconds of this attempt."),
    ("webhook-signature", "`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the subscription's secret."),
)


def _spec_object(node: Any) -> Any:
    """A JSON Schema (msgspec's) as litestar's spec objects."""
    if isinstance(node, list):
        return [_spec_object(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return Reference(ref=node["$ref"])
    names = {"anyOf": "any_of", "additionalProperties": "additional_properties", "items": "items"}
    fields: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            fields["type"] = OpenAPIType(value)
        elif key == "format":
            fields["format"] = OpenAPIFormat(value)
        elif key == "properties":
            fields["properties"] = {name: _spec_object(sub) for name, sub in value.items()}
        elif key in names:
            fields[names[key]] = _spec_object(value)
        elif key in ("required", "description", "enum", "title", "default"):
            fields[key] = value
    return Schema(**fields)


def _operation(event_type: str) -> PathItem:
    body = RequestBody(
        required=True,
        content={"application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/WebhookDelivery"))},
    )
    headers: list[Parameter | Reference] = [
        Parameter(name=name, param_in="header", required=True, description=text, schema=Schema(type=OpenAPIType.STRING))
        for name, text in _HEADERS
    ]
    answers: dict[str, OpenAPIResponse | Reference] = {
        "2XX": OpenAPIResponse(description="Delivered."),
        "410": OpenAPIResponse(description="Gone: the subscription is disabled at once."),
        "default": OpenAPIResponse(description="Retried on the schedule (a 429/503 `Retry-After` is honoured)."),
    }
    return PathItem(
        post=Operation(
            summary=f"`{event_type}` delivered to a subscriber's URL",
            description="Signed per Standard Webhooks; at least once (docs/events.md).",
            parameters=headers,
            request_body=body,
            responses=answers,
            tags=["webhooks"],
        )
    )


def document_webhooks(openapi: OpenAPI) -> None:
    """Each event type a subscription can receive, and the ping, as a 3.1 webhook with the delivery's body."""
    _, components = msgspec.json.schema_components([WebhookDelivery], ref_template="#/components/schemas/{name}")
    assert openapi.components is not None
    schemas = dict(openapi.components.schemas or {})
    schemas.update({name: _spec_object(schema) for name, schema in components.items()})
    openapi.components.schemas = schemas
    openapi.webhooks = {event_type: _operation(event_type) for event_type in (*EVENT_TYPES, PING_TYPE)}
