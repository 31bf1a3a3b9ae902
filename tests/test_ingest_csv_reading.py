"""How a CSV file's bytes and cells are read, as a back-office user's files hold them: a declared charset beside a
UTF-8 mark, commas inside header names, marks and zero-width characters around names and SKUs, currency codes in
prices, line breaks in names; over real HTTP and by `import csv`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from search_service.ingest.csvfile import CsvError, parse_csv
from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, ingest_settings, new_store, serve, store_key
from tests.test_ingest_cli import cli, create_store

BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings: Settings = ingest_settings(db_url, tmp_path_factory.mktemp("keys"))
    with serve(settings, None) as url:
        yield url


def _shop(db_url: str) -> tuple[uuid.UUID, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        return store, store_key(conn, store, "listings:write")


def _import(base: str, db_url: str, shop: tuple[uuid.UUID, str], data: bytes, charset: str = "") -> dict[str, Any]:
    """The file uploaded and mapped: its batch's status."""
    store, key = shop
    content_type = "text/csv" + (f"; charset={charset}" if charset else "")
    accepted = httpx.post(
        f"{base}/v1/stores/{store}/imports", content=data, headers={**bearer(key), "content-type": content_type}
    )
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    status: dict[str, Any] = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    return status


def _over(base: str, db_url: str, listed: bytes, data: bytes) -> tuple[tuple[uuid.UUID, str], dict[str, Any]]:
    """A new store's listings imported from `listed`, then `data` imported over them: the store and its status."""
    shop = _shop(db_url)
    first = _import(base, db_url, shop, listed)
    assert first["error_rows"] == 0, first
    return shop, _import(base, db_url, shop, data)


def _errors(base: str, shop: tuple[uuid.UUID, str], status: dict[str, Any]) -> str:
    return httpx.get(f"{base}/v1/imports/{status['batch_id']}/errors", headers=bearer(shop[1])).text


def _titles(db_url: str, store: uuid.UUID) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT sku, title FROM store_product WHERE store_id = %s ORDER BY sku", (store,))
        return [(sku, title) for sku, title in rows.fetchall()]


def _levels(db_url: str, store: uuid.UUID) -> list[tuple[str, int]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT sku, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,))
        return [(sku, quantity) for sku, quantity in rows.fetchall()]


def _products(db_url: str, store: uuid.UUID, fields: str) -> list[tuple[Any, ...]]:
    """The store's listings by SKU: each SKU and the `fields` of its listing `sp` and product `p`."""
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            f"SELECT sp.sku, {fields} FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
            "WHERE sp.store_id = %s ORDER BY sp.sku",
            (store,),
        ).fetchall()


WINDOWS_WITH_MARK = BOM + "sku;name;price;quantity\r\nX1;Käse;3,49;2\r\n".encode("cp1252")


def test_a_declared_charset_wins_over_a_utf8_mark(base: str, db_url: str, tmp_path: Path) -> None:
    """A file with a UTF-8 mark and windows-1252 bytes: the charset named was ignored, and every row with an umlaut
    was rejected telling the user to name the charset they had named."""
    assert "not valid UTF-8" in parse_csv(WINDOWS_WITH_MARK).rows[0]["_error"]  # undeclared: the mark says UTF-8
    shop = _shop(db_url)
    status = _import(base, db_url, shop, WINDOWS_WITH_MARK, "windows-1252")
    assert (status["status"], status["error_rows"]) == ("completed", 0), _errors(base, shop, status)
    assert _titles(db_url, shop[0]) == [("X1", "Käse")]


def test_import_csv_reads_a_marked_file_in_the_charset_given(fresh_db_url: str, tmp_path: Path) -> None:
    store = create_store(fresh_db_url)
    file = tmp_path / "b.csv"
    file.write_bytes(WINDOWS_WITH_MARK)
    out = cli(fresh_db_url, "import", "csv", str(file), "--store", str(store), "--charset", "windows-1252")
    assert out.returncode == 0 and "1 mapped" in out.stdout and "--charset" not in out.stdout, out.stdout + out.stderr
    assert _titles(fresh_db_url, store) == [("X1", "Käse")]


