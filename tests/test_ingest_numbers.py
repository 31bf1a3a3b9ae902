"""Prices and stock levels as people and programs write them: thousands separators read where the row says which
sign is the decimal one, the forms that could mean two numbers refused naming both, and a German spreadsheet's
file imported over real HTTP with its thousands where they belong."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
import psycopg
import pytest

from search_service.ingest.rows import Rejected, validate
from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, new_store, signed, store_key, webhook_connection


def row(price: object, quantity: object = 1) -> dict[str, object]:
    return {"sku": "s1", "name": "Kettle", "price": price, "quantity": quantity}


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("3,49", "3.49"),
        ("3.49", "3.49"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1'234.50", "1234.50"),
        ("1'234'567.50", "1234567.50"),
        ("1 234 567", "1234567"),
        ("1.234.567,89", "1234567.89"),
        ("1,234,567", "1234567"),
        ("1.999", "1.999"),  # a lone point is the decimal sign, as programs write it (rounded to cents, noted)
        ("0,125", "0.125"),
        ("٣.٤٩", "3.49"),  # digits of any script, as full-width ones
        ("٣٫٤٩", "3.49"),  # U+066B, the Arabic decimal sign
        ("١٬٢٣٤٫٥٦", "1234.56"),  # U+066C groups thousands: no two readings
        ("١٬٢٩٩", "1299"),
        ("３.４９", "3.49"),
        ("３．４９", "3.49"),  # U+FF0E and U+FF0C: what a Japanese input method types in full-width mode
        ("３，４９", "3.49"),
        ("１，２３４．５６", "1234.56"),
        ("3.49\u200b", "3.49"),  # a zero-width space pasted with it, dropped as search drops it
        (1.25, "1.25"),
    ],
)
def test_a_price_reads_with_its_thousands_separators(given: object, read: str) -> None:
    assert validate(row(given)).price == Decimal(read).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("1,299", "price '1,299' could be 1.299 or 1299: write it without a thousands separator"),
        ("3,490", "price '3,490' could be 3.49 or 3490"),
        ("1,2,3", "price '1,2,3' is not a number (write 1234.50 or 1234,50)"),
        ("12,34.5", "price '12,34.5' is not a number"),
        ("1.234.5", "price '1.234.5' is not a number"),
        ("1_000", "price '1_000' is not a number (write 1234.50 or 1234,50)"),  # Python's grouping, no till's
        ("3_49", "price '3_49' is not a number"),
        ("١٬٢٣٤.٥٦", "price '١٬٢٣٤.٥٦' is not a number"),  # an Arabic sign beside a Latin one
        (
            "1.23E+03",
            "price '1.23E+03' is in scientific notation, which may have lost digits: write the number "
            "in full (1234.50 or 1234,50)",
        ),
        ("1,23E+03", "price '1,23E+03' is in scientific notation"),
        ("1e3", "price '1e3' is in scientific notation"),
        ("3 49", "price '3 49' is not a number (write 1234.50 or 1234,50)"),  # a space groups three digits, or none
        ("3'49", 'price "3\'49" is not a number'),
        ("12'3456", 'price "12\'3456" is not a number'),
        ("1'2'3", "price \"1'2'3\" is not a number"),
        ("3’49", "price '3’49' is not a number"),
    ],
)
def test_a_price_that_could_be_two_numbers_or_none_is_refused(given: str, says: str) -> None:
    with pytest.raises(Rejected, match=re.escape(says)):
        validate(row(given))


@pytest.mark.parametrize(
    ("price", "quantity", "level"),
    [
        ("3,49", "1.000", 1000),  # beside a decimal comma, the point groups thousands
        ("1.234,56", "12.500", 12500),
        ("3.49", "1.000", 1),  # beside a decimal point, it is one
        ("3.49", "1,000", 1000),
        ("3.49", "12.000", 12),
        ("3", "1.000.000", 1_000_000),
        ("3,49", "2,0", 2),
        ("2,99", "10.0", 10),  # a group of one digit groups no thousands: the level's own decimal point
        ("2.99", "10,0", 10),
        ("2.99", "10,00", 10),
        ("3,49", "1234.000", 1234),  # four digits before it: no thousands group either
        ("3.49", "1.000.000", 1_000_000),  # a sign twice groups thousands whatever the price's
        ("3,49", "1,000.0", 1000),
        (3.49, 7, 7),
        (3.49, "1.000", 1),  # a JSON number's decimal sign is a point
        (3.49, "1,000", 1000),
        (Decimal("3.49"), "1.000", 1),
        (3, "1,500", 1500),  # a whole number too: JSON's 3 is 3.0 to the API
        (3, "1.000", 1),
        ("3.49", "٥", 5),
        ("3,49", "١٬٠٠٠", 1000),
        ("3.49", "٥٫٠", 5),
    ],
)
def test_a_level_reads_by_the_decimal_sign_of_its_rows_price(price: object, quantity: object, level: int) -> None:
    assert validate(row(price, quantity)).quantity == level


@pytest.mark.parametrize(
    ("price", "quantity", "says"),
    [
        ("3", "1,000", "quantity '1,000' could be 1 or 1000"),
        ("3.49", "1.500", "quantity '1.500' is not a whole number"),
        ("3,49", "1.5", "quantity '1.5' is not a whole number"),
        ("3,49", "2,5", "quantity '2,5' is not a whole number"),
        ("3", "1_000", "quantity '1_000' is not a number"),
        ("3,49", "1_000", "quantity '1_000' is not a number"),
        ("1", "2.5e1", "quantity '2.5e1' is in scientific notation"),
        ("1", "1'0", 'quantity "1\'0" is not a number'),
        ("1", "1 5", "quantity '1 5' is not a number"),
        ("3,49", "1 0,000", "quantity '1 0,000' is not a number"),
    ],
)
def test_a_level_that_could_be_two_numbers_or_a_fraction_is_refused(price: object, quantity: str, says: str) -> None:
    with pytest.raises(Rejected, match=says):
        validate(row(price, quantity))


def imported(base: str, db_url: str, text: str) -> tuple[str, str, str]:
    """A new store, its key and the status URL of its upload of `text`, once mapped."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    headers = {**bearer(key), "content-type": "text/csv"}
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", content=text.encode(), headers=headers)
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    return store, key, f"{base}{accepted.json()['status_url']}"


