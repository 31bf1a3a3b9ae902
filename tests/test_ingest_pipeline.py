"""The ingest pipeline against a real database: raw rows stored whole, mapped set-based, every row accounted for."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import psycopg
import pytest

from search_service.ingest import pipeline
from search_service.ingest.clocks import LEVEL_ALONE
from search_service.ingest.gtins import gtin14
from search_service.ingest.rows import validate
from tests.events_support import subscribe

WORKER = "test-worker"


def dsn_of(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def make_store(conn: psycopg.Connection, name: str = "Shop", currency: str = "EUR") -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO store (name, location, currency) VALUES (%s, 'SRID=4326;POINT(13.4 52.5)', %s) RETURNING id",
        (name, currency),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def drain(conn: psycopg.Connection) -> None:
    async def run() -> None:
        aconn = await asyncpg.connect(dsn_of(conn))
        try:
            while (batch := await pipeline.claim_batch(aconn, WORKER, 30)) is not None:
                await pipeline.map_batch(aconn, batch, WORKER, 1000, 30)
        finally:
            await aconn.close()

    asyncio.run(run())


def rows_of(conn: psycopg.Connection, batch: uuid.UUID) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT row_number, status, error, matched_by FROM imported_product_raw WHERE import_batch_id = %s "
        "ORDER BY row_number",
        (batch,),
    ).fetchall()


def listing(conn: psycopg.Connection, store: uuid.UUID, sku: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT price::text, quantity, currency, is_active, product_master_id, title FROM store_product "
        "WHERE store_id = %s AND sku = %s",
        (store, sku),
    ).fetchone()


def test_gtin_check_digits_and_normal_form() -> None:
    assert gtin14("4006381333931") == "04006381333931"  # GTIN-13
    assert gtin14("96385074") == "00000096385074"  # GTIN-8
    assert gtin14("036000291452") == "00036000291452"  # GTIN-12 (UPC-A)
    assert gtin14("10036000291459") is None or gtin14("10036000291459") == "10036000291459"
    assert gtin14("4006381333932") is None  # wrong check digit
    assert gtin14("400638133393") is None  # 12 digits, wrong check
    assert gtin14("abc") is None
    assert gtin14("36000291452") == "00036000291452"  # its leading zero lost in a spreadsheet
    assert gtin14("3600029145") is None and gtin14("٣٦٠٠٠٢٩١٤٥٢") is None  # 10 digits, wrong check; not ASCII
    gtins = ("4.00638E+12", "1234567", "4006381333932")
    why = {g: validate({"sku": "a", "price": 1, "gtin": g}).notes[0] for g in gtins}
    assert "scientific notation" in why["4.00638E+12"] and "8 to 14 digits" in why["1234567"]
    assert why["4006381333932"].endswith("ignored: its check digit is wrong")


@pytest.mark.parametrize(
    ("given", "read", "says"),
    [  # a GTIN written as a number that kept every digit reads, its check digit deciding
        ("4.067829728481E+12", "04067829728481", None),
        ("4,067829728481E+12", "04067829728481", None),
        ("4.0678297284810E+12", "04067829728481", None),
        ("4044608329039.0", "04044608329039", None),  # pandas' float column
        (4044608329039.0, "04044608329039", None),
        ("4044608329038.0", None, "its check digit is wrong"),
        ("4.067829728482E+12", None, "its check digit is wrong"),
        ("4.00638E+12", None, "scientific notation keeps 6 of its 13 digits"),  # lost: only where they are
        ("4.0678297284815E+12", None, "not a whole number"),
        ("1.5E+3", None, "a GTIN is 8 to 14 digits"),
    ],
)
def test_a_gtin_written_as_a_number_reads_when_it_kept_its_digits(
    given: object, read: str | None, says: str | None
) -> None:
    valid = validate({"sku": "a", "price": 1, "gtin": given})
    assert valid.gtin == read
    assert [says in note for note in valid.notes] == ([] if says is None else [True]), valid.notes


def test_batch_maps_every_row_and_totals_add_up(db: psycopg.Connection) -> None:
    store = make_store(db)
    rows = [
        {"sku": "A1", "name": "Oat drink", "price": "2,49", "quantity": "10", "gtin": "4006381333931"},
        {"sku": "B2", "name": "Rye bread", "price": 3.1, "quantity": 5, "category": "Nope > Missing"},
        {"sku": "C3", "name": "Bad price", "price": "-1", "quantity": 1},
        {"sku": "D4", "name": "Nan price", "price": "NaN", "quantity": 1},
        {"sku": "E5", "name": "Frac", "price": "1", "quantity": "1.5"},
        {"sku": "F6", "name": "Cur", "price": "1", "quantity": 1, "currency": "EURO"},
        {"sku": "G7", "name": "Bad gtin", "price": "1", "quantity": 1, "gtin": "4006381333932"},
        {"sku": "A1", "name": "Oat drink 1 L", "price": "2.59", "quantity": 12, "gtin": "4006381333931"},
        {"_error": "the row has 3 cells, the header has 4", "_raw": ["x", "y", "z"]},
        {"sku": "H8", "price": "1", "quantity": 1},
    ]
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    got = {r[0]: r[1:] for r in rows_of(db, batch)}
    assert got[1][0] == "duplicate" and got[1][1].startswith("replaced by row 8, a later row of the same sku")
    assert got[2][0] == "mapped" and "category" in got[2][1]
    assert got[3][0] == "rejected" and "negative" in got[3][1]
    assert got[4][0] == "rejected" and "finite" in got[4][1]
    assert got[5][0] == "rejected" and "whole" in got[5][1]
    assert got[6][0] == "rejected" and "3-letter" in got[6][1]
    assert got[7][0] == "mapped" and "gtin" in got[7][1] and got[7][2] == "created"
    assert got[8][0] == "mapped" and got[8][2] == "created"
    assert got[9][0] == "rejected"
    assert got[10][0] == "rejected" and "name is required" in got[10][1]
    status = db.execute(
        "SELECT status, total_rows, processed_rows, mapped_rows, duplicate_rows, error_rows FROM import_batch "
        "WHERE id = %s",
        (batch,),
    ).fetchone()
    assert status == ("completed", 10, 10, 3, 1, 6)
    a1 = listing(db, store, "A1")
    assert a1 is not None and a1[:4] == ("2.59", 12, "EUR", True) and a1[5] == "Oat drink 1 L"
    gtin = db.execute("SELECT gtin FROM product_master WHERE id = %s", (a1[4],)).fetchone()
    assert gtin == ("04006381333931",)


def test_second_store_links_by_gtin_and_keeps_text(db: psycopg.Connection) -> None:
    first, second = make_store(db, "First"), make_store(db, "Second", "CHF")
    row = {"sku": "X", "name": "Oat drink", "description": "first text", "price": 2, "quantity": 1}
    pipeline.record_batch(db, store_id=first, source="api", kind="listing", rows=[{**row, "gtin": "96385074"}])
    drain(db)
    pipeline.record_batch(
        db,
        store_id=second,
        source="api",
        kind="listing",
        rows=[{**row, "sku": "other", "name": "Haferdrink", "description": "second", "gtin": "00000096385074"}],
    )
    drain(db)
    one, two = listing(db, first, "X"), listing(db, second, "other")
    assert one is not None and two is not None and one[4] == two[4]
    assert two[2] == "CHF" and two[5] == "Haferdrink"
    text = db.execute("SELECT name, description FROM product_master WHERE id = %s", (one[4],)).fetchone()
    assert text == ("Oat drink", "first text")
    matched = db.execute("SELECT matched_by FROM imported_product_raw ORDER BY id DESC LIMIT 1").fetchone()
    assert matched == ("gtin",)


def test_a_shared_products_text_a_row_would_change_is_kept_and_noted(db: psycopg.Connection) -> None:
    """A product another store lists keeps its text (deliberate: ingest.md). A row's brand, description, category
    or attributes were dropped without a word, the row reported `mapped` with no notes: a merchant's correction
    never reached shoppers, and nothing said so. Fields that equal the product's are not noted."""
    first, second = make_store(db, "First"), make_store(db, "Second")
    cat = db.execute("INSERT INTO category (name, slug) VALUES ('Drinks', 'd-kept') RETURNING id").fetchone()
    assert cat is not None
    row = {"sku": "SH-1", "gtin": "4000000000099", "name": "Hafer Barsita", "brand": "Oatly",
           "description": "Typo desc", "price": "1.99", "quantity": 5}  # fmt: skip
    pipeline.record_batch(db, store_id=first, source="csv", kind="csv", rows=[row])
    other = {**row, "sku": "OTHER-9", "name": "Haferdrink", "description": "Other desc"}
    joined = pipeline.record_batch(db, store_id=second, source="csv", kind="csv", rows=[other])
    fixed = {**row, "name": "Hafer Barista", "brand": "Oatly!", "description": "Fixed", "category": cat[0]}
    again = pipeline.record_batch(db, store_id=first, source="csv", kind="csv", rows=[fixed, {**row, "sku": "SH-2",
                                  "gtin": None, "attributes": {"size": "1 L"}}])  # fmt: skip
    drain(db)
    got = rows_of(db, joined) + rows_of(db, again)
    assert [r[1] for r in got] == ["mapped", "mapped", "mapped"], got
    assert got[0][2] == (
        "description not applied: the product keeps its own (other stores list it too; only a product one store "
        "lists takes a row's text)"
    ), got
    assert got[1][2] is not None and got[1][2].startswith("brand, description, category not applied"), got
    assert got[2][2] is None, got  # SH-2 made a product of its own: its text is the row's
    text = db.execute("SELECT name, brand, description, category_id FROM product_master WHERE gtin = %s",
                      ("04000000000099",)).fetchone()  # fmt: skip
    assert text == ("Hafer Barsita", "Oatly", "Typo desc", None)
    title = listing(db, first, "SH-1")
    assert title is not None and title[5] == "Hafer Barista"  # the name is the listing's own title: applied
    noted = db.execute("SELECT count(*) FROM imported_product_raw WHERE import_batch_id = %s AND status = 'mapped' "
                       "AND error IS NOT NULL", (again,)).fetchone()  # fmt: skip
    assert noted == (1,)
    same = pipeline.record_batch(db, store_id=second, source="csv", kind="csv", rows=[{**other, "description": None}])
    drain(db)
    assert rows_of(db, same)[0][1:3] == ("mapped", None)  # nothing that differs: no note


