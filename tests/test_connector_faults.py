"""Vendor answers that broke a sync for good, found with fake vendors: each must fail one row or one pass, never
block the connection, and never lose changes silently."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from search_service.ingest.connectors.sync import SyncFailed, load_spec, sync_connection
from tests.connector_helpers import (
    BOX,
    FAST,
    SECRET_KEY,
    deliver,
    make_connection,
    make_store,
    map_batches,
    serving_shopify,
    sync,
    webhook_row_statuses,
)
from tests.pos_fakes.server import Reply, Request
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, LightspeedXFake, ShopifyFake
from tests.test_api import app_settings, load_test_encoder, running_client

ITEMS = [Item(f"{n}", f"Item {n}", "1.00", n) for n in range(101, 105)]


def state(db: psycopg.Connection, cid: uuid.UUID) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT cursor, consecutive_failures, last_error FROM ingest_connection WHERE id = %s", (cid,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def raw_rows(db: psycopg.Connection, cid: uuid.UUID) -> dict[str, tuple[str, str | None]]:
    """sku -> (status, error) of the connection's raw upserts, the last one of each sku."""
    rows = db.execute(
        "SELECT r.payload->>'sku', r.status, r.error FROM imported_product_raw r "
        "JOIN import_batch b ON b.id = r.import_batch_id WHERE b.connection_id = %s AND r.payload->>'op' = 'upsert' "
        "ORDER BY b.seq, r.row_number",
        (cid,),
    ).fetchall()
    return {sku: (status, error) for sku, status, error in rows}


def test_a_price_past_what_a_listing_holds_or_negative_rejects_its_row_only(db: psycopg.Connection) -> None:
    """A price of 1e26 raised decimal.InvalidOperation while mapping: a traceback, no failure recorded, the page's
    good items dropped, and every later sync stopped at the same item. A negative price was dropped and rejected as
    "price is required". Now each is that row's rejection, with ingest's reason, and the rest goes through."""
    r_fake, x_fake = LightspeedRFake(), LightspeedXFake()
    r_fake.bucket = (0.0, 100_000)
    try:
        for item in ITEMS:
            r_fake.add(item)
            x_fake.add(item)
        r_fake.items["102"]["Prices"]["ItemPrice"][0]["amount"] = "1e26"
        r_fake.items["103"]["Prices"]["ItemPrice"][0]["amount"] = "-2.50"
        x_fake.products["102"]["price_including_tax"] = 1e26
        store = make_store(db, "S", 52.37, 4.89)
        r_cid = make_connection(db, store, "lightspeed-r", "1", r_fake.server.url,
                                {"account": "4242", "token": "r-token"})  # fmt: skip
        other = make_store(db, "X", 52.36, 4.91)
        x_cid = make_connection(db, other, "lightspeed-x", "outlet-1", x_fake.server.url,
                                {"domain_prefix": "s", "token": "x-token"})  # fmt: skip
        for cid in (r_cid, x_cid):
            sync(db, cid)
            assert state(db, cid)[1:] == (0, None)
        map_batches(db)
        r_rows, x_rows = raw_rows(db, r_cid), raw_rows(db, x_cid)
        too_large = ("rejected", "price must be at most 9999999999.99")
        assert r_rows["102"] == too_large and x_rows["102"] == too_large
        assert r_rows["103"] == ("rejected", "price must not be negative")
        assert {k for k, (status, _) in r_rows.items() if status != "rejected"} == {"101", "104"}
        assert {k for k, (status, _) in x_rows.items() if status != "rejected"} == {"101", "103", "104"}
        listed = db.execute("SELECT store_id, sku FROM store_product").fetchall()
        assert sorted(listed) == sorted([(store, "101"), (store, "104"), (other, "101"), (other, "103"),
                                         (other, "104")])  # fmt: skip
    finally:
        r_fake.server.close()
        x_fake.server.close()


@pytest.fixture
def erply_fake() -> Iterator[ErplyFake]:
    fake = ErplyFake()
    fake.max_page = 7  # 20 products: pages of 7, 7, 6
    for n in range(1, 21):
        fake.add(Item(f"{n}", f"Item {n}", "1.00", n))
    yield fake
    fake.server.close()


