"""Each POS end to end: a fake vendor holds a small catalogue; a sync (or webhooks) brings it in; the import and
embed jobs' code maps and embeds it; `/v1/search` near the store finds it with the vendor's price and stock; a
stock change shows; an archived or deleted item leaves the results. Every fake is flaky (429, 500, timeouts,
malformed pages). Replays and older events change nothing; a
wrong signature is 401. Webhooks go through the real `POST /v1/ingest/{id}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from search_service.ingest.connectors.common import hmac_sha256
from tests.connector_helpers import (
    SECRET_KEY,
    deliver,
    index,
    listing,
    make_connection,
    make_store,
    map_batches,
    sync,
    webhook_row_statuses,
)
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, LightspeedXFake, ShopifyFake
from tests.test_api import app_settings, load_test_encoder, running_client

JSON = {"Content-Type": "application/json"}
POINTS = {"r": (52.3700, 4.8900), "x": (52.3600, 4.9100), "e": (52.3750, 4.9200), "s": (52.3650, 4.8800)}


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def client(db_url: str, encoder: Encoder) -> Iterator[TestClient[Any]]:
    with running_client(app_settings(db_url, query_cache_size=0, secret_key=SECRET_KEY), encoder) as c:
        yield c


def found(
    client: TestClient[Any], q: str, store: uuid.UUID, point: tuple[float, float]
) -> dict[str, tuple[float, int]]:
    """name -> (price, quantity) of the products `/v1/search` finds in this store, near it."""
    params = {"q": q, "lat": point[0], "lon": point[1], "radius_m": 800, "stores_per_product": 10, "limit": 20}
    response = client.get("/v1/search", params=params)
    assert response.status_code == 200, response.text
    return {
        hit["product"]["name"]: (float(s["price"]), int(s["quantity"]))
        for hit in response.json()["results"]
        for s in hit["stores"]
        if s["id"] == str(store)
    }


def test_lightspeed_r_series_polling_under_a_flaky_server(
    db: psycopg.Connection, client: Any, encoder: Encoder
) -> None:
    fake = LightspeedRFake()
    for item in (Item("901", "Claw hammer 16 oz", "14.95", 5, "5901234123457", "Forge", "Tools"),
                 Item("902", "Garden hose 20 m", "19.90", 3, "", "Hoser", "Garden")):  # fmt: skip
        fake.add(item)
    fake.server.flaky.every = 3  # 429, 500, a timeout, a malformed page, in turn
    store = make_store(db, "R hardware", *POINTS["r"])
    cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})
    try:
        sync(db, cid)
        index(db, encoder)
        assert found(client, "claw hammer", store, POINTS["r"])["Claw hammer 16 oz"] == (14.95, 5)
        fake.set_stock("901", 7)  # moves only the ItemShop's timeStamp
        sync(db, cid)
        index(db, encoder)
        assert found(client, "claw hammer", store, POINTS["r"])["Claw hammer 16 oz"] == (14.95, 7)
        fake.update("901", archived="true")
        sync(db, cid)
        index(db, encoder)
        assert "Claw hammer 16 oz" not in found(client, "claw hammer", store, POINTS["r"])
        assert "Garden hose 20 m" in found(client, "garden hose", store, POINTS["r"])
        assert fake.server.flaky.injected  # the faults happened and were ridden out
    finally:
        fake.server.close()


def _x_delivery(payload: dict[str, Any], topic: str, secret: str = "x-secret") -> tuple[dict[str, str], bytes]:
    body = urlencode({"type": topic, "domain_prefix": "shop", "payload": json.dumps(payload)}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Signature": f"signature={signature},algorithm=HMAC-SHA256"}
    return {**headers, "Content-Type": "application/x-www-form-urlencoded"}, body


def _x_product(name: str, price: float, count: str, updated_at: str) -> dict[str, Any]:
    return {"id": "x-701", "name": name, "sku": "OAT", "brand_name": "Oatly", "type": "Plant milk", "price": price,
            "tax": 0.0, "inventory": [{"outlet_id": "outlet-1", "count": count}], "updated_at": updated_at,
            "deleted_at": ""}  # fmt: skip


def test_lightspeed_x_series_poll_and_webhooks(db: psycopg.Connection, client: Any, encoder: Encoder) -> None:
    fake = LightspeedXFake()
    fake.add(Item("x-701", "Oat drink barista 1 L", "3.49", 24, "", "Oatly", "Plant milk"))
    fake.add(Item("x-702", "Soy drink unsweetened", "1.79", 6), level_name="inventory_level")
    fake.server.flaky.every = 4
    store = make_store(db, "X grocer", *POINTS["x"])
    creds = {"domain_prefix": "shop", "token": "x-token"}
    cid = make_connection(db, store, "lightspeed-x", "outlet-1", fake.server.url, creds, secret="x-secret")
    try:
        sync(db, cid)
        index(db, encoder)
        assert found(client, "oat drink", store, POINTS["x"])["Oat drink barista 1 L"] == (3.49, 24)
        assert found(client, "soy drink", store, POINTS["x"])["Soy drink unsweetened"] == (1.79, 6)
        newer = _x_delivery(
            _x_product("Oat drink barista 1 L", 3.99, "12.00000", "2025-06-19 10:00:00"), "product.update"
        )
        assert deliver(client, cid, *newer) == "stored"
        assert deliver(client, cid, *newer) == "duplicate"  # a replay stores nothing
        older = _x_delivery(_x_product("Oat drink barista 1 L", 0.99, "99", "2025-06-19 09:00:00"), "product.update")
        assert deliver(client, cid, *older) == "stored"  # stored raw, mapped `stale`
        index(db, encoder)
        assert webhook_row_statuses(db, cid) == ["mapped", "stale"]
        # the payload's count (12) has no stock clock: the level stays the versioned one until its inventory is read
        assert found(client, "oat drink", store, POINTS["x"])["Oat drink barista 1 L"] == (3.99, 24)
        forged = _x_delivery(_x_product("Oat", 0.01, "1", "2025-06-20 00:00:00"), "product.update", "bad")
        assert deliver(client, cid, *forged) == "401"
        fake.set_stock("x-701", 4)
        assert deliver(client, cid, *_x_delivery({"product_id": "x-701"}, "inventory.update")) == "stored"
        sync(db, cid)  # the trigger re-reads that product's inventory
        assert any(r.path == "/api/2.0/inventory/x-701" for r in fake.server.requests)
        fake.update("x-702", deleted_at="2025-06-20T10:00:00+00:00")
        sync(db, cid)
        index(db, encoder)
        assert found(client, "oat drink", store, POINTS["x"])["Oat drink barista 1 L"] == (3.99, 4)
        assert "Soy drink unsweetened" not in found(client, "soy drink", store, POINTS["x"])
    finally:
        fake.server.close()


def _erply_event(event_id: str, table: str, secret: str = "e-secret") -> bytes:
    event = {"id": event_id, "clientCode": "123456", "table": table, "action": "update", "eventCount": 1,
             "items": [{"rowId": 801, "data": {"productID": 801}}]}  # fmt: skip
    return json.dumps({**event, "hmac": hmac_sha256(secret, event_id.encode())}).encode()


def test_erply_poll_webhook_triggers_and_deletions(db: psycopg.Connection, client: Any, encoder: Encoder) -> None:
    fake = ErplyFake()
    fake.add(Item("801", "Whole bean coffee 500 g", "12.99", 8, "", "Roastery", "Pantry"), as_strings=True)
    fake.add(Item("802", "Green tea 20 bags", "2.50", 5, "", "Sencha", "Pantry"))
    fake.server.flaky.every = 4
    store = make_store(db, "E deli", *POINTS["e"])
    creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
    cid = make_connection(db, store, "erply", "1", fake.server.url + "/api/", creds, secret="e-secret")
    try:
        sync(db, cid)
        index(db, encoder)
        assert found(client, "coffee beans", store, POINTS["e"])["Whole bean coffee 500 g"] == (12.99, 8)
        fake.set_stock("801", 2)
        assert deliver(client, cid, JSON, _erply_event("ev-1", "wm_inventory_registration")) == "stored"
        assert deliver(client, cid, JSON, _erply_event("ev-1", "wm_inventory_registration")) == "duplicate"
        assert deliver(client, cid, JSON, _erply_event("ev-2", "wm_product", secret="wrong")) == "401"
        due = db.execute("SELECT count(*) FROM ingest_delivery WHERE delivery_id LIKE 'trigger:%%'").fetchone()
        assert due is not None and due[0] >= 1
        fake.delete("802")
        sync(db, cid)
        index(db, encoder)
        assert found(client, "coffee beans", store, POINTS["e"])["Whole bean coffee 500 g"] == (12.99, 2)
        assert "Green tea 20 bags" not in found(client, "green tea", store, POINTS["e"])
    finally:
        fake.server.close()


def _shopify(body: dict[str, Any], topic: str, event: str, secret: str = "new-secret") -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Event-Id": event}
    return {**headers, "Content-Type": "application/json"}, raw


def test_shopify_webhooks_and_reconciliation_poll(db: psycopg.Connection, client: Any, encoder: Encoder) -> None:
    fake = ShopifyFake()
    fake.add(
        Item("s1", "Folding umbrella windproof", "15.00", 9, "1234_pink", "Brolly", "Household"),
        product_id=788032119674292922,
        variant_id=642667041472713922,
        inventory_item_id=271878346596884015,
    )
    fake.add(
        Item("s2", "Scented candles vanilla", "6.00", 4, "", "Glow", "Household"),
        product_id=788032119674292923,
        variant_id=642667041472713923,
        inventory_item_id=271878346596884016,
    )
    fake.server.flaky.every = 4
    store = make_store(db, "S gifts", *POINTS["s"])
    creds = {"shop": "gifts.myshopify.com", "token": "shpat_test"}
    cid = make_connection(db, store, "shopify", "24826418", fake.server.url, creds, secret="new-secret old-secret")
    try:
        sync(db, cid)
        index(db, encoder)
        assert found(client, "umbrella", store, POINTS["s"])["Folding umbrella windproof"] == (15.0, 9)
        assert listing(db, store, "271878346596884015") is not None  # an id beyond 2^53, exact
        level = fake.set_stock("s1", 3)
        newer = _shopify(level, "inventory_levels/update", "ev-10", secret="old-secret")  # rotation: both valid
        assert deliver(client, cid, *newer) == "stored"
        assert deliver(client, cid, *newer) == "duplicate"
        older = _shopify({**level, "available": 99, "updated_at": "2025-06-18T00:00:00-04:00"},
                         "inventory_levels/update", "ev-9")  # fmt: skip
        assert deliver(client, cid, *older) == "stored"  # mapped `stale`: changes nothing
        assert deliver(client, cid, *_shopify(level, "inventory_levels/update", "ev-11", secret="stolen")) == "401"
        assert "Scented candles vanilla" in found(client, "candles", store, POINTS["s"])
        deleted = _shopify({"id": 788032119674292923}, "products/delete", "ev-12")
        assert deliver(client, cid, *deleted) == "stored"  # its listings found through the poll's links
        map_batches(db)  # the import job maps the delivery: no sync in between
        assert "Scented candles vanilla" not in found(client, "candles", store, POINTS["s"])
        assert listing(db, store, "271878346596884016") == ("6.00", 4, False)  # not sellable; its history stays
        assert deliver(client, cid, *deleted) == "duplicate"
        del fake.products["s2"], fake.levels["s2"]
        sync(db, cid)
        index(db, encoder)
        assert webhook_row_statuses(db, cid) == ["mapped", "stale", "mapped"]
        assert found(client, "umbrella", store, POINTS["s"])["Folding umbrella windproof"] == (15.0, 3)
        assert "Scented candles vanilla" not in found(client, "candles", store, POINTS["s"])
        _shopify_delete_of_a_product_only_seen_in_webhooks(db, client, cid, store)
        untracked = fake.set_stock("s1", None)  # inventory tracking turned off at the vendor: `available: null`
        assert deliver(client, cid, *_shopify(untracked, "inventory_levels/update", "ev-30")) == "stored"
        map_batches(db)
        assert "Folding umbrella windproof" not in found(client, "umbrella", store, POINTS["s"])
        assert listing(db, store, "271878346596884015") == ("15.00", 0, True)  # listed, not sellable by stock
    finally:
        fake.server.close()


def _shopify_delete_of_a_product_only_seen_in_webhooks(
    db: psycopg.Connection, client: Any, cid: uuid.UUID, store: uuid.UUID
) -> None:
    """No poll recorded its links: the raw rows of the webhook that created it name its listings. A product never
    seen becomes a trigger for the next sync."""
    variant = {"id": 642667041472713930, "product_id": 788032119674292930, "title": "Default Title", "sku": "MUG",
               "barcode": "", "price": "8.50", "inventory_item_id": 271878346596884030}  # fmt: skip
    product = {"id": 788032119674292930, "title": "Enamel camping mug", "vendor": "Trail", "product_type": "Outdoor",
               "status": "active", "updated_at": "2025-06-20T10:00:00-04:00", "variants": [variant]}  # fmt: skip
    assert deliver(client, cid, *_shopify(product, "products/create", "ev-20")) == "stored"
    map_batches(db)
    assert listing(db, store, "271878346596884030") == ("8.50", 0, True)
    assert deliver(client, cid, *_shopify({"id": 788032119674292930}, "products/delete", "ev-21")) == "stored"
    map_batches(db)
    assert listing(db, store, "271878346596884030") == ("8.50", 0, False)
    assert deliver(client, cid, *_shopify({"id": 99}, "products/delete", "ev-22")) == "stored"
    ids = [r[0] for r in db.execute("SELECT delivery_id FROM ingest_delivery WHERE connection_id = %s", (cid,))]
    assert "trigger:delete=99 shopify:ev-22:products/delete" in ids and "shopify:ev-21:products/delete" in ids