def test_a_listing_without_a_sku_takes_the_sku_of_a_row_naming_its_product(db: psycopg.Connection) -> None:
    """A store's listing written by SQL or a seed has no SKU; a row naming its product by GTIN inserted a second
    listing of the product, whose unique key failed the whole batch, again at every claim."""
    store = make_store(db)
    products = [
        db.execute("INSERT INTO product_master (name, gtin) VALUES (%s, %s) RETURNING id", (n, g)).fetchone()[0]
        for n, g in (("Oat drink", "96385074"), ("Rye bread", "4006381333931"))
    ]
    for product in products:
        db.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
            "VALUES (%s, %s, 1, 'EUR', 1)",
            (store, product),
        )
    pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[
        {"sku": "OLD", "name": "Something", "price": 1, "quantity": 1}])  # fmt: skip
    drain(db)
    rows = [
        {"sku": "N-1", "name": "Oat", "price": "2.49", "quantity": 7, "gtin": "96385074"},
        {"sku": "OLD", "name": "Rye", "price": 3, "quantity": 2, "gtin": "4006381333931"},  # its SKU is another's
        {"sku": "N-2", "name": "Tea", "price": 4, "quantity": 3},
    ]
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    statuses = [(status, matched_by) for _n, status, _e, matched_by in rows_of(db, batch)]
    assert statuses == [("mapped", "gtin"), ("rejected", None), ("mapped", "created")]
    assert "lists its product without a sku, and sku 'OLD' is another listing" in rows_of(db, batch)[1][2]
    adopted = listing(db, store, "N-1")
    assert adopted is not None and adopted[:2] == ("2.49", 7) and adopted[4] == products[0]
    listed = db.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone()
    assert listed == (4,)  # the two SKU-less ones (one adopted), OLD and N-2