def erply_connection(db: psycopg.Connection, fake: ErplyFake, page_size: int = 1000) -> uuid.UUID:
    store = make_store(db, "E", 52.0, 4.0)
    creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
    cid = make_connection(db, store, "erply", "1", fake.server.url, creds)
    db.execute("UPDATE ingest_connection SET config = config || %s::jsonb WHERE id = %s",
               (f'{{"page_size": {page_size}}}', cid))  # fmt: skip
    return cid


def raw_names(db: psycopg.Connection, cid: uuid.UUID) -> set[str]:
    rows = db.execute(
        "SELECT DISTINCT r.payload->>'name' FROM imported_product_raw r "
        "JOIN import_batch b ON b.id = r.import_batch_id WHERE b.connection_id = %s AND r.payload->>'op' = 'upsert'",
        (cid,),
    ).fetchall()
    return {name for (name,) in rows}


def test_erply_an_empty_page_before_records_total_fails_the_pass_and_loses_nothing(
    db: psycopg.Connection, erply_fake: ErplyFake
) -> None:
    """`getProducts` page 2 answered empty once (recordsTotal 20): taken as the pass's end, the sync succeeded and
    moved `since` past the 13 changed products it never read, for good."""
    cid = erply_connection(db, erply_fake)
    sync(db, cid)
    for n in range(1, 21):
        erply_fake.update(f"{n}", name=f"Item {n} (new)")
    answer, glitches = erply_fake.handle, [1]

    def empty_page_two_once(req: Request) -> Reply:
        if req.form.get("request") == "getProducts" and req.form.get("pageNo") == "2" and glitches:
            glitches.pop()
            status = {"request": "getProducts", "errorCode": 0, "recordsTotal": 20, "recordsInResponse": 0}
            return Reply(200, {"status": status, "records": []})
        return answer(req)

    erply_fake.server.handler = empty_page_two_once
    with pytest.raises(SyncFailed, match="getProducts page 2 came back empty before its recordsTotal 20"):
        sync(db, cid)
    cursor, failures, _error = state(db, cid)
    assert failures == 1 and cursor["products"]["page"] == 2  # `since` not moved: page 2 is read again
    sync(db, cid)
    assert {f"Item {n} (new)" for n in range(1, 21)} <= raw_names(db, cid)
    assert state(db, cid)[1] == 0


def test_erply_a_vendor_that_ignores_page_no_stops_at_the_repeated_page(
    db: psycopg.Connection, erply_fake: ErplyFake
) -> None:
    """Every page the same records and no `recordsTotal`: the pass never ended (651 pages in 25 s, each stored). A
    repeat starts the pass again from page 1 once (a set that moved under it); a repeat after that stops it."""
    cid = erply_connection(db, erply_fake, page_size=5)
    answer, asked = erply_fake.handle, [0]

    def ignores_page_no(req: Request) -> Reply:
        if req.form.get("request") != "getProducts":
            return answer(req)
        asked[0] += 1
        if asked[0] > 50:  # the test's own end: the pass before the fix stops here, as a success
            return Reply(200, {"status": {"request": "getProducts", "errorCode": 0}, "records": []})
        reply = answer(Request(req.method, req.path, req.query, {**req.form, "pageNo": "1"}, req.headers, req.body))
        del reply.body["status"]["recordsTotal"]
        return reply

    erply_fake.server.handler = ignores_page_no
    stopped = r"getProducts page 2 repeats page 1 \(pageNo ignored\?\) after the pass started again from page 1"
    with pytest.raises(SyncFailed, match=stopped):
        sync(db, cid)
    assert asked[0] == 4 and state(db, cid)[1] == 1  # pages 1, 2, then 1 and 2 again
    with pytest.raises(SyncFailed, match=stopped):  # resumed: its first page repeats, a fresh start repeats again
        sync(db, cid)
    assert asked[0] == 7


@pytest.fixture
def shopify_fake() -> Iterator[ShopifyFake]:
    yield from serving_shopify(ITEMS)