GERMAN = "sku;name;price;quantity\ntv1;Fernseher 55 Zoll;1.299,00;1.000\nmilk;Milch;1,19;24\nodd;Kaffee;1,299;3\n"


def test_a_german_spreadsheets_file_imports_its_thousands_and_refuses_what_could_be_two(base: str, db_url: str) -> None:
    store, key, status_url = imported(base, db_url, GERMAN)
    status = httpx.get(status_url, headers=bearer(key)).json()
    assert (status["status"], status["total_rows"], status["error_rows"]) == ("completed", 3, 1)
    errors = httpx.get(f"{status_url}/errors", headers=bearer(key)).text
    assert "price '1,299' could be 1.299 or 1299" in errors
    with psycopg.connect(db_url) as conn:
        listed = conn.execute(
            "SELECT sku, price::text, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
    assert listed == [("milk", "1.19", 24), ("tv1", "1299.00", 1000)]


THOUSANDS = "sku;name;price;quantity\r\nTV-2;Fernseher;1.290;3\r\nTV-3;E-Bike;2.500;1\r\nTV-4;Kabel;3,49;1.000\r\n"


def test_a_price_with_a_point_before_three_digits_is_noted_naming_the_thousands_reading(base: str, db_url: str) -> None:
    """`2.500` (an e-bike at 2.500 EUR, in a German file) was stored as 2.50 with no note, as `1.290` as 1.29: only
    a price that rounding changed (`1.299`) was noted. Still read as a decimal point, now noted on every way in."""
    store, key, status_url = imported(base, db_url, THOUSANDS)
    status = httpx.get(status_url, headers=bearer(key)).json()
    assert (status["mapped_rows"], status["error_rows"], status["noted_rows"]) == (3, 0, 2), status
    notes = httpx.get(f"{status_url}/notes", headers=bearer(key)).text
    lines = notes.removeprefix("\ufeff").splitlines()
    assert lines[1:] == [
        '"1","price \'1.290\' read as 1.29 (a lone point is a decimal point): if it is 1290, write it without a '
        'thousands separator","TV-2","Fernseher","1.290","3"',
        '"2","price \'2.500\' read as 2.50 (a lone point is a decimal point): if it is 2500, write it without a '
        'thousands separator","TV-3","E-Bike","2.500","1"',
    ]
    put = httpx.put(f"{base}/v1/stores/{store}/listings/P1", json={"name": "e", "price": " 12.500 ", "quantity": 1},
                    headers=bearer(key))  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json()["notes"].startswith(
        "price '12.500' read as 12.50 (a lone point is a decimal point): if it is 12500"
    )
    for price in ("0.500", "2.50", 2.5, "1234.500"):  # no thousands group starts with 0 or has four digits
        assert validate(row(price)).notes == []


def test_a_level_with_a_lone_point_beside_a_noted_price_is_noted_too() -> None:
    """`2.500;1.000` in a German file is 2500 EUR and a thousand in stock: the price was noted as read 2.50, the
    level read as 1 without a word. Both are noted now; beside a plain price (`3.49`) the level is one, unnoted."""
    read = validate(row("2.500", " 1.000 "))
    assert read.quantity == 1 and read.notes[1:] == [
        "quantity '1.000' read as 1 (as the price's lone point): if it is 1000, write it without a thousands separator"
    ]
    assert validate(row("3.49", "1.000")).notes == [] and validate(row("2.500", "3")).notes[1:] == []


ROUNDED_1234 = (
    "price '1.234' read as 1.234, rounded to 1.23 (a lone point is a decimal point, and a listing holds 2 "
    "decimals): if it is 1234, write it without a thousands separator"
)


def test_a_price_with_a_lone_point_that_rounds_is_noted_naming_the_thousands_reading(base: str, db_url: str) -> None:
    """`1.234` (1234 EUR in a German file) was stored as 1.23 noted only as rounded, while `2.500` was noted naming
    2500: the lone point's note was skipped for a price rounding changed. One note says both now, on every way in."""
    store, key, status_url = imported(base, db_url, "sku;name;price;quantity\nLP-4;Lone;1.234;3\nLP-5;Lone;2.500;3\n")
    notes = httpx.get(f"{status_url}/notes", headers=bearer(key)).text.removeprefix("\ufeff").splitlines()
    assert [line.split('","')[1] for line in notes[1:]] == [
        ROUNDED_1234,
        "price '2.500' read as 2.50 (a lone point is a decimal point): if it is 2500, write it without a thousands "
        "separator",
    ]
    items = [{"sku": "LP-2", "name": "x", "price": "1.234", "quantity": 1},
             {"sku": "LP-11", "name": "x", "price": "12.345", "quantity": "1.000"}]  # fmt: skip
    url = f"{base}/v1/stores/{store}/listings"
    results = httpx.post(f"{url}/batch", json={"items": items}, headers=bearer(key)).json()["results"]
    assert [r["notes"] for r in results] == [
        ROUNDED_1234,
        "price '12.345' read as 12.345, rounded to 12.35 (a lone point is a decimal point, and a listing holds 2 "
        "decimals): if it is 12345, write it without a thousands separator; quantity '1.000' read as 1 (as the "
        "price's lone point): if it is 1000, write it without a thousands separator",
    ]
    put = httpx.put(f"{url}/LP-9", json={"name": "x", "price": "1.234", "quantity": 1}, headers=bearer(key))
    assert put.status_code == 200 and put.json()["notes"] == ROUNDED_1234, put.text
    assert validate(row(1.234)).notes == ["price 1.234 rounded to 1.23 (a listing holds 2 decimals)"]  # a number


def listed_and_rejected(
    db_url: str, store: str, rows: str = "r.status = 'rejected'"
) -> tuple[list[tuple[str, str, int]], list[str]]:
    """The store's listings (sku, price, quantity) and the reasons (notes) of its imports' `rows`, sorted."""
    with psycopg.connect(db_url) as conn:
        listed = conn.execute(
            "SELECT sku, price::text, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
        errors = conn.execute(
            "SELECT r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
            f"WHERE b.store_id = %s AND {rows}",
            (store,),
        ).fetchall()
    return listed, sorted(e for (e,) in errors)


def test_a_level_of_ten_point_zero_beside_a_decimal_comma_imports_as_ten(
    base: str, db_url: str, settings: Settings
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
        connection, secret = webhook_connection(conn, settings, store)
    upload = "sku;name;price;quantity\nQQ1;Qty test;2,99;10.0\nQQ2;Qty test;2.99;10,0\n"
    headers = {**bearer(key), "content-type": "text/csv"}
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers)
    assert accepted.status_code == 202, accepted.text
    body = json.dumps(
        {"type": "listing.upsert", "data": {"sku": "QQ3", "name": "t", "price": "2,99", "quantity": "10.0"}}
    )
    hooked = httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=signed(secret, body.encode()))
    assert hooked.status_code == 202, hooked.text
    drain_imports(db_url)
    listed, errors = listed_and_rejected(db_url, store, "r.error IS NOT NULL")  # no note either
    assert ([(sku, level) for sku, _, level in listed], errors) == ([("QQ1", 10), ("QQ2", 10), ("QQ3", 10)], [])


def test_numbers_with_underscores_are_refused_and_arabic_signs_read(base: str, db_url: str, settings: Settings) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
        connection, secret = webhook_connection(conn, settings, store)
    upload = "sku;name;price;quantity\nU1;t;1_000;1\nU2;t;3,49;1_000\nA1;t;٣٫٤٩;٥\nA2;t;١٬٢٣٤٫٥٦;١٬٠٠٠\n"
    headers = {**bearer(key), "content-type": "text/csv"}
    assert httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers).status_code == 202
    body = json.dumps({"type": "listing.upsert", "data": {"sku": "U3", "name": "t", "price": "2", "quantity": "1_000"}})
    hooked = httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=signed(secret, body.encode()))
    assert hooked.status_code == 202, hooked.text
    drain_imports(db_url)
    listed, errors = listed_and_rejected(db_url, store)
    assert listed == [("A1", "3.49", 5), ("A2", "1234.56", 1000)]
    assert errors == [
        "price '1_000' is not a number (write 1234.50 or 1234,50)",
        "quantity '1_000' is not a number (write a whole number such as 1500)",
        "quantity '1_000' is not a number (write a whole number such as 1500)",
    ]