def test_an_adopted_listing_changes_once(db: psycopg.Connection) -> None:
    """Adopting a SKU-less listing wrote the SKU and then the row's values: two listing.updated events for one
    write. The values come with the SKU now: one listing.updated (and the stock and price events)."""
    store = make_store(db)
    product = db.execute("INSERT INTO product_master (name, gtin) VALUES ('Oat', '96385074') RETURNING id").fetchone()
    assert product is not None
    db.execute(
        "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
        "VALUES (%s, %s, 1, 'EUR', 1)",
        (store, product[0]),
    )
    subscribe(dsn_of(db), store, "http://127.0.0.1:9/hook")
    rows = [{"sku": "N-1", "name": "Oat", "price": "2.49", "quantity": 7, "gtin": "96385074"}]
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    assert [r[1:] for r in rows_of(db, batch)] == [("mapped", None, "gtin")]
    assert listing(db, store, "N-1")[:2] == ("2.49", 7)  # type: ignore[index]
    got = db.execute(
        "SELECT type, payload FROM webhook_event WHERE store_id = %s AND type NOT LIKE 'import.%%' ORDER BY id",
        (store,),
    ).fetchall()
    assert [t for t, _ in got] == ["listing.updated", "stock.changed", "price.changed"]
    assert (got[0][1]["old"]["sku"], got[0][1]["new"]["sku"]) == (None, "N-1")
    assert (got[0][1]["old"]["quantity"], got[0][1]["new"]["quantity"]) == (1, 7)


def test_two_skus_of_one_batch_with_one_new_gtin(db: psycopg.Connection) -> None:
    """The first SKU creates the GTIN's product; the second of the same batch finds it (and is refused: one store
    lists a product once), while other new GTINs of the batch get products of their own."""
    store = make_store(db)
    rows = [{"sku": f"S{i}", "name": f"Item {i}", "price": 1, "quantity": 1, "gtin": gtin}
            for i, gtin in enumerate(["96385074", "4006381333931", "00000096385074"])]  # fmt: skip
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    got = rows_of(db, batch)
    assert [(r[1], r[3]) for r in got] == [("mapped", "created"), ("mapped", "created"), ("rejected", None)]
    assert "this store already lists its product as sku 'S0'" in got[2][2]  # as sent one by one
    products = db.execute("SELECT count(*) FROM product_master WHERE gtin IS NOT NULL").fetchone()
    assert products == (2,)


def test_a_gtin_moved_between_skus_in_one_batch_applies_as_one_by_one(db: psycopg.Connection) -> None:
    """X moves off GTIN G0 onto G1, then Y takes G0: one by one Y is mapped; in one batch (one round) Y was
    refused, X seen still on G0."""
    store = make_store(db)
    g0, g1 = "4006381333931", "5411188112709"
    first = pipeline.record_batch(db, store_id=store, source="api", kind="listing",
                                  rows=[{"sku": "X", "name": "x", "price": 1, "quantity": 1, "gtin": g0}])  # fmt: skip
    drain(db)
    assert [r[1] for r in rows_of(db, first)] == ["mapped"]
    db.execute("INSERT INTO product_master (name, gtin) VALUES ('other', %s)", (g1,))
    moved = [{"sku": "X", "name": "x", "price": 1, "quantity": 1, "gtin": g1},
             {"sku": "Y", "name": "y", "price": 1, "quantity": 2, "gtin": g0}]  # fmt: skip
    batch = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=moved)
    drain(db)
    got = rows_of(db, batch)
    assert [(r[1], r[3]) for r in got] == [("mapped", "gtin"), ("mapped", "gtin")], got
    y = listing(db, store, "Y")
    assert y is not None and y[1] == 2


def test_newest_wins_and_inventory_delta(db: psycopg.Connection) -> None:
    store = make_store(db)
    base = {"sku": "S", "name": "Soap", "price": "1.00", "quantity": 10, "updated_at": "2026-12-01T10:00:00Z"}
    pipeline.record_batch(db, store_id=store, source="webhook", kind="webhook", rows=[base])
    drain(db)
    older = {"op": "stock", "sku": "S", "quantity": 3, "updated_at": "2026-12-01T09:00:00Z"}
    newer = {"op": "stock", "sku": "S", "quantity": 4, "updated_at": "2026-12-01T11:00:00Z"}
    b_old = pipeline.record_batch(db, store_id=store, source="webhook", kind="webhook", rows=[older])
    b_new = pipeline.record_batch(db, store_id=store, source="webhook", kind="webhook", rows=[newer])
    drain(db)
    assert rows_of(db, b_old)[0][1] == "stale"
    assert rows_of(db, b_new)[0][1] == "mapped"
    got = listing(db, store, "S")
    assert got is not None and got[1] == 4
    deltas = db.execute("SELECT delta, reason FROM inventory_event ORDER BY id").fetchall()
    assert deltas == [(10, "listed"), (-6, "update")]
    pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[{"op": "delete", "sku": "S"}])
    drain(db)
    got = listing(db, store, "S")
    assert got is not None and got[3] is False


def test_a_delete_of_no_listing_is_done_and_a_stock_change_of_none_is_rejected(db: psycopg.Connection) -> None:
    """A POS's first sync sends the items it deleted long ago: nothing to delete is not an error row."""
    store = make_store(db)
    rows = [{"op": "delete", "sku": "GONE", "updated_at": "2026-12-01T10:00:00Z"}, {"op": "stock", "sku": "NONE",
            "quantity": 2}]  # fmt: skip
    batch = pipeline.record_batch(db, store_id=store, source="lightspeed-x", kind="sync", rows=rows)
    drain(db)
    got = [(status, reason) for _, status, reason, _ in rows_of(db, batch)]
    assert got == [("stale", "no listing with sku 'GONE' in this store"),
                   ("rejected", "no listing with sku 'NONE' in this store")]  # fmt: skip
    counts = db.execute("SELECT stale_rows, error_rows FROM import_batch WHERE id = %s", (batch,)).fetchone()
    assert counts == (1, 1)
    assert listing(db, store, "GONE") is None


def test_a_delete_applies_no_price_or_level_it_carries_and_says_so(db: psycopg.Connection) -> None:
    """A delete row (webhook `listing.delete`, batch `op: delete`) carrying a price and quantity applied them without
    a word (its name it did not): it takes the listing off sale only, and its notes name what it ignored."""
    store = make_store(db)
    pipeline.record_batch(db, store_id=store, source="api", kind="listing",
                          rows=[{"sku": "F", "name": "Soap", "price": "5.49", "quantity": 1}])  # fmt: skip
    drain(db)
    before = listing(db, store, "F")
    assert before is not None and before[:4] == ("5.49", 1, "EUR", True)
    delete = {"op": "delete", "sku": "F", "quantity": 11, "price": "7.777", "name": "Renamed F"}
    batch = pipeline.record_batch(db, store_id=store, source="webhook", kind="webhook", rows=[delete])
    drain(db)
    assert listing(db, store, "F") == (*before[:3], False, *before[4:])
    _, status, note, _ = rows_of(db, batch)[0]
    assert status == "mapped" and note == "name, price, quantity ignored: a delete only takes the listing off sale"
    bad = {"op": "delete", "sku": "F", "price": "abc", "quantity": -1}  # not read, so not a reason to refuse it
    batch = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[bad])
    drain(db)
    assert rows_of(db, batch)[0][1] == "mapped"


