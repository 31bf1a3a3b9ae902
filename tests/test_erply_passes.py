"""Erply passes whose set moves under their pages: a full pass that must not remove what it did not read, a stock
pass whose next page repeats the one before, and the overlap of `since` (a fake Erply over HTTP changes itself when
a given request comes; real PostgreSQL, the import job's mapping)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from tests.connector_helpers import listing, make_connection, make_store, map_batches, sync
from tests.pos_fakes.vendors import ErplyFake, Item
from tests.test_connector_cursors import ERPLY_LOGIN, once_when

KEYS = ("101", "102", "103", "104", "105")


@pytest.fixture
def fake() -> Iterator[ErplyFake]:
    vendor = ErplyFake()
    for key in KEYS:
        vendor.add(Item(key, f"Item {key}", "1.00", int(key)))
    yield vendor
    vendor.server.close()


def erply_connection(db: psycopg.Connection, fake: ErplyFake, page_size: int) -> tuple[uuid.UUID, uuid.UUID]:
    store = make_store(db, "erply", 52.36, 4.88)
    cid = make_connection(db, store, "erply", "1", fake.server.url, ERPLY_LOGIN, secret="app-secret")
    db.execute(
        "UPDATE ingest_connection SET config = config || jsonb_build_object('page_size', %s::int) WHERE id = %s",
        (page_size, cid),
    )
    return store, cid


@pytest.mark.parametrize("and_add", [False, True], ids=["delete", "delete-and-add"])
def test_erply_a_full_sync_whose_set_shifted_removes_no_listing_it_did_not_read(
    db: psycopg.Connection, fake: ErplyFake, and_add: bool
) -> None:
    """Two products a page: 101 (page 1, read) deleted before page 2 moved 103 onto page 1, never read. The full
    pass removed 103 as gone at the vendor (`removed 1`), inactive until a later poll read it again."""
    store, cid = erply_connection(db, fake, 2)
    sync(db, cid)
    map_batches(db)
    fake.tick()

    def delete() -> None:
        fake.delete("101")
        if and_add:  # the total stays as it was: only the deletions log tells
            fake.add(Item("106", "Item 106", "1.00", 106))

    once_when(fake.server, lambda req: req.form.get("request") == "getProducts" and req.form.get("pageNo") == "2",
              delete)  # fmt: skip
    report = sync(db, cid, full=True)
    map_batches(db)
    assert (report.removed, report.shifted) == (0, True)
    assert [listing(db, store, key) for key in ("102", "103", "104")] == [
        ("1.00", 102, True), ("1.00", 103, True), ("1.00", 104, True),
    ]  # fmt: skip
    sync(db, cid)  # the deletions log takes 101 out
    map_batches(db)
    assert (listing(db, store, "101") or ())[2:] == (False,)
    assert (listing(db, store, "103") or ())[2:] == (True,)


def test_erply_a_stock_page_that_repeats_the_one_before_starts_the_pass_again(
    db: psycopg.Connection, fake: ErplyFake
) -> None:
    """One level a page: 103-105 changed since the last poll, then 101 sold while the stock pass ran entered the
    `changedSince` set ahead of the pages read, so page 3 brought page 2's record. The sync failed ("page 3 repeats
    page 2 (pageNo ignored?)"), and its cursor asked page 3 again on every later sync: the stock sync wedged."""
    store, cid = erply_connection(db, fake, 1)
    sync(db, cid)
    fake.tick()
    for key in ("103", "104", "105"):
        fake.set_stock(key, 50)
    fake.tick()
    stock_page_three = lambda req: req.form.get("request") == "getProductStock" and req.form.get("pageNo") == "3"  # noqa: E731
    once_when(fake.server, stock_page_three, lambda: fake.set_stock("101", 9))
    sync(db, cid)
    fake.tick()
    sync(db, cid)
    map_batches(db)
    assert [(listing(db, store, key) or ())[1] for key in ("101", "102", "103", "104", "105")] == [9, 102, 50, 50, 50]


def test_erply_a_level_read_before_its_product_reaches_the_listing(db: psycopg.Connection, fake: ErplyFake) -> None:
    """106 created at the till with 12 in stock after the poll's products pass, before its stock pass: its stock row
    was rejected (no listing with that sku), the next poll created it at 0, and the stock `since` (the stock pass's
    start, no overlap) was already past its level: 0 for good."""
    store, cid = erply_connection(db, fake, 100)
    sync(db, cid)
    fake.tick()

    def created_at_the_till() -> None:
        fake.add(Item("106", "Item 106", "4.00", 12))
        fake.tick()  # a few seconds before the stock request

    once_when(fake.server, lambda req: req.form.get("request") == "getUserOperationsLog", created_at_the_till)
    sync(db, cid)
    for _ in range(2):
        fake.tick()
        sync(db, cid)
    map_batches(db)
    assert listing(db, store, "106") == ("4.00", 12, True)