def test_a_gtin_a_spreadsheet_wrote_as_a_number_links_when_its_digits_are_all_there(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    upload = (
        "sku,name,price,quantity,gtin\nG1,t,1,1,4.067829728481E+12\nG2,t,1,1,4044608329039.0\nG3,t,1,1,4.00638E+12\n"
    )
    headers = {**bearer(key), "content-type": "text/csv"}
    assert httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers).status_code == 202
    drain_imports(db_url)
    with psycopg.connect(db_url) as conn:
        linked = conn.execute(
            "SELECT s.sku, p.gtin, r.error FROM store_product s JOIN product_master p ON p.id = s.product_master_id "
            "JOIN import_batch b ON b.store_id = s.store_id "
            "JOIN imported_product_raw r ON r.import_batch_id = b.id AND r.payload->>'sku' = s.sku "
            "WHERE s.store_id = %s ORDER BY s.sku",
            (store,),
        ).fetchall()
    assert [(sku, gtin and gtin.zfill(14)) for sku, gtin, _ in linked] == [
        ("G1", "04067829728481"),
        ("G2", "04044608329039"),
        ("G3", None),
    ]
    assert [note for *_, note in linked] == [
        None,
        None,
        "gtin '4.00638E+12' ignored: scientific notation keeps 6 of its 13 digits (a spreadsheet number format lost "
        "the rest: format the column as text)",
    ]


