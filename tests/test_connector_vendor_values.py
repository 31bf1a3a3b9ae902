"""Vendor values as a store means them: an HTML description's entities read as text, a fractional stock level
kept in stock. Each through a fake vendor over HTTP, the sync, the import job's mapping into real PostgreSQL, and
the served API."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from typing import Any

import httpx
import psycopg

from search_service.ingest.connectors import erply, lightspeed_r, lightspeed_x, shopify
from search_service.ingest.connectors.common import MapContext
from tests.connector_helpers import listing, make_connection, make_store, map_batches, sync
from tests.ingest_helpers import bearer, store_key
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, LightspeedXFake, ShopifyFake

SHOPIFY = ("shopify", {"shop": "s.myshopify.com", "token": "shpat_test"})
X_SERIES = ("lightspeed-x", {"domain_prefix": "shop", "token": "x-token"})
R_SERIES = ("lightspeed-r", {"account": "4242", "token": "r-token"})


def _synced(conn: psycopg.Connection, *vendors: tuple[Any, str, tuple[str, dict[str, str]]]) -> list[uuid.UUID]:
    """A store per (fake, location, (source, credentials)), connected, synced and mapped; the fakes closed."""
    stores: list[uuid.UUID] = []
    try:
        for n, (fake, location, (source, credentials)) in enumerate(vendors):
            stores.append(make_store(conn, f"{source} {n}", 52.1 + n / 10, 4.1 + n / 10))
            sync(conn, make_connection(conn, stores[-1], source, location, fake.server.url, credentials))
        map_batches(conn)
    finally:
        for fake, *_ in vendors:
            fake.server.close()
    return stores


def _product(conn: psycopg.Connection, store: uuid.UUID, sku: str) -> tuple[Any, ...]:
    """(product id, description) of the store's listing `sku`."""
    row = conn.execute(
        "SELECT p.id, p.description FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
        "WHERE sp.store_id = %s AND sp.sku = %s",
        (store, sku),
    ).fetchone()
    assert row is not None
    return tuple(row)


def _matches(conn: psycopg.Connection, product: uuid.UUID, word: str) -> bool:
    row = conn.execute(
        "SELECT search_tsv @@ plainto_tsquery('plinqy_english', %s) FROM product_master WHERE id = %s", (word, product)
    ).fetchone()
    return bool(row and row[0])


def test_html_entities_in_vendor_descriptions_are_read_as_text(conn: psycopg.Connection, base: str) -> None:
    """Shopify's `body_html` and X-Series' `description` lost their tags but kept their entities: `Tea &amp; coffee
    &ndash; 300&nbsp;ml` was stored, served and searched as written ("amp", "nbsp" words; "grün" not found). An
    escaped tag stays text: it is not read as a tag once its entities are."""
    shopify, x_series = ShopifyFake(), LightspeedXFake()
    shopify.add(Item("1", "Tea sampler", "4.00", 3), product_id=501, variant_id=601, inventory_item_id=701)
    shopify.products["1"]["body_html"] = "<p>Tea &amp; coffee &ndash; 300&nbsp;ml. It&#39;s gr&uuml;n</p>"
    x_series.add(Item("x1", "Milk frother", "19.00", 2))
    x_series.products["x1"]["description"] = "<p>Foams &amp; froths &lt;script&gt;x&lt;/script&gt;</p>"
    s_store, x_store = _synced(conn, (shopify, "24826418", SHOPIFY), (x_series, "outlet-1", X_SERIES))
    tea, tea_text = _product(conn, s_store, "701")
    frother, frother_text = _product(conn, x_store, "x1")
    assert tea_text == "Tea & coffee – 300 ml. It's grün"
    assert frother_text == "Foams & froths <script>x</script>"
    served = httpx.get(f"{base}/v1/products/{tea}")
    assert served.status_code == 200, served.text
    assert served.json()["description"] == "Tea & coffee – 300 ml. It's grün"
    assert _matches(conn, tea, "grün") and not _matches(conn, tea, "amp") and not _matches(conn, frother, "amp")