def shopify_connection(db: psycopg.Connection, fake: ShopifyFake) -> uuid.UUID:
    store = make_store(db, "Shop", 52.36, 4.88)
    creds = {"shop": "gifts.myshopify.com", "token": "shpat_test"}
    cid = make_connection(db, store, "shopify", "24826418", fake.server.url, creds, secret="app-secret")
    db.execute("UPDATE ingest_connection SET config = config || '{\"page_size\": 1}'::jsonb WHERE id = %s", (cid,))
    return cid


def test_shopify_a_refused_next_link_is_never_the_cursor(db: psycopg.Connection, shopify_fake: ShopifyFake) -> None:
    """A `Link` to another host was refused only after its page was yielded with it as the cursor: every later sync
    failed at once (no request) even when the vendor sent right links again; only `sync --full` cleared it."""
    answer, elsewhere = shopify_fake.handle, [True]

    def off_host_link_on_page_two(req: Request) -> Reply:
        reply = answer(req)
        if elsewhere[0] and req.path.endswith("products.json") and "page_info" in req.query and "Link" in reply.headers:
            reply.headers["Link"] = reply.headers["Link"].replace(shopify_fake.server.url, "http://127.0.0.2:9")
        return reply

    shopify_fake.server.handler = off_host_link_on_page_two
    cid = shopify_connection(db, shopify_fake)
    with pytest.raises(SyncFailed, match="outside this connection's base URL"):
        sync(db, cid)
    cursor = state(db, cid)[0]
    assert "127.0.0.2" not in str(cursor) and "next" in cursor["products"]  # at the last good page, page 2
    elsewhere[0] = False  # the vendor is right again
    asked = len(shopify_fake.server.requests)
    sync(db, cid)
    assert len(shopify_fake.server.requests) > asked and state(db, cid)[1] == 0
    map_batches(db)
    assert db.execute("SELECT count(*) FROM store_product").fetchone() == (len(ITEMS),)


def test_x_series_a_queued_stock_read_of_a_product_gone_at_the_vendor_is_dropped(db: psycopg.Connection) -> None:
    """A `product.update` webhook queues its product's inventory read (`repoll_stock`); a product the vendor then
    answers 404 for failed every later sync, and the reads queued behind it never ran."""
    fake = LightspeedXFake()
    try:
        for item in ITEMS:
            fake.add(item)
        answer = fake.handle

        def gone_is_404(req: Request) -> Reply:
            key = req.path.removeprefix("/api/2.0/inventory/")
            if key != req.path and key not in fake.inventory:
                return Reply(404, {"message": "not found"})
            return answer(req)

        fake.server.handler = gone_is_404
        store = make_store(db, "X", 52.36, 4.91)
        cid = make_connection(
            db, store, "lightspeed-x", "outlet-1", fake.server.url, {"domain_prefix": "s", "token": "x-token"}
        )
        sync(db, cid)
        fake.set_stock("101", 3)
        db.execute(
            "UPDATE ingest_connection SET cursor = cursor || %s::jsonb WHERE id = %s",
            ('{"repoll_stock": ["xp-99999", "101"]}', cid),
        )
        sync(db, cid)
        cursor, failures, _error = state(db, cid)
        assert failures == 0 and cursor["repoll_stock"] == []
        asked = [r.path for r in fake.server.requests if r.path.startswith("/api/2.0/inventory/")]
        assert asked == ["/api/2.0/inventory/xp-99999", "/api/2.0/inventory/101"]  # the one behind it ran too
        map_batches(db)
        assert db.execute("SELECT quantity FROM store_product WHERE sku = '101'").fetchone() == (3,)
    finally:
        fake.server.close()


