"""The vendor clients against local fake vendor servers: cursors, pages, rate limits, errors, a flaky server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from search_service.ingest.connectors import erply
from search_service.ingest.connectors.common import (
    PASS_OVERLAP_S,
    Connector,
    Cursor,
    HeldLevels,
    MapContext,
    Page,
    Row,
)
from search_service.ingest.connectors.erply import Erply
from search_service.ingest.connectors.http import RateLimited, RetryPolicy, VendorError
from search_service.ingest.connectors.lightspeed_r import LightspeedR
from search_service.ingest.connectors.lightspeed_x import LightspeedX
from search_service.ingest.connectors.shopify import Shopify
from search_service.ingest.connectors.vendor_clocks import stock_clock
from tests.pos_fakes.server import Flaky
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, LightspeedXFake, ShopifyFake

FAST = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=5.0, timeout_s=0.3)
ITEMS = [
    Item("101", "Barista Oat Drink 1L", "3.49", 24, "5901234123457"),
    Item("102", "Oat Cream 250ml", "1.99", 0, ""),
    Item("103", "Almond Drink 1L", "2.79", 5, "1234_pink"),
]


def collect(connector: Connector, cursor: Cursor, *, full: bool = False) -> tuple[list[Row], Cursor]:
    rows: list[Row] = []
    for page in connector.pages(cursor, full=full):
        rows += page.rows
        cursor = page.cursor
    return rows, cursor


def by_op(rows: list[Row], op: str) -> dict[str, Row]:
    return {r["sku"]: r for r in rows if r["op"] == op}


@pytest.fixture(params=[False, True], ids=["steady", "flaky"])
def flaky(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _fake(fake: Any, flaky: bool) -> Iterator[Any]:
    for item in ITEMS:
        fake.add(item)
    if flaky:
        fake.server.flaky.every = 2
    yield fake
    fake.server.close()


@pytest.fixture
def r_fake(flaky: bool) -> Iterator[LightspeedRFake]:
    for fake in _fake(LightspeedRFake(), flaky):
        fake.clock.now += timedelta(minutes=2)  # the catalogue stamped before a poll's overlap (PASS_OVERLAP_S)
        yield fake


def test_r_series_reads_items_and_item_shops_by_timestamp(r_fake: LightspeedRFake, flaky: bool) -> None:
    client = LightspeedR(
        account_id="4242", token="r-token", ctx=MapContext("1"), base_url=r_fake.server.url, policy=FAST, page_size=2
    )
    rows, cursor = collect(client, {})
    upserts, stock = by_op(rows, "upsert"), by_op(rows, "stock")
    assert set(upserts) == {"101", "102", "103"} and upserts["101"]["price"] == "3.49"
    assert {k: r["quantity"] for k, r in upserts.items()} == {"101": 24, "102": 0, "103": 5}  # no summary rows
    shop_clock = {k: stock_clock(i["ItemShops"]["ItemShop"][0]["timeStamp"]) for k, i in r_fake.items.items()}
    assert {k: r["version"] for k, r in upserts.items()} == shop_clock  # the level's own clock: newest wins
    assert not stock and cursor["item_shop_ts"]  # the ItemShop pass only repeated the levels the items carried
    r_fake.set_stock("102", -4)
    rows, cursor = collect(client, cursor)
    assert by_op(rows, "upsert").keys() <= {"103"}  # `>=` re-reads the last second only
    assert by_op(rows, "stock")["102"]["quantity"] == 0
    r_fake.update("101", archived="true")
    rows, _ = collect(client, cursor)
    assert by_op(rows, "upsert")["101"]["is_active"] is False
    assert client.http.pacer is not None and client.http.pacer.size == 60
    assert bool(r_fake.server.flaky.injected) == flaky


@pytest.fixture
def x_fake(flaky: bool) -> Iterator[LightspeedXFake]:
    yield from _fake(LightspeedXFake(), flaky)


def test_x_series_versions_legacy_level_names_and_http_date_retry_after(x_fake: LightspeedXFake) -> None:
    client = LightspeedX(
        domain_prefix="shop",
        token="x-token",
        ctx=MapContext("outlet-1"),
        base_url=x_fake.server.url,
        policy=FAST,
        page_size=2,
    )
    rows, cursor = collect(client, {})
    assert set(by_op(rows, "upsert")) == {"101", "102", "103"} and cursor["inventory"] == x_fake.version
    x_fake.add(Item("104", "Soy Drink", "1.49", 9), level_name="current_amount")
    x_fake.throttle_next = 1  # 429 with an HTTP-date Retry-After one second ahead
    rows, cursor = collect(client, cursor)
    assert set(by_op(rows, "upsert")) == {"104"} and by_op(rows, "stock")["104"]["quantity"] == 9
    x_fake.update("103", deleted_at="2025-06-19T10:00:00+00:00")
    rows, cursor = collect(client, {**cursor, "repoll_stock": ["101"]})
    assert set(by_op(rows, "delete")) == {"103"} and by_op(rows, "stock")["101"]["quantity"] == 24
    assert cursor["repoll_stock"] == []


@pytest.fixture
def erply_fake(flaky: bool) -> Iterator[ErplyFake]:
    fake = ErplyFake()
    fake.add(ITEMS[0], as_strings=True)
    for item in ITEMS[1:]:
        fake.add(item)
    if flaky:
        fake.server.flaky.every = 2
    yield fake
    fake.server.close()


def _erply(fake: ErplyFake, warehouse: str = "1", **kw: Any) -> Erply:
    return Erply(
        client_code="123456",
        username="api-user",
        password="api-pass",
        ctx=MapContext(warehouse),
        base_url=fake.server.url + "/api/",
        **{"page_size": 2, "policy": FAST, **kw},
    )


def test_erply_pages_string_numbers_request_warehouse_deletions(erply_fake: ErplyFake) -> None:
    rows, cursor = collect(_erply(erply_fake), {})
    assert by_op(rows, "upsert")["101"]["price"] == "3.49"
    assert {k: r["quantity"] for k, r in by_op(rows, "upsert").items()} == {"101": 24, "102": 0, "103": 5}
    rows2, _ = collect(_erply(erply_fake, "2"), {})
    assert by_op(rows2, "upsert")["101"]["quantity"] == 124  # the warehouse asked for, not a record field
    erply_fake.set_stock("101", 3)
    erply_fake.delete("102")
    erply_fake.update("103", name="Almond Drink 1L (new)")
    rows, cursor = collect(_erply(erply_fake), cursor)
    assert by_op(rows, "stock")["101"]["quantity"] == 3 and set(by_op(rows, "delete")) == {"102"}
    upsert, stock = by_op(rows, "upsert")["103"], by_op(rows, "stock")["103"]  # read again (the cursor's overlap)
    assert upsert["quantity"] == stock["quantity"] == 5  # a later poll carries it too, and sends it as a stock row


def test_erply_quota_error_1002_is_not_slept_in_place_and_expired_session_logs_in_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(erply, "seconds_to_next_hour", lambda now=None: 1800.0)  # not seconds before the hour
    fake = ErplyFake()
    try:
        fake.add(ITEMS[0])
        fake.quota_errors = 1
        with pytest.raises(RateLimited) as info:
            collect(_erply(fake), {})
        assert info.value.wait_s > 0
        client = _erply(fake, session_key="stale-key")
        rows, _ = collect(client, {})
        assert "101" in by_op(rows, "upsert") and client.session_key in fake.sessions
        with pytest.raises(VendorError):
            collect(
                Erply(
                    client_code="123456",
                    session_key="stale",
                    ctx=MapContext("1"),
                    base_url=fake.server.url,
                    policy=FAST,
                ),
                {},
            )
    finally:
        fake.server.close()


def test_erply_quota_used_up_again_after_the_hour_turned_gives_up_with_the_new_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seconds before the hour the client waits for it in place; when the new hour's quota is used up too, it gives
    up with the vendor's new wait (RateLimited), so the job waits for that instead of polling again at once. Ran
    without a clock of its own, the sync test of this failed in the last seconds of an hour."""
    waits = iter([0.05, 1800.0])
    monkeypatch.setattr(erply, "seconds_to_next_hour", lambda now=None: next(waits))
    fake = ErplyFake()
    try:
        fake.add(ITEMS[0])
        fake.quota_errors = 10**6
        last_try_asks = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=5.0, timeout_s=0.3)
        with pytest.raises(RateLimited) as info:
            collect(_erply(fake, policy=last_try_asks), {})
        assert info.value.wait_s == 1800.0 and "gave up after 2 attempts" in str(info.value)
        assert str(info.value).startswith("POST /api/ (request verifyUser): ")  # it said "POST : " (Erply's one path)
        assert fake.quota_errors == 10**6 - 2  # two calls: waited 0.05 s in place between them, not 1800
    finally:
        fake.server.close()


