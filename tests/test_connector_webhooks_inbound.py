"""What an inbound POS delivery may not do: set a clock no later level can pass, answer 500, or write another shop's
catalogue. Each checked over the real `POST /v1/ingest/{id}` (or a sync against a fake vendor over HTTP) and the
import job's mapping into real PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import psycopg
import pytest

from search_service.ingest.connectors import lightspeed_r, shopify
from search_service.ingest.connectors.common import MapContext
from search_service.ingest.connectors.config import ConnectorsConfig
from search_service.ingest.connectors.job import run_sync_loop
from tests.connector_helpers import (
    BOX,
    SECRET_KEY,
    deliver,
    listing,
    make_connection,
    make_store,
    map_batches,
    serving_shopify,
    sync,
)
from tests.events_support import subscribe
from tests.pos_fakes.vendors import Item, LightspeedRFake, ShopifyFake
from tests.test_api import app_settings, running_client

ITEMS = [Item(f"{n}", f"Item {n}", "1.00", n) for n in range(101, 103)]
LOCATION = "24826418"
SHOP = "gifts.myshopify.com"


@pytest.fixture
def shopify_fake() -> Iterator[ShopifyFake]:
    yield from serving_shopify(ITEMS, location=LOCATION)


def shopify_delivery(
    body: object, topic: str, event: str, at: str | None = None, shop: str = SHOP
) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    digest = base64.b64encode(hmac.new(b"app-secret", raw, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Event-Id": event,
               "X-Shopify-Shop-Domain": shop, "Content-Type": "application/json"}  # fmt: skip
    return ({**headers, "X-Shopify-Triggered-At": at} if at else headers), raw


def shopify_store(db: psycopg.Connection, fake: ShopifyFake) -> tuple[uuid.UUID, uuid.UUID]:
    """A store with a Shopify connection, synced and mapped: listings 2710 (101) and 2711 (102)."""
    store = make_store(db, "Shop", 52.36, 4.88)
    creds = {"shop": SHOP, "token": "shpat_test"}
    cid = make_connection(db, store, "shopify", LOCATION, fake.server.url, creds, secret="app-secret")
    sync(db, cid)
    map_batches(db)
    return store, cid


def rejections(db: psycopg.Connection, connection_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT r.payload->>'sku', r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
        "WHERE b.connection_id = %s AND r.status = 'rejected' ORDER BY b.seq, r.row_number",
        (connection_id,),
    ).fetchall()
    return [(sku, error) for sku, error in rows]


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def test_shopify_a_stock_time_far_ahead_is_refused_and_later_levels_still_apply(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A signed level stamped 2999 became the listing's stock version: every later level (webhook, poll, full
    sync) was stale for good. And `X-Shopify-Triggered-At`, unsigned, clocked a disconnect: a signed level's body
    replayed as `inventory_levels/disconnect` stamped 2999 zeroed it for good. A stock time more than a day ahead
    is now refused with its reason; the header is no later than the server's clock; a level's body under the
    disconnect topic is refused."""
    store, cid = shopify_store(db, shopify_fake)
    level = {"inventory_item_id": 2710, "location_id": int(LOCATION), "available": 14}
    future = {**level, "updated_at": "2999-01-01T00:00:00Z"}
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, cid, *shopify_delivery(future, "inventory_levels/update", "ev-1")) == "stored"
        map_batches(db)
        assert listing(db, store, "2710") == ("1.00", 101, True)
        assert rejections(db, cid) == [
            ("2710", "the stock time '2999-01-01T00:00:00Z' is more than a day ahead of this server's clock: "
             "check the sender's clock"),
        ]  # fmt: skip
        replayed = shopify_delivery(future, "inventory_levels/disconnect", "ev-2", "2999-01-01T00:00:00Z")
        assert deliver(client, cid, *replayed) == "400"
        gone = {"inventory_item_id": 2710, "location_id": int(LOCATION)}
        disconnect = shopify_delivery(gone, "inventory_levels/disconnect", "ev-3", "2999-01-01T00:00:00Z")
        assert deliver(client, cid, *disconnect) == "stored"
        map_batches(db)
        assert listing(db, store, "2710") == ("1.00", 0, True)  # clocked by this server's time
        later = {**level, "available": 7, "updated_at": _iso(timedelta(hours=1))}
        assert deliver(client, cid, *shopify_delivery(later, "inventory_levels/update", "ev-4")) == "stored"
    map_batches(db)
    assert listing(db, store, "2710") == ("1.00", 7, True)