def test_a_stock_row_names_the_fields_it_does_not_apply(db: psycopg.Connection) -> None:
    """A stock change (webhook `stock.set`, batch `op: stock`) carrying `is_active: false`, a name or a GTIN dropped
    them without a word: the listing stayed on sale. Its notes name them; its price and level apply."""
    store = make_store(db)
    pipeline.record_batch(db, store_id=store, source="api", kind="listing",
                          rows=[{"sku": "G", "name": "Soap", "price": "5.49", "quantity": 1}])  # fmt: skip
    drain(db)
    stock = {"op": "stock", "sku": "G", "quantity": 4, "price": "5.99", "is_active": False, "name": "Renamed",
             "gtin": "123"}  # fmt: skip
    batch = pipeline.record_batch(db, store_id=store, source="webhook", kind="webhook", rows=[stock])
    drain(db)
    got = listing(db, store, "G")
    assert got is not None and got[:4] == ("5.99", 4, "EUR", True)
    _, status, note, _ = rows_of(db, batch)[0]
    assert status == "mapped"
    assert note == "name, gtin, is_active ignored: a stock row sets the price and quantity (an upsert the rest)"
    plain = pipeline.record_batch(db, store_id=store, source="api", kind="listing",
                                  rows=[{"op": "stock", "sku": "G", "quantity": 2}])  # fmt: skip
    drain(db)
    assert rows_of(db, plain)[0][1:3] == ("mapped", None)


def test_an_upsert_with_both_clocks_applies_its_catalogue_when_only_its_level_is_older(db: psycopg.Connection) -> None:
    """A first sync's upsert carries the product's clock (updated_at) and its level's (version): a newer stock
    change already mapped keeps its level, the upsert's newer catalogue still applies; a row with one clock is
    stale as a whole when that clock is older; one whose catalogue alone is older applies its level alone."""
    store = make_store(db)
    first = {"sku": "S", "name": "Soap", "price": "1.00", "quantity": 10, "updated_at": "2026-12-01T10:00:00Z",
             "version": 20}  # fmt: skip
    pipeline.record_batch(db, store_id=store, source="shopify", kind="sync", rows=[first])
    drain(db)
    later = {**first, "name": "Soap bar", "price": "1.20", "quantity": 3, "updated_at": "2026-12-01T11:00:00Z",
             "version": 15}  # fmt: skip  # the catalogue is newer, the level older
    batch = pipeline.record_batch(db, store_id=store, source="shopify", kind="sync", rows=[later])
    drain(db)
    got, result = listing(db, store, "S"), rows_of(db, batch)[0]
    assert got is not None and (got[0], got[1], got[5]) == ("1.20", 10, "Soap bar")
    assert result[1] == "mapped" and "keeps its level" in result[2]
    held = db.execute("SELECT source_version FROM store_product WHERE sku = 'S'").fetchone()
    assert held == (20,)
    only_version = {"sku": "S", "name": "Old", "price": "9", "quantity": 1, "version": 19}
    batch = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[only_version])
    drain(db)
    assert rows_of(db, batch)[0][1] == "stale"
    older_catalogue = {**later, "name": "Older", "updated_at": "2026-12-01T10:30:00Z", "version": 25}
    batch = pipeline.record_batch(db, store_id=store, source="shopify", kind="sync", rows=[older_catalogue])
    drain(db)
    assert rows_of(db, batch)[0][1:3] == ("mapped", LEVEL_ALONE)  # its level is newer: it alone applies
    got = listing(db, store, "S")
    assert got is not None and (got[0], got[1], got[5]) == ("1.20", 3, "Soap bar")
    older_level = {**older_catalogue, "quantity": 4, "version": 24}
    batch = pipeline.record_batch(db, store_id=store, source="shopify", kind="sync", rows=[older_level])
    drain(db)
    assert rows_of(db, batch)[0][1] == "stale"  # both older


def test_replayed_delivery_is_stored_once(db: psycopg.Connection) -> None:
    store = make_store(db)
    conn_id = db.execute(
        "INSERT INTO ingest_connection (store_id, source) VALUES (%s, 'webhook') RETURNING id", (store,)
    ).fetchone()[0]  # type: ignore[index]
    row = {"sku": "R", "name": "Rice", "price": "1", "quantity": 1}
    first = pipeline.record_batch(
        db, store_id=store, source="webhook", kind="webhook", rows=[row], connection_id=conn_id, delivery_id="d1"
    )
    for _ in range(2):
        with pytest.raises(pipeline.DuplicateDelivery) as caught:
            pipeline.record_batch(
                db, store_id=store, source="webhook", kind="webhook", rows=[row], connection_id=conn_id,
                delivery_id="d1",
            )  # fmt: skip
        assert caught.value.batch_id == first
    assert db.execute("SELECT count(*) FROM import_batch").fetchone() == (1,)


@pytest.mark.slow
def test_a_million_row_csv_is_read_and_stored_whole(db: psycopg.Connection) -> None:
    """1M rows (~30 MB, under the 100 MB limit): parsed, stored as one batch in one transaction, counted."""
    from search_service.ingest.csvfile import parse_csv

    store = make_store(db)
    body = "".join(f"m{i};Item {i};{i % 100},{i % 10}0;{i % 7}\n" for i in range(1_000_000))
    data = ("sku;name;price;quantity\n" + body).encode()
    parsed = parse_csv(data)
    assert len(parsed.rows) == 1_000_000 and parsed.delimiter == ";"
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=parsed.rows)
    row = db.execute("SELECT status, total_rows FROM import_batch WHERE id = %s", (batch,)).fetchone()
    assert row == ("pending", 1_000_000)
    last = db.execute(
        "SELECT payload->>'price' FROM imported_product_raw WHERE import_batch_id = %s AND row_number = 1000000",
        (batch,),
    ).fetchone()
    assert last == ("99,90",)