# Excel's windows-1252 bytes at 0x80-0x9F (€ “ ” …), and 0x81, one windows-1252 leaves unassigned
WINDOWS_CALLED_LATIN_1 = (
    b"sku;name;price;quantity\r\nL-1;Gutschein 10 \x80 \x93Sommer\x94\x85;10,00;5\r\nL-2;a\x81b;1;1\r\n"
)


def test_a_latin_1_label_is_read_as_windows_1252(base: str, db_url: str, tmp_path: Path) -> None:
    """A Windows export called "Latin-1" (`charset=iso-8859-1`, `--charset latin-1`) was decoded as ISO-8859-1:
    its € “ ” … became invisible C1 controls, stored in the titles with no note, and no search found the €. It is
    read as windows-1252 now, as WHATWG and every browser read the label; 0x81 as the browsers read it too (U+0081,
    a control character, which a name holds as a space)."""
    shop = _shop(db_url)
    status = _import(base, db_url, shop, WINDOWS_CALLED_LATIN_1, "iso-8859-1")
    assert (status["status"], status["error_rows"]) == ("completed", 0), _errors(base, shop, status)
    titles = [("L-1", "Gutschein 10 € “Sommer”…"), ("L-2", "a b")]
    assert _titles(db_url, shop[0]) == titles
    store = create_store(db_url)
    file = tmp_path / "lat.csv"
    file.write_bytes(WINDOWS_CALLED_LATIN_1)
    out = cli(db_url, "import", "csv", str(file), "--store", str(store), "--charset", "latin-1")
    assert out.returncode == 0 and "2 mapped" in out.stdout, out.stdout + out.stderr
    assert _titles(db_url, store) == titles


