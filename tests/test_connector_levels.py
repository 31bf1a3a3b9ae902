"""What a vendor stops reporting, and which of two records is the newer: each checked through a fake vendor over
HTTP, the sync or the real `POST /v1/ingest/{id}`, and the import job's mapping into real PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from search_service.ingest.clocks import LEVEL_ALONE
from search_service.ingest.connectors.sync import SyncFailed
from search_service.ingest.rows import LEVEL_APPLIED, NO_LEVEL
from tests.connector_helpers import (
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
from tests.ingest_helpers import bearer, ingest_settings, serve, store_key
from tests.pos_fakes.server import Reply, Request
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, LightspeedXFake, ShopifyFake
from tests.test_api import app_settings, running_client
from tests.test_connector_cursors import once_when
from tests.test_connector_faults import raw_rows

ITEMS = [Item(f"{n}", f"Item {n}", "1.00", n) for n in range(101, 104)]
LOCATION = "24826418"


def stock_deltas(db: psycopg.Connection, store: uuid.UUID, sku: str) -> list[tuple[int, int]]:
    """(delta, new quantity) of each inventory event of the listing, oldest first."""
    rows = db.execute(
        "SELECT e.delta, e.new_quantity FROM inventory_event e JOIN store_product sp ON sp.id = e.store_product_id "
        "WHERE sp.store_id = %s AND sp.sku = %s ORDER BY e.id",
        (store, sku),
    ).fetchall()
    return [(int(d), int(q)) for d, q in rows]


@pytest.fixture
def shopify_fake() -> Iterator[ShopifyFake]:
    yield from serving_shopify(ITEMS, location=LOCATION)


def _shopify_webhook(body: dict[str, object], topic: str, event: str, at: str) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    digest = base64.b64encode(hmac.new(b"app-secret", raw, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Event-Id": event,
               "X-Shopify-Triggered-At": at, "Content-Type": "application/json"}  # fmt: skip
    return headers, raw


def test_shopify_a_level_no_longer_reported_goes_out_of_stock(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """A level disconnected from our location (the `inventory_levels/disconnect` webhook) left the listing at its
    old quantity, in stock and searchable: the webhook was refused (400, unsupported topic). It now takes the listing
    to 0 with an inventory event; a disconnect at another location, or older than the level, changes nothing. A
    full re-read without the level keeps it (below: one empty stock answer must not empty the store)."""
    store = make_store(db, "Shop", 52.36, 4.88)
    creds = {"shop": "gifts.myshopify.com", "token": "shpat_test"}
    cid = make_connection(db, store, "shopify", LOCATION, shopify_fake.server.url, creds, secret="app-secret")
    sync(db, cid)
    map_batches(db)
    assert [listing(db, store, sku) for sku in ("2710", "2711", "2712")] == [
        ("1.00", 101, True), ("1.00", 102, True), ("1.00", 103, True),
    ]  # fmt: skip
    levels, shopify_fake.levels = shopify_fake.levels, {}  # one empty stock answer: a glitch, a token's scope
    sync(db, cid, full=True)
    map_batches(db)
    shopify_fake.levels = levels
    assert [listing(db, store, sku) for sku in ("2710", "2711")] == [("1.00", 101, True), ("1.00", 102, True)]
    assert stock_deltas(db, store, "2711") == [(102, 102)]  # a full pass that zeroed them stamped the zeros newer
    level = shopify_fake.levels["103"]
    gone = {"inventory_item_id": level["inventory_item_id"], "location_id": int(LOCATION)}
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        elsewhere = _shopify_webhook(
            {**gone, "location_id": 1}, "inventory_levels/disconnect", "ev-1", level["updated_at"]
        )
        assert deliver(client, cid, *elsewhere) == "stored"
        older = _shopify_webhook(gone, "inventory_levels/disconnect", "ev-2", "2025-06-18T00:00:00+00:00")
        assert deliver(client, cid, *older) == "stored"  # before the level's own stamp: stale
        map_batches(db)
        assert listing(db, store, "2712") == ("1.00", 103, True)
        newer = _shopify_webhook(gone, "inventory_levels/disconnect", "ev-3", "2025-06-19T00:00:00+00:00")
        assert deliver(client, cid, *newer) == "stored"
    map_batches(db)
    assert listing(db, store, "2712") == ("1.00", 0, True)
    assert stock_deltas(db, store, "2712") == [(103, 103), (-103, 0)]


def _deletes(db: psycopg.Connection, cid: uuid.UUID) -> list[str]:
    """The skus of the connection's raw delete rows, oldest first."""
    sql = ("SELECT r.payload->>'sku' FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
           "WHERE b.connection_id = %s AND r.payload->>'op' = 'delete' ORDER BY b.seq, r.row_number")  # fmt: skip
    return [sku for (sku,) in db.execute(sql, (cid,))]