def test_writes_on_the_apis_custom_planned_connections_plan_their_key_checks_once(fresh_db_url: str) -> None:
    """The API's connections force custom plans (engine/session.py), which would plan every foreign-key check of
    a write again for each row (a 100k-row COPY: twice the backend's CPU). A write's transaction (the fence, the
    bulk upload's settings) and a small batch's single statement plan them once, and only for themselves: the
    connection's searches keep forcing custom plans afterwards."""
    from search_service.db.sql import statement
    from search_service.engine.config import EngineConfig
    from search_service.engine.session import session_settings

    async def go() -> None:
        conn = await asyncpg.connect(fresh_db_url, server_settings=session_settings(EngineConfig()))
        try:
            with psycopg.connect(fresh_db_url, autocommit=True) as sync:
                store = make_store(sync)
            mode = "SELECT current_setting('plan_cache_mode')"
            async with conn.transaction():
                bulk = statement("ingest/batches", "bulk_write_settings")
                await conn.fetch(bulk.sql, *bulk.bind(timeout="600s"))
                assert await conn.fetchval(mode) == "auto"
            assert await conn.fetchval(mode) == "force_custom_plan"
            batch = await pipeline.record_batch_async(
                conn, store_id=store, source="webhook", kind="webhook", rows=[{"sku": "a", "price": "1", "quantity": 1}]
            )  # one statement (record_small), in its own transaction
            assert await conn.fetchval(mode) == "force_custom_plan"
            await conn.execute("UPDATE import_batch SET status = 'processing', locked_by = 'me' WHERE id = $1", batch)
            async with conn.transaction():
                fence = statement("ingest/batches", "fence")
                await conn.fetch(fence.sql, *fence.bind(batch_id=batch, worker_id="me", lease_s=60))
                assert await conn.fetchval(mode) == "auto"
            assert await conn.fetchval(mode) == "force_custom_plan"
        finally:
            await conn.close()

    asyncio.run(go())


def test_the_items_of_a_listing_batch_apply_in_order_as_if_sent_one_by_one(db: psycopg.Connection) -> None:
    """An item replaced by a later one of its SKU ended `duplicate` whatever became of the later one: a later
    invalid or stale item left nothing applied, and a later upsert without a level dropped the stock change
    before it. A file keeps "the last row wins", its SKUs compared past surrounding spaces."""
    store = make_store(db)
    first = {"sku": "D2", "name": "Dup", "price": "1", "quantity": 1, "version": 7}
    pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[first])
    drain(db)
    rows = [
        {"sku": "D1", "name": "Dup one", "price": "2", "quantity": 5},
        {"sku": "D1", "name": "Dup one", "price": "-1", "quantity": 5},
        {"sku": "D2", "name": "Dup", "price": "9", "quantity": 10, "version": 10},
        {"sku": "D2", "name": "Dup", "price": "5", "quantity": 5, "version": 5},
        {"sku": "D1", "op": "stock", "quantity": 0},
        {"sku": "D1", "name": "Dup one", "price": "1.29"},
    ]
    batch = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=rows)
    drain(db)
    assert [r[1] for r in rows_of(db, batch)] == ["mapped", "rejected", "mapped", "stale", "mapped", "mapped"]
    d1, d2 = listing(db, store, "D1"), listing(db, store, "D2")
    assert d1 is not None and d1[:2] == ("1.29", 0)  # the stock change kept: the upsert carried no level
    assert d2 is not None and d2[:2] == ("9.00", 10)
    clocks = [
        {"sku": "T1", "name": "T", "price": "1", "quantity": 1},
        {"sku": "T2", "name": "T", "price": "1", "quantity": 1, "updated_at": "9999-12-31T23:59:59-05:00"},
    ]
    timed = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=clocks)
    drain(db)  # the second item crashed the batch's mapping five times, then failed it with the first
    assert [r[1] for r in rows_of(db, timed)] == ["mapped", "rejected"]
    spaced = [{"sku": " W1", "name": "W", "price": "1", "quantity": 1}, {"sku": "W1", "name": "W", "price": "2",
              "quantity": 2}]  # fmt: skip
    csv_batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=spaced)
    drain(db)
    assert [r[1] for r in rows_of(db, csv_batch)] == ["duplicate", "mapped"]


def test_a_repeated_sku_applies_before_the_items_after_it(db: psycopg.Connection) -> None:
    """A store renumbering a SKU: the old SKU's repeat takes it off sale (or back on), then the new SKU names its
    GTIN. Rounds of each SKU's n-th item decided the new SKU before the old one's repeat: refused although the
    item before it freed the product, or (the old one back on sale) given the product, the old SKU a new one."""
    store = make_store(db)
    gtins = {"7": "4006381333931", "9": "5411188112709"}
    for n, gtin in gtins.items():
        rows = [{"sku": f"OLD-{n}", "name": f"Cola {n}", "price": "1.29", "quantity": 4, "gtin": gtin}]
        pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=rows)
    pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[{"op": "delete", "sku": "OLD-9"}])
    drain(db)
    for n, active in (("7", False), ("9", True)):
        rows = [
            {"sku": f"OLD-{n}", "op": "stock", "quantity": 3},
            {"sku": f"OLD-{n}", "name": f"Cola {n}", "price": "1.29", "quantity": 3, "is_active": active},
            {"sku": f"NEW-{n}", "name": f"Cola {n}", "price": "1.29", "quantity": 4, "gtin": gtins[n]},
        ]
        batch = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=rows)
        drain(db)
        got = rows_of(db, batch)
        if active:  # OLD-9 is on sale again first: NEW-9 is refused, as one by one
            assert [r[1] for r in got] == ["mapped", "mapped", "rejected"], got
            assert "this store already lists its product as sku 'OLD-9'" in got[2][2]
        else:  # OLD-7 went off sale first: NEW-7 takes its product over
            assert [(r[1], r[3]) for r in got] == [("mapped", None), ("mapped", "sku"), ("mapped", "gtin")], got
    owners = db.execute(
        "SELECT sp.sku, p.gtin FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
        "WHERE sp.store_id = %s ORDER BY sp.sku",
        (store,),
    ).fetchall()
    assert owners == [("NEW-7", gtin14(gtins["7"])), ("OLD-9", gtin14(gtins["9"]))], owners


