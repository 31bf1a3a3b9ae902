"""Shopify (Shopify POS uses the Admin API): product and inventory-level webhooks, plus a reconciliation poll.

A listing is one variant, keyed by its `inventory_item_id`: that is how `inventory_levels/update` names it, so
stock joins a listing without a lookup (the variant id is kept as an attribute). `products/delete` names only the
product: its listings are found at intake (connectors/webhooks.py) through the links recorded when the product was
read, or the raw rows of the webhooks that brought it, and deleted in the same delivery. ids exceed 2^53: JSON is
parsed with Python ints (exact) and ids become text. `available: null` means the item is untracked: its stock
cannot vouch for it, so it counts as 0 (not sellable by stock). Deliveries are verified on the raw body with
every valid secret (two during a rotation), deduplicated by `X-Shopify-Event-Id` + topic, ordered by `updated_at`
(levels of one second by X-Shopify-Triggered-At's fraction, see level_order_ms).
A level disconnected from our location (`inventory_levels/disconnect`, clocked by `X-Shopify-Triggered-At`) is
quantity 0.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from search_service.ingest.connectors.common import (
    Cursor,
    ItemLink,
    MapContext,
    Page,
    Row,
    WebhookRejected,
    WebhookResult,
    barcode_fields,
    compact,
    fold_levels,
    level_fields,
    merge_attributes,
    not_text,
    objects,
    pass_start,
    plain_text,
    price_text,
)
from search_service.ingest.connectors.http import BucketPacer, RetryPolicy, VendorError, VendorHTTP
from search_service.ingest.connectors.links import read_whole
from search_service.ingest.connectors.shopify_totals import count_locations, variant_totals
from search_service.ingest.connectors.vendor_clocks import clocked_level
from search_service.ingest.sent_values import as_sent
from search_service.ingest.sources import NestedTooDeeply, load_json

SOURCE = "shopify"
API_VERSION = "2024-07"
PRODUCT_TOPICS = ("products/create", "products/update")
PRODUCT_TEXT = ("title", "vendor", "body_html", "product_type", "status", "updated_at")
VARIANT_TEXT = ("id", "title", "sku", "barcode", "price", "updated_at")
PRODUCT_RECORD = ("variants", "created_at", "handle", *PRODUCT_TEXT)  # what Shopify's `{"id": n}` deletes never hold
ID_TOPICS = (*PRODUCT_TOPICS, "products/delete", "inventory_items/delete")
# what an inventory item (`{"id": n, "sku": ..., "tracked": ...}`) never holds: a product's or a variant's fields
NOT_AN_INVENTORY_ITEM = ("variants", "title", "product_type", "vendor", "body_html", "handle", "product_id", "price")
ID_MAX = 2**63 - 1  # Shopify ids are bigints
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="?next"?')


def shopify_id(value: Any) -> str | None:
    """A Shopify id as text: a positive integer, sent as a JSON number (or its digits as text). Anything else ("abc",
    0, 1.5, a list) is None: any text was taken as an id, and a listing or a delete was written under it."""
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= ID_MAX:
        return None
    return str(value)


def not_an_id(record: Mapping[str, Any], name: str, where: str = "") -> str | None:
    """Why `name`, when sent, is no Shopify id (None when it is one, or missing)."""
    value = record.get(name)
    if value is None or shopify_id(value) is not None:
        return None
    return f"{where}{name} must be a positive integer, not {as_sent(value)}"  # `true`, `[1]`: not `bool`, `list`


def _instant(stamp: Any) -> float | None:
    """A vendor time in epoch seconds, zone-less read as UTC (as ingest reads it); None when it is not a time."""
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None


def _plausible(stamp: Any) -> str | None:
    """A record's time for the cursor, unless it is more than a day ahead of this clock (ingest refuses such a row):
    `since` took one stamp of 2099 and every later poll asked for changes after it, missing all of them."""
    when = _instant(stamp)
    return None if when is None or when > time.time() + 86_400 else str(stamp)


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two vendor times, as sent. One that is not a time is ignored: it raised here (as did a mix of
    zone-less and zoned ones), which failed the poll at that page for good and answered its webhook 500."""
    known = [(when, stamp) for stamp in (a, b) if stamp and (when := _instant(stamp)) is not None]
    return max(known, key=lambda pair: pair[0])[1] if known else None


