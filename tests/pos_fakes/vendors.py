"""Fake vendor APIs serving the documented shapes (shared/reference/pos-payloads.md), cursors and rate limits.

Each holds a small mutable catalogue; tests change it (price, stock, archive, delete) the way a store would at
its point of sale, and the fake moves the vendor's cursor (timeStamp, version, lastModified, updated_at).
"""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.pos_fakes.server import FakeServer, Reply, Request


@dataclass
class Item:
    """A product in a vendor-neutral form, from which each fake builds its own shape."""

    key: str
    name: str
    price: str
    quantity: int
    barcode: str = ""
    brand: str = "Oatly"
    category: str = "Plant milk"


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 18, 18, 0, 0, tzinfo=UTC)

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _page(records: list[Any], offset: int, limit: int) -> list[Any]:
    return records[offset : offset + limit]


def _compare(stamp: str, op: str, value: str) -> bool:
    return stamp >= value if op == ">=" else stamp > value if op == ">" else stamp == value


class LightspeedRFake:
    """Item.json and ItemShop.json by timeStamp; strings everywhere; one child as an object; summary shop "0"."""

    def __init__(self, account: str = "4242", shop: str = "1", token: str = "r-token") -> None:
        self.account, self.shop, self.token = account, shop, token
        self.clock = _Clock()
        self.items: dict[str, dict[str, Any]] = {}
        self.bucket: tuple[float, int] = (0.0, 60)
        self.bucket_at = time.monotonic()
        self.cursor_pages = False  # V3 cursor pagination: `@attributes` `next`/`previous` links, no `count`
        self.page_tokens: dict[str, dict[str, str]] = {}  # `after=` token -> its page's query
        self.server = FakeServer(self.handle)
        self.server.clock = lambda: self.clock.now  # the Date header tells the vendor's time

    def add(self, item: Item) -> None:
        ts = self.clock.tick().isoformat()
        shops = [
            {
                "itemShopID": f"{item.key}1",
                "qoh": str(item.quantity),
                "timeStamp": ts,
                "itemID": item.key,
                "shopID": self.shop,
            },
            {
                "itemShopID": f"{item.key}0",
                "qoh": str(item.quantity),
                "timeStamp": ts,
                "itemID": item.key,
                "shopID": "0",
            },
        ]
        self.items[item.key] = {
            "itemID": item.key,
            "systemSku": f"2100{item.key}",
            "customSku": f"C-{item.key}",
            "archived": "false",
            "description": item.name,
            "upc": "",
            "ean": item.barcode,
            "timeStamp": ts,
            "manufacturerID": "7",
            "Manufacturer": {"manufacturerID": "7", "name": item.brand},
            "Category": {"categoryID": "12", "name": item.category, "fullPathName": f"Dairy/{item.category}"},
            "Prices": {
                "ItemPrice": [
                    {"amount": item.price, "useTypeID": "1", "useType": "Default"},
                    {"amount": "99.00", "useTypeID": "2", "useType": "MSRP"},
                ]
            },
            "ItemShops": {"ItemShop": shops},
        }

    def set_stock(self, key: str, qoh: int) -> None:
        """Stock moves the ItemShop's timeStamp only, never the Item's (as at the vendor)."""
        ts = self.clock.tick().isoformat()
        for shop in self.items[key]["ItemShops"]["ItemShop"]:
            shop.update(qoh=str(qoh), timeStamp=ts)

    def update(self, key: str, **fields: Any) -> None:
        self.items[key].update(fields, timeStamp=self.clock.tick().isoformat())

    def handle(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"message": "invalid token"})
        match = re.fullmatch(rf"/API/V3/Account/{self.account}/(Item|ItemShop)\.json", req.path)
        if not match:
            return Reply(404, {"message": "not found"})
        entity, query = match.group(1), dict(req.query)
        if self.cursor_pages and (token := query.get("after")):  # a next link: the first page's query, on from it
            query = self.page_tokens[token]
        records = list(self.items.values())
        if entity == "ItemShop":
            records = [s for i in records for s in i["ItemShops"]["ItemShop"]]
            if "shopID" in query:
                records = [s for s in records if s["shopID"] in (query["shopID"], "0")]  # summary rows too
        elif query.get("archived") != "true":
            records = [i for i in records if i["archived"] == "false"]
        if ts := query.get("timeStamp"):
            op, _, value = ts.partition(",") if "," in ts else ("=", "", ts)
            records = [r for r in records if _compare(r["timeStamp"], op, value)]
        id_field = "itemID" if entity == "Item" else "itemShopID"
        if after := query.get(id_field):  # `>,ID`: ids compare as numbers
            records = [r for r in records if int(r[id_field]) > int(after.partition(",")[2])]
        sort = query.get("sort", "timeStamp")
        records.sort(key=lambda r: int(r[sort]) if sort == id_field else r[sort])
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        page = _page(records, offset, limit)
        now = time.monotonic()  # the bucket leaks one unit a second, as the drip-rate header says
        used = min(self.bucket[1], max(0.0, self.bucket[0] - (now - self.bucket_at)) + 1)
        self.bucket, self.bucket_at = (used, self.bucket[1]), now
        attributes = {"count": str(len(records)), "offset": str(offset), "limit": str(limit)}
        if self.cursor_pages:
            token = f"t{len(self.page_tokens)}" if offset + limit < len(records) else ""
            if token:
                self.page_tokens[token] = {**query, "offset": str(offset + limit)}
            attributes = {"next": f"{self.server.url}{req.path}?after={token}" if token else "", "previous": ""}
        body = {"@attributes": attributes, entity: page[0] if len(page) == 1 else page}
        headers = {"X-LS-API-Bucket-Level": f"{used:g}/{self.bucket[1]}", "X-LS-API-Drip-Rate": "1"}
        return Reply(200, body, headers)


