"""Incremental polls lose no change made while a pass runs: the vendor edits its catalogue between two pages of a
poll (a fake vendor over HTTP changes itself when a given page is asked for), and the next poll must bring the
edit into the store (real PostgreSQL, the import job's mapping)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.connector_helpers import listing, make_connection, make_store, map_batches, serving_shopify, sync
from tests.pos_fakes.server import Reply, Request
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, ShopifyFake

ITEMS = [Item(f"{n}", f"Item {n}", "1.00", n) for n in range(101, 104)]
ERPLY_LOGIN = {"client_code": "123456", "username": "api-user", "password": "api-pass"}


def connection(
    db: psycopg.Connection, source: str, location: str, url: str, creds: dict[str, str]
) -> tuple[uuid.UUID, uuid.UUID]:
    """(store, connection), reading one record a page."""
    store = make_store(db, source, 52.36, 4.88)
    cid = make_connection(db, store, source, location, url, creds, secret="app-secret")
    db.execute("UPDATE ingest_connection SET config = config || '{\"page_size\": 1}'::jsonb WHERE id = %s", (cid,))
    return store, cid


def once_when(server: Any, asked: Callable[[Request], bool], change: Callable[[], None]) -> None:
    """The vendor makes `change` just before it answers the first request `asked` matches."""
    answer, pending = server.handler, [True]

    def handler(req: Request) -> Reply:
        if pending[0] and asked(req):
            pending[0] = False
            change()
        return answer(req)  # type: ignore[no-any-return]

    server.handler = handler


@pytest.fixture
def shopify_fake() -> Iterator[ShopifyFake]:
    yield from serving_shopify(ITEMS)


def _shopify_price(fake: ShopifyFake, key: str, price: str) -> None:
    fake.products[key]["variants"][0]["price"] = price
    fake.update(key)


def test_shopify_a_product_changed_while_a_poll_runs_comes_with_the_next_poll(
    db: psycopg.Connection, shopify_fake: ShopifyFake
) -> None:
    """Shopify pages by id: product 101 (page 1, read) changed at T1, then 103 at T2 before its page 2 was read.
    `since` became T2, the newest stamp read, so every later poll (`updated_at_min=T2`) skipped 101's change."""
    store, cid = connection(db, "shopify", "24826418", shopify_fake.server.url,
                            {"shop": "gifts.myshopify.com", "token": "shpat_test"})  # fmt: skip
    sync(db, cid)
    _shopify_price(shopify_fake, "101", "2.00")
    _shopify_price(shopify_fake, "103", "2.00")

    def while_the_poll_runs() -> None:
        _shopify_price(shopify_fake, "101", "9.99")
        _shopify_price(shopify_fake, "103", "3.00")

    once_when(shopify_fake.server, lambda req: "page_info" in req.query, while_the_poll_runs)
    sync(db, cid)
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "2710") == ("9.99", 101, True)
    assert listing(db, store, "2712") == ("3.00", 103, True)


def test_erply_a_product_deleted_while_a_poll_runs_hides_no_other_change(db: psycopg.Connection) -> None:
    """getProducts pages by number: 102 (page 1, read) deleted before page 2 moved 103 onto page 1, never read,
    and `since` went to the pass's start though `recordsTotal` fell by one: 103's change was lost for good."""
    fake = ErplyFake()
    try:
        for item in ITEMS:
            fake.add(item)
        store, cid = connection(db, "erply", "1", fake.server.url,
                                {"client_code": "123456", "username": "api-user", "password": "api-pass"})  # fmt: skip
        sync(db, cid)
        fake.update("102", priceWithVat=2.0)
        fake.update("103", priceWithVat=3.0)
        fake.tick()  # the poll comes seconds later
        pages_two = lambda req: req.form.get("request") == "getProducts" and req.form.get("pageNo") == "2"  # noqa: E731
        once_when(fake.server, pages_two, lambda: fake.delete("102"))
        sync(db, cid)
        sync(db, cid)
        map_batches(db)
        assert listing(db, store, "103") == ("3.00", 103, True)
        assert (listing(db, store, "102") or ())[2:] == (False,)  # deleted: no longer sellable
    finally:
        fake.server.close()


@pytest.fixture
def erply_fake() -> Iterator[ErplyFake]:
    fake = ErplyFake()
    for item in [*ITEMS, Item("104", "Item 104", "1.00", 104)]:
        fake.add(item)
    yield fake
    fake.server.close()


def _erply_requests(fake: ErplyFake, after: int) -> Counter[str]:
    return Counter(req.form.get("request", "") for req in fake.server.requests[after:])