def _earlier(newest: str | None, started: str) -> str | None:
    """The next `since`: the newest stamp read, unless the pass began before it (None: nothing read yet)."""
    when = _instant(newest)
    return None if when is None else newest if when <= datetime.fromisoformat(started).timestamp() else started


def map_product(product: Mapping[str, Any], ctx: MapContext) -> tuple[list[Row], list[ItemLink]]:
    """One upsert per variant that has an inventory item, and the links that let a delete find them later (and the
    variants a later record no longer holds: connectors/links.py)."""
    rows: list[Row] = []
    links: list[ItemLink] = []
    product_id = str(product["id"])
    active = str(product.get("status") or "active") == "active"
    unread = not_text(product, PRODUCT_TEXT)
    for variant in objects(product.get("variants")):
        bad_id = not_an_id(variant, "inventory_item_id", "variants[].") or not_an_id(variant, "id", "variants[].")
        sku = shopify_id(variant.get("inventory_item_id"))
        if sku is None and not bad_id:  # no inventory item: nothing to list
            continue
        title = str(product.get("title") or "") if not unread else ""  # a refused row's name: not its repr
        if variant.get("title") and variant["title"] != "Default Title":
            title = f"{title} / {variant['title']}"
        row = compact(
            {
                "op": "upsert",
                "sku": sku,  # None for a bogus item id: its row is refused, nothing is written under it
                "name": title.strip() or None,
                "brand": product.get("vendor") or None,
                "description": plain_text(product.get("body_html")),
                "category": product.get("product_type") or None,
                "price": price_text(variant.get("price")),
                "currency": ctx.currency,
                "is_active": active,
                "updated_at": _later(product.get("updated_at"), variant.get("updated_at")),
                "stock_apart": True,  # its level comes apart: none on a new listing is no sender's fault
            }
        )
        row.update(barcode_fields(variant.get("barcode")))
        if why := unread or bad_id or not_text(variant, VARIANT_TEXT, "variants[]."):
            row["_error"] = why  # refused with the reason, as ingest refuses a bad value
        attributes = {"variant_id": shopify_id(variant.get("id")), "vendor_sku": variant.get("sku")}
        if sku is None:  # no product_id: a products/delete resolving its listings must not find this row
            rows.append(merge_attributes(row, attributes))
            continue
        rows.append(merge_attributes(row, {**attributes, "product_id": product_id}))
        links.append(ItemLink(external_id=sku, parent_id=product_id, sku=sku))
    return rows, read_whole(links, rows, product.get("variants"), _plausible(product.get("updated_at")))


def map_inventory_level(
    level: Mapping[str, Any], ctx: MapContext, within_second_ms: int = 0, read_at: str | None = None
) -> Row | None:
    """An absolute level of our location; `available: null` (untracked) counts as 0. Its `updated_at` is to the
    second: `within_second_ms` (0-999) orders the levels of one second (see level_order_ms). A full pass's level is
    clocked no earlier than `read_at`, its pass's start: what it reads is the level as of then, so it wins over
    anything older (a disconnect replayed before it, stamped with its resend's time, outranked every later read)."""
    sku = shopify_id(level.get("inventory_item_id"))
    if str(level.get("location_id")) != ctx.location or sku is None:
        return None
    available = level.get("available")
    stock: Row = {"op": "stock", "sku": sku, **({"quantity": 0} if available is None else level_fields(available))}
    row = clocked_level(stock, _later(stamp := level.get("updated_at"), read_at) or stamp)  # no time read: refused
    if isinstance(row.get("version"), int) and row["version"] % 1000 == 0:  # a stamp with its own fraction keeps it
        row["version"] += within_second_ms
    return row