class LightspeedXFake:
    """API 2.0 products and inventory by version (`after=`); 429 with Retry-After as an HTTP date."""

    LEVEL_NAMES = ("current_inventory_level", "inventory_level", "current_amount")

    def __init__(self, outlet: str = "outlet-1", token: str = "x-token") -> None:
        self.outlet, self.token = outlet, token
        self.version = 1000
        self.products: dict[str, dict[str, Any]] = {}
        self.inventory: dict[str, dict[str, Any]] = {}
        self.throttle_next = 0
        self.server = FakeServer(self.handle)

    def _next_version(self) -> int:
        self.version += 7
        return self.version

    def add(self, item: Item, level_name: str = "current_inventory_level") -> None:
        self.products[item.key] = {
            "id": item.key,
            "handle": item.key,
            "name": item.name,
            "variant_name": item.name,
            "sku": f"SKU-{item.key}",
            "product_codes": [{"id": "c", "type": "EAN", "code": item.barcode}] if item.barcode else [],
            "brand": {"id": "b", "name": item.brand},
            "product_category": {"id": "pc", "name": item.category},
            "description": "<p>Foams like dairy.</p>",
            "price_including_tax": float(item.price),
            "is_active": True,
            "updated_at": "2025-06-18T18:30:09+00:00",
            "deleted_at": None,
            "version": self._next_version(),
        }
        self.inventory[item.key] = {
            "id": f"inv-{item.key}",
            "outlet_id": self.outlet,
            "product_id": item.key,
            level_name: item.quantity,
            "version": self._next_version(),
        }

    def set_stock(self, key: str, level: int) -> None:
        record = self.inventory[key]
        name = next(n for n in self.LEVEL_NAMES if n in record)
        record.update({name: level, "version": self._next_version()})

    def update(self, key: str, **fields: Any) -> None:
        self.products[key].update(fields, version=self._next_version())

    def handle(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"message": "unauthorized"})
        if self.throttle_next:
            self.throttle_next -= 1
            retry_at = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
            return Reply(429, {"error": "rate limited"}, {"Retry-After": retry_at})
        after, size = int(req.query.get("after", 0)), int(req.query.get("page_size", 1000))
        if req.path == "/api/2.0/products":
            records = [p for p in self.products.values() if p["deleted_at"] is None or req.query.get("deleted")]
        elif req.path == "/api/2.0/inventory":
            records = list(self.inventory.values())
        elif req.path.startswith("/api/2.0/inventory/"):
            key = req.path.rsplit("/", 1)[1]
            return Reply(200, {"data": [self.inventory[key]]} if key in self.inventory else {"data": []})
        else:
            return Reply(404, {"message": "not found"})
        records = sorted((r for r in records if r["version"] > after), key=lambda r: r["version"])[:size]
        versions = [r["version"] for r in records]
        version = {"min": min(versions), "max": max(versions)} if versions else {}
        return Reply(200, {"data": records, "version": version})