def test_erply_a_delete_and_an_add_while_a_poll_runs_hide_no_change(
    db: psycopg.Connection, erply_fake: ErplyFake
) -> None:
    """getProducts pages by number: 101 (page 1, read) deleted and 105 added before page 3 left `recordsTotal` as it
    was but moved 103 onto page 2, already read; `since` went to the pass's start, past 103's change, for good. A
    poll with nothing deleted under it costs the requests it did."""
    fake = erply_fake
    store, cid = connection(db, "erply", "1", fake.server.url, ERPLY_LOGIN)
    fake.clock += 120  # the fixture's records changed before the overlap the next poll reads again
    sync(db, cid)
    for key in ("101", "102", "103", "104"):
        fake.update(key, priceWithVat=2.0)
    asked = len(fake.server.requests)
    sync(db, cid)
    assert _erply_requests(fake, asked) == {
        "verifyUser": 1, "getProducts": 4, "getUserOperationsLog": 1, "getProductStock": 1,
    }  # fmt: skip
    for key in ("101", "102", "103", "104"):
        fake.update(key, priceWithVat=3.0)
    fake.tick()

    def delete_and_add() -> None:
        fake.delete("101")
        fake.add(Item("105", "Item 105", "1.00", 105))

    page_three = lambda req: req.form.get("request") == "getProducts" and req.form.get("pageNo") == "3"  # noqa: E731
    once_when(fake.server, page_three, delete_and_add)
    sync(db, cid)
    sync(db, cid)
    map_batches(db)
    assert [listing(db, store, key) for key in ("102", "103", "104", "105")] == [
        ("3.00", 102, True), ("3.00", 103, True), ("3.00", 104, True), ("1.00", 105, True),
    ]  # fmt: skip


def test_erply_a_full_sync_with_a_delete_and_an_add_under_it_hides_no_change(
    db: psycopg.Connection, erply_fake: ErplyFake
) -> None:
    """The same shift under a full pass (no deletions log read after it): 103, never read, went from the store, and
    the pass's start as `since` kept its change out for good; the pass asks the log itself, and keeps `since`."""
    fake = erply_fake
    store, cid = connection(db, "erply", "1", fake.server.url, ERPLY_LOGIN)
    sync(db, cid)
    fake.update("103", priceWithVat=3.0)
    fake.tick()

    def delete_and_add() -> None:
        fake.delete("101")
        fake.add(Item("105", "Item 105", "1.00", 105))

    page_three = lambda req: req.form.get("request") == "getProducts" and req.form.get("pageNo") == "3"  # noqa: E731
    once_when(fake.server, page_three, delete_and_add)
    sync(db, cid, full=True)
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "103") == ("3.00", 103, True)


def _last_read_price(db: psycopg.Connection, connection_id: uuid.UUID, sku: str) -> str | None:
    """The price of the last row of `sku` a sync of the connection read from the vendor (mapped or not)."""
    row = db.execute(
        "SELECT r.payload->>'price' FROM import_batch b JOIN imported_product_raw r ON r.import_batch_id = b.id "
        "WHERE b.connection_id = %s AND r.payload->>'sku' = %s "
        "AND r.payload->>'op' = 'upsert' ORDER BY b.seq DESC, r.row_number DESC LIMIT 1",
        (connection_id, sku),
    ).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("hours", [3, -3])
def test_erply_a_jump_of_the_vendors_clock_loses_no_change(
    db: psycopg.Connection, erply_fake: ErplyFake, hours: int
) -> None:
    """Erply's clock jumps by hours between two polls, then back. Forward, its stamps stay past the `since` the last
    poll took from it (`requestUnixTime`); back, a change is stamped before that `since`, and `changedSince` skipped
    it until the vendor's clock caught up (hours of product and stock changes never read). Stock levels carry no
    clock: they reach the listing. A product row stamped behind what its listing holds is newest wins' to judge."""
    fake = erply_fake
    store, cid = connection(db, "erply", "1", fake.server.url, ERPLY_LOGIN)
    sync(db, cid)
    fake.clock += hours * 3600
    fake.update("101", priceWithVat=9.99)
    fake.set_stock("102", 7)
    sync(db, cid)
    fake.clock -= hours * 3600
    fake.update("103", priceWithVat=3.0)
    fake.set_stock("104", 8)
    sync(db, cid)
    map_batches(db)
    # the prices as the vendor sent them (JSON 3.0): ingest rounds and notes, the raw row keeps what was read
    assert [_last_read_price(db, cid, "101"), _last_read_price(db, cid, "103")] == ["9.99", "3.0"]
    assert [(listing(db, store, key) or ())[1:] for key in ("102", "104")] == [(7, True), (8, True)]


def _r_price(fake: LightspeedRFake, key: str, price: str) -> None:
    fake.items[key]["Prices"]["ItemPrice"][0]["amount"] = price
    fake.update(key)


@pytest.fixture
def r_fake() -> Iterator[LightspeedRFake]:
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    for item in ITEMS:
        fake.add(item)
    yield fake
    fake.server.close()


def r_connection(db: psycopg.Connection, fake: LightspeedRFake) -> tuple[uuid.UUID, uuid.UUID]:
    return connection(db, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})