DELIVERY_LAST_MS = 998  # a delivery's place in its level's second when Triggered-At is past it (or missing)
POLL_AFTER_MS = 999  # a poll answered after the level's second: newer than every delivery of that second


def level_order_ms(level: Mapping[str, Any], triggered_at: Any) -> int:
    """A delivered level's place in its second: X-Shopify-Triggered-At's fraction (unsigned: never trusted beyond
    the second of the body's signed `updated_at`). Two levels of one second, delivered out of order, applied the
    older one last (an equal version applies). A forged header moves a level only within its own second, where an
    equal version applied anyway. Clamping keeps the order of the triggers (later ones past the second tie)."""
    when, second = _instant(triggered_at), _instant(level.get("updated_at"))
    if when is None or second is None:
        return DELIVERY_LAST_MS
    return max(0, min(int((when - second) * 1000), DELIVERY_LAST_MS))


def _answer_date(headers: Mapping[str, str]) -> datetime | None:
    """An answer's `Date` (the vendor's clock, whole seconds); None without one (this machine's clock may differ)."""
    try:
        when = email.utils.parsedate_to_datetime(headers.get("date") or "")
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def polled_level_order_ms(level: Mapping[str, Any], answered: datetime | None) -> int:
    """A polled level's place in its second: after every delivery of it when the answer's `Date` (whole seconds)
    is past that second (the level read is the second's last); else first (a change later in that second, still
    to be delivered, must win; the next poll reads the level again)."""
    second = _instant(level.get("updated_at"))
    return POLL_AFTER_MS if answered and second is not None and answered.timestamp() >= second + 1 else 0


def map_disconnected_level(level: Mapping[str, Any], ctx: MapContext, triggered_at: str) -> Row | None:
    """`inventory_levels/disconnect` of our location: the item is no longer stocked here, quantity 0. Its stock clock
    is `X-Shopify-Triggered-At` (the payload has no `updated_at`), or its receipt (see `delivery_time`)."""
    sku = shopify_id(level.get("inventory_item_id"))
    if str(level.get("location_id")) != ctx.location or sku is None:
        return None
    return clocked_level({"op": "stock", "sku": sku, "quantity": 0}, triggered_at)