def test_a_level_beside_a_json_number_price_reads_by_its_decimal_point(base: str, db_url: str) -> None:
    """`1.000` beside `"price": "3.49"` was 1, beside `"price": 3.49` (the same price as a JSON number) refused as
    "could be 1 or 1000": a number's decimal sign was not read. A whole price as text ("3") still settles nothing."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    items = [
        {"sku": "Q-1", "name": "Qty probe", "price": "3.49", "quantity": "1.000"},
        {"sku": "Q-2", "name": "Qty probe", "price": 3.49, "quantity": "1.000"},
        {"sku": "Q-3", "name": "Qty probe", "price": 3.49, "quantity": "1,000"},
        {"sku": "Q-4", "name": "Qty probe", "price": 3, "quantity": "1.000"},
        {"sku": "Q-5", "name": "Qty probe", "price": "3", "quantity": "1.000"},
    ]
    url = f"{base}/v1/stores/{store}/listings/batch"
    answer = httpx.post(url, json={"items": items}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r["error"]) for r in answer.json()["results"]] == [
        ("mapped", None),
        ("mapped", None),
        ("mapped", None),
        ("mapped", None),
        ("rejected", "quantity '1.000' could be 1 or 1000: write it without a thousands separator"),
    ]
    for price in ("3.49", 3.49):  # a single write takes a level as a JSON integer only, beside either price
        put = httpx.put(f"{url[:-6]}/Q-6", json={"name": "Qty probe", "price": price, "quantity": "1.000"},
                        headers=bearer(key))  # fmt: skip
        assert put.status_code == 400 and put.json()["error"]["parameter"] == "quantity", put.text
    with psycopg.connect(db_url) as conn:
        levels = conn.execute(
            "SELECT sku, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
    assert levels == [("Q-1", 1), ("Q-2", 1), ("Q-3", 1000), ("Q-4", 1)]


def store_refusing_a_price(base: str, db_url: str, price: str) -> tuple[str, str, str]:
    """A new store, its key and its listings' URL, once a single write of `price` was refused (400 naming it)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/listings"
    put = httpx.put(f"{url}/P1", json={"name": "e", "price": price, "quantity": 1}, headers=bearer(key))
    assert put.status_code == 400 and put.json()["error"]["parameter"] == "price", put.text
    return store, key, url


