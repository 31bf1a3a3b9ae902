"""Lightspeed Retail R-Series (API V3): polling only, items and item-shops by `timeStamp`.

`Item.timeStamp` does not move when only stock changes, so a poll reads both `Item.json` and `ItemShop.json`,
each with its own cursor. Every value is a string; a single child comes as an object instead of a list;
`shopID "0"` is the all-shops summary row; `qoh` may be negative. The leaky bucket in `X-LS-API-Bucket-Level`
paces the requests. Archived items are read too (`archived=true`) so that an archival takes the listing down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from search_service.ingest.connectors.common import (
    FOLD_MAX_LEVELS,
    Cursor,
    MapContext,
    Page,
    Row,
    as_list,
    barcode_fields,
    compact,
    level_fields,
    merge_attributes,
    pass_start,
    plain_text,
    price_text,
    truthy,
)
from search_service.ingest.connectors.http import BucketPacer, RetryPolicy, VendorHTTP
from search_service.ingest.connectors.vendor_clocks import clocked_level

SOURCE = "lightspeed-r"
DEFAULT_BASE_URL = "https://api.lightspeedapp.com"
MAX_IDS_AT_STAMP = 1000  # ids a cursor keeps with its stamp (~10 kB); past it, the stamp is read whole again


def _shop(item: dict[str, Any], location: str) -> dict[str, Any]:
    """Our shop's ItemShop of an item (loaded with it), or {}."""
    for shop in as_list((item.get("ItemShops") or {}).get("ItemShop")):
        if str(shop.get("shopID")) == location and location != "0":
            return dict(shop)
    return {}


def _default_price(item: dict[str, Any]) -> str | None:
    prices = as_list((item.get("Prices") or {}).get("ItemPrice"))
    for price in prices:
        if price.get("useType") == "Default" or str(price.get("useTypeID")) == "1":
            return price_text(price.get("amount"))
    return None


def _category(item: dict[str, Any]) -> str | None:
    category = item.get("Category") or {}
    path = category.get("fullPathName") or category.get("name")
    return " > ".join(p.strip() for p in str(path).split("/") if p.strip()) if path else None


def map_item(item: dict[str, Any], ctx: MapContext) -> Row:
    """An `Item` (with its ItemShops, Category, Manufacturer relations) as an upsert of our listing, with our
    shop's level and that level's clock (`version`, as its stock row carries it: newest wins)."""
    shop = _shop(item, ctx.location)
    level = level_fields(shop.get("qoh"))
    row = compact(
        {
            "op": "upsert",
            "sku": str(item["itemID"]),
            "name": (item.get("description") or "").strip() or None,
            "brand": ((item.get("Manufacturer") or {}).get("name") or None),
            "description": plain_text((item.get("ItemECommerce") or {}).get("longDescription")),  # unconfirmed
            "category": _category(item),
            "price": _default_price(item),
            "currency": ctx.currency,
            **level,
            "is_active": not truthy(item.get("archived")),
            "updated_at": item.get("timeStamp") or None,
        }
    )
    if level:  # refused for the rest of it (a bad price), the level applies alone (ingest: rows.level_alone)
        row = {**clocked_level(row, shop.get("timeStamp")), "own_level": True}
    else:  # none at our shop: no sender's fault (a wrong location gets the sync's warning, not a note a row)
        row["stock_apart"] = True
    row.update(barcode_fields(item.get("ean"), item.get("upc")))  # the first that is a GTIN
    return merge_attributes(
        row,
        {
            "system_sku": item.get("systemSku"),
            "custom_sku": item.get("customSku"),
            "manufacturer_sku": item.get("manufacturerSku"),
        },
    )


def map_item_shop(shop: dict[str, Any], ctx: MapContext) -> Row | None:
    """An `ItemShop` of our shop as an absolute stock level; the summary row (shopID "0") and other shops: None."""
    shop_id = str(shop.get("shopID"))
    if shop_id == "0" or shop_id != ctx.location:
        return None
    level = level_fields(shop.get("qoh"))
    if not level:
        return None
    return clocked_level({"op": "stock", "sku": str(shop["itemID"]), **level}, shop.get("timeStamp"))


def _no_later(stamp: str, started: datetime) -> str:
    """The cursor: `stamp`, but no later than the pass's start less the overlap (`started`), as Shopify's. An item
    stamped an hour ahead carried the cursor past the others' changes of that hour; and a change committed a few
    seconds after a later-stamped one was visible (a vendor's transactions, or its servers' clocks, seconds apart)
    lay behind the newest stamp read, and `>=` it skipped that change for good. The overlap is read again."""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return started.isoformat() if when.timestamp() > started.timestamp() else stamp


def _without_repeats(rows: list[Row], carried: set[tuple[Any, ...]]) -> list[Row]:
    """Rows less the stock rows that repeat a level (same quantity, same clock) an upsert already carried: a first
    sync writes each listing once. Past FOLD_MAX_LEVELS carried levels, later repeats are simply written again."""
    kept = []
    for row in rows:
        level = (row["sku"], row.get("quantity"), row.get("version"))
        if row["op"] == "upsert" and "quantity" in row and "_error" not in row and len(carried) < FOLD_MAX_LEVELS:
            carried.add(level)
        if row["op"] != "stock" or level not in carried:
            kept.append(row)
    return kept