def test_a_stock_time_that_does_not_read_refuses_its_level_instead_of_applying_it_unclocked(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A level whose `updated_at` did not read (`yesterday`; a lowercase `z`, which ingest's `updated_at` does not
    read either) went without a stock clock, and applied over a newer level: the listing's stock went back, still
    showing the newer version, the row `mapped` without a note. It is refused now, with its reason, as one ahead."""
    store, cid = shopify_store(db, shopify_fake)
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S")
    levels = [
        (2710, 10, hour_ago), (2711, 10, hour_ago),  # newer levels first
        (2710, 99, week_ago + "Z"), (2711, 99, week_ago + "z"), (2710, 42, "yesterday"),
    ]  # fmt: skip
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for n, (item, available, stamp) in enumerate(levels):
            level = {
                "inventory_item_id": item,
                "location_id": int(LOCATION),
                "available": available,
                "updated_at": stamp,
            }
            assert deliver(client, cid, *shopify_delivery(level, "inventory_levels/update", f"ev-{n}")) == "stored"
            map_batches(db)
    assert [listing(db, store, sku) for sku in ("2710", "2711")] == [("1.00", 10, True), ("1.00", 10, True)]
    assert rejections(db, cid) == [
        ("2711", f"the stock time '{week_ago}z' is not an ISO-8601 time"),
        ("2710", "the stock time 'yesterday' is not an ISO-8601 time"),
    ]
    shop = {"itemShopID": "1", "itemID": "7", "shopID": "1", "qoh": "2", "timeStamp": "yesterday"}  # R-Series' too
    assert lightspeed_r.map_item_shop(shop, MapContext("1")) == {
        "op": "stock", "sku": "7", "quantity": 2, "_error": "the stock time 'yesterday' is not an ISO-8601 time",
    }  # fmt: skip


def test_a_stock_time_before_1970_is_refused_as_such_and_an_unsigned_one_gives_way_to_the_receipt_time(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A level stamped before 1970 was refused as "version must be a whole number >= 0", a field the sender never
    sent; it is refused as a time before 1970 now, as an `updated_at` is. A disconnect whose unsigned
    `X-Shopify-Triggered-At` is before 1970 was refused so too (its level kept): it is clocked by its receipt."""
    store, cid = shopify_store(db, shopify_fake)
    moon = {
        "inventory_item_id": 2710,
        "location_id": int(LOCATION),
        "available": 8,
        "updated_at": "1969-07-20T20:17:40Z",
    }
    gone = {"inventory_item_id": 2711, "location_id": int(LOCATION)}
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, cid, *shopify_delivery(moon, "inventory_levels/update", "ev-1")) == "stored"
        disconnect = shopify_delivery(gone, "inventory_levels/disconnect", "ev-2", "1969-12-31T23:00:00Z")
        assert deliver(client, cid, *disconnect) == "stored"
    map_batches(db)
    assert [listing(db, store, sku) for sku in ("2710", "2711")] == [("1.00", 101, True), ("1.00", 0, True)]
    assert rejections(db, cid) == [
        ("2710", "the stock time '1969-07-20T20:17:40Z' is before 1970: a clock that was never set"),
    ]


def test_shopify_a_level_delivered_before_its_product_is_not_lost(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """Shopify does not order its deliveries: a new variant's `inventory_levels/update`, then 0.3 s later its
    `products/create`. The level's row was rejected (no listing with that sku), the product created at 0, and it
    stayed out of stock until the interval's poll. A level of a SKU the store has no listing of now makes the
    connection due for a sync at once (a trigger stored with the delivery), which reads the product and its level.
    The product was still created at 0 and went out as `listing.created` at 0, then `stock.back` (never out of
    stock): its delivery now takes the level delivered before it, and the listing is created with it."""
    store, cid = shopify_store(db, shopify_fake)
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/hook", ["*"])
    shopify_fake.add(Item("103", "Item 103", "2.50", 9), product_id=7890, variant_id=6430, inventory_item_id=2712)
    level, product = shopify_fake.levels["103"], shopify_fake.products["103"]
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, cid, *shopify_delivery(level, "inventory_levels/update", "ev-1")) == "stored"
        time.sleep(0.3)
        assert deliver(client, cid, *shopify_delivery(product, "products/create", "ev-2")) == "stored"
    map_batches(db)
    assert listing(db, store, "2712") == ("2.50", 9, True)  # the level's own row found no listing
    config = ConnectorsConfig(sync_interval_s=3600, http_attempts=2, http_timeout_s=5)  # the last sync was just now
    report = run_sync_loop(db.info.dsn, BOX, config, drain=True)
    assert (report.synced, report.failed) == (1, 0)
    map_batches(db)
    assert listing(db, store, "2712") == ("2.50", 9, True)
    events = "SELECT type, payload->'new'->>'quantity' FROM webhook_event WHERE payload->'listing'->>'sku' = '2712'"
    assert db.execute(events + " ORDER BY id").fetchall() == [("listing.created", "9")]