def delivery_time(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """`X-Shopify-Triggered-At`, which the signature does not cover: no later than this server's clock at receipt,
    nor than the body's own `updated_at` when it has one; this server's clock without it. Taken as sent, a signed
    body replayed as `inventory_levels/disconnect` and stamped 2999 zeroed its level for good (every later level
    older); a delete without one had no time and applied over any listing. One before 1970 (a clock never set) is
    ignored, as one that is not a time: the year 1 was a 500, 1969 refused the disconnect."""
    times = (_instant(headers.get("x-shopify-triggered-at")), time.time(), _instant(payload.get("updated_at")))
    return datetime.fromtimestamp(min(when for when in times if when is not None and when >= 0), UTC).isoformat()


def deleted_at(when: str) -> str:
    """A delete's `updated_at`: a microsecond before its event time, as ingest applies an equal stamp. A delete
    comes after the last change of what it removes: a listing stamped at or after it is newer (stale delete)."""
    return (datetime.fromisoformat(when) - timedelta(microseconds=1)).isoformat()


def verify_webhook(headers: Mapping[str, str], body: bytes, secrets: list[str]) -> None:
    """base64(HMAC-SHA256(app secret, raw body)), compared in constant time with every valid secret."""
    given = (headers.get("x-shopify-hmac-sha256") or "").strip().encode()
    ok = False
    for secret in secrets:
        if secret:
            expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
            ok |= hmac.compare_digest(expected, given)
    if not given or not ok:
        raise WebhookRejected("X-Shopify-Hmac-Sha256 does not match")


def _record_id(topic: str, payload: Mapping[str, Any]) -> str | None:
    """The body's `id` (None for a level, named by `inventory_item_id`); a 400 for an id that is none."""
    if why := not_an_id(payload, "id") or not_an_id(payload, "inventory_item_id"):
        raise WebhookRejected(why, 400)
    record_id = shopify_id(payload.get("id"))
    if topic in ID_TOPICS and record_id is None:  # it fell through to "unsupported topic"
        raise WebhookRejected(f"the body of {topic} has no `id`", 400)
    return record_id


def parse_webhook(headers: Mapping[str, str], body: bytes, ctx: MapContext) -> WebhookResult:
    topic = headers.get("x-shopify-topic") or ""
    event_id = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
    if not event_id:
        raise WebhookRejected("no X-Shopify-Event-Id", 400)
    try:
        payload = load_json(body, parse_float=Decimal)  # ints stay exact beyond 2^53
    except NestedTooDeeply:
        raise WebhookRejected("the body is nested too deeply", 400) from None
    except ValueError as exc:  # load_json's NotJson: why and where (NaN, a lone surrogate: a 500 or stored as null)
        raise WebhookRejected(str(exc), 400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("the body is not a JSON object", 400)
    delivery_id = f"shopify:{event_id}:{topic}"
    record_id = _record_id(topic, payload)
    if topic in PRODUCT_TOPICS:
        rows, links = map_product(payload, ctx)
        first = [row["sku"] for row in rows if "sku" in row and "_error" not in row]  # its level may precede it
        variants = [(shopify_id(v.get("inventory_item_id")), v) for v in objects(payload.get("variants"))]
        totals = variant_totals(variants, delivery_time(headers, payload))  # a new listing's level: webhooks.py
        return WebhookResult(delivery_id, "catalog", rows=rows, links=links, levels_first=first, totals=totals)
    when = delivery_time(headers, payload)
    if topic == "products/delete":  # its listings: resolved at intake
        if held := [key for key in PRODUCT_RECORD if key in payload]:  # a product's signed body under this topic
            raise WebhookRejected(f"the body of products/delete holds {held[0]!r}: a product's body", 400)
        return WebhookResult(delivery_id, "catalog", deleted_parents=[str(record_id)], event_time=deleted_at(when))
    if topic == "inventory_items/delete":  # a variant (or its product) deleted
        if held := [key for key in NOT_AN_INVENTORY_ITEM if key in payload]:  # a product's signed body, resent
            why = f"the body of inventory_items/delete holds {held[0]!r}: a product's or variant's body"
            raise WebhookRejected(f"{why}, not an inventory item's", 400)
        deleted = compact({"op": "delete", "sku": record_id, "updated_at": deleted_at(when)})
        return WebhookResult(delivery_id, "catalog", rows=[deleted])
    if topic == "inventory_levels/update":
        row = map_inventory_level(payload, ctx, level_order_ms(payload, headers.get("x-shopify-triggered-at")))
        return WebhookResult(delivery_id, "stock", rows=[row] if row else [], needs_listing=[row["sku"]] if row else [])
    if topic == "inventory_levels/disconnect":
        if "available" in payload:  # a level's body (signed for `inventory_levels/update`) under an unsigned topic
            raise WebhookRejected("the body of inventory_levels/disconnect holds `available`: a level's body", 400)
        row = map_disconnected_level(payload, ctx, when)
        return WebhookResult(delivery_id, "stock", rows=[row] if row else [])
    raise WebhookRejected(f"unsupported topic {topic!r}", 400)


class Shopify:
    source = SOURCE
    MAX_PAGE_SIZE = 250  # the vendor's documented most for `limit`: past it, pages come back shorter

    def __init__(
        self,
        *,
        shop: str,
        token: str,
        ctx: MapContext,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = 250,
        api_version: str = API_VERSION,
    ) -> None:
        self.ctx = ctx
        self.page_size = max(1, min(page_size, self.MAX_PAGE_SIZE))
        self.prefix = f"/admin/api/{api_version}"
        pacer = BucketPacer("X-Shopify-Shop-Api-Call-Limit", None, default_drip=2.0)
        headers = {"X-Shopify-Access-Token": token, "Accept": "application/json"}
        self.http = VendorHTTP(base_url or f"https://{shop}", headers=headers, policy=policy, pacer=pacer)

    def close(self) -> None:
        self.http.close()

    def pages(self, cursor: Cursor, *, full: bool = False) -> Iterator[Page]:
        """The reconciliation poll: products, then our location's inventory levels; each level read rides on
        its variant's upsert (common.fold_levels). A variant read without a level at our location
        keeps its listing's level: zeroing it stamped the zero with the pass's start, newer than every unchanged
        level, so one empty stock answer (a glitch, a token's scope) zeroed the store for good."""
        cursor = {**cursor, "locations": count_locations(self.http, self.prefix)}  # one: a total is our level
        yield from fold_levels(
            cursor,
            full=full,
            catalog_key="products",
            stock_key="inventory",
            catalog=lambda: self._walk("products", "products.json", "catalog", cursor, full),
            stock=lambda at: self._walk("inventory", "inventory_levels.json", "stock", at, full),
        )

    def _walk(self, key: str, path: str, kind: str, cursor: Cursor, full: bool) -> Iterator[Page]:
        """Link-header pages of one query; `since` moves only when the pass ends, to its newest `updated_at` but no
        later than the pass's start (common.pass_start): Shopify pages by id, so a product read early and changed
        while the pass ran is before the newest stamp, and `updated_at_min` at that stamp skipped it for good."""
        state = {} if full else dict(cursor.get(key) or {})
        resumed = self._resumed(state.get("next"))
        url: str = resumed or f"{self.prefix}/{path}"
        params = None if resumed else self._first_params(kind, state)
        newest = _plausible(state.get("newest")) or _plausible(state.get("since"))
        started, asked_at, seen = state.get("started"), time.time(), {url}
        while True:
            body, response = self.http.request_json("GET", url, params=params)
            started = started or pass_start(response.headers, asked_at).isoformat()
            records = objects((body or {}).get(key if kind == "catalog" else "inventory_levels"))
            rows, links = self._map(kind, records, _answer_date(response.headers), started if full else None)
            for record in records:
                newest = _later(newest, _plausible(record.get("updated_at")))
            match = _NEXT_LINK.search(response.headers.get("link") or "")
            try:
                url = self.http.next_page(match.group(1), seen, response.url) if match else url
            except VendorError:  # checked before it becomes the cursor: a refused link stored failed every sync
                yield Page(kind, rows, dict(cursor), len(records), links)  # the cursor stays at this page
                raise
            cursor[key] = (
                {"since": state.get("since"), "next": url, "newest": newest, "started": started}  # absolute
                if match
                else {"since": _earlier(newest, started)}
            )
            yield Page(kind, rows, dict(cursor), len(records), links)
            if not match:
                return
            params = None

    def _resumed(self, link: str | None) -> str | None:
        """The stored next-page link, unless it lies outside the base URL: the base changed since the pass stored it
        (`connections update --base-url`), and the pass starts again from its `since` (refused, it failed every
        later sync, blaming the vendor). Dropped, it is never asked: the token goes only to the base URL."""
        try:
            return self.http.within_base(link) if link else None
        except VendorError:
            return None

    def _first_params(self, kind: str, state: Cursor) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.page_size}
        if _plausible(state.get("since")):  # a stored one years ahead (before this check) read nothing for ever
            params["updated_at_min"] = state["since"]
        if kind == "stock":
            params["location_ids"] = self.ctx.location
        return params

    def _map(
        self, kind: str, records: list[Mapping[str, Any]], answered: datetime | None = None, read_at: str | None = None
    ) -> tuple[list[Row], list[ItemLink]]:
        if kind == "stock":
            mapped = (map_inventory_level(r, self.ctx, polled_level_order_ms(r, answered), read_at) for r in records)
            return [row for row in mapped if row], []
        rows: list[Row] = []
        links: list[ItemLink] = []
        for record in records:
            if shopify_id(record.get("id")) is not None:
                more_rows, more_links = map_product(record, self.ctx)
                rows += more_rows
                links += more_links
        return rows, links