def test_a_renumbering_file_imported_again_leaves_the_retired_sku_stale(db: psycopg.Connection) -> None:
    """A full file re-sent after a renumbering: its row taking the old SKU off sale found that SKU retired and its
    GTIN listed on sale under the new one, and was rejected, saying to take the new SKU off sale (nothing changed)."""
    store = make_store(db)
    old = {"sku": "OLD-7", "gtin": "4000000003021", "name": "Renum", "price": "2.00", "quantity": 5}
    pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=[old])
    renumbered = [{**old, "is_active": "no"}, {**old, "sku": "NEW-7"}]
    first = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=renumbered)
    drain(db)
    assert [r[1] for r in rows_of(db, first)] == ["mapped", "mapped"]
    again = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=renumbered)
    drain(db)
    got = rows_of(db, again)
    assert [r[1] for r in got] == ["stale", "mapped"], got
    assert "sku 'OLD-7' was taken over by another sku" in got[0][2] and "'NEW-7'" in got[0][2], got
    new7 = listing(db, store, "NEW-7")
    assert listing(db, store, "OLD-7") is None and new7 is not None and new7[3] is True
    back = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=[{**old, "is_active": "yes"}])
    drain(db)  # on sale again under the old SKU: still one listing a product, refused
    assert [r[1] for r in rows_of(db, back)] == ["rejected"]


def test_a_row_the_database_refuses_is_rejected_alone(db: psycopg.Connection) -> None:
    """A value that passed validation but not the database (here a check the test adds) crashed the whole batch
    five times, then failed it, its other rows with it, the store's later writes held behind it."""
    store = make_store(db)
    db.execute("ALTER TABLE store_product ADD CONSTRAINT no_thirteen CHECK (quantity <> 13)")
    rows = [{"sku": f"Q{q}", "name": "Q", "price": "1", "quantity": q} for q in (5, 13, 7)]
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    got = rows_of(db, batch)
    assert [r[1] for r in got] == ["mapped", "rejected", "mapped"]
    assert got[1][2].startswith("the database refused this row's values") and "no_thirteen" in got[1][2]
    status = db.execute("SELECT status, error_rows, mapped_rows FROM import_batch WHERE id = %s", (batch,))
    assert status.fetchone() == ("completed", 1, 2)


def test_in_store_and_placeholder_gtins_join_no_other_stores_product(db: psycopg.Connection) -> None:
    """A restricted circulation number (GS1 prefixes 20-29: weighed cheese, loose sausages) or all zeros joined
    two stores' unrelated goods into one product."""
    first, second = make_store(db), make_store(db)
    for store, name in ((first, "Gouda by weight"), (second, "Bratwurst loose")):
        rows = [{"sku": "W1", "name": name, "price": "1", "quantity": 1, "gtin": "2001234000000"},
                {"sku": "W8", "name": f"{name} (8)", "price": "1", "quantity": 1, "gtin": "21234569"},
                {"sku": "Z1", "name": f"{name} (z)", "price": "1", "quantity": 1, "gtin": "0000000000000"},
                {"sku": "P1", "name": "Priciest", "price": "9999999999.994", "quantity": 1}]  # fmt: skip
        batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
        drain(db)
        got = rows_of(db, batch)
        assert [r[1] for r in got] == ["mapped"] * 4 and [r[3] for r in got] == ["created"] * 4
        assert "restricted circulation" in got[0][2] and "GTIN-8 prefix 2" in got[1][2] and "placeholder" in got[2][2]
    products = db.execute("SELECT count(DISTINCT product_master_id) FROM store_product").fetchone()
    assert products == (8,)
    assert db.execute("SELECT count(*) FROM product_master WHERE gtin IS NOT NULL").fetchone() == (0,)
    money = pipeline.record_batch(db, store_id=first, source="api", kind="listing", rows=[
        {"sku": "M1", "name": "M", "price": "1", "quantity": 1, "currency": "USD"},
        {"op": "stock", "sku": "M1", "price": "3", "currency": "GBP"},  # its price was taken as USD
        {"op": "stock", "sku": "M1", "price": "4", "currency": "USD"}])  # fmt: skip
    drain(db)
    assert [r[1] for r in rows_of(db, money)] == ["mapped", "rejected", "mapped"]
    db.execute("UPDATE store_product SET source_updated_at = '-infinity' WHERE sku = 'M1'")  # a clock of old
    late = pipeline.record_batch(db, store_id=first, source="api", kind="listing", rows=[
        {"op": "stock", "sku": "M1", "quantity": 2, "updated_at": "2026-12-01T00:00:00Z"}])  # fmt: skip
    drain(db)  # a TypeError (naive against aware) crashed its batch five times
    assert [r[1] for r in rows_of(db, late)] == ["mapped"]
    dollars = pipeline.record_batch(db, store_id=first, source="api", kind="listing", rows=[
        {"sku": "C1", "name": "Import", "price": "1", "quantity": 1, "currency": "usd"},
        {"sku": "C1", "name": "Import", "price": "2"}])  # fmt: skip
    drain(db)  # an upsert without a currency kept its level but set the store's currency (EUR)
    assert [r[1] for r in rows_of(db, dollars)] == ["mapped", "mapped"]
    assert db.execute("SELECT currency, price::text FROM store_product WHERE sku = 'C1'").fetchone() == ("USD", "2.00")
    assert db.execute("SELECT DISTINCT price::text FROM store_product WHERE sku = 'P1'").fetchall() == [
        ("9999999999.99",)
    ]  # rounded to the cent first: it was refused as past the most


def test_rows_without_a_sku_are_rejected_not_duplicates(db: psycopg.Connection) -> None:
    """SKU-less rows shared one (empty) SKU in the duplicate marking: all but the last ended `duplicate`, missing
    from the errors CSV."""
    store = make_store(db)
    rows = [{"name": "Lost one", "price": 1, "quantity": 1}, {"name": "Lost two", "price": 2, "quantity": 2},
            {"sku": "", "name": "Lost three", "price": 1, "quantity": 1}, {"sku": "", "name": "Lost four", "price": 1,
            "quantity": 1}, {"sku": "E-2", "name": "Zwei", "price": 1, "quantity": 1}]  # fmt: skip
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    assert [r[1:3] for r in rows_of(db, batch)] == [("rejected", "sku is required")] * 4 + [("mapped", None)]