def test_shopify_a_variant_gone_from_a_polled_product_is_deleted(
    db: psycopg.Connection, shopify_fake: ShopifyFake
) -> None:
    """A product's record holds its every variant: one deleted at the shop left the product's next record, yet its
    listing stayed on sale with its last level until a `sync --full`. The poll now deletes it, once."""
    mug = shopify_fake.products["101"]
    blue = {**mug["variants"][0], "id": 6499, "title": "Blue", "inventory_item_id": 2799}
    shopify_fake.update("101", variants=[*mug["variants"], blue])
    shopify_fake.levels["101-blue"] = {**shopify_fake.levels["101"], "inventory_item_id": 2799, "available": 13}
    store = make_store(db, "Shop", 52.36, 4.88)
    creds = {"shop": "gifts.myshopify.com", "token": "shpat_test"}
    cid = make_connection(db, store, "shopify", LOCATION, shopify_fake.server.url, creds)
    sync(db, cid)
    map_batches(db)
    assert [listing(db, store, sku) for sku in ("2710", "2799")] == [("1.00", 101, True), ("1.00", 13, True)]
    shopify_fake.update("101", variants=mug["variants"][:1])
    del shopify_fake.levels["101-blue"]
    sync(db, cid)
    map_batches(db)
    assert [listing(db, store, sku) for sku in ("2710", "2799", "2711")] == [
        ("1.00", 101, True), ("1.00", 13, False), ("1.00", 102, True),
    ]  # fmt: skip
    shopify_fake.update("101", title="Mug!")  # a later record of the product: no second delete
    sync(db, cid)
    map_batches(db)
    assert _deletes(db, cid) == ["2799"]


def test_shopify_a_variant_a_products_update_no_longer_holds_is_deleted(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`products/update` carries the product's every variant: one it dropped kept its listing on sale. Its delete
    follows the product's create even when both wait to be mapped; a create replayed later, older, is stale."""
    store = make_store(db, "Shop", 52.36, 4.88)
    cid = make_connection(db, store, "shopify", LOCATION, "http://127.0.0.1:9", {"shop": "s"}, secret="app-secret")
    small = {"id": 2750, "title": "S", "price": "8.50", "inventory_item_id": 2750}
    large = {"id": 2751, "title": "L", "price": "8.50", "inventory_item_id": 2751}
    cap = {"id": 9500, "title": "Cap", "status": "active", "updated_at": "2026-01-05T10:00:00Z"}
    created = _shopify_webhook({**cap, "variants": [small, large]}, "products/create", "ev-1", "2026-01-05T10:00:00Z")
    update = {**cap, "updated_at": "2026-01-05T10:00:02Z", "variants": [small]}
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), None) as client:
        assert deliver(client, cid, *created) == "stored"
        assert deliver(client, cid, *_shopify_webhook(update, "products/update", "ev-2", "2026-01-05T10:00:02Z"))
        map_batches(db)
        assert [listing(db, store, sku) for sku in ("2750", "2751")] == [("8.50", 0, True), ("8.50", 0, False)]
        again = {**update, "title": "Cap!", "updated_at": "2026-01-05T10:00:04Z"}
        assert deliver(client, cid, *_shopify_webhook(again, "products/update", "ev-3", "2026-01-05T10:00:04Z"))
        replayed = _shopify_webhook(
            {**cap, "variants": [small, large]}, "products/create", "ev-4", "2026-01-05T10:00:00Z"
        )
        assert deliver(client, cid, *replayed) == "stored"
    map_batches(db)
    assert [listing(db, store, sku) for sku in ("2750", "2751")] == [("8.50", 0, True), ("8.50", 0, False)]
    assert _deletes(db, cid) == ["2751"] and raw_rows(db, cid)["2751"][0] == "stale"


