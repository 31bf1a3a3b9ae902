"""Prices and stock levels as people and programs write them: thousands separators read where the row says which
sign is the decimal one, the forms that could mean two numbers refused naming both, and a German spreadsheet's
file imported over real HTTP with its thousands where they belong."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import psycopg
import pytest

from search_service.ingest.rows import Rejected, validate
from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, ingest_settings, new_store, serve, store_key


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
        ("1.234.567,89", "1234567.89"),
        ("1,234,567", "1234567"),
        ("1.999", "1.999"),  # a lone point is the decimal sign, as programs write it (rounded to cents, noted)
        ("0,125", "0.125"),
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
    ],
)
def test_a_price_that_could_be_two_numbers_or_none_is_refused(given: str, says: str) -> None:
    with pytest.raises(Rejected, match=says.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
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
        ("3", "12.000", 12),  # no sign beside it: a lone point is a decimal point
        ("3,49", "2,0", 2),
        (3.49, 7, 7),
    ],
)
def test_a_level_reads_by_the_decimal_sign_of_its_rows_price(price: object, quantity: object, level: int) -> None:
    assert validate(row(price, quantity)).quantity == level


@pytest.mark.parametrize(
    ("price", "quantity", "says"),
    [
        ("3", "1,000", "quantity '1,000' could be 1 or 1000"),
        (3, "1,500", "quantity '1,500' could be 1.5 or 1500"),
        ("3.49", "1.500", "quantity '1.500' is not a whole number"),
        ("3,49", "1.5", r"quantity '1.5' is not a number \(write a whole number such as 1500\)"),
        ("3,49", "2,5", "quantity '2,5' is not a whole number"),
    ],
)
def test_a_level_that_could_be_two_numbers_or_a_fraction_is_refused(price: object, quantity: str, says: str) -> None:
    with pytest.raises(Rejected, match=says):
        validate(row(price, quantity))


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings: Settings = ingest_settings(db_url, tmp_path_factory.mktemp("keys"))
    with serve(settings, None) as url:
        yield url


GERMAN = "sku;name;price;quantity\ntv1;Fernseher 55 Zoll;1.299,00;1.000\nmilk;Milch;1,19;24\nodd;Kaffee;1,299;3\n"


def test_a_german_spreadsheets_file_imports_its_thousands_and_refuses_what_could_be_two(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    headers = {**bearer(key), "content-type": "text/csv"}
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", content=GERMAN.encode(), headers=headers)
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    status = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    assert (status["status"], status["total_rows"], status["error_rows"]) == ("completed", 3, 1)
    errors = httpx.get(f"{base}{accepted.json()['status_url']}/errors", headers=bearer(key)).text
    assert "price '1,299' could be 1.299 or 1299" in errors
    with psycopg.connect(db_url) as conn:
        listed = conn.execute(
            "SELECT sku, price::text, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
    assert listed == [("milk", "1.19", 24), ("tv1", "1299.00", 1000)]