def test_shopify_a_new_variant_is_created_at_its_products_inventory_quantity_where_the_shop_has_one_location(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """Shopify sends a new variant's `products/create`, then its `inventory_levels/update`. The product created the
    listing at 0 (`listing.created` at 0, out of search), then the level set it (`stock.back`) for an item never
    out of stock. The variant's `inventory_quantity` is its level where the shop has one location (the poll counts
    them): the listing is created at it, and the level after it changes nothing. It sums every location's stock,
    so in a shop of two the listing is created at 0 as before and takes its location's level when that comes."""
    store, cid = shopify_store(db, shopify_fake)  # the poll counted one location
    subscribe(fresh_db_url, store, "http://127.0.0.1:9/hook", ["*"])
    shopify_fake.add(Item("103", "Item 103", "2.50", 9), product_id=7890, variant_id=6430, inventory_item_id=2712)
    level, product = shopify_fake.levels["103"], shopify_fake.products["103"]
    events = "SELECT type, payload->'new'->>'quantity' FROM webhook_event WHERE payload->'listing'->>'sku' = %s"
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, cid, *shopify_delivery(product, "products/create", "ev-1")) == "stored"
        map_batches(db)
        assert listing(db, store, "2712") == ("2.50", 9, True)
        assert deliver(client, cid, *shopify_delivery(level, "inventory_levels/update", "ev-2")) == "stored"
        map_batches(db)
        assert listing(db, store, "2712") == ("2.50", 9, True)
        sent = db.execute(events + " ORDER BY id", ("2712",)).fetchall()  # the level's newer clock: listing.updated
        assert sent[0] == ("listing.created", "9") and set(sent[1:]) <= {("listing.updated", "9")}
        shopify_fake.location_count = 2
        sync(db, cid)
        shopify_fake.add(Item("104", "Item 104", "3.00", 6), product_id=7891, variant_id=6431, inventory_item_id=2713)
        level, product = shopify_fake.levels["104"], shopify_fake.products["104"]
        assert deliver(client, cid, *shopify_delivery(product, "products/create", "ev-3")) == "stored"
        map_batches(db)
        assert listing(db, store, "2713") == ("3.00", 0, True)  # 6 is the shop's, not this location's
        assert deliver(client, cid, *shopify_delivery({**level, "available": 4}, "inventory_levels/update",
                                                      "ev-4")) == "stored"  # fmt: skip
    map_batches(db)
    assert listing(db, store, "2713") == ("3.00", 4, True)


def test_a_new_pos_product_delivered_without_its_level_is_created_at_0_without_a_quantity_note(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """h05 D4: every new POS product delivered without its level (a Shopify `products/create`, an X-Series
    `product.update`: both vendors send stock apart) was noted "quantity not given: a new listing, stored with
    quantity 0", meant for an API client that forgot `quantity`: every new product read as bad data."""
    store = make_store(db, "Shop", 52.36, 4.88)
    shop = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    product = {"id": 8122, "title": "Shop thing", "status": "active", "variants": [_variant(81222)]}
    x_body = ("type=product.update&payload=" + quote('{"id":"p9","name":"Mug","price":"2.00","tax":"0.38"}')).encode()
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, shop, *shopify_delivery(product, "products/create", "ev-1")) == "stored"
        assert deliver(client, x, _x_delivery(x_body), x_body) == "stored"
    map_batches(db)
    assert (listing(db, store, "81222"), listing(db, store, "p9")) == (("8.50", 0, True), ("2.38", 0, True))
    notes = db.execute(
        "SELECT r.status, r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
        "WHERE b.store_id = %s",
        (store,),
    ).fetchall()
    assert notes == [("mapped", None)] * 2