def test_shopify_a_malformed_updated_at_is_ignored_in_the_poll_and_the_webhook(
    db: psycopg.Connection, fresh_db_url: str, shopify_fake: ShopifyFake
) -> None:
    """`updated_at` "not a date", or a zone-less stamp beside a zoned one, raised in `_later`: the poll failed at that
    page for good (the other products, later pages and the stock never read) and the signed webhook answered 500."""
    variant_stamp = shopify_fake.products["102"]["variants"][0]["updated_at"]
    shopify_fake.products["102"]["updated_at"] = "not a date"
    shopify_fake.products["103"]["updated_at"] = "2025-06-18T23:00:00"  # zone-less: UTC, the later
    shopify_fake.products["104"]["variants"][0]["updated_at"] = "not a date either"
    cid = shopify_connection(db, shopify_fake)
    with running_client(app_settings(fresh_db_url, secret_key=SECRET_KEY), load_test_encoder()) as client:
        for n, key in enumerate(("102", "103")):
            body = json.dumps({**shopify_fake.products[key], "title": "Renamed"}).encode()
            digest = base64.b64encode(hmac.new(b"app-secret", body, hashlib.sha256).digest()).decode()
            headers = {"X-Shopify-Topic": "products/update", "X-Shopify-Hmac-Sha256": digest,
                       "X-Shopify-Event-Id": f"ev-{n}", "Content-Type": "application/json"}  # fmt: skip
            assert deliver(client, cid, headers, body) == "stored", key
    sync(db, cid)
    assert state(db, cid)[1] == 0
    stamps = dict(
        db.execute(
            "SELECT r.payload->>'sku', r.payload->>'updated_at' FROM imported_product_raw r "
            "JOIN import_batch b ON b.id = r.import_batch_id "
            "WHERE b.connection_id = %s AND b.kind = 'sync' AND r.payload->>'op' = 'upsert'",
            (cid,),
        ).fetchall()
    )
    assert stamps == {
        "2710": shopify_fake.products["101"]["updated_at"],
        "2711": variant_stamp,
        "2712": "2025-06-18T23:00:00",
        "2713": shopify_fake.products["104"]["updated_at"],
    }
    map_batches(db)
    assert webhook_row_statuses(db, cid) != [] and "rejected" not in webhook_row_statuses(db, cid)


def test_erply_an_http_error_names_the_request_never_the_credentials(
    db: psycopg.Connection, erply_fake: ErplyFake
) -> None:
    """Erply has one endpoint for every call: a 401 on `getProductStock` was recorded as "POST : HTTP 401"."""
    answer = erply_fake.handle
    erply_fake.server.handler = lambda req: (
        Reply(401, {"error": "unauthorized"}) if req.form.get("request") == "getProductStock" else answer(req)
    )
    cid = erply_connection(db, erply_fake)
    with pytest.raises(SyncFailed):
        sync(db, cid)
    error = state(db, cid)[2]
    assert error.startswith("the vendor refused the credentials (POST / (request getProductStock): HTTP 401): ")
    assert not any(secret in error for secret in ("api-pass", "api-user", "session-"))


def test_shopify_a_stamp_years_ahead_never_becomes_the_cursor(
    db: psycopg.Connection, shopify_fake: ShopifyFake
) -> None:
    """One variant stamped 2099 (a vendor's clock): ingest refused the row, but `since` became 2099, so every later
    poll asked Shopify for changes after 2099 and missed them all, silently."""
    shopify_fake.products["103"]["updated_at"] = "2099-01-01T00:00:00Z"
    shopify_fake.products["103"]["variants"][0]["updated_at"] = "2099-01-01T00:00:00Z"
    cid = shopify_connection(db, shopify_fake)
    sync(db, cid)
    cursor = state(db, cid)[0]
    assert cursor["products"]["since"] < "2030", cursor  # the newest plausible stamp: the other products'
    # a cursor stored so before this check is read as none: the next poll reads everything again, once
    db.execute("UPDATE ingest_connection SET cursor = jsonb_set(cursor, '{products,since}', '\"2099-01-01T00:00:00Z\"')"
               " WHERE id = %s", (cid,))  # fmt: skip
    asked = len(shopify_fake.server.requests)
    sync(db, cid)
    products_asked = [r for r in shopify_fake.server.requests[asked:] if r.path.endswith("/products.json")]
    assert products_asked and "updated_at_min" not in products_asked[0].query
    assert state(db, cid)[0]["products"]["since"] < "2030"