def test_erply_a_change_stamped_before_the_poll_began_comes_with_the_next_poll(
    db: psycopg.Connection, fake: ErplyFake
) -> None:
    """A change committed after a poll but stamped 3 s before its start (the vendor's servers or transactions seconds
    apart) lay before the `since` that poll took (its start, no overlap): never read. A quiet poll, once nothing
    changed in the overlap, costs the requests it did."""
    store, cid = erply_connection(db, fake, 1)
    sync(db, cid)
    fake.tick()
    fake.update("102", priceWithVat=2.0)
    fake.tick()
    started = fake.clock  # the next poll's requestUnixTime (nothing ticks while it runs)
    sync(db, cid)
    fake.products["101"].update(priceWithVat=9.99, lastModified=started - 3)
    fake.tick()
    sync(db, cid)
    map_batches(db)
    assert [listing(db, store, key) for key in ("101", "102")] == [("9.99", 101, True), ("2.00", 102, True)]
    fake.clock += 120
    sync(db, cid)  # re-reads the overlap before the last poll
    asked = len(fake.server.requests)
    sync(db, cid)
    quiet = Counter(req.form.get("request", "") for req in fake.server.requests[asked:])
    assert quiet == {"verifyUser": 1, "getProducts": 1, "getUserOperationsLog": 1, "getProductStock": 1}


def test_erply_a_product_deleted_after_the_vendors_clock_went_back_goes_out_of_sale(
    db: psycopg.Connection, fake: ErplyFake
) -> None:
    """Erply's clock ran 3 h ahead while 101 and 102 were edited, then went back: their deletions, logged by the
    clock gone back, were stamped before what their listings held (the edits), newest wins marked them stale, and
    the products stayed sellable until the vendor's clock passed those stamps. 101 is deleted before the poll that
    finds the clock gone back, 102 after it; 103, deleted once the clock has passed them, has its own stamp."""
    store, cid = erply_connection(db, fake, 1000)
    sync(db, cid)
    fake.clock += 3 * 3600
    for key in ("101", "102", "103"):
        fake.update(key, priceWithVat=9.99)
    sync(db, cid)
    fake.clock -= 3 * 3600
    fake.delete("101")
    sync(db, cid)
    fake.delete("102")
    sync(db, cid)
    fake.clock += 4 * 3600
    sync(db, cid)
    fake.delete("103")
    sync(db, cid)
    map_batches(db)
    assert [(listing(db, store, key) or ())[2:] for key in ("101", "102", "103", "104")] == [
        (False,), (False,), (False,), (True,),
    ]  # fmt: skip
    row = db.execute("SELECT cursor->'deletions'->'ahead' FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
    assert row is not None and row[0] is None  # the vendor's clock passed it


def test_erply_a_deletion_logged_while_the_clock_was_back_and_read_after_it_was_put_right_goes_out_of_sale(
    db: psycopg.Connection, fake: ErplyFake
) -> None:
    """101 edited (its listing stamped T0), the vendor's clock went back 3 h (a poll found it: `ahead`), 101 deleted
    (logged at T0 - 3 h) and the clock put right before the next poll. That poll dropped `ahead` as the vendor's
    clock had passed it, before reading the log: the deletion kept its old stamp, was stale, and 101 stayed on sale
    for good (the deletions cursor moved on)."""
    store, cid = erply_connection(db, fake, 1000)
    sync(db, cid)
    fake.clock += 600
    fake.update("101", priceWithVat=2.50)
    sync(db, cid)
    fake.clock -= 3 * 3600
    sync(db, cid)
    fake.delete("101")
    fake.clock += 3 * 3600 + 600
    sync(db, cid)
    for _ in range(2):
        fake.tick()
        sync(db, cid)
    map_batches(db)
    assert [(listing(db, store, key) or ())[2:] for key in ("101", "102")] == [(False,), (True,)]
    row = db.execute("SELECT cursor->'deletions'->'ahead' FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
    assert row is not None and row[0] is None  # its `since` passed it


def test_erply_a_deletion_after_the_clock_went_back_beats_a_stamp_almost_a_day_ahead(
    db: psycopg.Connection, fake: ErplyFake
) -> None:
    """101 edited while the vendor's clock ran 23.5 h ahead of ours (ingest takes up to a day), then the clock went
    back and 101 was deleted: the deletion, raised to `ahead`, was capped an hour short of ingest's bound, before the
    listing's stamp: stale, and 101 stayed on sale."""
    fake.clock = int(time.time())
    store, cid = erply_connection(db, fake, 1000)
    sync(db, cid)
    fake.clock += 23 * 3600 + 1800
    fake.update("101", priceWithVat=2.50)
    sync(db, cid)
    map_batches(db)
    assert listing(db, store, "101") == ("2.50", 101, True)
    fake.clock -= 23 * 3600 + 1800
    sync(db, cid)
    fake.delete("101")
    sync(db, cid)
    map_batches(db)
    assert [(listing(db, store, key) or ())[2:] for key in ("101", "102")] == [(False,), (True,)]