def test_shopify_two_levels_of_one_second_delivered_out_of_order_keep_the_newer(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A level's `updated_at` is to the second and an equal version applies: two levels of one second, delivered
    newer first, ended at the older. X-Shopify-Triggered-At's fraction orders them now, never past the body's
    second: a header an hour ahead places its level last in that second, and a level of the next second still wins.
    A poll answered after that second reads the second's last level: it applies over the deliveries of it."""
    store, cid = shopify_store(db, shopify_fake)
    second = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    stamp = second.isoformat().replace("+00:00", "Z")
    level = {"inventory_item_id": 2710, "location_id": int(LOCATION), "updated_at": stamp}

    def at(fraction: str, shift: timedelta = timedelta(0)) -> str:
        return (second + shift).strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"  # Shopify's nanoseconds

    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        newer = shopify_delivery({**level, "available": 5}, "inventory_levels/update", "ev-1", at("812345678"))
        older = shopify_delivery({**level, "available": 9}, "inventory_levels/update", "ev-2", at("201234567"))
        assert deliver(client, cid, *newer) == "stored" and deliver(client, cid, *older) == "stored"
        map_batches(db)
        assert listing(db, store, "2710") == ("1.00", 5, True)
        forged = shopify_delivery({**level, "available": 3}, "inventory_levels/update", "ev-3",
                                  at("0", timedelta(hours=1)))  # fmt: skip
        assert deliver(client, cid, *forged) == "stored"
        next_second = {**level, "available": 4, "updated_at": (second + timedelta(seconds=1)).isoformat()}
        assert deliver(client, cid, *shopify_delivery(next_second, "inventory_levels/update", "ev-4")) == "stored"
        map_batches(db)
        assert listing(db, store, "2710") == ("1.00", 4, True)
    row = shopify.map_inventory_level({**level, "available": 6}, MapContext(LOCATION),
                                      shopify.polled_level_order_ms(level, second + timedelta(seconds=1)))  # fmt: skip
    assert row is not None and row["version"] % 1000 == 999  # read after its second: after every delivery of it
    assert shopify.polled_level_order_ms(level, second) == 0  # read within it: a later change of it must still win


def test_r_series_a_stock_time_far_ahead_is_refused_and_later_levels_still_apply(db: psycopg.Connection) -> None:
    """An ItemShop stamped 2999 (the shop's clock set wrong) made its level's version 2999 and every later level
    stale; it is refused now with its reason, and the next level applies."""
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    try:
        fake.add(Item("301", "Item 301", "1.00", 5))
        store = make_store(db, "R", 52.36, 4.88)
        cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})
        sync(db, cid)
        map_batches(db)
        assert listing(db, store, "301") == ("1.00", 5, True)
        for shop in fake.items["301"]["ItemShops"]["ItemShop"]:
            shop.update(qoh="14", timeStamp="2999-01-01T00:00:00+00:00")
        sync(db, cid)
        map_batches(db)
        assert listing(db, store, "301") == ("1.00", 5, True)
        assert {sku for sku, error in rejections(db, cid) if "more than a day ahead" in error} == {"301"}
        fake.set_stock("301", 8)
        sync(db, cid)
        map_batches(db)
        assert listing(db, store, "301") == ("1.00", 8, True)
    finally:
        fake.server.close()