@pytest.mark.parametrize("repeat", ["in one page", "on the next page"])
def test_shopify_a_product_read_twice_in_a_pass_is_stored_once(
    db: psycopg.Connection, shopify_fake: ShopifyFake, repeat: str
) -> None:
    """A page holding a product twice, or a page starting with the last one's product (an offset-shifted cursor),
    sent its links twice in one upsert: CardinalityViolation, a traceback, nothing recorded, every poll the same."""
    answer, first = shopify_fake.handle, shopify_fake.products["101"]

    def repeating(req: Request) -> Reply:
        reply = answer(req)
        if req.path.endswith("products.json") and reply.status == 200:
            products = reply.body["products"]
            if repeat == "in one page":
                products.append(dict(products[0]))
            elif "page_info" in req.query:  # the page before's product again (page_size 1)
                products.insert(0, dict(first))
        return reply

    shopify_fake.server.handler = repeating
    cid = shopify_connection(db, shopify_fake)
    quantities = sorted(item.quantity for item in ITEMS)
    for full in (False, True):
        sync(db, cid, full=full)
        assert state(db, cid)[1:] == (0, None)
        map_batches(db)
        # the first sync's levels ride on the products' upserts: the repeat, kept as a later row of the sku, had
        # none (the first copy took it), so the listing was stored at 0 and its level never read again
        stored = db.execute("SELECT quantity FROM store_product WHERE is_active ORDER BY quantity").fetchall()
        assert [q for (q,) in stored] == quantities, full
    links = db.execute("SELECT count(*) FROM ingest_connector_link WHERE connection_id = %s", (cid,)).fetchone()
    assert links == (len(ITEMS),)


def test_a_page_the_database_refuses_fails_the_sync_recorded(db: psycopg.Connection, shopify_fake: ShopifyFake) -> None:
    """A database error storing a page (a refusal like the CardinalityViolation above) escaped as a traceback: the
    failure was never recorded, and `connections list` showed an older one. Now it is the sync's recorded failure."""
    cid = shopify_connection(db, shopify_fake)

    def refusing(conn: Any, spec: Any, page: Any) -> None:
        conn.execute("SELECT 1 / 0")

    with pytest.raises(SyncFailed, match="DivisionByZero: division by zero"):
        sync_connection(db, load_spec(db, BOX, cid), refusing, policy=FAST)
    assert state(db, cid) == (None, 1, "DivisionByZero: division by zero")  # no cursor: its page was not stored


def test_a_vendors_redirect_fails_at_once_naming_its_status_and_target(db: psycopg.Connection) -> None:
    """A 301 or 302 (a base URL or domain that moved, a sign-in page) was read as a malformed JSON page and retried
    5 times ("gave up after 5 attempts: malformed JSON page"), and one with a JSON body as a good, empty page. A
    redirect is not followed (the token would go along): the sync fails at once, naming the status and where it
    points (never its query), and what to check."""
    fake = LightspeedXFake()
    moved = "https://h04shop.retail.lightspeed.app/api/2.0/inventory"
    moves = [
        (Reply(301, b"", {"Location": f"{moved}?token=x"}), moved),
        (Reply(302, b"<html>Please log in</html>", {"Location": "/signin"}), f"{fake.server.url}/signin"),
        (Reply(302, {"data": [], "version": {"min": 0, "max": 0}}, {"Location": "/api/2.1/inventory"}),
         f"{fake.server.url}/api/2.1/inventory"),
    ]  # fmt: skip
    try:
        store = make_store(db, "X", 52.36, 4.91)
        cid = make_connection(
            db, store, "lightspeed-x", "outlet-1", fake.server.url, {"domain_prefix": "s", "token": "x-token"}
        )
        for failures, (reply, where) in enumerate(moves, 1):
            fake.server.handler = functools.partial(lambda answer, _req: answer, reply)
            asked = len(fake.server.requests)
            with pytest.raises(SyncFailed) as failed:
                sync(db, cid)
            said = str(failed.value)
            assert f": HTTP {reply.status} (redirected to {where}): check the connection's --base-url" in said, said
            assert "malformed" not in said and "token=x" not in said
            assert len(fake.server.requests) == asked + 1  # not retried
            assert state(db, cid)[1] == failures and state(db, cid)[0] is None  # no page, no cursor
    finally:
        fake.server.close()