def test_the_delimiter_is_the_one_that_finds_the_required_columns(fresh_db_url: str, tmp_path: Path) -> None:
    """The header's most used sign was its delimiter: the commas of `Maße (B,H,T,L,G)` outnumbered the `;`s, and
    the file was refused as having no sku, price or quantity column."""
    file = tmp_path / "m.csv"
    file.write_bytes("sku;name;Maße (B,H,T,L,G);price;quantity\nM1;Regal;1,2;1,00;1\n".encode())
    parsed = parse_csv(file.read_bytes())
    assert (parsed.delimiter, parsed.ignored_columns, parsed.rows[0]["price"]) == (";", ["maße (b,h,t,l,g)"], "1,00")
    store = create_store(fresh_db_url)
    out = cli(fresh_db_url, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0 and "1 mapped" in out.stdout, out.stdout + out.stderr
    assert _titles(fresh_db_url, store) == [("M1", "Regal")]
    with pytest.raises(CsvError) as none_fits:  # no delimiter finds them: the refusal says how to name one
        parse_csv(b"sku|name|price|quantity\nA|b|1|1\n")
    assert str(none_fits.value).endswith("if its columns are split by '|', make sep=| the file's first line")
    with pytest.raises(CsvError) as misnamed:  # nothing else to split by: no sep= advice
        parse_csv(b"sku,name,price,qty\nA,b,1,1\n")
    assert str(misnamed.value) == "the file has no 'quantity' column (columns: sku, name, price, qty; not read: qty)"


def test_marks_and_zero_width_spaces_around_headers_and_skus_are_not_read(base: str, db_url: str) -> None:
    """A second BOM before the header (a file re-saved by a tool) made `\\ufeffsku` a column and the file was refused
    as having no `sku` column, the message showing `sku` among its columns; a SKU cell starting with a BOM was
    stored with it (`GET …/listings/BB2` 404, while `%EF%BB%BFBB2` answered)."""
    with pytest.raises(CsvError) as refused:  # an invisible character a message shows is escaped
        parse_csv("sku,\u200bna\u200bme,price,qty\nA,b,1,1\n".encode())
    assert "columns: sku, na\\u200bme, price, qty; not read: na\\u200bme, qty" in str(refused.value)
    shop = _shop(db_url)
    data = BOM + BOM + "sku,name,price,quantity\n\ufeffBB2,Brot,1,1\n\u200bBB3\u200b,Butter,2,1\n".encode()
    status = _import(base, db_url, shop, data)
    assert (status["status"], status["error_rows"]) == ("completed", 0), _errors(base, shop, status)
    assert _titles(db_url, shop[0]) == [("BB2", "Brot"), ("BB3", "Butter")]
    listing = httpx.get(f"{base}/v1/stores/{shop[0]}/listings/BB2", headers=bearer(shop[1]))
    assert listing.status_code == 200 and listing.json()["sku"] == "BB2", listing.text


def test_a_price_with_a_currency_code_is_told_to_drop_it(base: str, db_url: str) -> None:
    """`€3,49` was told to drop the sign or put the code in currency; `3.49 EUR` only that it is not a number."""
    shop = _shop(db_url)
    data = b"sku,name,price,quantity\nC1,Tee,3.49 EUR,1\nC2,Kaffee,EUR 3.49,1\nC3,Kakao,\xe2\x82\xac3.49,1\n"
    status = _import(base, db_url, shop, data)
    assert status["error_rows"] == 3
    errors = _errors(base, shop, status)
    for shown in ("'3.49 EUR' holds a currency code", "'EUR 3.49' holds a currency code", "holds a currency sign"):
        assert f"{shown}: drop it (write 1234.50 or 1234,50)" in errors, errors
    assert errors.count("put the code in currency") == 3


def _imported_and_put(base: str, db_url: str, data: bytes, sku: str, listing: dict[str, Any]) -> uuid.UUID:
    """A new store with the CSV `data` imported (every row mapped) and `listing` PUT as `sku`: the store."""
    shop = _shop(db_url)
    status = _import(base, db_url, shop, data)
    assert (status["status"], status["error_rows"]) == ("completed", 0), _errors(base, shop, status)
    put = httpx.put(f"{base}/v1/stores/{shop[0]}/listings/{sku}", headers=bearer(shop[1]), json=listing)
    assert put.status_code == 200, put.text
    return shop[0]


def test_a_line_break_in_a_name_or_brand_is_a_space(base: str, db_url: str) -> None:
    """Excel's Alt+Enter in a name cell was stored in the product's name (`Name\\r\\nzweite Zeile`), and a write API
    name with a newline too; a description keeps its lines."""
    data = b'sku,name,brand,description,price,quantity\nN1,"Name\r\nzweite Zeile","Bio\r\n\tHof","eins\r\nzwei",1,1\n'
    listing = {"name": "Erste \n Zeile\tzwei", "brand": "A\nB", "description": "a\nb", "price": 1, "quantity": 1}
    store = _imported_and_put(base, db_url, data, "N2", listing)
    assert _products(db_url, store, "sp.title, p.name, p.brand, p.description") == [
        ("N1", "Name zweite Zeile", "Name zweite Zeile", "Bio Hof", "eins\r\nzwei"),
        ("N2", "Erste Zeile zwei", "Erste Zeile zwei", "A B", "a\nb"),
    ]


def test_a_control_character_in_a_name_brand_or_description_is_a_space(base: str, db_url: str) -> None:
    """An ESC, a BEL or a C1 control in a name or brand was stored as sent, served in every answer, and suggested as a
    text that `/v1/search` refuses as q or brand; they read as line breaks do: a run of them, with the spaces around
    it, is one space. A description keeps its lines (Excel for Mac's VT is one), its other controls are spaces."""
    data = b'sku,name,brand,description,price,quantity\nC1,"Zqx\x1b[1m Deluxe\x07 Tee",Zqx\x07Brand,"a\x1bb\x0bc",1,1\n'
    listing = {"name": "Oat \u0085 Milk \u009b", "brand": "\x7fBio \x1b Hof", "description": "x\u0085y\tz\r\n",
               "price": 1, "quantity": 1}  # fmt: skip
    store = _imported_and_put(base, db_url, data, "C2", listing)
    assert _products(db_url, store, "sp.title, p.name, p.brand, p.description") == [
        ("C1", "Zqx [1m Deluxe Tee", "Zqx [1m Deluxe Tee", "Zqx Brand", "a b\nc"),
        ("C2", "Oat Milk", "Oat Milk", "Bio Hof", "x\ny\tz"),
    ]


def test_a_gtin_refusal_says_how_a_renumbered_sku_takes_its_product_over(base: str, db_url: str) -> None:
    """A store renumbering its SKUs was refused with "this store already lists its product as sku 'P-001'" and no
    remedy; the old SKU sent off sale in a row before the new one hands its product over."""
    shop = _shop(db_url)
    first = _import(base, db_url, shop, b"sku,gtin,name,price,quantity\nP-001,4006381333931,Hafer,1,1\n")
    assert first["error_rows"] == 0
    renamed = _import(base, db_url, shop, b"sku,gtin,name,price,quantity\nN-001,4006381333931,Hafer,1,2\n")
    assert renamed["error_rows"] == 1
    assert (
        "this store already lists its product as sku 'P-001'; to move it to sku 'N-001', take 'P-001' off sale "
        "first (is_active no)"
    ) in _errors(base, shop, renamed)
    data = b"sku,gtin,name,price,quantity,is_active\nP-001,,Hafer,1,0,no\nN-001,4006381333931,Hafer,1,2,\n"
    moved = _import(base, db_url, shop, data)
    assert (moved["status"], moved["error_rows"]) == ("completed", 0), _errors(base, shop, moved)
    with psycopg.connect(db_url) as conn:
        listed = conn.execute(
            "SELECT sku, is_active, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (shop[0],)
        ).fetchall()
    assert listed == [("N-001", True, 2)], listed  # the listing itself took the new SKU


def test_a_gtin_kept_as_text_by_a_spreadsheet_reads_as_its_digits(base: str, db_url: str) -> None:
    """A GTIN cell Excel keeps as text, `'5901234123457` or `="4000000000037"` (quoted or not), was ignored with
    "a GTIN is 8 to 14 digits", though it holds 13 digits and a valid check digit."""
    shop = _shop(db_url)
    data = (
        b'sku;gtin;name;price;quantity\nT1;\'5901234123457;Tee;1;1\nT2;="4000000000037";Kaffee;1;1\n'
        b'T3;"=""4000000000044""";Kakao;1;1\n'
    )
    status = _import(base, db_url, shop, data)
    assert (status["status"], status["error_rows"], status["noted_rows"]) == ("completed", 0, 0), status
    assert _products(db_url, shop[0], "p.gtin") == [
        ("T1", "05901234123457"),
        ("T2", "04000000000037"),
        ("T3", "04000000000044"),
    ]


def _refused_as_scientific(
    base: str, shop: tuple[uuid.UUID, str], status: dict[str, Any], skus: tuple[str, ...]
) -> None:
    """The import's rejected rows are those of `skus`, each refused as a SKU a spreadsheet wrote in scientific
    notation, and none is a duplicate."""
    assert (status["status"], status["duplicate_rows"], status["error_rows"]) == ("completed", 0, len(skus)), status
    errors = _errors(base, shop, status)
    for sku in skus:
        assert f"sku '{sku}' is in scientific notation: a spreadsheet changed it" in errors, errors
    assert errors.count("format the sku column as text") == len(skus)


def test_a_sku_in_scientific_notation_is_refused_saying_a_spreadsheet_changed_it(base: str, db_url: str) -> None:
    """A sheet re-saved by Excel writes 4006381333948 as 4.00638E+12: the row made a new listing and product,
    the real listing's stock was not updated, and two different SKUs were merged as a "duplicate"."""
    listed = b"sku,name,price,quantity\n4006381333948,Eins,1,1\n4006381333955,Zwei,1,1\n"
    data = b'sku,name,price,quantity\n4.00638E+12,Eins,1,5\n4.00638E+12,Zwei,1,7\n"4,00638E+12",Zwei,1,7\n'
    data += b"1.23457e+11,Drei,1,1\nA1E+5,X,1,1\n"
    shop, resaved = _over(base, db_url, listed, data)
    _refused_as_scientific(base, shop, resaved, ("4.00638E+12", "4.00638E+12", "4,00638E+12", "1.23457e+11"))
    assert _levels(db_url, shop[0]) == [("4006381333948", 1), ("4006381333955", 1), ("A1E+5", 1)]  # letters: new


def test_a_sku_kept_as_text_by_a_spreadsheet_is_the_sku_it_holds(base: str, db_url: str) -> None:
    """`="0012345"` (an ERP export's way to keep a SKU's leading zeros from Excel) and `'0012345` were SKUs of
    their own: the stock-out went to a new listing, and the real 0012345 stayed on sale at 40."""
    listed = b"sku,name,price,quantity\n0012345,Nails 50,1,40\nH-12,Hammer,1,3\n"
    data = b'sku;name;price;quantity\n="0012345";Nails 50;"1,99";0\n\'H-12;Hammer;1;2\n"=""0099""";Saw;1;1\n'
    shop, marked = _over(base, db_url, listed, data + b'="";Nothing;1;1\n')
    assert (marked["status"], marked["error_rows"]) == ("completed", 1), marked
    assert "sku is required" in _errors(base, shop, marked)  # `=""`: a text cell holding nothing
    assert _levels(db_url, shop[0]) == [("0012345", 0), ("0099", 1), ("H-12", 2)]


def test_a_sku_in_scientific_notation_without_a_decimal_point_is_refused_too(base: str, db_url: str) -> None:
    """Excel's General format writes 2000000012345 as `2E+12` and 1000000000001 as `1E+12`: such rows mapped, two
    different SKUs became one listing (the other a "duplicate"), and the real listings kept their stock."""
    listed = b"sku;name;price;quantity\n2000000012345;Wurst;3,49;1\n2000000012352;K\xc3\xa4se;4,99;1\n"
    data = b"sku;name;price;quantity\n2E+12;Wurst;3,49;5\n2E+12;K\xc3\xa4se;4,99;7\n1e+12;Brot;2,10;3\n"
    data += b"1E-05;Salz;1;1\n4.00638E12;Mehl;1;1\n12E4;Modell;1;1\n'2E+12;Text;1;1\n"
    shop, status = _over(base, db_url, listed, data)
    _refused_as_scientific(base, shop, status, ("2E+12", "2E+12", "1e+12", "1E-05", "4.00638E12"))
    # a model code (no decimal point, no sign: no spreadsheet writes it); a cell kept as text
    assert _levels(db_url, shop[0]) == [("12E4", 1), ("2000000012345", 1), ("2000000012352", 1), ("2E+12", 1)]


def test_a_sku_that_may_be_a_number_a_program_wrote_is_mapped_as_written_and_noted(base: str, db_url: str) -> None:
    """F3-D4: `12E4` (no sign: no spreadsheet writes it, a model code may read so) and pandas' `4006381333948.0` (an
    integer column with an empty cell, read as floats) mapped as written without a word, while the same `.0` is read
    as digits in a `gtin` cell. Both stay mapped as written, with a note naming the cell; a size `1.0` is no note,
    but is one beside a GTIN that ends `.0` too (its column was written by pandas)."""
    shop = _shop(db_url)
    data = b"sku,name,price,quantity,gtin\n12E4,Modell,1,1,\n4006381333948.0,Pandas,1,2,\n1.0,Size,1,3,\n"
    data += b"2.0,Size two,1,4,0.0\n"
    status = _import(base, db_url, shop, data)
    assert (status["status"], status["error_rows"], status["noted_rows"]) == ("completed", 0, 3), status
    notes = httpx.get(f"{base}/v1/imports/{status['batch_id']}/notes", headers=bearer(shop[1])).text
    assert "sku '12E4' is mapped as written, though it reads as a number in scientific notation" in notes, notes
    assert "sku '4006381333948.0' is mapped as written, though it looks like 4006381333948 written as a" in notes
    assert "sku '2.0' is mapped as written" in notes and "'1.0'" not in notes, notes
    assert _levels(db_url, shop[0]) == [("1.0", 3), ("12E4", 1), ("2.0", 4), ("4006381333948.0", 2)]