class ErplyFake:
    """One POST endpoint, `request=` names the call; errors as HTTP 200 + errorCode; numbers sometimes strings."""

    def __init__(self, client_code: str = "123456", warehouses: tuple[str, ...] = ("1", "2")) -> None:
        self.client_code, self.warehouses = client_code, warehouses
        self.username, self.password = "api-user", "api-pass"
        self.sessions: set[str] = set()
        self.clock = 1750271409
        self.products: dict[str, dict[str, Any]] = {}
        self.stock: dict[tuple[str, str], dict[str, Any]] = {}  # (warehouse, productID) -> record
        self.deletions: list[dict[str, Any]] = []
        self.quota_errors = 0
        self.ip_blocked = 0  # requests answered with the per-IP block: HTTP 429 without Retry-After
        self.max_page = 1000  # Erply's most records a page, whatever `recordsOnPage` asks
        self.server = FakeServer(self.handle)

    def tick(self) -> int:
        self.clock += 5
        return self.clock

    def add(self, item: Item, *, as_strings: bool = False) -> None:
        pid = int(item.key)
        record = {
            "productID": pid,
            "type": "PRODUCT",
            "status": "ACTIVE",
            "active": 1,
            "name": item.name,
            "code": f"SKU-{item.key}",
            "code2": item.barcode,
            "code3": None,
            "groupID": 4,
            "groupName": item.category,
            "categoryName": "Dairy alternatives",
            "brandName": item.brand,
            "price": round(float(item.price) / 1.22, 2),
            "vatrate": 22,
            "priceWithVat": float(item.price),
            "longdesc": "Foams like dairy.",
            "lastModified": self.tick(),
        }
        if as_strings:
            record = {k: (str(v) if isinstance(v, int | float) else v) for k, v in record.items()}
        self.products[item.key] = record
        for n, warehouse in enumerate(self.warehouses):
            amount: Any = item.quantity + 100 * n  # each warehouse its own level
            self.stock[(warehouse, item.key)] = {
                "productID": pid,
                "amountInStock": str(amount) if as_strings else amount,
                "amountReserved": 0,
                "changed": self.clock,
            }

    def set_stock(self, key: str, amount: int | str, warehouse: str = "1") -> None:
        self.stock[(warehouse, key)].update(amountInStock=amount, changed=self.tick())

    def update(self, key: str, **fields: Any) -> None:
        self.products[key].update(fields, lastModified=self.tick())

    def delete(self, key: str) -> None:
        del self.products[key]
        self.deletions.append(
            {"tableName": "products", "itemID": int(key), "operation": "delete", "timestamp": self.tick()}
        )

    def _status(self, request: str, code: int = 0, total: int = 0) -> dict[str, Any]:
        return {
            "request": request,
            "requestUnixTime": self.clock,
            "responseStatus": "error" if code else "ok",
            "errorCode": code,
            "recordsTotal": total,
        }

    def handle(self, req: Request) -> Reply:
        form = req.form
        request = form.get("request", "")
        if self.ip_blocked:
            self.ip_blocked -= 1
            return Reply(429, {"error": "too many requests"})
        if form.get("clientCode") != self.client_code:
            return Reply(200, {"status": self._status(request, 1050)})
        if self.quota_errors:
            self.quota_errors -= 1
            return Reply(200, {"status": self._status(request, 1002)})
        if request == "verifyUser":
            if (form.get("username"), form.get("password")) != (self.username, self.password):
                return Reply(200, {"status": self._status(request, 1051)})
            key = f"session-{len(self.sessions)}"
            self.sessions.add(key)
            return Reply(200, {"status": self._status(request), "records": [{"sessionKey": key}]})
        if form.get("sessionKey") not in self.sessions:
            return Reply(200, {"status": self._status(request, 1054)})
        return self._records(request, form)

    def _records(self, request: str, form: dict[str, str]) -> Reply:
        # each call's own filter, as Erply documents it; another name is ignored, as the vendor ignores it
        since = int(form.get("addedFrom" if request == "getUserOperationsLog" else "changedSince") or 0)
        if request == "getProducts":
            records = [p for p in self.products.values() if int(p["lastModified"]) >= since]
            if form.get("orderBy") == "productID":
                records.sort(key=lambda p: int(p["productID"]))
        elif request == "getProductStock":
            warehouse = form.get("warehouseID", "")
            records = [
                {k: v for k, v in r.items() if k != "changed"}
                for (w, _), r in self.stock.items()
                if w == warehouse and r["changed"] >= since
            ]
        elif request == "getUserOperationsLog":
            records = [d for d in self.deletions if d["timestamp"] >= since]
        else:
            return Reply(200, {"status": self._status(request, 1006)})
        size, page_no = min(int(form.get("recordsOnPage", 20)), self.max_page), int(form.get("pageNo", 1))
        page = _page(records, (page_no - 1) * size, size)
        return Reply(200, {"status": self._status(request, 0, len(records)), "records": page})