def test_r_series_more_items_of_one_time_stamp_than_a_page_and_one_edited_mid_pass(db: psycopg.Connection) -> None:
    """Five items share one `timeStamp` (a bulk import), two a page: inside that stamp the pass pages by offset, so
    an item edited while it ran moved to the end and the next item moved onto the page already read."""
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    try:
        keys = [str(n) for n in range(201, 206)]
        for key in keys:
            fake.add(Item(key, f"Item {key}", "1.00", 5))
        stamp = fake.items[keys[0]]["timeStamp"]
        for key in keys:
            fake.items[key]["timeStamp"] = stamp
        fake.clock.now += timedelta(hours=1)  # the first sync runs an hour after the import
        store = make_store(db, "R", 52.36, 4.88)
        cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})
        db.execute("UPDATE ingest_connection SET config = config || '{\"page_size\": 2}'::jsonb WHERE id = %s", (cid,))
        asked = iter(range(10**6))
        third_items_page = lambda req: req.path.endswith("/Item.json") and next(asked) == 2  # noqa: E731
        once_when(fake.server, third_items_page, lambda: fake.update("201", description="Item 201 renamed"))
        sync(db, cid)
        sync(db, cid)
        map_batches(db)
        assert [(listing(db, store, key) or ())[:2] for key in keys] == [("1.00", 5)] * 5
        read = [r.query.get("offset") for r in fake.server.requests if r.path.endswith("/Item.json")]
        assert len(read) < 12, read  # no endless re-reading
    finally:
        fake.server.close()


def test_r_series_an_item_with_no_level_at_our_shop_is_not_noted_quantity_not_given(db: psycopg.Connection) -> None:
    """An item stocked at another shop only, or every item under a wrong location id, was created at 0 with the note
    "quantity not given: …" (meant for a sender that left `quantity` out) on each row: R-Series reports no level
    there, which is no sender's fault, and a wrong location already gets the sync's one warning."""
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    try:
        for item in ITEMS:
            fake.add(item)
        fake.items["103"]["ItemShops"]["ItemShop"][0]["shopID"] = "2"  # stocked at another shop only
        creds = {"account": "4242", "token": "r-token"}
        store, other = make_store(db, "R", 52.36, 4.88), make_store(db, "R99", 52.36, 4.89)
        cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, creds)
        wrong = make_connection(db, other, "lightspeed-r", "99", fake.server.url, creds)
        sync(db, cid)
        assert "no stock levels" in (sync(db, wrong).warning or "")
        map_batches(db)
        assert [listing(db, store, key) for key in ("101", "103")] == [("1.00", 101, True), ("1.00", 0, True)]
        noted = [
            (sku, status, NO_LEVEL in (note or ""))
            for c in (cid, wrong)
            for sku, (status, note) in raw_rows(db, c).items()
        ]
        assert noted == [(key, "mapped", False) for key in ("101", "102", "103")] * 2
    finally:
        fake.server.close()


@pytest.fixture
def x_fake() -> Iterator[LightspeedXFake]:
    fake = LightspeedXFake()
    fake.add(Item("p1", "Oat Drink", "1.00", 5))
    yield fake
    fake.server.close()


def _x_connection(db: psycopg.Connection, fake: LightspeedXFake) -> tuple[uuid.UUID, uuid.UUID]:
    store = make_store(db, "X", 52.36, 4.88)
    creds = {"domain_prefix": "s", "token": "x-token"}
    return store, make_connection(db, store, "lightspeed-x", "outlet-1", fake.server.url, creds)