def _deep(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def test_a_body_nested_past_the_parsers_depth_is_a_400_for_every_pos(db: psycopg.Connection, fresh_db_url: str) -> None:
    """Erply's `hmac` is inside its body, so an unauthenticated body was parsed first: nested 100,000 deep, its
    RecursionError answered 500 with a traceback; so did a signed Shopify body and X-Series' `payload` field. Each
    is a 400 naming the body now, as the `webhook` source answers it."""
    store = make_store(db, "Shop", 52.36, 4.88)
    erply = make_connection(db, store, "erply", "1", "http://127.0.0.1:9", {"client_code": "123456"}, secret="e-secret")
    shopify = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    erply_body = ('{"id":"d1","hmac":"0","x":' + _deep() + "}").encode()
    x_body = ("type=product.update&payload=" + _deep()).encode()
    x_signature = hmac.new(b"x-secret", x_body, hashlib.sha256).hexdigest()
    x_headers = {"Content-Type": "application/x-www-form-urlencoded",
                 "X-Signature": f"signature={x_signature},algorithm=HMAC-SHA256"}  # fmt: skip
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for cid, headers, body in (
            (erply, {"Content-Type": "application/json"}, erply_body),
            (shopify, *shopify_delivery(('{"id":1,"x":' + _deep() + "}").encode(), "products/update", "ev-1")),
            (x, x_headers, x_body),
        ):
            response = client.post(f"/v1/ingest/{cid}", content=body, headers=headers)
            assert response.status_code == 400, (cid, response.text[:300])
            assert "nested too deeply" in response.text and "Traceback" not in response.text


def test_a_lone_surrogate_or_nan_in_a_pos_delivery_is_a_400_saying_so(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """h05 D1: the POS sources read their bodies with the `webhook` source's `load_json`: a signed Shopify product
    or X-Series `payload` whose title held `\\ud800` alone answered 500 (its row could not be stored) and the
    vendor retried it. A 400 saying which field holds what, as for NaN, nothing stored."""
    store = make_store(db, "Shop", 52.36, 4.88)
    shopify = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    product = '{"id":7,"title":"Caf\\udce9","variants":[{"id":8,"title":"Default Title","price":"8.50",' \
        '"inventory_item_id":9,"sku":"S1"}]}'  # fmt: skip
    x_body = ("type=product.update&payload=" + quote('{"id":"p1","name":"Caf\\udce9","sku":"X1"}')).encode()
    x_signature = hmac.new(b"x-secret", x_body, hashlib.sha256).hexdigest()
    x_headers = {"Content-Type": "application/x-www-form-urlencoded",
                 "X-Signature": f"signature={x_signature},algorithm=HMAC-SHA256"}  # fmt: skip
    nan = '{"id":7,"title":"T","variants":[{"id":8,"price":NaN,"inventory_item_id":9,"sku":"S1"}]}'
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for cid, headers, body, says in (
            (shopify, *shopify_delivery(product.encode(), "products/update", "ev-1"), "title holds half of a UTF-16"),
            (x, x_headers, x_body, "name holds half of a UTF-16 surrogate pair"),
            (shopify, *shopify_delivery(nan.encode(), "products/update", "ev-2"), "variants[0].price must be a finite"),
        ):
            response = client.post(f"/v1/ingest/{cid}", content=body, headers=headers)
            assert response.status_code == 400 and says in response.json()["error"]["message"], response.text[:300]
    assert db.execute("SELECT count(*) FROM import_batch WHERE store_id = %s", (store,)).fetchone() == (0,)


def _variant(item: int, **fields: object) -> dict[str, object]:
    return {"id": item + 1, "title": "Default Title", "price": "8.50", "inventory_item_id": item, **fields}


def test_malformed_lists_and_objects_of_a_signed_delivery_are_skipped_or_refused(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A signed Shopify product whose `variants` held `null`, `"x"` or `[1, 2]` answered 500 (AttributeError), and a
    `title` sent as a list was stored as its Python repr; an X-Series `inventory.update` whose `product` was text
    answered 500. Entries that are no object are skipped now, a field that is no text refuses its row naming it."""
    store = make_store(db, "Shop", 52.36, 4.88)
    cid = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    product = {"id": 7001, "title": "Mug", "status": "active", "variants": [None, "x", [1, 2], _variant(5001)]}
    listed = {"id": 7002, "title": ["Mug", "Cup"], "status": "active", "variants": [_variant(5002)]}
    x_body = b'type=inventory.update&payload={"product":"abc"}'
    x_signature = hmac.new(b"x-secret", x_body, hashlib.sha256).hexdigest()
    x_headers = {"Content-Type": "application/x-www-form-urlencoded",
                 "X-Signature": f"signature={x_signature},algorithm=HMAC-SHA256"}  # fmt: skip
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, cid, *shopify_delivery(product, "products/update", "ev-1")) == "stored"
        assert deliver(client, cid, *shopify_delivery(listed, "products/update", "ev-2")) == "stored"
        answer = client.post(f"/v1/ingest/{cid}", content=b'{"id":[1]}', headers=shopify_delivery(b'{"id":[1]}',
                             "products/update", "ev-3")[0])  # fmt: skip
        assert answer.status_code == 400 and "id must be a positive integer, not [1]" in answer.text
        assert deliver(client, x, x_headers, x_body) == "stored"
    map_batches(db)
    assert listing(db, store, "5001") == ("8.50", 0, True)
    assert listing(db, store, "5002") is None
    assert rejections(db, cid) == [("5002", 'title must be text or a number, not ["Mug","Cup"]')]


def test_a_delivery_naming_another_vendor_account_is_refused(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A Shopify app's secret signs every shop's deliveries: one from another shop (`X-Shopify-Shop-Domain`) wrote
    that shop's catalogue into this store. It is a 401 naming the header now; so is an Erply event of another
    `clientCode` and an X-Series form of another `domain_prefix`. The connection's own account is taken."""
    store = make_store(db, "Shop", 52.36, 4.88)
    cid = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    erply = make_connection(db, store, "erply", "1", "http://127.0.0.1:9", {"client_code": "123456"}, secret="e-secret")
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    product = {"id": 7001, "title": "Mug", "status": "active", "variants": [_variant(5001)]}
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        other = shopify_delivery(product, "products/update", "ev-1", shop="other.myshopify.com")
        answer = client.post(f"/v1/ingest/{cid}", content=other[1], headers=other[0])
        assert answer.status_code == 401 and "X-Shopify-Shop-Domain" in answer.text, answer.text
        for client_code, expected in (("999", "401"), ("123456", "stored")):
            event = {"id": f"e-{client_code}", "clientCode": client_code, "table": "wm_product", "items": []}
            event["hmac"] = hmac.new(b"e-secret", str(event["id"]).encode(), hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json"}
            assert deliver(client, erply, headers, json.dumps(event).encode()) == expected, client_code
        for prefix, expected in (("other", "401"), ("s", "stored")):
            body = f'domain_prefix={prefix}&type=product.update&payload={{"id":"p1","name":"Mug","price":1}}'.encode()
            signature = hmac.new(b"x-secret", body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Signature": f"signature={signature},algorithm=HMAC-SHA256"}  # fmt: skip
            assert deliver(client, x, headers, body) == expected, prefix
        assert deliver(client, cid, *shopify_delivery(product, "products/update", "ev-2")) == "stored"
    map_batches(db)
    assert listing(db, store, "5001") == ("8.50", 0, True)


def test_a_shopify_record_without_an_id_is_a_400_naming_the_id(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A product with `id: null` answered 400 "unsupported topic 'products/update'", a topic it supports: the
    answer names the missing `id` now, for each topic whose record is named by it."""
    store = make_store(db, "Shop", 52.36, 4.88)
    cid = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for n, topic in enumerate(("products/update", "products/create", "products/delete", "inventory_items/delete")):
            headers, body = shopify_delivery({"id": None, "title": "Mug"}, topic, f"ev-{n}")
            answer = client.post(f"/v1/ingest/{cid}", content=body, headers=headers)
            assert answer.status_code == 400 and "has no `id`" in answer.text, (topic, answer.text)


def test_a_products_body_resent_as_products_delete_is_refused_and_a_delete_never_outruns_its_listing(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """X-Shopify-Topic is not signed: a signed products/update body resent as products/delete deactivated the
    product's listings, its header time capped at the body's own `updated_at` (the listing's stamp, and an equal
    stamp applies), or with no header no time at all. Shopify's products/delete body is `{"id": n}`: a product's
    body is a 400 under it now, and a delete at or before its listing's stamp is stale; one without a header is
    clocked by its receipt."""
    store, cid = shopify_store(db, shopify_fake)
    product = shopify_fake.products["101"]
    stamp = shopify_fake.products["102"]["updated_at"]  # listing 2711's
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for event, at in (("ev-1", _iso(timedelta(0))), ("ev-2", None)):
            headers, body = shopify_delivery(product, "products/delete", event, at)
            answer = client.post(f"/v1/ingest/{cid}", content=body, headers=headers)
            assert answer.status_code == 400 and "a product's body" in answer.text, answer.text
        assert deliver(client, cid, *shopify_delivery({"id": 7881}, "products/delete", "ev-3", stamp)) == "stored"
        assert (
            deliver(client, cid, *shopify_delivery({"id": 2711}, "inventory_items/delete", "ev-4", stamp)) == "stored"
        )
        map_batches(db)
        assert [listing(db, store, sku) for sku in ("2710", "2711")] == [("1.00", 101, True), ("1.00", 102, True)]
        assert deliver(client, cid, *shopify_delivery({"id": 7881}, "products/delete", "ev-5")) == "stored"
    map_batches(db)
    assert listing(db, store, "2711") == ("1.00", 102, False)


def test_a_full_sync_puts_back_a_level_a_resent_disconnect_zeroed_and_a_genuine_disconnect_still_holds(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A signed disconnect body resent with a fresh event id and `X-Shopify-Triggered-At` now zeroed a level the
    vendor still reports, stamped with the resend's time: `sync --full` read the level stamped older, stale, and
    the zero stayed. A full pass's levels are clocked by its start (the vendor's clock, as its cursors are) now:
    they win over what is older than the read. A level the vendor no longer reports stays 0 (nothing read, nothing
    stamped), and a later level applies."""
    store, cid = shopify_store(db, shopify_fake)
    shopify_fake.levels.pop("101")  # 2710 genuinely disconnected from our location
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for n, item in enumerate((2710, 2711)):  # 2711's: a resend, Shopify still reports its level
            gone = {"inventory_item_id": item, "location_id": int(LOCATION)}
            disconnect = shopify_delivery(gone, "inventory_levels/disconnect", f"ev-{n}", _iso(timedelta(0)))
            assert deliver(client, cid, *disconnect) == "stored"
        map_batches(db)
        assert [listing(db, store, sku) for sku in ("2710", "2711")] == [("1.00", 0, True), ("1.00", 0, True)]
        shopify_fake.clock.now = datetime.now(UTC) + timedelta(minutes=2)  # the operator's repair, minutes later
        sync(db, cid, full=True)
        map_batches(db)
        assert [listing(db, store, sku) for sku in ("2710", "2711")] == [("1.00", 0, True), ("1.00", 102, True)]
        level = {"inventory_item_id": 2710, "location_id": int(LOCATION), "available": 5}
        level["updated_at"] = shopify_fake.clock.tick().isoformat()  # connected again
        assert deliver(client, cid, *shopify_delivery(level, "inventory_levels/update", "ev-2")) == "stored"
    map_batches(db)
    assert listing(db, store, "2710") == ("1.00", 5, True)


def test_a_shopify_id_that_is_no_positive_integer_is_refused_and_nothing_is_written_under_it(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """Shopify ids are positive integers: a signed products/update with `"id": "abc"` (a level's
    `inventory_item_id`, a variant's id) was taken as an id, and a listing was written under it. A top-level id
    that is none is a 400 naming it now; a variant's refuses its row naming the field; digits as text still read.
    A full sync's product with such a variant refuses that row too, its other listings kept."""
    store, cid = shopify_store(db, shopify_fake)
    level = {"inventory_item_id": "abc", "location_id": int(LOCATION), "available": 3}
    gone = {"inventory_item_id": -7, "location_id": int(LOCATION)}
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for n, (body, topic, named) in enumerate((
            ({"id": "abc", "title": "Mug", "variants": [_variant(5001)]}, "products/update", "id"),
            ({"id": 0, "title": "Mug", "variants": [_variant(5001)]}, "products/create", "id"),
            ({"id": 1.5}, "products/delete", "id"),
            ({"id": "abc"}, "inventory_items/delete", "id"),
            (level, "inventory_levels/update", "inventory_item_id"),
            (gone, "inventory_levels/disconnect", "inventory_item_id"),
        )):  # fmt: skip
            answer = client.post(f"/v1/ingest/{cid}", content=(sent := shopify_delivery(body, topic, f"ev-{n}"))[1],
                                 headers=sent[0])  # fmt: skip
            assert answer.status_code == 400 and f"{named} must be a positive integer" in answer.text, answer.text
        variants = [_variant(5001), _variant(0, inventory_item_id="abc"), _variant(5003, id="xyz")]
        product = {"id": 7001, "title": "Mug", "status": "active", "variants": variants}
        assert deliver(client, cid, *shopify_delivery(product, "products/update", "ev-9")) == "stored"
        as_text = {
            "id": "7002",
            "title": "Cup",
            "status": "active",
            "variants": [_variant(0, inventory_item_id="5004")],
        }
        assert deliver(client, cid, *shopify_delivery(as_text, "products/update", "ev-10")) == "stored"
    map_batches(db)
    assert listing(db, store, "5001") == ("8.50", 0, True) and listing(db, store, "5004") == ("8.50", 0, True)
    assert listing(db, store, "abc") is None and listing(db, store, "5003") is None
    assert rejections(db, cid) == [
        (None, "variants[].inventory_item_id must be a positive integer, not 'abc'"),
        ("5003", "variants[].id must be a positive integer, not 'xyz'"),
    ]
    shopify_fake.products["102"]["variants"][0]["inventory_item_id"] = "abc"
    sync(db, cid, full=True)
    map_batches(db)
    assert rejections(db, cid)[2:] == [(None, "variants[].inventory_item_id must be a positive integer, not 'abc'")]
    assert listing(db, store, "2710") == ("1.00", 101, True) and listing(db, store, "abc") is None


def test_a_products_body_resent_as_inventory_items_delete_is_refused(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """X-Shopify-Topic is not signed: a product's signed body (`{"id": n, "title": ..., "variants": [...]}`) resent
    as inventory_items/delete deleted the listing whose inventory item id was the product's id. Shopify's body for
    it is an inventory item's (`{"id": n, "sku": ..., "tracked": ...}`): a product's or a variant's is a 400 now,
    and an inventory item's still deletes its listing."""
    store, cid = shopify_store(db, shopify_fake)
    product = {"id": 2711, "title": "Mug", "product_type": "Cups", "variants": [_variant(5001)]}
    variant = _variant(2711, product_id=7881)
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for n, body in enumerate((product, variant, {"id": 2711, "title": "Mug"})):
            headers, raw = shopify_delivery(body, "inventory_items/delete", f"ev-{n}")
            answer = client.post(f"/v1/ingest/{cid}", content=raw, headers=headers)
            assert answer.status_code == 400 and "a product's or variant's body" in answer.text, answer.text
        map_batches(db)
        assert listing(db, store, "2711") == ("1.00", 102, True)
        item = {"id": 2711, "sku": "SKU-102", "tracked": True, "requires_shipping": True}
        assert deliver(client, cid, *shopify_delivery(item, "inventory_items/delete", "ev-9")) == "stored"
    map_batches(db)
    assert listing(db, store, "2711") == ("1.00", 102, False)


def _x_delivery(body: bytes, secret: bytes = b"x-secret") -> dict[str, str]:
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded",
            "X-Signature": f"signature={signature},algorithm=HMAC-SHA256"}  # fmt: skip


def _erply_event(text: str) -> bytes:
    """An Erply event signed as the connection's default (`hmac` of the event id `d1`), `text` spliced in."""
    signature = hmac.new(b"e-secret", b"d1", hashlib.sha256).hexdigest()
    return ('{"id":"d1","hmac":"' + signature + '","table":"wm_product",' + text + "}").encode()


def test_a_vendor_delivery_with_a_key_given_twice_is_a_400_naming_it_and_a_field_vendors_add_is_taken(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """F3-D1: only the `webhook` source refused a key given twice; a signed Shopify product with `"sku":"A","sku":"B"`
    was read as its last (a sender, proxy or log keeping the first saw another SKU), an Erply event and an X-Series
    `payload` (or a form field given twice) alike. Each is a 400 naming the key now, nothing stored; a field a
    vendor added (`new_vendor_field`) is still taken: vendors' shapes are open. h05 D3: a form field given twice
    with one copy empty was taken (the empty copy dropped unread)."""
    store = make_store(db, "Shop", 52.36, 4.88)
    shop = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": SHOP}, secret="app-secret")
    erply = make_connection(db, store, "erply", "1", "http://127.0.0.1:9", {"client_code": "123456"}, secret="e-secret")
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    twice = b'{"id":7,"title":"Mug","variants":[{"id":8,"price":"8.50","inventory_item_id":9,"sku":"A","sku":"B"}]}'
    x_twice = b'type=product.update&payload={"id":"p1","name":"Mug","sku":"A","sku":"B"}'
    x_form = b'type=product.update&type=inventory.update&payload={"id":"p1","name":"Mug","sku":"A"}'
    # h05 D3: an empty copy was dropped before the check: a reader keeping the last payload saw none
    x_blank = b'type=product.update&payload={"id":"p1","name":"Mug","sku":"A"}&payload='
    x_blank_type = b'type=&type=product.update&payload={"id":"p1","name":"Mug","sku":"A"}'
    said = "is given twice"
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for cid, headers, body, field in (
            (shop, *shopify_delivery(twice, "products/update", "ev-1"), "variants[0].sku is given twice"),
            (erply, {"Content-Type": "application/json"}, _erply_event('"items":[{"a":1,"a":2}]'), "items[0].a"),
            (x, _x_delivery(x_twice), x_twice, "the form field `payload` is refused: sku " + said),
            (x, _x_delivery(x_form), x_form, "the form field `type` " + said),
            (x, _x_delivery(x_blank), x_blank, "the form field `payload` " + said),
            (x, _x_delivery(x_blank_type), x_blank_type, "the form field `type` " + said),
        ):
            answer = client.post(f"/v1/ingest/{cid}", content=body, headers=headers)
            assert answer.status_code == 400 and field in answer.json()["error"]["message"], answer.text[:300]
            assert said in answer.json()["error"]["message"], answer.text[:300]
        assert db.execute("SELECT count(*) FROM import_batch WHERE store_id = %s", (store,)).fetchone() == (0,)
        added = {"id": 7, "title": "Mug", "new_vendor_field": 1, "variants": [_variant(9, sku="A")]}
        assert deliver(client, shop, *shopify_delivery(added, "products/update", "ev-2")) == "stored"
        event = _erply_event('"items":[{"a":1}],"new_vendor_field":1')
        assert deliver(client, erply, {"Content-Type": "application/json"}, event) == "stored"


def test_a_malformed_x_series_payload_is_named_as_the_form_field_not_the_body(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """F3-D2: X-Series posts a form whose field `payload` holds the JSON; a malformed one was answered "the form
    field `payload` is refused: the body is not valid JSON", naming a body that is a form. It names the field now."""
    store = make_store(db, "Shop", 52.36, 4.88)
    x = make_connection(db, store, "lightspeed-x", "outlet-1", "http://127.0.0.1:9", {"domain_prefix": "s"}, "x-secret")
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        for body, says in (
            (
                b'type=product.update&payload={"id":"p1",',
                "the form field `payload` is not valid JSON: it ends too early",
            ),
            (b"type=product.update&payload={x}", "the form field `payload` is not valid JSON: object keys must be"),
        ):
            answer = client.post(f"/v1/ingest/{x}", content=body, headers=_x_delivery(body))
            message = answer.json()["error"]["message"]
            assert answer.status_code == 400 and message.startswith(says) and "body" not in message, answer.text


def test_a_shopify_time_in_the_year_1_is_ignored_as_one_that_is_no_time_not_a_500(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A signed delivery whose `X-Shopify-Triggered-At` (unsigned) or body `updated_at` was in the year 1 answered
    500 with a traceback on every topic (`fromtimestamp` of year 0 in UTC, a microsecond before 0001-01-01), and
    Shopify retried it for 48 h. Such a time is ignored now, as one that is not a time: the delivery is clocked by
    the others or by its receipt, and applies."""
    store, cid = shopify_store(db, shopify_fake)
    shopify_fake.add(Item("103", "Item 103", "2.50", 9), product_id=7890, variant_id=6430, inventory_item_id=2712)
    level = {
        "inventory_item_id": 2710,
        "location_id": int(LOCATION),
        "available": 7,
        "updated_at": _iso(timedelta(seconds=-1)),
    }
    zoned, utc = "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        product = shopify_fake.products["103"]
        assert deliver(client, cid, *shopify_delivery(product, "products/update", "ev-1", zoned)) == "stored"
        assert deliver(client, cid, *shopify_delivery(level, "inventory_levels/update", "ev-2", zoned)) == "stored"
        map_batches(db)
        assert [listing(db, store, sku) for sku in ("2710", "2712")] == [("1.00", 7, True), ("2.50", 9, True)]
        item = {"id": 2711, "updated_at": utc}
        assert deliver(client, cid, *shopify_delivery(item, "inventory_items/delete", "ev-3")) == "stored"
        assert deliver(client, cid, *shopify_delivery({"id": 7890}, "products/delete", "ev-4", utc)) == "stored"
    map_batches(db)
    assert [listing(db, store, sku) for sku in ("2711", "2712")] == [("1.00", 102, False), ("2.50", 9, False)]
    assert rejections(db, cid) == []