def test_spaces_and_apostrophes_that_group_no_thousands_are_refused_on_every_way_in(base: str, db_url: str) -> None:
    """`3 49` was stored as 349.00 and `1'2'3` as 123: spaces and apostrophes were dropped before the groups of
    three were checked. Refused now by the write API, a batch and a CSV import alike; `1 234,50` still reads."""
    store, key, url = store_refusing_a_price(base, db_url, "3 49")
    items = [{"sku": "B1", "name": "q", "price": "3'49", "quantity": 1},
             {"sku": "B2", "name": "q", "price": "1", "quantity": "1'0"},
             {"sku": "B3", "name": "q", "price": "1'234.50", "quantity": "1 000"}]  # fmt: skip
    batch = httpx.post(f"{url}/batch", json={"items": items}, headers=bearer(key))
    assert batch.status_code == 200, batch.text
    assert [(r["status"], r["error"]) for r in batch.json()["results"]] == [
        ("rejected", 'price "3\'49" is not a number (write 1234.50 or 1234,50)'),
        ("rejected", 'quantity "1\'0" is not a number (write a whole number such as 1500)'),
        ("mapped", None),
    ]
    upload = 'sku,name,price,quantity\nC1,a,3 49,1\nC2,b,1,1 5\nC3,c,"1\'2\'3",1\nC4,d,"1 234,50",1\n'
    headers = {**bearer(key), "content-type": "text/csv"}
    assert httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers).status_code == 202
    drain_imports(db_url)
    listed, errors = listed_and_rejected(db_url, store)
    assert listed == [("B3", "1234.50", 1000), ("C4", "1234.50", 1)]
    assert errors == [  # the write's and the batch's rows too
        "price \"1'2'3\" is not a number (write 1234.50 or 1234,50)",
        'price "3\'49" is not a number (write 1234.50 or 1234,50)',
        "price '3 49' is not a number (write 1234.50 or 1234,50)",
        "price '3 49' is not a number (write 1234.50 or 1234,50)",
        'quantity "1\'0" is not a number (write a whole number such as 1500)',
        "quantity '1 5' is not a number (write a whole number such as 1500)",
    ]