def test_x_series_two_product_edits_within_one_second_read_out_of_order_end_with_the_newer(
    db: psycopg.Connection, x_fake: LightspeedXFake
) -> None:
    """X-Series stamps edits to the second and numbers every change (`version`): two edits within one second share
    `updated_at`. Products were ordered by `updated_at`, and an equal stamp applies, so the older edit read last
    (here a full re-read answered with it, as a lagging replica would) set the price back. The product's version
    orders the catalogue now: the older edit is stale."""
    store, cid = _x_connection(db, x_fake)
    sync(db, cid)
    map_batches(db)
    x_fake.update("p1", price_including_tax=2.0)
    older = dict(x_fake.products["p1"])
    x_fake.update("p1", price_including_tax=3.0)
    assert older["updated_at"] == x_fake.products["p1"]["updated_at"] and older["version"] < x_fake.version
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "p1") == ("3.00", 5, True)
    x_fake.products["p1"] = older
    sync(db, cid, full=True)
    map_batches(db)
    assert listing(db, store, "p1") == ("3.00", 5, True)
    clocks = "SELECT source_catalog_version, source_version FROM store_product WHERE sku = 'p1'"
    assert db.execute(clocks).fetchone() == (older["version"] + 7, x_fake.inventory["p1"]["version"])


def test_x_series_a_level_read_after_a_newer_product_change_is_not_dropped(
    db: psycopg.Connection, x_fake: LightspeedXFake
) -> None:
    """Products and inventory share one version counter, and a poll reads the products first: a level changed
    before a product edit comes after it with a lower version. Product versions are the catalogue's clock, apart
    from the level's, so the level still applies (kept in one column, it would end stale)."""
    store, cid = _x_connection(db, x_fake)
    sync(db, cid)
    map_batches(db)
    x_fake.set_stock("p1", 9)
    x_fake.update("p1", price_including_tax=2.0)
    assert x_fake.inventory["p1"]["version"] < x_fake.products["p1"]["version"]
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "p1") == ("2.00", 9, True)
    assert stock_deltas(db, store, "p1") == [(5, 5), (4, 9)]
    statuses = db.execute("SELECT DISTINCT status FROM imported_product_raw").fetchall()
    assert statuses == [("mapped",)]


def test_x_series_an_older_vendor_edit_does_not_undo_a_newer_api_write(
    db: psycopg.Connection, x_fake: LightspeedXFake, fresh_db_url: str, tmp_path: Path
) -> None:
    """p1 synced (product version 1007, 18:30:09); edited at the till at 18:30:20 (1021), not read yet; the price set
    through the API at 18:30:30, which carries no product version (the listing kept 1007). The poll compared 1021
    with 1007 alone: the older till edit applied and the listing's clock went back to 18:30:20."""
    store, cid = _x_connection(db, x_fake)
    sync(db, cid)
    map_batches(db)
    x_fake.update("p1", price_including_tax=4.0, updated_at="2025-06-18T18:30:20+00:00")
    body = {"name": "Oat Drink", "price": "7.00", "quantity": 5, "updated_at": "2025-06-18T18:30:30Z"}
    with serve(ingest_settings(fresh_db_url, tmp_path), None) as base:
        key = store_key(db, store, "listings:write")
        put = httpx.put(f"{base}/v1/stores/{store}/listings/p1", json=body, headers=bearer(key))
        assert put.status_code == 200, put.text
    sync(db, cid)
    map_batches(db)
    clock = "SELECT source_updated_at FROM store_product WHERE store_id = %s AND sku = 'p1'"
    assert listing(db, store, "p1") == ("7.00", 5, True)
    assert db.execute(clock, (store,)).fetchone() == (datetime(2025, 6, 18, 18, 30, 30, tzinfo=UTC),)
    x_fake.update("p1", price_including_tax=5.0, updated_at="2025-06-18T18:30:40+00:00")  # newer: applies
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "p1") == ("5.00", 5, True)


def _r_bulk_import(fake: LightspeedRFake, keys: list[str]) -> str:
    """Items (and their ItemShops) all stamped as one bulk import: the stamp."""
    for key in keys:
        fake.add(Item(key, f"Item {key}", "1.00", 5))
    stamp = fake.items[keys[0]]["timeStamp"]
    for key in keys:
        _r_restamp(fake, key, stamp)
    return stamp


