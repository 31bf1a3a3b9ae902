"""Lightspeed Retail X-Series (formerly Vend): API 2.0 polling by `version`, and 1.0-object webhooks.

Products and inventory each have a `version` cursor (`after=`; for `/api/2.0/inventory` as Vend's own Go client
pages it, see docs/connectors.md). The stock level has had three names
(`current_inventory_level`, `inventory_level`, `current_amount`): all are read. Webhooks post a form whose field
`payload` holds the API 1.0 object; `inventory.update`'s payload is unconfirmed, so it only triggers a re-read of
that product's inventory. `X-Signature` is HMAC-SHA256; its key, encoding and input are unconfirmed, so they are
configurable per connection (`connect lightspeed-x --signature-encoding/--signature-message`; default: hex of the
raw body, keyed with the client secret).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from search_service.ingest.connectors.common import (
    Cursor,
    MapContext,
    Page,
    Row,
    WebhookRejected,
    WebhookResult,
    an_id,
    an_object,
    as_list,
    barcode_fields,
    compact,
    fold_levels,
    iso_from_naive,
    level_fields,
    matches_any,
    merge_attributes,
    not_text,
    objects,
    plain_text,
    price_text,
    to_decimal,
    truthy,
)
from search_service.ingest.connectors.http import RetryPolicy, VendorError, VendorHTTP
from search_service.ingest.json_faults import NotJson
from search_service.ingest.sent_values import as_sent
from search_service.ingest.sources import NestedTooDeeply, load_json

SOURCE = "lightspeed-x"
LEVEL_FIELDS = ("current_inventory_level", "inventory_level", "current_amount")
GTIN_TYPES = ("EAN", "UPC", "JAN", "ISBN", "ITF", "GTIN")
PRODUCT_TEXT = ("name", "variant_name", "description", "price_including_tax", "updated_at", "sku", "handle")
PAYLOAD = "the form field `payload`"  # the webhook's JSON: a form field, not the body
TWICE_IN_FORM = "is given twice (form readers differ on which one counts): send each field once"
WEBHOOK_PRODUCT_TEXT = ("name", "variant_name", "brand_name", "description", "type", "price", "tax", "sku", "handle")
ID_WORDS = "text (not empty) or a whole number"  # common.an_id: a product's id, `null` being none sent


def default_base_url(domain_prefix: str) -> str:
    return f"https://{domain_prefix}.retail.lightspeed.app"


def inventory_level(record: Mapping[str, Any]) -> Row:
    """The level under whichever of its three historical names the record uses (`level_fields`; {} when none)."""
    for name in LEVEL_FIELDS:
        if record.get(name) is not None:
            return level_fields(record[name])
    return {}


def _gtin_codes(product: Mapping[str, Any]) -> list[Any]:
    """The product's codes of a GTIN type, in order: `barcode_fields` takes the first that is a GTIN."""
    codes = objects(product.get("product_codes"))
    return [code.get("code") for code in codes if str(code.get("type", "")).upper() in GTIN_TYPES]


def _active(flag: Any) -> bool:
    """A product's active flag: absent or null is active (nothing says it is not; it was read as inactive)."""
    return True if flag is None else truthy(flag)


def map_product(product: Mapping[str, Any], ctx: MapContext) -> Row:
    """An API 2.0 product (variants are products of their own) as an upsert, or a delete when deleted. Its
    `version` orders the catalogue (`catalog_version`): two edits within one second share `updated_at`, and the
    older could win. It is not the row's `version`, the stock level's clock: a level read after a newer product
    change would be dropped as older."""
    sku = str(product["id"])
    clock = product.get("version")
    if product.get("deleted_at"):
        return compact({"op": "delete", "sku": sku, "updated_at": product.get("deleted_at"), "catalog_version": clock})
    category = an_object(product.get("product_category")).get("name") or an_object(product.get("type")).get("name")
    row = compact(
        {
            "op": "upsert",
            "sku": sku,
            "name": product.get("variant_name") or product.get("name"),
            "brand": an_object(product.get("brand")).get("name"),
            "description": plain_text(product.get("description")),
            "category": category,
            "price": price_text(product.get("price_including_tax")),
            "currency": ctx.currency,
            "is_active": _active(product.get("is_active")),
            "updated_at": product.get("updated_at"),
            "catalog_version": clock,
            "stock_apart": True,  # its level comes apart: none on a new listing is no sender's fault
        }
    )
    row.update(barcode_fields(*_gtin_codes(product)))
    if why := not_text(product, PRODUCT_TEXT):
        row["_error"] = why  # refused with the reason (a list was stored as its Python repr)
    return merge_attributes(row, {"vendor_sku": product.get("sku"), "handle": product.get("handle")})