class LightspeedR:
    source = SOURCE
    MAX_PAGE_SIZE = 100  # the vendor's documented most for `limit`: past it, pages come back shorter

    def __init__(
        self,
        *,
        account_id: str,
        token: str,
        ctx: MapContext,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = 100,
    ) -> None:
        self.ctx = ctx
        self.account_id = account_id
        self.page_size = max(1, min(page_size, self.MAX_PAGE_SIZE))
        pacer = BucketPacer("X-LS-API-Bucket-Level", "X-LS-API-Drip-Rate")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.http = VendorHTTP(base_url or DEFAULT_BASE_URL, headers=headers, policy=policy, pacer=pacer)

    def close(self) -> None:
        self.http.close()

    def pages(self, cursor: Cursor, *, full: bool = False) -> Iterator[Page]:
        """Items (with their ItemShops: each upsert carries its level), then ItemShops, each by its own cursor.
        A first (or full) sync drops the ItemShop rows that only repeat a level an upsert of it carried. With the
        newest stamp the cursor keeps the ids read with it (`<key>_ids`, at most MAX_IDS_AT_STAMP): see `_Keyset`."""
        cursor = dict(cursor)
        carried: set[tuple[Any, ...]] | None = set() if full or not cursor.get("item_ts") else None
        for entity, key, kind in (("Item", "item_ts", "catalog"), ("ItemShop", "item_shop_ts", "stock")):
            known = None if full else _ids(cursor.get(f"{key}_ids"))
            unsaved = ""  # the newest stamp of the pages held at the cursor's stamp (`_Keyset.held`)
            for records, started, top, held in self._walk(entity, None if full else cursor.get(key), known):
                unsaved = max([unsaved, *(r.get("timeStamp") or "" for r in records)])
                if not held:
                    newest, unsaved = max(cursor.get(key) or "", unsaved), ""
                    if newest:
                        cursor[key] = _no_later(newest, started)
                    cursor.pop(f"{key}_ids", None)
                    if top is not None and top[0] == cursor.get(key) and len(top[1]) <= MAX_IDS_AT_STAMP:
                        cursor[f"{key}_ids"] = sorted(top[1])
                page = self._page(entity, kind, records, dict(cursor))
                if carried is not None:
                    page.rows = _without_repeats(page.rows, carried)
                yield page

    def _page(self, entity: str, kind: str, records: list[dict[str, Any]], cursor: Cursor) -> Page:
        if entity == "Item":
            rows = [map_item(r, self.ctx) for r in records if r.get("itemID")]
        else:
            rows = [row for r in records if r.get("itemID") and (row := map_item_shop(r, self.ctx))]
        return Page(kind=kind, rows=rows, cursor=cursor, read=len(records))

    def _walk(
        self, entity: str, since: str | None, known: set[str] | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], datetime, tuple[str, set[str]] | None, bool]]:
        """The pages of one query, oldest first: `>=` the cursor, so a page cut mid-second loses nothing. Offset
        pages follow a keyset (`_Keyset`; `known`: the ids read with the cursor's stamp); `@attributes.next` links
        (cursor pagination) are followed as sent, the known records dropped and the newest stamp's ids kept as by
        offset (a quiet poll stored the newest stamp's records again each time). Each page comes with the pass's
        start by the vendor's clock (common.pass_start), the newest stamp read and its ids, and whether the cursor
        must stay at its stamp (`_Keyset.held`)."""
        params: dict[str, Any] = {"sort": "timeStamp", "limit": self.page_size}
        if entity == "Item":
            params["load_relations"] = '["ItemShops","Category","Manufacturer"]'
            params["archived"] = "true"
        else:
            params["shopID"] = self.ctx.location
        first = f"/API/V3/Account/{self.account_id}/{entity}.json"
        url: str | None = first
        id_field = "itemID" if entity == "Item" else "itemShopID"
        keyset, seen = _Keyset(since, id_field, known, self.page_size), {first}
        started, asked_at = None, time.time()
        while url:
            body, response = self.http.request_json(
                "GET", url, params={**params, **keyset.params()} if params else None
            )
            started = started or pass_start(response.headers, asked_at)
            body = body if isinstance(body, dict) else {}
            records, attributes = as_list(body.get(entity)), body.get("@attributes") or {}
            if "next" in attributes and keyset.check:  # no offsets to count with: read `>=` the stamp, known dropped
                keyset = _Keyset(since, id_field, known, len(known or ()))
                continue
            keyset.note(records)
            if "next" in attributes or not params:  # cursor pagination: the keyset's stamp and ids, not its offsets
                yield keyset.fresh(records), started, (keyset.top, keyset.top_ids), False
                params, url = {}, attributes.get("next") or None
                url = self.http.next_page(url, seen, response.url) if url is not None else None
                continue
            fresh = keyset.fresh(records)
            more = keyset.more(records, int(attributes.get("count") or 0))
            yield fresh, started, (keyset.top, keyset.top_ids), keyset.held and more
            url = url if more else None