def test_r_series_an_item_edited_while_a_poll_runs_shifts_no_other_out_of_it(
    db: psycopg.Connection, r_fake: LightspeedRFake
) -> None:
    """Offset pages sorted by timeStamp: 101 (page 1, read) edited moved to the end, 102 moved onto page 1 and the
    next page (offset 1) began at 103; the cursor then became 101's new stamp, past 102's change, for good."""
    fake = r_fake
    store, cid = r_connection(db, fake)
    sync(db, cid)
    for key in ("101", "102", "103"):
        _r_price(fake, key, "2.00")
    items_asked = iter(range(10**6))
    second_items_page = lambda req: req.path.endswith("/Item.json") and next(items_asked) == 1  # noqa: E731
    once_when(fake.server, second_items_page, lambda: _r_price(fake, "101", "9.99"))
    sync(db, cid)
    sync(db, cid)
    map_batches(db)
    assert [listing(db, store, key) for key in ("101", "102", "103")] == [
        ("9.99", 101, True), ("2.00", 102, True), ("2.00", 103, True),
    ]  # fmt: skip


def test_r_series_a_change_stamped_behind_the_newest_read_comes_with_the_next_poll(
    db: psycopg.Connection, r_fake: LightspeedRFake
) -> None:
    """A change committed seconds after a later-stamped one was visible (the vendor's transactions, or its servers'
    clocks, seconds apart) lay behind the newest stamp read: the cursor was that stamp, and `>=` it never read the
    change again."""
    fake = r_fake
    store, cid = r_connection(db, fake)
    sync(db, cid)
    newest = max(fake.items[key]["timeStamp"] for key in ("101", "102", "103"))
    fake.clock.now += timedelta(seconds=10)
    _r_price(fake, "103", "2.00")  # read by the next poll: its stamp the newest
    sync(db, cid)
    behind = (datetime.fromisoformat(fake.items["103"]["timeStamp"]) - timedelta(seconds=3)).isoformat()
    assert behind >= newest  # after what the first poll read, before what the second did
    _r_price(fake, "101", "9.99")
    fake.items["101"]["timeStamp"] = behind
    sync(db, cid)
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "101") == ("9.99", 101, True)


def test_one_record_stamped_an_hour_ahead_hides_no_other_change(db: psycopg.Connection) -> None:
    """R-Series: item 103 stamped an hour ahead (a vendor clock; a day's skew passes) became the cursor, so every
    poll of that hour asked `>=` it and missed the other items' changes. Shopify the same (`updated_at_min`)."""
    r_fake, shop = LightspeedRFake(), ShopifyFake()
    r_fake.bucket = (0.0, 100_000)
    try:
        for n, item in enumerate(ITEMS):
            r_fake.add(item)
            shop.add(item, product_id=7880 + n, variant_id=6420 + n, inventory_item_id=2710 + n)
        r_store, r_cid = connection(db, "lightspeed-r", "1", r_fake.server.url, {"account": "4242", "token": "r-token"})
        s_store, s_cid = connection(db, "shopify", "24826418", shop.server.url,
                                    {"shop": "gifts.myshopify.com", "token": "shpat_test"})  # fmt: skip
        sync(db, r_cid), sync(db, s_cid)
        ahead = (r_fake.clock.tick() + timedelta(hours=1)).isoformat()
        r_fake.items["103"]["timeStamp"] = ahead
        shop.update("103")
        shop.products["103"]["updated_at"] = shop.products["103"]["variants"][0]["updated_at"] = ahead
        sync(db, r_cid), sync(db, s_cid)
        _r_price(r_fake, "101", "9.99")
        _shopify_price(shop, "101", "9.99")
        sync(db, r_cid), sync(db, s_cid)
        map_batches(db)
        assert listing(db, r_store, "101") == ("9.99", 101, True)
        assert listing(db, s_store, "2710") == ("9.99", 101, True)
    finally:
        r_fake.server.close()
        shop.server.close()


def test_erply_asks_the_deletions_log_from_its_cursor_by_added_from(
    db: psycopg.Connection, erply_fake: ErplyFake
) -> None:
    """getUserOperationsLog's filter is `addedFrom` (learn-api.erply.com); the poll sent `addedSince`, which Erply
    ignores: every poll read the store's whole log of deleted items again."""
    fake = erply_fake
    store, cid = connection(db, "erply", "1", fake.server.url, ERPLY_LOGIN)
    sync(db, cid)
    fake.tick()
    fake.delete("102")
    fake.tick()
    sync(db, cid)
    asked = len(fake.server.requests)
    fake.tick()
    sync(db, cid)
    (log_read,) = [r.form for r in fake.server.requests[asked:] if r.form.get("request") == "getUserOperationsLog"]
    assert int(log_read.get("addedFrom") or 0) > 0 and "addedSince" not in log_read, log_read
    map_batches(db)
    assert (listing(db, store, "102") or ())[2:] == (False,)