def test_numbers_in_scientific_notation_are_refused_on_every_way_in(base: str, db_url: str) -> None:
    """`1.23E+03` (a spreadsheet's display of 1234.50 in a narrow column) was stored as 1230.00 with no note."""
    store, key, url = store_refusing_a_price(base, db_url, "1.23E+03")
    item = {"sku": "B1", "name": "q", "price": "1", "quantity": "1e3"}
    batch = httpx.post(f"{url}/batch", json={"items": [item]}, headers=bearer(key))
    assert batch.status_code == 200 and batch.json()["results"][0]["status"] == "rejected", batch.text
    upload = 'sku,name,price,quantity\nM1,m1,1.23E+03,1\nM2,m2,"1,23E+03",1\nM7,m7,1,2.5e1\n'
    headers = {**bearer(key), "content-type": "text/csv"}
    assert httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers).status_code == 202
    drain_imports(db_url)
    listed, errors = listed_and_rejected(db_url, store)
    assert listed == []
    full = "which may have lost digits: write the number in full"
    assert errors == [
        f"price '1,23E+03' is in scientific notation, {full} (1234.50 or 1234,50)",
        f"price '1.23E+03' is in scientific notation, {full} (1234.50 or 1234,50)",
        f"price '1.23E+03' is in scientific notation, {full} (1234.50 or 1234,50)",
        f"quantity '1e3' is in scientific notation, {full} (a whole number such as 1500)",
        f"quantity '2.5e1' is in scientific notation, {full} (a whole number such as 1500)",
    ]


def test_full_width_numbers_and_gtins_read_on_every_way_in(base: str, db_url: str) -> None:
    """A Japanese input method's `３．４９` and `３，４９` were "not a number" (`３.４９` read), and a full-width or
    zero-width-spaced GTIN was dropped as "a GTIN is 8 to 14 digits", though search finds its product by it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url, wide = f"{base}/v1/stores/{store}/listings", str.maketrans("0123456789", "０１２３４５６７８９")
    body = {"name": "Wide", "price": "３，４９", "quantity": 1, "gtin": "4501234567896".translate(wide)}
    put = httpx.put(f"{url}/FW-1", json=body, headers=bearer(key))
    assert put.status_code == 200 and (put.json()["matched_by"], put.json()["notes"]) == ("created", None), put.text
    item = {"sku": "FW-2", "name": "Wide", "price": "３．４９", "quantity": "5\u200b", "gtin": "4901234567894\u200b"}
    batch = httpx.post(f"{url}/batch", json={"items": [item]}, headers=bearer(key)).json()["results"]
    assert [(r["status"], r["error"], r["notes"]) for r in batch] == [("mapped", None, None)], batch
    upload = f"sku,name,price,quantity,gtin\nFW-3,Wide,３．４９,５,{'4012345678918'.translate(wide)}\n"
    headers = {**bearer(key), "content-type": "text/csv"}
    assert httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers).status_code == 202
    drain_imports(db_url)
    listed = httpx.get(url, headers=bearer(key)).json()["items"]
    assert [(i["sku"], i["gtin"], i["price"], i["quantity"]) for i in listed] == [
        ("FW-1", "04501234567896", 3.49, 1),
        ("FW-2", "04901234567894", 3.49, 5),
        ("FW-3", "04012345678918", 3.49, 5),
    ]
    assert listed_and_rejected(db_url, store, "r.error IS NOT NULL")[1] == []  # no note either
    arabic = validate({**row("1"), "gtin": "٤٠١٢٣٤٥٦٧٨٩١٨"}).notes  # search reads a barcode in 0-9 only
    assert arabic == ["gtin '٤٠١٢٣٤٥٦٧٨٩١٨' ignored: a GTIN is written in the digits 0-9"]