def _noted(conn: psycopg.Connection, base: str, store: uuid.UUID, cid: uuid.UUID) -> list[tuple[str, str]]:
    """(sku, note) of each row mapped with notes of the connection's sync batches, as `/v1/imports/{id}/notes`
    answers them."""
    key, notes = store_key(conn, store, "listings:write"), []
    for (batch,) in conn.execute("SELECT id FROM import_batch WHERE connection_id = %s ORDER BY seq", (cid,)):
        answer = httpx.get(f"{base}/v1/imports/{batch}/notes", headers=bearer(key))
        assert answer.status_code == 200, answer.text
        for _number, note, *cells in list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))[1:]:
            notes.append((next(c.removeprefix("sku=") for c in cells if c.startswith("sku=")), note))
    return notes


def _notes(conn: psycopg.Connection, base: str, store: uuid.UUID, cid: uuid.UUID) -> dict[str, str]:
    """sku -> the last note of its rows (`_noted`)."""
    return dict(_noted(conn, base, store, cid))


def test_a_fractional_vendor_stock_level_is_rounded_up_with_a_note(conn: psycopg.Connection, base: str) -> None:
    """Erply's `amountInStock` "0.750" (cheese by the kilo) became quantity 0 (int()), out of search, and "2.5" 2,
    with no word of it. A positive level now stays in stock: a fraction rounds up to whole units, and the row is
    mapped with a note saying so, on a first sync (the level carried on its product's upsert) and a later poll:
    once, though a later poll also resends a level its upsert carried as a stock row (it was noted twice)."""
    fake = ErplyFake(warehouses=("1",))
    for key in ("101", "102", "103"):
        fake.add(Item(key, f"Cheese {key}", "9.90", 4))
    fake.set_stock("103", "0.750")
    fake.set_stock("102", "2.5")
    store = make_store(conn, "E", 52.3, 4.3)
    creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
    cid = make_connection(conn, store, "erply", "1", fake.server.url + "/api/", creds)
    try:
        sync(conn, cid)
        map_batches(conn)
        assert [listing(conn, store, key) for key in ("101", "102", "103")] == [
            ("9.90", 4, True), ("9.90", 3, True), ("9.90", 1, True),
        ]  # fmt: skip
        fake.set_stock("101", "0.25")
        fake.add(Item("104", "Cheese 104", "9.90", 4))  # new: its upsert carries the level, a stock row repeats it
        fake.set_stock("104", "0.5")
        sync(conn, cid)
        map_batches(conn)
        assert [listing(conn, store, key) for key in ("101", "104")] == [("9.90", 1, True), ("9.90", 1, True)]
    finally:
        fake.server.close()
    noted = _noted(conn, base, store, cid)  # the later poll read every product again: each a row, a note each
    assert Counter(sku for sku, note in noted if "rounded up" in note) == {"101": 1, "102": 2, "103": 2, "104": 1}
    assert {sku: note.partition(";")[0] for sku, note in noted} == {
        "101": "stock level 0.25 rounded up to 1 (a listing holds whole units)",
        "102": "stock level 2.5 rounded up to 3 (a listing holds whole units)",
        "103": "stock level 0.750 rounded up to 1 (a listing holds whole units)",
        "104": "stock level 0.5 rounded up to 1 (a listing holds whole units)",
    }
    ctx = MapContext("1")  # every vendor's level reader: one function
    assert erply.map_stock({"productID": 7, "amountInStock": "0.750"})["quantity"] == 1  # type: ignore[index]
    shop = {"itemShopID": "1", "itemID": "7", "shopID": "1", "qoh": "2.5"}
    assert lightspeed_r.map_item_shop(shop, ctx) == {"op": "stock", "sku": "7", "quantity": 3, "quantity_sent": "2.5"}
    x_level = {"outlet_id": "1", "product_id": "p", "inventory_level": 0.5, "version": 9}
    assert lightspeed_x.map_inventory(x_level, ctx)["quantity"] == 1  # type: ignore[index]
    s_level = {"inventory_item_id": 5, "location_id": 1, "available": "0.5", "updated_at": "2025-06-18T18:00:00Z"}
    assert shopify.map_inventory_level(s_level, ctx)["quantity"] == 1  # type: ignore[index]


