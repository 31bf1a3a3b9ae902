"""CSV files with the faults spreadsheets and people leave in them, over real HTTP and `import csv`: a stray quote
that swallows the rest of the file, required columns or cells missing, a stock level that reads two ways, notes
on mapped rows nobody saw, and the small refusals (a media type, a price with its currency sign)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from search_service.ingest.csvfile import CsvError, parse_csv
from search_service.ingest.rows import Rejected, validate
from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, ingest_settings, new_store, serve, store_key
from tests.test_ingest_cli import cli

STRAY = b'sku;name;price;quantity\nQ-1;a;1;1\nQ-3;"Zoll 3;3;3\nQ-4;vier;4;4\nQ-5;fuenf;5;5\n'


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings: Settings = ingest_settings(db_url, tmp_path_factory.mktemp("keys"))
    with serve(settings, None) as url:
        yield url


@pytest.fixture
def shop(db_url: str) -> tuple[uuid.UUID, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        return store, store_key(conn, store, "listings:write")


def _upload(base: str, shop: tuple[uuid.UUID, str], data: bytes, media: str = "text/csv") -> httpx.Response:
    store, key = shop
    headers = {**bearer(key), "content-type": media}
    return httpx.post(f"{base}/v1/stores/{store}/imports", content=data, headers=headers, timeout=60)


def _batches(db_url: str, store: uuid.UUID) -> list[tuple[str, str | None, int]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT b.status, b.error, (SELECT count(*) FROM imported_product_raw r WHERE r.import_batch_id = b.id) "
            "FROM import_batch b WHERE b.store_id = %s ORDER BY b.seq",
            (store,),
        ).fetchall()


def test_a_quote_never_closed_refuses_the_file_saying_where_and_how_much_was_unread(
    base: str, db_url: str, shop: tuple[uuid.UUID, str], tmp_path: Path
) -> None:
    """It ended `completed` with the rest of the file one cell of a rejected row (3 rows), or, past the reader's
    cell limit, with 29,989 rows never counted; `import csv` exited 0."""
    small = _upload(base, shop, STRAY)
    assert small.status_code == 400, small.text
    assert small.json()["error"]["parameter"] == "file"
    said = small.json()["error"]["message"]
    assert "a quote opened in column name on line 3 is never closed" in said, said
    assert "the 3 lines from line 3 to the end" in said and 'stray " such as 5"' in said
    rows = [b"sku;name;price;quantity\n"] + [b"R-%d;n;1;1\n" % i for i in range(1, 30_001)]
    rows[11] = b'R-11;"Zoll;1;1\n'
    big = _upload(base, shop, b"".join(rows))
    assert big.status_code == 400, big.text
    said = big.json()["error"]["message"]
    assert said.startswith("the file cannot be read past line 12: a quote opened in column name on line 12"), said
    assert "the 29990 lines from line 12 on were not read" in said
    store = shop[0]
    assert [(status, rows) for status, _error, rows in _batches(db_url, store)] == [("aborted", 0), ("aborted", 0)]
    assert [error for _status, error, _rows in _batches(db_url, store)][1] == said
    file = tmp_path / "stray.csv"
    file.write_bytes(STRAY)
    out = cli(db_url, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: the file cannot be read whole: a quote opened in column name on line 3" in out.stderr
    assert "Traceback" not in out.stderr
    assert [status for status, _error, _rows in _batches(db_url, store)][2] == "aborted"


def test_a_quote_that_closes_lines_later_rejects_its_row_saying_so() -> None:
    closes = b'sku;name;price;quantity\nQ-1;a;1;1\nQ-3;"Zoll 3;3;3\nQ-4;vier;4;4\nQ-5;fuenf";5\nQ-6;x;1;1\n'
    rows = parse_csv(closes).rows
    assert [r.get("sku") for r in rows] == ["Q-1", None, "Q-6"]
    assert rows[1]["_error"] == (
        "the row has 3 cells, the header has 4: a quote opened in column name on line 3 closes only on line 5: the "
        'lines between were read as one cell; check for a stray " such as 5" (inside a quoted cell write it "")'
    )
    # as many cells as the header, but closed by a quote with text after it: no row of a well-formed file
    inside = b'sku;name;price;quantity\nQ-3;"Zoll 3;3;3\nQ-4;vier;4;4\nQ-5;"fuenf;5;5\n'
    (row,) = parse_csv(inside).rows
    assert row["_error"].startswith("a quote opened in column name on line 2 closes only on line 4, inside a cell")
    described = b'sku;name;price;quantity;description\nD-1;a;1;1;"two\nlines"\n'  # a cell over lines, well formed
    assert parse_csv(described).rows[0]["description"] == "two\nlines"
    huge = b"sku;name;price;quantity\nH-1;" + b"y" * 140_000 + b";1;1\nH-2;x;1;1\n"  # no quote: a cell too big
    with pytest.raises(CsvError, match="cannot be read past line 2: a cell there is longer than 131072 characters"):
        parse_csv(huge)


def test_notes_on_mapped_rows_are_counted_listed_and_printed(
    base: str, db_url: str, shop: tuple[uuid.UUID, str], tmp_path: Path
) -> None:
    """Stored on the rows, never shown: the status said 1 mapped, 0 rejected, the errors CSV was empty."""
    data = b"sku,name,price,quantity,gtin\nN-1,Nudeln,1.999,3,4.00638E+12\nN-2,Reis,2,1,\n"
    accepted = _upload(base, shop, data)
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    key = shop[1]
    status = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    assert (status["mapped_rows"], status["error_rows"], status["noted_rows"]) == (2, 0, 1), status
    notes = httpx.get(f"{base}{accepted.json()['status_url']}/notes", headers=bearer(key))
    assert notes.status_code == 200 and notes.headers["content-type"].startswith("text/csv")
    lines = notes.content.decode("utf-8-sig").splitlines()
    assert lines[0] == '"row","note","cells"' and len(lines) == 2
    assert lines[1].startswith('"1","price \'1.999\' read as 1.999, rounded to 2.00 (a lone point is a decimal '
                               "point, and a listing holds 2 decimals): if it is 1999, write it without a thousands "
                               'separator; gtin \'4.00638E+12\'')  # fmt: skip
    assert lines[1].endswith('(a spreadsheet number format lost the rest: format the column as text)","N-1","Nudeln",'
                             '"1.999","3","4.00638E+12"')  # fmt: skip
    file = tmp_path / "noted.csv"
    file.write_bytes(data.replace(b"N-", b"M-"))
    out = cli(db_url, "import", "csv", str(file), "--store", str(shop[0]))
    assert out.returncode == 0, out.stderr
    assert "row 1: note: price '1.999' read as 1.999, rounded to 2.00" in out.stdout
    assert "2 rows, 2 mapped (1 with notes, 0 unchanged), 0 stale, 0 duplicate, 0 rejected" in out.stdout


def test_a_file_without_price_or_quantity_is_refused_and_an_empty_level_rejected(
    base: str, db_url: str, shop: tuple[uuid.UUID, str], tmp_path: Path
) -> None:
    """`SKU,Name,Price,Qty` mapped every row with quantity 0 (`qty` ignored); a file without `price` had every row
    rejected "price is required"; an empty level was a level of 0."""
    no_level = _upload(base, shop, b"SKU,Name,Price,Qty\nA-1,Apfel,1,5\n")
    assert no_level.status_code == 400, no_level.text
    assert no_level.json()["error"] == {
        "parameter": "quantity",
        "message": "the file has no 'quantity' column (columns: sku, name, price, qty; not read: qty)",
    }
    no_price = _upload(base, shop, b"sku;name;preis;quantity\nA-1;Apfel;1;5\n")
    assert no_price.status_code == 400 and no_price.json()["error"]["parameter"] == "price"
    assert "not read: preis" in no_price.json()["error"]["message"]
    empty = _upload(base, shop, b"sku,name,price,quantity\nA-1,Apfel,1,\nA-2,Birne,1,0\n")
    assert empty.status_code == 202, empty.text
    drain_imports(db_url)
    errors = httpx.get(f"{base}{empty.json()['errors_url']}", headers=bearer(shop[1])).text.splitlines()
    assert errors[1].startswith('"1","quantity is required: the cell is empty (write the stock level, 0 when')
    file = tmp_path / "qty.csv"
    file.write_bytes(b"SKU,Name,Price,Qty\nA-1,Apfel,1,5\n")
    out = cli(db_url, "import", "csv", str(file), "--store", str(shop[0]))
    assert out.returncode == 1 and out.stderr.startswith("error: the file has no 'quantity' column"), out.stderr


@pytest.mark.parametrize(
    ("price", "read"),
    [("3,49", 5000), ("3.49", 5), ("2", "quantity '5.000' could be 5 or 5000: write it without a thousands separator")],
)
def test_a_level_of_one_group_is_read_by_the_price_or_refused_naming_both(price: str, read: object) -> None:
    """`E-6;f;2;5.000` was 5 and `E-7;g;3,49;5.000` 5000: a whole price shows no decimal sign to read it by."""
    row = {"sku": "E-6", "name": "f", "price": price, "quantity": "5.000"}
    if isinstance(read, int):
        assert validate(row).quantity == read
    else:
        with pytest.raises(Rejected, match=str(read)):
            validate(row)


def test_small_refusals_say_what_to_do(base: str, db_url: str, shop: tuple[uuid.UUID, str]) -> None:
    wrong = _upload(base, shop, b"sku,price,quantity\nx,1,1\n", media="application/json")
    assert wrong.status_code == 415 and wrong.json()["error"]["parameter"] == "content-type"
    said = wrong.json()["error"]["message"]  # it named text/csv and multipart alone, though five types are taken
    for media in ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "text/tab-separated-values"):
        assert media in said, said
    assert "multipart/form-data (field `file`)" in said, said
    tabs = _upload(base, shop, b"sku\tname\tprice\tquantity\nT-1\tTee\t1\t1\n", media="text/tab-separated-values")
    assert tabs.status_code == 202, tabs.text
    trailing = _upload(base, shop, b"sku;name;price;quantity\nTR-1;x;1;1;;\nTR-2;y;2,10 \xe2\x82\xac;1\n")
    assert trailing.status_code == 202, trailing.text
    drain_imports(db_url)
    key = shop[1]
    status = httpx.get(f"{base}{trailing.json()['status_url']}", headers=bearer(key)).json()
    assert (status["mapped_rows"], status["error_rows"]) == (1, 1), status
    errors = httpx.get(f"{base}{trailing.json()['errors_url']}", headers=bearer(key)).text.splitlines()
    assert errors[1].startswith(
        '"2","price \'2,10 \u20ac\' holds a currency sign: drop it (write 1234.50 or 1234,50), or put the code in '
        "currency"
    ), errors
    with pytest.raises(Rejected, match=r"price '2 x' is not a number \(write 1234.50 or 1234,50\)"):
        validate({"sku": "s", "price": "2 x", "quantity": 1})
    (kept,) = parse_csv(b"sku;name;price;quantity\nTR-3;x;1;1;;z\n").rows  # a cell past the header holds a value
    assert kept["_error"] == "the row has 6 cells, the header has 4"
    spec = httpx.get(f"{base}/schema/openapi.json").json()["paths"]["/v1/stores/{store_id}/imports"]["post"]
    assert "text/tab-separated-values" in spec["requestBody"]["content"]


@pytest.mark.parametrize(("level", "price", "read"), [("0.000", "2", 0), ("05.000", "2", 5), ("05.000", "3,49", 5)])
def test_a_level_whose_group_starts_with_zero_is_a_decimal(level: str, price: str, read: int) -> None:
    """An ERP's `0.000` beside a whole price was refused as "0 or 0000" (a sold-out row kept its old stock), and
    `05.000` as "5 or 05000": no thousands group starts with 0."""
    assert validate({"sku": "Z-1", "name": "z", "price": price, "quantity": level}).quantity == read


def test_two_stray_quotes_that_make_a_well_formed_cell_reject_its_row() -> None:
    """`"28 Zoll` and, rows later, `1/2"` made one well-formed cell of the rows between: F1 took F4's price and
    stock under a name holding three rows, F2-F4 were never read, and the batch said completed, no errors."""
    swallowed = (
        b'sku,name,price,quantity\nF1,"28 Zoll Schlauch,4.99,3\nF2,Bread,2.10,10\nF3,Milk,1.10,20\n'
        b'F4,Tap washer 1/2",2.49,7\nF5,Fine,1.00,1\n'
    )
    rows = parse_csv(swallowed).rows
    assert [r.get("sku") for r in rows] == ["F1", "F5"] and "_error" not in rows[1]
    assert rows[0]["_error"] == (
        "a quote opened in column name on line 2 closes only on line 5: the rows between (from line 3) were read as "
        'part of this row\'s cell, not as rows; check for a stray " such as 5" (inside a quoted cell write it "")'
    )
    prose = b'sku,name,description,price,quantity\nL-1,Lamp,"Warm light.\nA, b, c, d\nThird",9.99,2\n'
    assert "_error" not in parse_csv(prose).rows[0]  # a line of prose with commas is no row: no numbers there


NAIVE_QUOTES = (
    b'"sku","name","price","quantity"\r\n"QN-1","Monitor 27" Full HD","199.00","4"\r\n'
    b'"QN-2","Rohr 1/2" verzinkt, 3 m","12.50","10"\r\n"QN-3","Schraube M8","0.10","500"\r\n'
    b'QN-4,"28" Fahrradschlauch,4.99,3\r\nQN-5,5" Zoll,1,1\r\nQN-6,"Kabel ""3 m""" ,2,2\r\n'
)