def _ids(value: Any) -> set[str] | None:
    return {str(v) for v in value} if isinstance(value, list) else None


class _Keyset:
    """Offset pages as a keyset on `timeStamp`: each page asks `>=` the newest stamp read, from offset 0, and drops
    the records of that stamp already read (usually one a page). By offset alone, a record edited mid-pass moved to
    the end and every later one down a place, so the one at the next page's start was never read, and the cursor
    (the newest stamp) then passed it for good. More records of one stamp than a page holds are paged inside that
    stamp by id (`timeStamp=S`, `sort` and `>` on the id): by offset there, an edit among them moved the next one
    onto a page already read, and it was skipped for good; an edit only takes a record out of a past stamp.

    The cursor's stamp comes with the ids read with it (`known`), which are not read again. A stamp holding more of
    them than a page (a bulk import) is not read whole on every poll: one request counts its records past the known
    ones (`timeStamp=S`, by id, from offset len(known)); the same count and none past it, and the pass goes on from
    `>` the stamp, else it reads the stamp again by id. A known id read newer with the count unchanged means another
    record took its place in the stamp: the stamp is read again by id at the end. Until that pass ends, its pages
    are `held`: their cursor stays at the stamp with its ids, so a pass cut short (a vendor error, SIGTERM) counts
    the stamp again and reads what is newer again (moved on, the known id read newer no longer said that another
    had joined the stamp, and it was never read)."""

    def __init__(self, since: str | None, id_field: str, known: set[str] | None = None, page_size: int = 100) -> None:
        self.key, self.id_field, self.since = since, id_field, since
        self.known = set(known or ()) if since else set()
        self.at_key: set[str] = set(self.known)  # ids read with the stamp `key`
        self.within: str | None = None  # inside `key`'s stamp: the last id read ("": from its first)
        self.past_key = False  # `key`'s stamp read whole: on from after it
        self.check = len(self.known) > page_size  # first, count the stamp's records (see above)
        self.reread = not self.check  # the cursor's stamp read (again) by id, or whole with `>=`
        self.departed, self.last = False, False  # a known id read newer; end after this read of the stamp
        self.held = False  # gone past the counted stamp: the cursor stays at it until the pass ends
        self.top, self.top_ids = since or "", set(self.known)  # the newest stamp read, and its ids

    def params(self) -> dict[str, Any]:
        if self.check:
            return {"offset": len(self.known), "timeStamp": self.key, "sort": self.id_field}
        if self.within is not None:
            after = {self.id_field: f">,{self.within}"} if self.within else {}
            return {"offset": 0, "timeStamp": self.key, "sort": self.id_field, **after}
        return {"offset": 0, **({"timeStamp": f"{'>' if self.past_key else '>='},{self.key}"} if self.key else {})}

    def note(self, records: list[dict[str, Any]]) -> None:
        """The newest stamp and its ids, and whether a known id came newer than the cursor's stamp."""
        for record in records:
            stamp, rid = str(record.get("timeStamp") or ""), str(record.get(self.id_field))
            self.departed = self.departed or (rid in self.known and stamp > (self.since or ""))
            if stamp > self.top:
                self.top, self.top_ids = stamp, {rid}
            elif stamp == self.top:
                self.top_ids.add(rid)

    def fresh(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.check:  # counted only: a changed stamp is read again by id
            return []
        return [r for r in records if r.get("timeStamp") != self.key or str(r.get(self.id_field)) not in self.at_key]

    def more(self, records: list[dict[str, Any]], count: int) -> bool:
        """Move past `records`; whether the query holds more (`count`: its records from this page on)."""
        ids = {str(r.get(self.id_field)) for r in records if r.get("timeStamp") == self.key}
        if self.check:
            self.check, unchanged = False, not records and count == len(self.known)
            self.past_key, self.within, self.reread = unchanged, None if unchanged else "", not unchanged
            self.held = unchanged
            return True
        if self.within is not None:  # sorted by id: the page's last is the newest id read of the stamp
            self.at_key |= ids
            self.within = str(records[-1].get(self.id_field)) if records and len(records) < count else None
            self.past_key = self.within is None
            return not (self.past_key and self.last)
        if not records or len(records) >= count:
            return self._again()
        newest = max(str(r.get("timeStamp") or "") for r in records)
        if newest > (self.key or ""):  # on from the newest stamp: its records read come again first, dropped
            self.key, self.at_key, self.past_key = (
                newest,
                {str(r.get(self.id_field)) for r in records if r.get("timeStamp") == newest},
                False,
            )
        else:  # a whole page of the key's stamp: on inside it by id
            self.at_key |= ids
            self.within = ""
        return True

    def _again(self) -> bool:
        """At the pass's end: the cursor's stamp by id once more when its count held but a known id left it."""
        if not self.departed or self.reread:
            return False
        self.key, self.at_key, self.within, self.reread, self.last = self.since, set(self.known), "", True, True
        return True