class ShopifyFake:
    """Admin REST products.json and inventory_levels.json with Link-header pages and a call-limit header."""

    def __init__(self, location: str = "24826418", token: str = "shpat_test") -> None:
        self.location, self.token = location, token
        self.clock = _Clock()
        self.products: dict[str, dict[str, Any]] = {}
        self.levels: dict[str, dict[str, Any]] = {}
        self.page_tokens: dict[str, tuple[dict[str, str], int]] = {}
        self.location_count = 1  # `locations/count.json`: a variant's `inventory_quantity` sums them all
        self.server = FakeServer(self.handle)
        self.server.clock = lambda: self.clock.now  # the Date header tells the vendor's time

    def add(self, item: Item, *, product_id: int, variant_id: int, inventory_item_id: int) -> None:
        ts = self.clock.tick().isoformat()
        self.products[item.key] = {
            "id": product_id,
            "title": item.name,
            "body_html": "<p>Foams like dairy.</p>",
            "vendor": item.brand,
            "product_type": item.category,
            "status": "active",
            "updated_at": ts,
            "variants": [
                {
                    "id": variant_id,
                    "product_id": product_id,
                    "title": "Default Title",
                    "sku": f"SKU-{item.key}",
                    "barcode": item.barcode or None,
                    "price": item.price,
                    "inventory_item_id": inventory_item_id,
                    "inventory_quantity": item.quantity,
                    "inventory_management": "shopify",
                    "updated_at": ts,
                }
            ],
        }
        self.levels[item.key] = {
            "inventory_item_id": inventory_item_id,
            "location_id": int(self.location),
            "available": item.quantity,
            "updated_at": ts,
        }

    def set_stock(self, key: str, available: int | None) -> dict[str, Any]:
        self.levels[key].update(available=available, updated_at=self.clock.tick().isoformat())
        return dict(self.levels[key])

    def update(self, key: str, **fields: Any) -> dict[str, Any]:
        self.products[key].update(fields, updated_at=self.clock.tick().isoformat())
        return dict(self.products[key])

    def handle(self, req: Request) -> Reply:
        if req.headers.get("x-shopify-access-token") != self.token:
            return Reply(401, {"errors": "[API] Invalid API key or access token"})
        name = req.path.rsplit("/", 1)[-1]
        query, offset = dict(req.query), 0
        if token := req.query.get("page_info"):  # the token carries the first page's filters, as at Shopify
            query, offset = self.page_tokens[token]
        if req.path.endswith("/locations/count.json"):
            return Reply(200, {"count": self.location_count}, {"X-Shopify-Shop-Api-Call-Limit": "3/40"})
        if name == "products.json":
            key, records = "products", list(self.products.values())
        elif name == "inventory_levels.json":
            key, records = "inventory_levels", list(self.levels.values())
            records = [r for r in records if str(r["location_id"]) in query.get("location_ids", "").split(",")]
        else:
            return Reply(404, {"errors": "Not Found"})
        if since := query.get("updated_at_min"):
            records = [r for r in records if datetime.fromisoformat(r["updated_at"]) >= datetime.fromisoformat(since)]
        limit = int(query.get("limit", 50))
        page = _page(records, offset, limit)
        headers = {"X-Shopify-Shop-Api-Call-Limit": "3/40"}
        if offset + limit < len(records):
            token = f"t{len(self.page_tokens)}"
            self.page_tokens[token] = (query, offset + limit)
            next_url = f"{self.server.url}{req.path}?limit={limit}&page_info={token}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Reply(200, {key: page}, headers)