def test_a_gtin_sent_later_goes_onto_the_stores_own_product(db: psycopg.Connection) -> None:
    """A valid GTIN sent for a listing found by SKU was dropped without a note: a second store's copy of the article
    became a second product. It goes onto the store's own product when that has none and no product holds it."""
    first, second = make_store(db, "First"), make_store(db, "Second")
    pipeline.record_batch(db, store_id=first, source="api", kind="listing",
                          rows=[{"sku": "N-2", "name": "Late GTIN", "price": 1, "quantity": 1}])  # fmt: skip
    drain(db)
    late = pipeline.record_batch(db, store_id=first, source="api", kind="listing",
                                 rows=[{"sku": "N-2", "name": "Late GTIN", "price": 1, "quantity": 1,
                                        "gtin": "4000000999997"}])  # fmt: skip
    other = pipeline.record_batch(db, store_id=second, source="api", kind="listing",
                                  rows=[{"sku": "Z-1", "name": "Same", "price": 2, "quantity": 1,
                                         "gtin": "4000000999997"}])  # fmt: skip
    drain(db)
    assert [r[1:] for r in rows_of(db, late)] == [("mapped", None, "sku")]
    assert [r[1:] for r in rows_of(db, other)] == [("mapped", None, "gtin")]
    products = db.execute("SELECT DISTINCT product_master_id FROM store_product WHERE sku IN ('N-2', 'Z-1')").fetchall()
    assert len(products) == 1
    assert db.execute("SELECT gtin FROM product_master WHERE id = %s", products[0]).fetchone() == ("04000000999997",)
    changed = pipeline.record_batch(db, store_id=first, source="api", kind="listing",
                                    rows=[{"sku": "N-2", "name": "Late GTIN", "price": 1, "quantity": 1,
                                           "gtin": "96385074"}])  # fmt: skip
    drain(db)
    # another GTIN names another article: the listing moves to a product of its own (it was ignored with a note,
    # and the listing went on selling the other article); the second store keeps the first product
    assert [r[1:] for r in rows_of(db, changed)] == [("mapped", None, "created")]
    moved = db.execute("SELECT p.gtin FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
                       "WHERE sp.sku IN ('N-2', 'Z-1') ORDER BY sp.sku").fetchall()  # fmt: skip
    assert moved == [("00000096385074",), ("04000000999997",)]


def test_category_paths_ignore_runs_of_spaces_and_is_active_takes_excels_words(db: psycopg.Connection) -> None:
    """`Grocery > Spreads  & Honey` (two spaces in a name) was "not found"; German Excel's WAHR/FALSCH and ja/nein
    were rejected."""
    store = make_store(db)
    top = db.execute("INSERT INTO category (name, slug) VALUES ('Grocery', 'g-x') RETURNING id").fetchone()
    assert top is not None
    leaf = db.execute("INSERT INTO category (name, slug, parent_id) VALUES ('Spreads & Honey', 's-x', %s) RETURNING id",
                      (top[0],)).fetchone()  # fmt: skip
    assert leaf is not None
    rows = [
        {"sku": "H-1", "name": "Honey", "price": 1, "quantity": 1, "category": "grocery >  SPREADS  &\u00a0honey ",
         "is_active": "WAHR"},
        {"sku": "H-2", "name": "Jam", "price": 1, "quantity": 1, "is_active": "nein"},
    ]  # fmt: skip
    batch = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=rows)
    drain(db)
    assert [r[1:3] for r in rows_of(db, batch)] == [("mapped", None), ("mapped", None)]
    got = db.execute(
        "SELECT sp.sku, sp.is_active, p.category_id FROM store_product sp JOIN product_master p "
        "ON p.id = sp.product_master_id WHERE sp.store_id = %s ORDER BY sp.sku",
        (store,),
    ).fetchall()
    assert got == [("H-1", True, leaf[0]), ("H-2", False, None)]


def test_an_inline_write_that_fails_leaves_nothing_for_a_worker_to_apply_later(db: psycopg.Connection) -> None:
    """The record and the mapping of an inline listing write were two transactions: an API process killed (or a
    mapping that raised) between them left a batch held by no one, which a worker applied a minute later, over
    the writes answered meanwhile. Now the write is there whole or not at all."""
    from search_service.ingest import listing_writes

    store = make_store(db)
    db.execute("""CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF EXISTS (SELECT 1 FROM new_rows WHERE sku = 'POISON') THEN RAISE EXCEPTION 'refused'; END IF;
        RETURN NULL; END $$""")  # fmt: skip
    db.execute("CREATE TRIGGER refuse_poison AFTER INSERT ON store_product REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION refuse_poison()")  # fmt: skip

    async def write(sku: str) -> Any:
        conn = await asyncpg.connect(dsn_of(db))
        try:
            row = {"sku": sku, "name": "Tea", "price": 1, "quantity": 3}
            return await listing_writes.record_and_map(conn, store_id=store, rows=[row], worker_id=f"api:{store}")
        finally:
            await conn.close()

    with pytest.raises(asyncpg.RaiseError, match="refused"):
        asyncio.run(write("POISON"))
    assert db.execute("SELECT count(*) FROM import_batch WHERE store_id = %s", (store,)).fetchone() == (0,)
    written = asyncio.run(write("FINE"))
    assert written.results is not None and written.results[0]["status"] == "mapped"  # mapped inline
    assert written.queued is None  # queued behind nothing


def test_a_given_up_write_has_no_results(db: psycopg.Connection) -> None:
    """A listing write's batch failed for good answered `results` with its row `pending` ("may still be applied")."""
    from search_service.ingest import listing_writes

    store = make_store(db)
    batch = pipeline.record_batch(db, store_id=store, source="api", kind="listing",
                                  rows=[{"sku": "X", "name": "x", "price": 1, "quantity": 1}])  # fmt: skip
    db.execute("UPDATE import_batch SET status = 'failed' WHERE id = %s", (batch,))

    async def results() -> Any:
        conn = await asyncpg.connect(dsn_of(db))
        try:
            return await listing_writes.results_if_mapped(conn, batch)
        finally:
            await conn.close()

    assert asyncio.run(results()) is None