def map_inventory(record: Mapping[str, Any], ctx: MapContext) -> Row | None:
    if str(record.get("outlet_id")) != ctx.location or not record.get("product_id"):
        return None
    level = inventory_level(record)
    if not level:
        return None
    return compact({"op": "stock", "sku": str(record["product_id"]), **level, "version": record.get("version")})


def map_webhook_product(obj: Mapping[str, Any], ctx: MapContext) -> Row:
    """The API 1.0 product of a `product.update` webhook: `price` is net, `tax` is added. Its `inventory` counts
    are left out: they carry no stock clock (the inventory records' `version`), so a delivery retried late would set
    an older level over a newer one; `parse_webhook` has the product's inventory read again instead."""
    sku = str(obj["id"])
    updated_at = iso_from_naive(obj.get("updated_at"))
    if obj.get("deleted_at"):
        return compact({"op": "delete", "sku": sku, "updated_at": updated_at})
    net, tax = to_decimal(obj.get("price")), to_decimal(obj.get("tax")) or Decimal(0)
    row = compact(
        {
            "op": "upsert",
            "sku": sku,
            "name": obj.get("variant_name") or obj.get("name"),
            "brand": obj.get("brand_name") or None,
            "description": plain_text(obj.get("description")),
            "category": obj.get("type") or None,
            "price": price_text(net + tax) if net is not None else None,
            "currency": ctx.currency,
            "is_active": _active(obj.get("active")),
            "updated_at": updated_at,
            "stock_apart": True,  # its level comes apart: none on a new listing is no sender's fault
        }
    )
    if why := not_text(obj, WEBHOOK_PRODUCT_TEXT):
        row["_error"] = why  # refused with the reason (a list was stored as its Python repr)
    return merge_attributes(row, {"vendor_sku": obj.get("sku"), "handle": obj.get("handle")})


@dataclass(frozen=True)
class SignatureConfig:
    encoding: str = "hex"  # or "base64" (unconfirmed)
    message: str = "raw"  # "raw": the form body as received; "payload": the `payload` field's JSON text


def verify_webhook(headers: Mapping[str, str], body: bytes, secrets: list[str], config: SignatureConfig) -> None:
    header = headers.get("x-signature") or ""
    parts = dict(p.strip().partition("=")[::2] for p in header.split(",") if "=" in p)
    signature = parts.get("signature", "")
    if parts.get("algorithm", "HMAC-SHA256").upper() != "HMAC-SHA256" or not signature:
        raise WebhookRejected("missing or unsupported X-Signature")
    message = body
    if config.message == "payload":
        message = (form_fields(body).get("payload") or [""])[0].encode()
    if not matches_any(signature, secrets, message, config.encoding):
        raise WebhookRejected("X-Signature does not match")


def form_fields(body: bytes) -> dict[str, list[str]]:
    """The form's fields, each once, or a 400 naming one given twice (as a JSON key given twice): form readers differ
    on which copy counts. Empty copies count (`payload=…&payload=`): parse_qs dropped them, so one reader saw the
    payload and another, keeping the last, none."""
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if twice := [name for name, values in form.items() if len(values) > 1]:
        raise WebhookRejected(f"the form field `{twice[0][:40]}` {TWICE_IN_FORM}", 400)
    return form