def test_erply_429_without_retry_after_waits_out_its_10_s_ip_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 150 requests in 30 s Erply blocks the IP for 10 s, a 429 without Retry-After. The client's backoffs
    (0.5 s to 4 s, 7.5 s in all) ended inside the block: every sync gave up on it. Such a 429 now waits the block,
    in place up to the policy's longest wait, else given up at once with it as the vendor's asked wait (recorded,
    as error 1002's); a give-up says how long it waited."""
    fake = ErplyFake()
    try:
        fake.add(ITEMS[0])
        fake.ip_blocked = 1
        waits_5_s = RetryPolicy(attempts=5, base_delay_s=0.01, max_delay_s=5.0, timeout_s=0.3)
        with pytest.raises(RateLimited) as info:
            collect(_erply(fake, policy=waits_5_s), {})
        assert info.value.wait_s == erply.IP_BLOCK_S == 10.0 and "10 s block" in str(info.value)
        monkeypatch.setattr(erply, "IP_BLOCK_S", 0.3)  # the same path, without 10 s of test time
        fake.ip_blocked, started = 2, time.monotonic()
        rows, _ = collect(_erply(fake), {})
        assert "101" in by_op(rows, "upsert") and time.monotonic() - started >= 0.6
        fake.ip_blocked = 10**6
        with pytest.raises(RateLimited) as info:
            collect(_erply(fake, policy=RetryPolicy(attempts=3, max_delay_s=5.0, timeout_s=0.3)), {})
        assert info.value.wait_s == 0.3
        assert str(info.value) == (
            "POST /api/ (request verifyUser): gave up after 3 attempts (0.6 s waited): "
            "HTTP 429 without Retry-After: the vendor's documented 0.3 s block"
        )
    finally:
        fake.server.close()


@pytest.fixture
def shopify_fake(flaky: bool) -> Iterator[ShopifyFake]:
    fake = ShopifyFake()
    for n, item in enumerate(ITEMS):
        fake.add(
            item,
            product_id=788032119674292922 + n,
            variant_id=642667041472713922 + n,
            inventory_item_id=271878346596884015 + n,
        )
    if flaky:
        fake.server.flaky.every = 2
    yield fake
    fake.server.close()


def test_shopify_reconciliation_poll_follows_link_pages(shopify_fake: ShopifyFake) -> None:
    client = Shopify(
        shop="s.myshopify.com",
        token="shpat_test",
        ctx=MapContext("24826418"),
        base_url=shopify_fake.server.url,
        policy=FAST,
        page_size=2,
    )
    first = list(client.pages({}))
    rows = [r for p in first for r in p.rows]
    assert len(by_op(rows, "upsert")) == 3 and by_op(rows, "upsert")["271878346596884015"]["quantity"] == 24
    assert "next" in first[0].cursor["products"]  # mid-pass, the page link is the cursor
    cursor = first[-1].cursor
    shopify_fake.set_stock("102", None)
    rows, _ = collect(client, cursor)
    assert by_op(rows, "stock")["271878346596884016"]["quantity"] == 0


def test_an_error_on_a_next_page_names_its_path_only_as_on_a_first_page() -> None:
    """A next page that failed was named by the vendor's whole link (`GET http://host/admin/…?limit=250&page_info=…`)
    against the rule that an error names a request by its path, never its host or query (a vendor's link can carry
    anything it puts in it); a first page read `GET /admin/…`. Both now read the same."""
    fake = ShopifyFake()
    for n, item in enumerate(ITEMS):
        fake.add(item, product_id=7880 + n, variant_id=6420 + n, inventory_item_id=2710 + n)
    once = RetryPolicy(attempts=1, base_delay_s=0.01, max_delay_s=1.0, timeout_s=0.5)
    ctx, creds = MapContext("24826418"), {"shop": "s.myshopify.com", "token": "shpat_test"}
    errors = []
    try:
        for every in (1, 2):  # the first page fails, then the second
            fake.server.flaky = Flaky(every=every, faults=("500",))
            with pytest.raises(VendorError) as info:
                collect(Shopify(**creds, ctx=ctx, base_url=fake.server.url, policy=once, page_size=1), {})
            errors.append(str(info.value))
    finally:
        fake.server.close()
    assert errors == ["GET /admin/api/2024-07/inventory_levels.json: gave up after 1 attempts: HTTP 500"] * 2


def test_a_sync_cut_after_any_page_resumes_from_that_page_losing_nothing(r_fake: LightspeedRFake) -> None:
    client = LightspeedR(
        account_id="4242", token="r-token", ctx=MapContext("1"), base_url=r_fake.server.url, policy=FAST, page_size=1
    )
    r_fake.bucket = (0.0, 100_000)  # many requests; the pacing has its own test
    total_pages = len(list(client.pages({})))
    for cut in range(1, total_pages):
        seen: set[tuple[str, str]] = set()
        levels: dict[str, int] = {}
        pages = client.pages({})
        cursor: Cursor = {}
        for _ in range(cut):  # these pages were stored, then the sync died
            page = next(pages)
            seen |= {(r["op"], r["sku"]) for r in page.rows}
            _levels(page.rows, levels)
            cursor = page.cursor
        rows, _ = collect(client, cursor)
        seen |= {(r["op"], r["sku"]) for r in rows}
        assert {s for op, s in seen if op == "upsert"} == {"101", "102", "103"}, cut
        assert _levels(rows, levels) == {"101": 24, "102": 0, "103": 5}, cut


def test_r_series_first_sync_keeps_a_level_that_moved_after_its_item_was_read(r_fake: LightspeedRFake) -> None:
    client = LightspeedR(
        account_id="4242", token="r-token", ctx=MapContext("1"), base_url=r_fake.server.url, policy=FAST, page_size=1
    )
    r_fake.bucket = (0.0, 100_000)
    walk, rows = client.pages({}), []
    while len(by_op(rows, "upsert")) < 3:  # the Item pages (one item each, or none: a boundary item read again)
        rows += next(walk).rows
    assert {k: r["quantity"] for k, r in by_op(rows, "upsert").items()} == {"101": 24, "102": 0, "103": 5}
    r_fake.set_stock("101", 9)  # a sale before the ItemShop pass
    rows = [r for page in walk for r in page.rows]
    assert {k: r["quantity"] for k, r in by_op(rows, "stock").items()} == {"101": 9}  # not a repeat: kept


def _levels(rows: list[Row], levels: dict[str, int]) -> dict[str, int]:
    """The stock each SKU ends with once `rows` are mapped in order (an upsert without a level keeps it, new: 0)."""
    for row in rows:
        if row["op"] == "stock" or "quantity" in row:
            levels[row["sku"]] = row["quantity"]
        elif row["op"] == "upsert":
            levels.setdefault(row["sku"], 0)
    return levels


def assert_first_sync_folds(client: Connector, expected: dict[str, int], orphan: str) -> None:
    """A first sync: each product's upsert carries its level, no stock row repeats it, the level without a product
    (`orphan`) comes as a stock row; a first sync cut after any page resumes from that page losing no level."""
    pages = list(client.pages({}))
    rows = [r for p in pages for r in p.rows]
    upserts, stock = by_op(rows, "upsert"), by_op(rows, "stock")
    assert {k: r["quantity"] for k, r in upserts.items()} == {k: q for k, q in expected.items() if k != orphan}
    assert set(stock) == {orphan} and stock[orphan]["quantity"] == expected[orphan]
    assert pages[-1].kind == "stock" and all(p.kind == "catalog" for p in pages[:-1])
    stock_key = next(k for k in pages[-1].cursor if k not in pages[-2].cursor)  # saved with the leftover only
    for cut in range(1, len(pages)):
        walk, levels, cursor = client.pages({}), {}, {}
        for _ in range(cut):  # these pages were stored, then the sync died
            page = next(walk)
            _levels(page.rows, levels)
            cursor = page.cursor
        assert stock_key not in cursor
        rows, _ = collect(client, cursor)
        assert _levels(rows, levels) == expected, cut


def test_erply_first_sync_carries_each_level_on_its_product(erply_fake: ErplyFake) -> None:
    erply_fake.stock[("1", "999")] = {"productID": 999, "amountInStock": 4, "amountReserved": 0, "changed": 1}
    assert_first_sync_folds(_erply(erply_fake, page_size=1), {"101": 24, "102": 0, "103": 5, "999": 4}, "999")
    rows, _ = collect(_erply(erply_fake), {}, full=True)  # a full sync folds too
    assert by_op(rows, "upsert")["101"]["quantity"] == 24 and set(by_op(rows, "stock")) == {"999"}


def test_erply_first_sync_stock_changed_during_it_comes_on_the_next_poll(erply_fake: ErplyFake) -> None:
    client = _erply(erply_fake)
    walk = client.pages({})
    first = next(walk)  # the stock was read ahead, then the first product page
    assert by_op(first.rows, "upsert")["101"]["quantity"] == 24
    erply_fake.set_stock("101", 7)  # a sale while the products are read
    cursor = [p.cursor for p in walk][-1]
    rows, _ = collect(client, cursor)
    assert by_op(rows, "stock")["101"]["quantity"] == 7  # `changedSince` the stock read's start, not the end


def test_shopify_first_sync_carries_each_level_and_its_clock_on_its_variant(shopify_fake: ShopifyFake) -> None:
    client = Shopify(
        shop="s.myshopify.com", token="shpat_test", ctx=MapContext("24826418"), base_url=shopify_fake.server.url,
        policy=FAST, page_size=1,
    )  # fmt: skip
    orphan = {
        "inventory_item_id": 999,
        "location_id": 24826418,
        "available": 4,
        "updated_at": "2025-06-18T18:00:00+00:00",
    }
    shopify_fake.levels["999"] = orphan
    expected = {str(lv["inventory_item_id"]): lv["available"] for lv in shopify_fake.levels.values()}
    assert_first_sync_folds(client, expected, "999")
    rows, cursor = collect(client, {})
    for key, level in shopify_fake.levels.items():  # newest wins by the stock clock, as a stock row carries it
        if key != "999":  # read after its second (the answer's Date): after every delivery of that second
            after = 999 if datetime.fromisoformat(level["updated_at"]) < shopify_fake.clock.now else 0
            version = by_op(rows, "upsert")[str(level["inventory_item_id"])]["version"]
            assert version == stock_clock(level["updated_at"]) + after
    started = shopify_fake.clock.now - timedelta(seconds=PASS_OVERLAP_S)  # the vendor's Date, less the overlap
    assert cursor["inventory"] == {"since": started.isoformat()}  # no later than the pass's start
    shopify_fake.update("101", title="Barista Oat Drink 1 L")
    rows, _ = collect(client, cursor)  # a later poll: the levels it reads on the products, and as stock rows
    upsert, stock = by_op(rows, "upsert")["271878346596884015"], by_op(rows, "stock")["271878346596884015"]
    assert upsert["quantity"] == stock["quantity"] and upsert["version"] == stock["version"]


def test_x_series_first_sync_cut_after_any_page_loses_no_level(x_fake: LightspeedXFake) -> None:
    client = LightspeedX(
        domain_prefix="shop", token="x-token", ctx=MapContext("outlet-1"), base_url=x_fake.server.url, policy=FAST,
        page_size=1,
    )  # fmt: skip
    x_fake.inventory["999"] = {"id": "inv-999", "outlet_id": "outlet-1", "product_id": "999",
                               "inventory_level": 4, "version": 5000}  # fmt: skip  # a level without a product
    assert_first_sync_folds(client, {"101": 24, "102": 0, "103": 5, "999": 4}, "999")
    rows, cursor = collect(client, {})
    upserts = by_op(rows, "upsert")
    assert all(r["version"] == x_fake.inventory[k]["version"] for k, r in upserts.items())  # newest wins by it
    assert cursor["inventory"] == 5000


def test_the_leaky_bucket_headers_pace_the_next_request() -> None:
    from search_service.ingest.connectors.http import BucketPacer

    pacer = BucketPacer("X-LS-API-Bucket-Level", "X-LS-API-Drip-Rate")
    pacer.observe({"X-LS-API-Bucket-Level": "10/60", "X-LS-API-Drip-Rate": "2"})
    assert pacer.wait_s() == 0.0
    pacer.observe({"X-LS-API-Bucket-Level": "60/60", "X-LS-API-Drip-Rate": "2"})
    assert 0.9 <= pacer.wait_s() <= 1.0  # two units over at 2 a second


def test_held_levels_past_the_cap_are_not_held() -> None:
    def stock_pages() -> Iterator[Page]:
        for n in range(3):
            yield Page("stock", [{"op": "stock", "sku": str(n), "quantity": n}], {"inventory": n + 1}, 2)

    assert HeldLevels.read_ahead(stock_pages(), "inventory", cap=2) is None  # the sync reads them after the products
    held = HeldLevels.read_ahead(stock_pages(), "inventory", cap=3)
    assert held is not None and (held.read, held.end, len(held.levels)) == (6, 3, 3)
    upsert = held.with_level({"op": "upsert", "sku": "1", "name": "x"})
    assert upsert["quantity"] == 1  # and a second copy of the product carries it too (a vendor sent it twice)
    assert held.with_level({"op": "upsert", "sku": "1", "name": "x again"})["quantity"] == 1
    leftover = held.leftover({"products": 9})
    assert [r["sku"] for r in leftover.rows] == ["0", "2"]  # taken: the leftover page does not repeat it
    assert leftover.cursor == {"products": 9, "inventory": 3}


def test_erply_login_answered_without_a_session_is_a_vendor_error_not_a_crash() -> None:
    """verifyUser with errorCode 0 and no records (seen from a misconfigured account): an IndexError before."""
    from tests.pos_fakes.server import FakeServer, Reply

    server = FakeServer(
        lambda request: Reply(200, {"status": {"request": "verifyUser", "errorCode": 0}, "records": []})
    )
    try:
        client = Erply(
            client_code="1", username="u", password="p", ctx=MapContext("1"), base_url=server.url, policy=FAST
        )
        with pytest.raises(VendorError, match="verifyUser answered no sessionKey"):
            collect(client, {})
    finally:
        server.close()


def _r_next(fake: LightspeedRFake, link: Any) -> None:
    """The R-Series fake's pages name `link(request)` as their next page."""
    answer = fake.handle

    def handler(req: Any) -> Any:
        reply = answer(req)
        if isinstance(reply.body, dict) and "@attributes" in reply.body:
            reply.body["@attributes"]["next"] = link(req)
        return reply

    fake.server.handler = handler


def test_a_next_page_on_another_host_is_refused_and_gets_no_token(
    r_fake: LightspeedRFake, shopify_fake: ShopifyFake
) -> None:
    """A next-page link elsewhere (a spoofed or proxied answer) was followed with the connection's token."""
    from tests.pos_fakes.server import FakeServer, Reply

    asked: list[Any] = []
    other = FakeServer(lambda request: asked.append(request) or Reply(200, {}))
    try:
        _r_next(r_fake, lambda req: f"{other.url}/API/V3/Account/4242/Item.json?after=p2")
        r = LightspeedR(account_id="4242", token="r-token", ctx=MapContext("1"), base_url=r_fake.server.url,
                        policy=FAST, page_size=1)  # fmt: skip
        with pytest.raises(VendorError, match=r"links to http://127\.0\.0\.1:\d+/API/V3/.*outside this connection"):
            collect(r, {})
        answer = shopify_fake.handle

        def elsewhere(req: Any) -> Any:
            reply = answer(req)
            if "Link" in reply.headers:
                reply.headers["Link"] = reply.headers["Link"].replace(shopify_fake.server.url, other.url)
            return reply

        shopify_fake.server.handler = elsewhere
        shop = Shopify(shop="s.myshopify.com", token="shpat_test", ctx=MapContext("24826418"),
                       base_url=shopify_fake.server.url, policy=FAST, page_size=1)  # fmt: skip
        with pytest.raises(VendorError, match="outside this connection's base URL"):
            collect(shop, {})
        shopify_fake.server.handler = answer
        # stored under another base URL (`connections update --base-url` mid-pass): never asked, the pass restarts
        stored = {"products": {"since": None, "next": f"{other.url}/admin/api/2024-07/products.json?page_info=t0"}}
        rows, _cursor = collect(shop, stored)
        assert len(by_op(rows, "upsert")) == len(ITEMS)
        assert asked == []
    finally:
        other.close()


def test_a_relative_next_page_link_is_resolved_against_its_page_and_held_to_the_base_path() -> None:
    """A relative link was joined onto the base path unchecked, and httpx's dot-segment removal took
    `/../../shopB/…` (and the token) off it; `/proxy/shopA/admin/…` was asked as `/proxy/shopA/proxy/shopA/admin/…`."""
    from search_service.ingest.connectors.http import VendorHTTP
    from tests.pos_fakes.server import FakeServer, Reply

    links = {"products.json": "products.json?page_info=2",  # relative to the page: the same folder
             "inventory_levels.json": "/proxy/shopA/admin/api/2024-07/inventory_levels.json?page_info=3"}  # fmt: skip

    def answer(req: Any) -> Reply:
        link = links.get(req.path.rsplit("/", 1)[-1])
        headers = {"Link": f'<{link}>; rel="next"'} if link and "page_info" not in req.query else {}
        return Reply(200, {"products": [], "inventory_levels": []}, headers)

    server = FakeServer(answer)
    try:
        shop = Shopify(shop="s.myshopify.com", token="shpat_test", ctx=MapContext("1"),
                       base_url=f"{server.url}/proxy/shopA", policy=FAST)  # fmt: skip
        collect(shop, {})
        asked = {(r.path, r.query.get("page_info")) for r in server.requests}
        assert ("/proxy/shopA/admin/api/2024-07/products.json", "2") in asked
        assert ("/proxy/shopA/admin/api/2024-07/inventory_levels.json", "3") in asked
        assert all(path.startswith("/proxy/shopA/admin/") for path, _ in asked), asked
        server.requests.clear()
        links["products.json"] = links["inventory_levels.json"] = "/../../shopB/admin/api/leak.json?page_info=1"
        with pytest.raises(VendorError, match=r"links to http://127\.0\.0\.1:\d+/shopB/admin/api/leak\.json, outside"):
            collect(shop, {})
        assert all("page_info" not in r.query for r in server.requests)  # refused before any request
        http = VendorHTTP(f"{server.url}/base")
        for path in ("/base/../../etc", "/x/%2e%2e/%2E%2e/etc"):  # ours, or a stored cursor: as httpx sends it
            with pytest.raises(VendorError, match="outside this connection's base URL"):
                http.within_base(path)
        with pytest.raises(VendorError, match=r"links to http://127\.0\.0\.2/base/x, outside"):
            http.within_base("//127.0.0.2/base/x", http.client.base_url.join("page.json"))
    finally:
        server.close()


def test_an_ipv6_address_is_named_in_brackets_as_a_url_has_it() -> None:
    """A refused link to `http://[::1]:9892/x` was named `http://::1:9892/x`, and a failed connection's origin
    so too: no URL, and its port unreadable."""
    from search_service.ingest.connectors.http import VendorHTTP

    http = VendorHTTP("http://127.0.0.1:9/base", policy=RetryPolicy(attempts=1, timeout_s=1.0))
    with pytest.raises(VendorError, match=r"links to http://\[::1\]:9892/base/x, outside"):
        http.within_base("http://[::1]:9892/base/x?token=t")
    refused = VendorHTTP("http://[::1]:9/base", policy=RetryPolicy(attempts=1, timeout_s=1.0))
    with pytest.raises(VendorError, match=r"connection to http://\[::1\]:9 failed"):
        refused.request_json("GET", "/base/x.json")


def test_a_next_page_link_stepping_out_with_backslashes_or_dot_segments_is_refused_and_gets_no_token() -> None:
    """`..\\..\\other` and `..%5c..%5cother` passed the dot-segment check (one segment each) and were asked with the
    token, though a WHATWG parser before the vendor (a proxy, IIS) reads `\\` as `/`; Tomcat's `..;` passed too."""
    from search_service.ingest.connectors.http import VendorHTTP
    from tests.pos_fakes.server import FakeServer, Reply

    server = FakeServer(lambda request: Reply(200, {}))
    try:
        http = VendorHTTP(f"{server.url}/shopA", headers={"Authorization": "Bearer TOKEN123"}, policy=FAST)
        page = httpx.URL(f"{server.url}/shopA/API/Account/1/Item.json")
        links = [f"{server.url}/shopA/..\\..\\other/x", "/shopA/..%5c..%5cother/y", "/shopA/..%5C..%5Cother/y",
                 "/shopA/..;/other/z", "/shopA/.;x/..;y/other", "/shopA/%252e%252e/other", "/shopA/a\\b.json",
                 "..\\..\\other/rel"]  # fmt: skip
        for link in links:
            with pytest.raises(VendorError, match="outside this connection's base URL: refused"):
                http.request_json("GET", http.next_page(link, set(), page))
        assert server.requests == []  # refused before any request
        fine = http.next_page("/shopA/API/Account/1/Item.json;v=2?after=b%5c", set(), page)  # not a dot segment
        http.request_json("GET", fine)
        assert [(r.path, r.headers["authorization"]) for r in server.requests] == [
            ("/shopA/API/Account/1/Item.json;v=2", "Bearer TOKEN123")
        ]
    finally:
        server.close()


def test_a_next_page_link_with_a_user_and_password_is_refused_and_never_replaces_the_token() -> None:
    """`http://evil:pw@<vendor>/base/…` was "within the base" (scheme, host, port and path only), and httpx sent its
    user:password as Basic auth in place of the connection's Bearer token; the error hid them, so nothing showed it."""
    from search_service.ingest.connectors.http import VendorHTTP
    from tests.pos_fakes.server import FakeServer, Reply

    server = FakeServer(lambda request: Reply(200, {}))
    try:
        http = VendorHTTP(f"{server.url}/shopA", headers={"Authorization": "Bearer TOKEN123"}, policy=FAST)
        page = httpx.URL(f"{server.url}/shopA/API/Account/1/Item.json")
        origin = server.url.removeprefix("http://")
        for link in (
            f"http://evil:pw@{origin}/shopA/z?t=1",
            f"http://evil@{origin}/shopA/z",
            f"//evil:pw@{origin}/shopA/z",
        ):
            with pytest.raises(VendorError) as refused:
                http.request_json("GET", http.next_page(link, set(), page))
            shown = f"{server.url}/shopA/z (it carries a user name or password)"  # no user, password nor query
            assert (
                str(refused.value)
                == f"the vendor's answer links to {shown}, outside this connection's base URL: refused"
            )
        assert server.requests == []  # refused before any request
    finally:
        server.close()


def test_a_next_page_link_that_repeats_stops_the_pass(r_fake: LightspeedRFake) -> None:
    """A next link naming the page just read (a vendor's glitch) read it again for ever, storing it each time."""
    _r_next(r_fake, lambda req: f"{r_fake.server.url}{req.path}?after=same")
    r = LightspeedR(account_id="4242", token="r-token", ctx=MapContext("1"), base_url=r_fake.server.url,
                    policy=FAST, page_size=2)  # fmt: skip
    pages = r.pages({})
    next(pages)
    next(pages)  # the link's page, once
    with pytest.raises(VendorError, match="next-page link repeats"):
        next(pages)


def test_a_vendor_that_cannot_be_reached_is_named_with_why() -> None:
    """A wrong --base-url said only "connection failed: ConnectError": neither where nor why."""
    from search_service.db.cluster import free_port

    port = free_port()  # nothing listens there
    client = LightspeedR(account_id="4242", token="r-token", ctx=MapContext("1"), base_url=f"http://127.0.0.1:{port}",
                         policy=RetryPolicy(attempts=1, base_delay_s=0.01, max_delay_s=1.0, timeout_s=0.5))  # fmt: skip
    with pytest.raises(VendorError, match=rf"connection to http://127\.0\.0\.1:{port} failed: .*refused"):
        collect(client, {})