def _r_bulk_shop_synced(db: psycopg.Connection, fake: LightspeedRFake) -> tuple[str, uuid.UUID, uuid.UUID]:
    """250 items stamped as one bulk import an hour ago, and a connection that synced them: (stamp, store, id)."""
    stamp = _r_bulk_import(fake, [str(n) for n in range(1001, 1251)])
    fake.clock.now += timedelta(hours=1)
    store = make_store(db, "R", 52.36, 4.88)
    cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})
    sync(db, cid)
    return stamp, store, cid


def _r_restamp(fake: LightspeedRFake, key: str, stamp: str) -> None:
    fake.items[key]["timeStamp"] = stamp
    for shop in fake.items[key]["ItemShops"]["ItemShop"]:
        shop["timeStamp"] = stamp


def test_r_series_a_quiet_poll_reads_no_record_of_a_big_newest_stamp_again(db: psycopg.Connection) -> None:
    """The newest `timeStamp` holds 250 items (a bulk import): the cursor kept that stamp and asked `>=` it, so every
    poll of an idle shop read the stamp whole again (12 requests, 500 raw rows). A quiet poll now asks how many
    records the stamp holds and what is newer; a record written later with that stamp is still read, also when
    another left the stamp (its count unchanged)."""
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    try:
        stamp, store, cid = _r_bulk_shop_synced(db, fake)
        asked = len(fake.server.requests)
        quiet = sync(db, cid)
        assert (len(fake.server.requests) - asked, quiet.read, quiet.rows) == (4, 0, 0)
        for key, quantity in (("1300", 8), ("999", 9)):  # later, with the same stamp: a new id and an older one
            fake.add(Item(key, f"Item {key}", "1.00", quantity))
            _r_restamp(fake, key, stamp)
            sync(db, cid)
        fake.update("1002", description="Item 1002 renamed")  # the stamp's count holds: one left, one came
        fake.add(Item("998", "Item 998", "1.00", 7))
        _r_restamp(fake, "998", stamp)
        sync(db, cid)
        map_batches(db)
        assert [listing(db, store, key) for key in ("1001", "1300", "999", "998")] == [
            ("1.00", 5, True), ("1.00", 8, True), ("1.00", 9, True), ("1.00", 7, True),
        ]  # fmt: skip
    finally:
        fake.server.close()