def test_a_quote_that_closes_a_cell_on_its_line_with_text_after_it_rejects_the_row(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """Inner quotes not doubled, an export's common fault: `"Monitor 27" Full HD"` was stored as `Monitor 27 Full
    HD"` and `"28" Fahrradschlauch` as `28 Fahrradschlauch`, mapped with no note; a ragged such row had no hint."""
    accepted = _upload(base, shop, NAIVE_QUOTES)
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    errors = httpx.get(f"{base}{accepted.json()['errors_url']}", headers=bearer(shop[1])).text.splitlines()
    hint = 'check for a stray "" such as 5"" (inside a quoted cell write it """")'
    said = "in column name on line {} closes inside a cell, with text after it: the cell was read without that quote"
    assert [line.split('","')[:2] for line in errors[1:]] == [
        ['"1', f"a quote opened {said.format(2)}; {hint}"],
        ['"2', f"the row has 5 cells, the header has 4: a quote opened {said.format(3)}; {hint}"],
        ['"4', f"a quote opened {said.format(5)}; {hint}"],
    ]
    with psycopg.connect(db_url) as conn:
        listed = conn.execute("SELECT sku, title FROM store_product WHERE store_id = %s ORDER BY sku", (shop[0],))
        assert listed.fetchall() == [("QN-3", "Schraube M8"), ("QN-5", '5" Zoll'), ("QN-6", 'Kabel "3 m"')]


def test_a_category_of_other_digits_is_a_name_not_a_crash() -> None:
    """A category `³` passed str.isdigit and then int() refused it: a PUT answered 500 (schemathesis found it)."""
    assert validate({"sku": "C-1", "name": "c", "price": "1", "quantity": "1", "category": "³"}).category == "³"
    assert validate({"sku": "C-2", "name": "c", "price": "1", "quantity": "1", "category": "42"}).category == 42


def test_the_readmes_rule_for_empty_cells_is_what_an_import_does(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """README said an empty cell keeps the stored value, but for `is_active`: an empty price or quantity rejects
    the row. Which columns an import keeps and which it requires are read here from an import, and README must
    name each so."""
    stored = b"sku,name,price,quantity\nE-0,Erbse,1.50,3\nE-1,Erbse,1.50,3\nE-2,Erbse,1.50,3\n"
    assert _upload(base, shop, stored).status_code == 202
    emptied = {"name": "E-0,,1.60,4", "price": "E-1,Erbse,,4", "quantity": "E-2,Erbse,1.60,"}
    assert _upload(base, shop, ("sku,name,price,quantity\n" + "\n".join(emptied.values())).encode()).status_code == 202
    drain_imports(db_url)
    with psycopg.connect(db_url) as conn:
        kept = conn.execute("SELECT title, quantity FROM store_product WHERE store_id = %s AND sku = 'E-0'", (shop[0],))
        assert kept.fetchone() == ("Erbse", 4)
        reasons = conn.execute(
            "SELECT r.raw->>0, r.error FROM imported_product_raw r JOIN import_batch b "
            "ON b.id = r.import_batch_id WHERE b.store_id = %s AND r.status = 'rejected' ORDER BY 1",
            (shop[0],),
        ).fetchall()
    rejecting = {column for column, row in emptied.items() if row.split(",")[0] in {sku for sku, _ in reasons}}
    assert rejecting == {"price", "quantity"}, reasons
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    rule = " ".join(readme.split("an empty CSV cell", 1)[1].split(". ", 1)[0].split())
    required = re.search(r"((?:`\w+`,? )+and `\w+`) are required", rule)
    assert required is not None, rule
    assert set(re.findall(r"`(\w+)`", required.group(1))) == {"sku"} | rejecting, rule
    optional = re.search(r"keeps the stored value of an optional field \(([^)]*)\)", rule)
    assert optional is not None and "name" in set(re.findall(r"`(\w+)`", optional.group(1))), rule