def parse_webhook(headers: Mapping[str, str], body: bytes, ctx: MapContext) -> WebhookResult:
    form = form_fields(body)
    topic = (form.get("type") or [""])[0] or headers.get("x-topic", "")
    raw_payload = (form.get("payload") or [""])[0]
    try:
        payload = load_json(raw_payload, subject=PAYLOAD, parse_float=Decimal)
    except NestedTooDeeply:
        raise WebhookRejected(f"{PAYLOAD} is nested too deeply", 400) from None
    except NotJson as exc:  # why and where (NaN, a lone surrogate: a 500 or stored as null); a field's, or the text's
        raise WebhookRejected(exc.message if exc.path is None else f"{PAYLOAD} is refused: {exc}", 400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected(f"{PAYLOAD} is not an object", 400)
    # No delivery id at X-Series: the payload's hash identifies a retried delivery.
    delivery_id = f"{topic}:{hashlib.sha256(raw_payload.encode()).hexdigest()}"
    if payload.get("id") is not None and an_id(payload["id"]) is None:
        raise WebhookRejected(f"the payload's id must be {ID_WORDS}, not {as_sent(payload['id'])}", 400)
    if topic == "product.update" and payload.get("id"):
        row = map_webhook_product(payload, ctx)
        repoll = set() if row["op"] == "delete" else {f"stock={payload['id']}"}  # its level, with its version
        return WebhookResult(delivery_id, "catalog", rows=[row], repoll=repoll)
    if topic == "inventory.update":
        product_id = an_id(payload.get("product_id")) or an_id(an_object(payload.get("product")).get("id"))
        return WebhookResult(delivery_id, "stock", repoll={f"stock={product_id}" if product_id else "stock"})
    raise WebhookRejected(f"unsupported webhook type {topic!r}", 400)


class LightspeedX:
    source = SOURCE

    def __init__(
        self,
        *,
        domain_prefix: str,
        token: str,
        ctx: MapContext,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = 1000,
    ) -> None:
        self.ctx = ctx
        self.page_size = page_size
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.http = VendorHTTP(base_url or default_base_url(domain_prefix), headers=headers, policy=policy)

    def close(self) -> None:
        self.http.close()

    def pages(self, cursor: Cursor, *, full: bool = False) -> Iterator[Page]:
        """Products, then inventory, each from its `version` cursor; each level read rides on its product's
        upsert (common.fold_levels)."""
        cursor = dict(cursor)
        yield from fold_levels(
            cursor,
            full=full,
            catalog_key="products",
            stock_key="inventory",
            catalog=lambda: self._walk("/api/2.0/products", "products", "catalog", cursor, full),
            stock=lambda at: self._walk("/api/2.0/inventory", "inventory", "stock", at, full),
        )
        yield from self._repoll(cursor)

    def _walk(self, path: str, key: str, kind: str, cursor: Cursor, full: bool) -> Iterator[Page]:
        after = 0 if full else int(cursor.get(key) or 0)
        for records, top in self._record_pages(path, after):
            after = cursor[key] = max(after, top)
            yield Page(kind, self._map(kind, records), dict(cursor), len(records))

    def _record_pages(self, path: str, after: int) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """(records, highest version) per page after `after`, until a page brings nothing newer."""
        while True:
            body, _ = self.http.request_json(
                "GET", path, params={"after": after, "page_size": self.page_size, "deleted": "true"}
            )
            records = as_list(body.get("data") if isinstance(body, dict) else body)
            top = int(((body.get("version") or {}) if isinstance(body, dict) else {}).get("max") or 0)
            top = max([top, *(int(r.get("version") or 0) for r in records)])
            if not records or top <= after:
                return
            after = max(after, top)
            yield records, top

    def _map(self, kind: str, records: list[dict[str, Any]]) -> list[Row]:
        if kind == "catalog":
            return [map_product(r, self.ctx) for r in records if r.get("id")]
        return [row for r in records if (row := map_inventory(r, self.ctx))]

    def _repoll(self, cursor: Cursor) -> Iterator[Page]:
        """Products an `inventory.update` webhook named: read their inventory now, then forget them (one the vendor
        answers 404 for too)."""
        pending = list(cursor.get("repoll_stock") or [])
        for product_id in pending:
            try:
                body, _ = self.http.request_json("GET", f"/api/2.0/inventory/{product_id}")
            except VendorError as exc:
                if exc.status != 404:
                    raise
                body = None  # the product is gone: nothing to read (the entry stayed and failed every later sync)
            records = as_list(body.get("data") if isinstance(body, dict) else body)
            cursor["repoll_stock"] = [p for p in cursor.get("repoll_stock", []) if p != product_id]
            yield Page("stock", self._map("stock", records), dict(cursor), len(records))