def test_a_vendors_price_past_cents_goes_to_ingest_as_sent_and_its_rounding_is_noted(
    conn: psycopg.Connection, base: str
) -> None:
    """The connectors rounded a price to cents before ingest: R-Series' "0.004" went on sale free (0.00) and
    "3.999" became 4.00, the raw rows holding the rounded prices and no note. Ingest rounds them now, as for a CSV,
    and says so; the raw row keeps what the vendor sent. Without the note for people typing a CSV ("if it is 3999,
    write it without a thousands separator"): a vendor's program writes a decimal point."""
    fake = LightspeedRFake()
    for key, price in (("1", "3.999"), ("2", "0.004"), ("3", "2.50")):
        fake.add(Item(key, f"Oat drink {key}", price, 7))
    store = make_store(conn, "R", 52.3, 4.3)
    cid = make_connection(conn, store, R_SERIES[0], "1", fake.server.url, R_SERIES[1])
    try:
        sync(conn, cid)
        map_batches(conn)
    finally:
        fake.server.close()
    assert [listing(conn, store, key) for key in ("1", "2", "3")] == [
        ("4.00", 7, True), ("0.00", 7, True), ("2.50", 7, True),
    ]  # fmt: skip
    notes = _notes(conn, base, store, cid)  # the fake's category is not seeded: noted too
    assert {sku: note.split("; ")[0] for sku, note in notes.items() if note.startswith("price")} == {
        "1": "price 3.999 rounded to 4.00 (a listing holds 2 decimals)",  # no "if it is 3999": a program's point
        "2": "price 0.004 rounded to 0.00 (a listing holds 2 decimals)",
    }
    sent = conn.execute(
        "SELECT r.payload->>'sku', r.payload->>'price' FROM imported_product_raw r JOIN import_batch b ON b.id = "
        "r.import_batch_id WHERE b.connection_id = %s AND r.payload->>'op' = 'upsert' ORDER BY 1",
        (cid,),
    ).fetchall()
    assert sent == [("1", "3.999"), ("2", "0.004"), ("3", "2.50")]


def test_an_erply_matrix_parent_is_no_listing(conn: psycopg.Connection) -> None:
    """A `type: "MATRIX"` product (the parent of its sizes and colours: Erply's getProducts doc counts only the
    variations among "the items you can sell") became a listing "Shirt" at quantity 0 beside its variations, which
    `in_stock=false` showed as an item of its own. It is read and left out, as a Shopify product beside its
    variants; a parent listed before (200 here) goes with the next full sync, which keeps the variations."""
    fake = ErplyFake(warehouses=("1",))
    for key, name in (("100", "Shirt"), ("101", "Shirt S"), ("102", "Shirt M"), ("200", "Jacket")):
        fake.add(Item(key, name, "20.00", 0 if key in ("100", "200") else 3))
    fake.update("100", type="MATRIX")
    for key in ("101", "102"):
        fake.update(key, parentProductID=100)
    del fake.stock[("1", "100")], fake.stock[("1", "200")]  # a parent holds no stock of its own
    store = make_store(conn, "M", 52.4, 4.4)
    creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
    cid = make_connection(conn, store, "erply", "1", fake.server.url + "/api/", creds)
    try:
        first = sync(conn, cid)
        map_batches(conn)
        assert [listing(conn, store, key) for key in ("100", "101", "102", "200")] == [
            None, ("20.00", 3, True), ("20.00", 3, True), ("20.00", 0, True),
        ]  # fmt: skip
        fake.update("200", type="MATRIX")  # as a parent listed before the fix
        full = sync(conn, cid, full=True)
        map_batches(conn)
    finally:
        fake.server.close()
    assert [listing(conn, store, key) for key in ("101", "102", "200")] == [
        ("20.00", 3, True), ("20.00", 3, True), ("20.00", 0, False),
    ]  # fmt: skip
    assert (first.rows, full.removed) == (3, 1)


def _gtins(conn: psycopg.Connection, store: uuid.UUID) -> dict[str, str | None]:
    """sku -> the GTIN of the product the store's listing joined."""
    rows = conn.execute(
        "SELECT sp.sku, p.gtin FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
        "WHERE sp.store_id = %s",
        (store,),
    ).fetchall()
    return {sku: gtin for sku, gtin in rows}