class _Counted:
    """An asyncpg connection that counts the statements sent through it (a savepoint's are not)."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.sent, self.analyzed = conn, 0, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        self.sent += 1
        return await self.conn.fetch(*args, **kwargs)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.sent += 1
        self.analyzed |= str(args[0]).lstrip().upper().startswith("ANALYZE")
        return await self.conn.execute(*args, **kwargs)


def _write(db: psycopg.Connection, store: uuid.UUID, rows: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], int]:
    """A listing batch written as the API writes it: each item's (status, error, matched_by), the statements sent."""
    from search_service.ingest import listing_writes

    async def run() -> tuple[list[tuple[Any, ...]], int]:
        conn = _Counted(await asyncpg.connect(dsn_of(db)))
        try:
            written = await listing_writes.record_and_map(conn, store_id=store, rows=rows, worker_id="api:test")
            results = written.results
        finally:
            await conn.conn.close()
        assert results is not None
        assert not conn.analyzed  # 1,000 items (a chunk of exactly its rows) refreshed the statistics: ~1 s
        return [(r["status"], r["error"], r["matched_by"]) for r in results], conn.sent

    return asyncio.run(run())


def _state(db: psycopg.Connection, store: uuid.UUID) -> list[tuple[Any, ...]]:
    """The store's listings and how many history rows and level changes their writes left."""
    return db.execute(
        "SELECT sp.sku, sp.price::text, sp.quantity, sp.is_active, sp.title, "
        "       (SELECT count(*) FROM history_store_product h WHERE h.store_product_id = sp.id), "
        "       (SELECT count(*) FROM inventory_event e WHERE e.store_product_id = sp.id) "
        "FROM store_product sp WHERE sp.store_id = %s ORDER BY sp.sku",
        (store,),
    ).fetchall()


def test_repeated_items_are_answered_as_one_by_one_without_a_round_each(db: psycopg.Connection) -> None:
    """1,000 items of one SKU were mapped in 1,000 rounds (a savepoint, a lookup and the writes each, and every
    write of the listing left one more version of its row for the later probes to walk): seconds, where 1,000
    SKUs took a fraction. A repeat of the item before it now takes the answer of its run's second item."""
    item = {"sku": "R1", "name": "Oat milk", "price": "1.49", "quantity": 7, "gtin": "4006381333931"}
    same, sent_same = _write(db, make_store(db), [item] * 1000)
    distinct, sent_distinct = _write(db, make_store(db), [{**item, "sku": f"R{n}", "gtin": None} for n in range(1000)])
    assert same == [("mapped", None, "created")] + [("mapped", None, "gtin")] * 999
    assert distinct == [("mapped", None, "created")] * 1000
    assert sent_same <= sent_distinct + 10, (sent_same, sent_distinct)  # was 3 statements an item: 3,000 and more
    batch, one_by_one = make_store(db, "batch"), make_store(db, "one by one")  # the same answers either way
    answers = _write(db, batch, _repeating("4000000000013"))[0]
    assert answers == [_write(db, one_by_one, [row])[0][0] for row in _repeating("4000000000020")]
    assert _state(db, batch) == _state(db, one_by_one)


def test_a_repeat_only_python_equal_to_the_items_before_it_is_answered_as_sent_one_by_one(
    db: psycopg.Connection,
) -> None:
    """h05 D2: `"quantity": true` after two items with `"quantity": 1` was taken for a repeat (Python's `True == 1`)
    and answered as the second, `mapped`, where alone it is rejected; so was an attribute's `true` after `1`."""
    item = {"sku": "T7", "name": "t", "price": "1", "quantity": 1, "attributes": {"a": 1}}
    rows = [item, item, {**item, "quantity": True}, item, {**item, "attributes": {"a": True}}]
    batch, one_by_one = make_store(db, "batch"), make_store(db, "one by one")
    for store in (batch, one_by_one):  # listed already: the run's second item writes nothing
        assert _write(db, store, [item])[0] == [("mapped", None, "created")]
    answers = _write(db, batch, rows)[0]
    assert answers == [_write(db, one_by_one, [row])[0][0] for row in rows]
    assert answers[2] == ("rejected", "quantity must be a whole number", None)
    assert _state(db, batch) == _state(db, one_by_one)


def _repeating(gtin: str) -> list[dict[str, Any]]:
    """Runs of repeated items of each op and outcome, the store's own GTIN on one SKU's (another SKU in the batch:
    a GTIN's rows are all mapped)."""
    return [
        *[{"sku": "A", "name": "Tea", "price": "2", "quantity": 1, "gtin": gtin}] * 3,
        *[{"sku": "B", "name": "Milk", "price": "1", "quantity": 5}] * 4,
        *[{"sku": "C", "name": "Bad", "price": "-1", "quantity": 5}] * 3,
        *[{"sku": "B", "op": "stock", "quantity": 2}] * 3,
        {"sku": "A", "name": "Tea", "price": "2", "quantity": 1, "gtin": gtin},
        *[{"sku": "D", "name": "Jam", "price": "3", "quantity": 1, "version": 5}] * 3,
        *[{"sku": "D", "name": "Jam", "price": "4", "quantity": 2, "version": 3}] * 3,
        *[{"sku": "B", "op": "delete"}] * 3,
        *[{"sku": "E", "op": "stock", "quantity": 1}] * 3,
    ]


def test_a_repeat_after_a_second_item_that_wrote_is_mapped_as_one_by_one(db: psycopg.Connection) -> None:
    """Repeats take their run's second item's answer only where that item wrote nothing (a fixed point); here
    every write of the listing changes it again (a trigger), so each repeat is mapped, as one by one."""
    db.execute("""CREATE FUNCTION tick() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.title := NEW.title || '*'; NEW.quantity := OLD.quantity + 1; RETURN NEW; END $$""")
    db.execute("CREATE TRIGGER tick BEFORE UPDATE ON store_product FOR EACH ROW EXECUTE FUNCTION tick()")
    db.execute("""CREATE FUNCTION tick_new() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE store_product SET quantity = quantity WHERE id = NEW.id; RETURN NULL; END $$""")
    db.execute("CREATE TRIGGER tick_new AFTER INSERT ON store_product FOR EACH ROW EXECUTE FUNCTION tick_new()")
    store = make_store(db)
    answers, _ = _write(db, store, [{"sku": "T", "name": "Tea", "price": "2", "quantity": 7}] * 5)
    assert answers == [("mapped", None, "created")] + [("mapped", None, "sku")] * 4
    # its title is never the item's: each item wrote, and each write ticked the level (the insert's too)
    assert [row[:5] for row in _state(db, store)] == [("T", "2.00", 12, True, "Tea*")]