@pytest.mark.parametrize("page_size", [1, 3])
def test_r_series_a_quiet_poll_with_cursor_pages_reads_nothing_again(db: psycopg.Connection, page_size: int) -> None:
    """With V3 cursor pagination (`@attributes.next`, no `count`) the ids read with the newest stamp were not kept:
    every poll of an idle shop read the records of that stamp again and stored them (an edited item and its
    ItemShops: "synced 3 vendor records into 2 rows" each time). Page size 1: the stamp's two ItemShops are more
    than a page, where offset pages count them first."""
    fake = LightspeedRFake()
    fake.bucket, fake.cursor_pages = (0.0, 100_000), True
    try:
        for n in range(1001, 1011):
            fake.add(Item(str(n), f"Item {n}", "1.00", 5))
        fake.clock.now += timedelta(hours=1)
        store = make_store(db, "R", 52.36, 4.88)
        cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})
        db.execute("UPDATE ingest_connection SET config = config || %s::jsonb WHERE id = %s",
                   (f'{{"page_size": {page_size}}}', cid))  # fmt: skip
        sync(db, cid)
        fake.update("1009", description="Item 1009 renamed")
        fake.set_stock("1003", 7)
        fake.clock.now += timedelta(hours=1)
        changed = sync(db, cid)
        assert changed.rows >= 2
        quiet = sync(db, cid)
        assert (quiet.read, quiet.rows) == (0, 0)
        row = db.execute("SELECT cursor FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
        assert row is not None and row[0]["item_ts_ids"] == ["1009"]
        assert sorted(row[0]["item_shop_ts_ids"]) == ["10030", "10031"]
        fake.add(Item("1300", "Item 1300", "1.00", 8))  # later, with the cursor's stamp: still read
        _r_restamp(fake, "1300", fake.items["1009"]["timeStamp"])
        sync(db, cid)
        map_batches(db)
        assert [listing(db, store, key) for key in ("1003", "1300")] == [("1.00", 7, True), ("1.00", 8, True)]
    finally:
        fake.server.close()


@pytest.mark.parametrize("failing", ["the stamp read again", "a page past the stamp"])
def test_r_series_a_record_that_joins_the_cursors_stamp_is_read_after_a_pass_cut_short(
    db: psycopg.Connection, failing: str
) -> None:
    """250 items at the cursor's stamp S; 1002 edited off it and 1300 written with it (the count holds). The poll went
    past S, saving its cursor after each page, and read S again by id only at its end: that read failing (HTTP 500,
    the sync failed) or a page before it, later polls started past S, and 1300 was never read."""
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    try:
        stamp, store, cid = _r_bulk_shop_synced(db, fake)
        for key in range(2001, 2106) if failing == "a page past the stamp" else ():  # more than a page newer
            fake.add(Item(str(key), f"Item {key}", "1.00", 3))
        fake.update("1002", description="Item 1002 renamed")
        fake.add(Item("1300", "Item 1300", "1.00", 8))
        _r_restamp(fake, "1300", stamp)
        fake.clock.now += timedelta(hours=1)
        answer = fake.server.handler

        def refused(req: Request) -> Reply:
            again = req.query.get("timeStamp") == stamp and req.query.get("offset") == "0"
            later = str(req.query.get("timeStamp")).startswith(">=,")
            if req.path.endswith("/Item.json") and (again if failing == "the stamp read again" else later):
                return Reply(500, {"message": "internal error"})
            return answer(req)  # type: ignore[no-any-return]

        fake.server.handler = refused
        with pytest.raises(SyncFailed):
            sync(db, cid)
        fake.server.handler = answer
        for _ in range(2):
            sync(db, cid)
        map_batches(db)
        assert [listing(db, store, key) for key in ("1300", "1002")] == [("1.00", 8, True), ("1.00", 5, True)]
    finally:
        fake.server.close()


def _vendor(source: str) -> tuple[Any, str, dict[str, str], Callable[[Item], str]]:
    """A fake vendor holding ITEMS: (fake, location, credentials, add: an item in, its listing's sku out)."""
    if source == "shopify":  # listings keyed by inventory item (ITEMS': 2710 + n)
        shop = next(serving_shopify(ITEMS, location=LOCATION))
        ids = {"product_id": 9101, "variant_id": 9201, "inventory_item_id": 9301}
        creds = {"shop": "s.myshopify.com", "token": "shpat_test"}
        return shop, LOCATION, creds, lambda item: shop.add(item, **ids) or "9301"
    fake, location, creds = {
        "lightspeed-r": (LightspeedRFake(), "1", {"account": "4242", "token": "r-token"}),
        "lightspeed-x": (LightspeedXFake(), "outlet-1", {"domain_prefix": "s", "token": "x-token"}),
        "erply": (ErplyFake(), "1", {"client_code": "123456", "username": "api-user", "password": "api-pass"}),
    }[source]
    for item in ITEMS:
        fake.add(item)
    return fake, location, creds, lambda item: fake.add(item) or item.key


@pytest.mark.parametrize("source", ["lightspeed-r", "lightspeed-x", "erply", "shopify"])
def test_a_new_item_a_later_poll_finds_is_created_with_its_level(
    db: psycopg.Connection, fresh_db_url: str, source: str
) -> None:
    """Only a first sync carried each level on its product's upsert: an item new at the vendor that a later poll
    read was created at quantity 0 (`listing.created` at 0, out of stock in search), then its level came as a stock
    row (`stock.back` for an item never out of stock). Every poll carries the levels it reads now."""
    fake, location, creds, add = _vendor(source)
    try:
        store = make_store(db, source, 52.36, 4.88)
        cid = make_connection(db, store, source, location, fake.server.url, creds, secret="app-secret")
        sync(db, cid)
        map_batches(db)
        subscribe(fresh_db_url, store, "http://127.0.0.1:9/hook", ["*"])
        sku = add(Item("301", "Item 301", "1.00", 7))
        fake.set_stock("101", 4)  # an existing listing's level moves in the same poll: a stock row as before
        sync(db, cid)
        map_batches(db)
        events = "SELECT type, payload->'new'->>'quantity' FROM webhook_event WHERE payload->'listing'->>'sku' = %s"
        assert db.execute(events + " ORDER BY id", (sku,)).fetchall() == [("listing.created", "7")]
        assert listing(db, store, sku) == ("1.00", 7, True)
        moved = db.execute(events + " AND type LIKE 'stock.%%'", ("2710" if source == "shopify" else "101",))
        assert moved.fetchall() == [("stock.changed", "4")]
    finally:
        fake.server.close()


@pytest.mark.parametrize("source", ["lightspeed-r", "lightspeed-x", "erply", "shopify"])
def test_a_first_or_full_sync_applies_a_level_whose_product_is_older_than_its_listing(
    db: psycopg.Connection, fresh_db_url: str, tmp_path: Path, source: str
) -> None:
    """A first or full sync carries each level on its product's upsert only. Where the listing was written later
    (the store's own system, a PATCH), the upsert was `stale` and its level went with it; the stock cursor moved
    past it, so no later poll read it again. The level now applies alone, by its own clock."""
    fake, location, creds, _ = _vendor(source)
    sku = "2710" if source == "shopify" else "101"  # ITEMS[0]: 101 in stock
    try:
        store = make_store(db, source, 52.36, 4.88)
        with serve(ingest_settings(fresh_db_url, tmp_path), None) as base:
            url, key = f"{base}/v1/stores/{store}/listings/{sku}", store_key(db, store, "listings:write")
            now = datetime.now(UTC).isoformat()
            put = httpx.put(url, json={"name": "Drink", "price": "2.00", "quantity": 1, "updated_at": now},
                            headers=bearer(key))  # fmt: skip
            assert put.status_code == 200, put.text
            cid = make_connection(db, store, source, location, fake.server.url, creds, secret="app-secret")
            sync(db, cid)
            map_batches(db)
            assert listing(db, store, sku) == ("2.00", 101, True)  # the level, not the catalogue
            patch = {"price": "2.10", "updated_at": datetime.now(UTC).isoformat()}
            assert httpx.patch(url, json=patch, headers=bearer(key)).status_code == 200
        fake.set_stock("101", 42)
        sync(db, cid, full=True)
        map_batches(db)
        assert listing(db, store, sku) == ("2.10", 42, True)
        assert raw_rows(db, cid)[sku] == ("mapped", LEVEL_ALONE)
    finally:
        fake.server.close()


def _reprice(fake: Any, source: str, item: Item, n: int = 0) -> None:
    """The vendor's item again, with its price and level: re-added (Shopify under ITEMS[n]'s ids)."""
    if source == "shopify":
        fake.add(item, product_id=7880 + n, variant_id=6420 + n, inventory_item_id=2710 + n)
    else:
        fake.add(item)


@pytest.mark.parametrize("source", ["lightspeed-r", "lightspeed-x", "erply", "shopify"])
def test_a_full_sync_applies_the_level_of_an_upsert_refused_for_its_price(db: psycopg.Connection, source: str) -> None:
    """A first or full sync sends each level once, on its product's upsert. An upsert refused for another reason
    (a negative price) took its valid level with it: the listing kept its old quantity. The level applies alone
    now, as a later poll's stock row would, and the price is still refused with its reason."""
    fake, location, creds, _ = _vendor(source)
    sku = "2710" if source == "shopify" else "101"
    try:
        fake.set_stock("101", 5)
        store = make_store(db, source, 52.36, 4.88)
        cid = make_connection(db, store, source, location, fake.server.url, creds, secret="app-secret")
        sync(db, cid)
        map_batches(db)
        assert listing(db, store, sku) == ("1.00", 5, True)
        _reprice(fake, source, Item("101", "Item 101", "-1.00", 9))
        sync(db, cid, full=True)
        map_batches(db)
        assert listing(db, store, sku) == ("1.00", 9, True)
        status, error = raw_rows(db, cid)[sku]
        assert (status, error) == ("rejected", "price must not be negative; its stock level applied alone (the "
                                               "vendor's level is valid on its own)")  # fmt: skip
        assert stock_deltas(db, store, sku)[-1] == (4, 9)
    finally:
        fake.server.close()


@pytest.mark.parametrize("source", ["lightspeed-r", "lightspeed-x", "erply", "shopify"])
def test_a_full_sync_applies_the_level_of_an_upsert_refused_for_a_gtin_another_listing_holds(
    db: psycopg.Connection, source: str
) -> None:
    """An upsert refused when mapped (its GTIN names the product the store lists under another SKU) lost the level
    it carried, as one refused for its price did: the listing kept its old quantity. Its level applies alone too."""
    fake, location, creds, _ = _vendor(source)
    sku, other = ("2710", "2711") if source == "shopify" else ("101", "102")
    try:
        _reprice(fake, source, Item("102", "Item 102", "1.00", 102, barcode="4000000003021"), n=1)
        store = make_store(db, source, 52.36, 4.88)
        cid = make_connection(db, store, source, location, fake.server.url, creds, secret="app-secret")
        sync(db, cid)
        map_batches(db)
        assert listing(db, store, sku) == ("1.00", 101, True)
        _reprice(fake, source, Item("101", "Item 101", "1.00", 9, barcode="4000000003021"))
        sync(db, cid, full=True)
        map_batches(db)
        assert listing(db, store, sku) == ("1.00", 9, True) and listing(db, store, other) == ("1.00", 102, True)
        refused = f"gtin 04000000003021: this store already lists its product as sku {other!r}"
        assert raw_rows(db, cid)[sku] == ("rejected", refused + LEVEL_APPLIED)
        assert stock_deltas(db, store, sku)[-1] == (-92, 9)
    finally:
        fake.server.close()


def test_a_full_sync_applies_the_level_of_an_upsert_the_database_refuses(db: psycopg.Connection) -> None:
    """An upsert whose values the database refuses (here a check the test adds on its price) is rejected alone; the
    level it carried went with it. Its level applies alone, as for a row refused in validation."""
    fake, location, creds, _ = _vendor("lightspeed-x")
    try:
        store = make_store(db, "x", 52.36, 4.88)
        cid = make_connection(db, store, "lightspeed-x", location, fake.server.url, creds)
        sync(db, cid)
        map_batches(db)
        db.execute("ALTER TABLE store_product ADD CONSTRAINT no_three CHECK (price <> 3)")
        fake.add(Item("101", "Item 101", "3.00", 9))
        sync(db, cid, full=True)
        map_batches(db)
        assert listing(db, store, "101") == ("1.00", 9, True) and listing(db, store, "102") == ("1.00", 102, True)
        status, error = raw_rows(db, cid)["101"]
        assert status == "rejected" and "no_three" in (error or "") and (error or "").endswith(LEVEL_APPLIED), error
    finally:
        fake.server.close()


def test_shopify_a_refused_variant_gets_no_delete(db: psycopg.Connection, shopify_fake: ShopifyFake) -> None:
    """A variant whose row is refused (a price that is no number) is never listed. Once it left its product's
    record, every later record of the product added a `delete` row for it, each `stale` (no listing). It gets
    none now, in the record or gone from it; the listed variant beside it is untouched."""
    mug = shopify_fake.products["101"]
    blue = {**mug["variants"][0], "id": 6499, "title": "Blue", "inventory_item_id": 2799, "price": "abc"}
    shopify_fake.update("101", variants=[*mug["variants"], blue])
    store = make_store(db, "Shop", 52.36, 4.88)
    cid = make_connection(db, store, "shopify", LOCATION, shopify_fake.server.url, {"shop": "gifts.myshopify.com",
                                                                                    "token": "shpat_test"})  # fmt: skip
    for change in ({}, {"title": "Mug!"}, {"variants": mug["variants"][:1]}, {"title": "Mug!!"}):
        shopify_fake.update("101", **change)
        sync(db, cid)
        map_batches(db)
    assert raw_rows(db, cid)["2799"][0] == "rejected" and listing(db, store, "2799") is None
    assert _deletes(db, cid) == [] and listing(db, store, "2710") == ("1.00", 101, True)