def test_the_first_barcode_that_is_a_gtin_is_used(conn: psycopg.Connection) -> None:
    """R-Series took `ean` whenever it was not empty ("N/A", "0000", a wrong check digit) and X-Series the first
    code of a GTIN type, unchecked: a valid `upc` or EAN code after them was ignored, and the listing lost its
    catalogue match with no word. An 11-digit UPC-A (its leading zero dropped: R-Series' 11-14 digits) was never a
    GTIN. Each barcode is now tried in turn; a store's own (restricted circulation) number gives way to an article's."""
    r_series, x_series = LightspeedRFake(), LightspeedXFake()
    r_barcodes = {"5000": ("", "036000291452"), "5002": ("2100000118248", "012345678905"),
                  "5003": ("N/A", "073854008089"), "6000": ("0000", "5901234123457"),
                  "7000": ("", "50001126377"), "8000": ("4006381333931", "junk"),
                  "9000": ("2000123456782", "097802013796")}  # fmt: skip
    for key, (ean, upc) in r_barcodes.items():
        r_series.add(Item(key, f"Item {key}", "2.00", 1))
        r_series.items[key].update(ean=ean, upc=upc)
    x_series.add(Item("x1", "Codes probe", "4.00", 4))
    x_series.products["x1"]["product_codes"] = [
        {"type": "UPC", "code": "ABC-123"}, {"type": "CUSTOM", "code": "4006381333931"},
        {"type": "EAN", "code": "5901234123457"},
    ]  # fmt: skip
    r_store, x_store = _synced(conn, (r_series, "1", R_SERIES), (x_series, "outlet-1", X_SERIES))
    assert _gtins(conn, r_store) == {
        "5000": "00036000291452", "5002": "00012345678905", "5003": "00073854008089", "6000": "05901234123457",
        "7000": "00050001126377", "8000": "04006381333931", "9000": "00097802013796",
    }  # fmt: skip
    assert _gtins(conn, x_store) == {"x1": "05901234123457"}


def test_an_erply_time_past_the_year_9999_refuses_its_row_alone(conn: psycopg.Connection) -> None:
    """A `lastModified` (or a deletion's `timestamp`) in milliseconds, or 1e20, raised out of the mapping: every
    sync of the connection failed at that page for good (its cursor kept), the good products on it unwritten and
    no row named. Its row alone is refused now, naming `updated_at` and the vendor's field; the rest applies."""
    fake = ErplyFake(warehouses=("1",))
    for key in ("101", "102", "103", "104"):
        fake.add(Item(key, f"Tea {key}", "2.00", 5))
    fake.products["102"]["lastModified"] = fake.clock * 1000  # epoch milliseconds
    fake.products["103"]["lastModified"] = 1e20
    store = make_store(conn, "E", 52.5, 4.5)
    creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
    cid = make_connection(conn, store, "erply", "1", fake.server.url + "/api/", creds)
    try:
        sync(conn, cid)
        fake.delete("104")
        fake.deletions[-1]["timestamp"] *= 1000
        fake.set_stock("101", 8)
        sync(conn, cid)
        map_batches(conn)
    finally:
        fake.server.close()
    assert [listing(conn, store, key) for key in ("101", "102", "103", "104")] == [
        ("2.00", 8, True), None, None, ("2.00", 5, True),
    ]  # fmt: skip
    refused = conn.execute(
        "SELECT DISTINCT r.payload->>'sku', r.error FROM imported_product_raw r JOIN import_batch b "
        "ON b.id = r.import_batch_id WHERE b.connection_id = %s AND r.payload->>'op' IN ('upsert', 'delete')"
        " AND r.status = 'rejected' ORDER BY 1",
        (cid,),
    ).fetchall()
    past = "is past the year 9999 as a Unix time in seconds"
    assert refused == [
        ("102", f"updated_at (lastModified {fake.products['102']['lastModified']}) {past}"),
        ("103", f"updated_at (lastModified 1e+20) {past}"),
        ("104", f"updated_at (timestamp {fake.deletions[-1]['timestamp']}) {past}"),
    ]
