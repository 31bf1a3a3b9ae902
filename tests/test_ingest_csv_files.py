"""CSV files as spreadsheets write them: UTF-16/32 with a byte-order mark (Excel's "Unicode text"), Excel's `sep=`
first line; and files that are no CSV at all (a workbook, a binary, UTF-16 without a mark), refused with what to do
instead, by the parser, over real HTTP and by `import csv`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from search_service.ingest.csvfile import CsvError, parse_csv
from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, ingest_settings, new_store, serve, store_key
from tests.test_ingest_cli import cli, create_store

TABLE = "SKU\tName\tPrice\tQuantity\r\nu1\tHafermilch \u00e9t\u00e9 \u2615\t2,49\t4\r\nu2\tK\u00e4se, alt\t3.10\t0\r\n"
XLSX = b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40  # the zip header every .xlsx starts with
XLS = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40


def rows_of(data: bytes) -> list[dict[str, object]]:
    return parse_csv(data).rows


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe" + TABLE.encode("utf-16-le"),
        b"\xfe\xff" + TABLE.encode("utf-16-be"),
        TABLE.encode("utf-32"),  # Python writes its native-order mark
        b"\xef\xbb\xbfsep=\t\r\n" + TABLE.encode(),
    ],
    ids=["utf-16-le", "utf-16-be", "utf-32", "bom-and-sep-line"],
)
def test_a_table_in_another_encoding_or_with_a_sep_line_reads_as_its_utf8_form(data: bytes) -> None:
    expected = rows_of(TABLE.encode())
    assert [r["name"] for r in expected] == ["Hafermilch \u00e9t\u00e9 \u2615", "K\u00e4se, alt"]
    assert rows_of(data) == expected


def test_rows_of_separators_only_are_blank_rows() -> None:
    """Excel leaves `;;;` lines at the end of an export: each was a row without a SKU (rejected, and before that
    reported as a duplicate of the others)."""
    rows = rows_of(b"sku;name;price;quantity\r\nA1;Milk;1,5;3\r\n;;;\r\n ; ;;\r\n;;;\r\n")
    assert [r["sku"] for r in rows] == ["A1"]


def test_a_sep_line_names_a_delimiter_the_header_would_not() -> None:
    parsed = parse_csv(b"sep=|\nsku|name|price|quantity\nA1|Milk, whole|1.5|3\n")
    assert parsed.delimiter == "|"
    assert parsed.rows[0]["name"] == "Milk, whole" and parsed.rows[0]["sku"] == "A1"
    with pytest.raises(CsvError, match="empty"):
        parse_csv(b"sep=;\r\n")
    # a sheet saved again pads the line with empty cells, and writes it in capitals: refused for "no 'sku' column"
    for line in (b"sep=;;;;", b"SEP=;", b"Sep=; "):
        padded = parse_csv(line + b"\r\nsku;name;price;quantity\r\nA1;Milk, whole;1,5;3\r\n")
        assert padded.delimiter == ";" and padded.rows[0]["name"] == "Milk, whole", line


# Excel's quoted table behind its `sep=;` line, and what tools did to that line: a second BOM (a re-save), a
# zero-width space, LibreOffice's quoting of the cell holding `;`
SEP_LINE_TABLE = '"SKU";"Name";"Price";"Quantity"\r\n"X-1";"Eins";"1,00";"1"\r\n'
SEP_LINES_BEHIND_WHAT_TOOLS_WROTE = (
    "\ufeff\ufeffsep=;\r\n",
    "\u200bsep=;\r\n",
    '"sep=;";;;\r\n',
    '\ufeff"sep=;";;;\r\n',
)


def test_a_sep_line_behind_a_second_bom_or_a_zero_width_space_or_quoted_is_read(
    base: str, db_url: str, tmp_path: Path
) -> None:
    """Each was read as the header and the file refused: "the file has no 'sku' or 'price' or 'quantity' column
    (columns: sep=, ; not read: sep=, )", LibreOffice's quoted one told to "make sep=; the file's first line"."""
    for line in SEP_LINES_BEHIND_WHAT_TOOLS_WROTE:
        parsed = parse_csv((line + SEP_LINE_TABLE).encode())
        assert (parsed.delimiter, parsed.rows[0]["sku"], parsed.rows[0]["price"]) == (";", "X-1", "1,00"), line
        lf = parse_csv((line + SEP_LINE_TABLE).replace("\r\n", "\n").encode())
        assert (lf.delimiter, lf.rows[0]["sku"]) == (";", "X-1"), line
    store = create_store(db_url)
    file = tmp_path / "x1.csv"
    file.write_text(SEP_LINES_BEHIND_WHAT_TOOLS_WROTE[0] + SEP_LINE_TABLE, encoding="utf-8", newline="")
    out = cli(db_url, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0 and "1 mapped" in out.stdout, out.stdout + out.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store, "listings:write")
    data = (SEP_LINES_BEHIND_WHAT_TOOLS_WROTE[2] + SEP_LINE_TABLE.replace("1,00", "2,00")).encode()
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", content=data,
                          headers={**bearer(key), "Content-Type": "text/csv"})  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    with psycopg.connect(db_url) as conn:
        listed = conn.execute("SELECT sku, title, price::text FROM store_product WHERE store_id = %s", (store,))
        assert listed.fetchall() == [("X-1", "Eins", "2.00")]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (XLSX, "zip archive (an .xlsx or .ods workbook?)"),
        (XLS, "legacy Excel workbook (.xls)"),
        (TABLE.encode("utf-16-le"), "NUL bytes, so it is not UTF-8 text"),
        (b"\xff\xfe" + TABLE.encode("utf-16-le")[:-1], "UTF-16 byte-order mark but is not UTF-16"),
    ],
    ids=["xlsx", "xls", "utf-16-without-mark", "utf-16-cut-mid-character"],
)
def test_a_file_that_is_not_csv_text_is_refused_saying_what_to_do(data: bytes, says: str) -> None:
    with pytest.raises(CsvError) as refused:
        parse_csv(data)
    assert says in str(refused.value)
    assert str(refused.value).endswith("save it as CSV (UTF-8) and import that")


def test_a_column_named_twice_is_refused_and_an_unnamed_one_reported() -> None:
    with pytest.raises(CsvError) as twice:
        parse_csv(b"sku,name,Price,quantity,price\nB1,Bread,1.5,3,2.5\n")
    assert twice.value.column == "price"
    assert str(twice.value) == "the column 'price' appears 2 times (columns [3, 5]): keep one"
    parsed = parse_csv(b"sku,name,price,quantity,note,note,\nB2,Bread,1.5,3,a,b,\n")  # ignored ones may repeat
    assert parsed.ignored_columns == ["note", "note", "(column 7, no header)"]
    assert parsed.rows[0]["price"] == "1.5"


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings: Settings = ingest_settings(db_url, tmp_path_factory.mktemp("keys"))
    with serve(settings, None) as url:
        yield url


def test_excels_unicode_text_imports_over_http_and_a_workbook_is_a_400(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/imports"
    headers = {**bearer(key), "content-type": "text/csv"}
    workbook = httpx.post(url, content=XLSX, headers=headers)
    assert workbook.status_code == 400, workbook.text
    assert workbook.json()["error"]["parameter"] == "file"
    assert "not CSV" in workbook.json()["error"]["message"]
    twice = httpx.post(url, content=b"sku,price,quantity,price\nx,1,1,2\n", headers=headers)
    assert twice.status_code == 400 and twice.json()["error"]["parameter"] == "price"
    files = {"file": ("stock.txt", b"\xff\xfe" + TABLE.encode("utf-16-le"), "text/plain")}
    accepted = httpx.post(url, files=files, headers=bearer(key))
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    status = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    assert (status["status"], status["total_rows"], status["error_rows"]) == ("completed", 2, 0)
    with psycopg.connect(db_url) as conn:
        listed = conn.execute(
            "SELECT sku, title, price::text, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
    assert listed == [("u1", "Hafermilch \u00e9t\u00e9 \u2615", "2.49", 4), ("u2", "K\u00e4se, alt", "3.10", 0)]


def test_a_multipart_files_own_charset_is_read(base: str, db_url: str) -> None:
    # the part's Content-Type was ignored: Excel's Windows "CSV" from a browser form was refused row by row as not
    # UTF-8, told to send `Content-Type: text/csv; charset=windows-1252`, which it had, on the part
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    data = "sku,name,price,quantity\nw1,Caf\u00e9 cr\u00e8me,1.00,1\n".encode("cp1252")
    part = ("excel.csv", data, "text/csv; charset=windows-1252")
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", files={"file": part}, headers=bearer(key))
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    status = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    assert (status["status"], status["error_rows"]) == ("completed", 0), status
    with psycopg.connect(db_url) as conn:
        title = conn.execute("SELECT title FROM store_product WHERE store_id = %s", (store,)).fetchone()
    assert title == ("Caf\u00e9 cr\u00e8me",)


def test_an_unknown_charset_is_refused_before_any_batch(base: str, db_url: str) -> None:
    """A multipart file part naming an unknown charset left an `aborted` batch behind (a plain body's too): each is
    a 400 naming `content-type`, the charset and what is accepted, and import_batch holds nothing of it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/imports"
    data = b"sku,name,price,quantity\nk1,Milk,1.00,1\n"
    sent = [
        {"content": data, "headers": {**bearer(key), "Content-Type": "text/csv; charset=klingon"}},
        {"files": {"file": ("k.csv", data, "text/csv; charset=klingon")}, "headers": bearer(key)},
        {"files": {"file": ("k.csv", data, "text/csv; charset=hex")}, "headers": bearer(key)},  # no text codec
        # Python's own codecs: `undefined` decodes nothing (its batch was left aborted); the others rewrite ASCII
        *(
            {"content": data, "headers": {**bearer(key), "Content-Type": f"text/csv; charset={name}"}}
            for name in ("undefined", "utf-7", "unicode_escape", "raw_unicode_escape", "idna")
        ),
        {"files": {"file": ("k.csv", data, "text/csv; charset=punycode")}, "headers": bearer(key)},
    ]
    for request in sent:
        refused = httpx.post(url, **request)
        error = refused.json()["error"]
        assert (refused.status_code, error["parameter"]) == (400, "content-type"), refused.text
        assert "is unknown" in error["message"] and "windows-1252" in error["message"], error
        assert re.search(r"the charset '[\w-]+' is unknown", error["message"]), error
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM import_batch WHERE store_id = %s", (store,)).fetchone() == (0,)
    # the form's `_charset_` names its text fields' encoding, not the file's: not read
    form = httpx.post(url, data={"_charset_": "klingon"}, files={"file": ("k.csv", data, "text/csv")},
                      headers=bearer(key))  # fmt: skip
    assert form.status_code == 202, form.text


def test_import_csv_refuses_a_workbook_in_one_line(fresh_db_url: str, tmp_path: Path) -> None:
    store = create_store(fresh_db_url)
    workbook = tmp_path / "stock.xlsx"
    workbook.write_bytes(XLSX)
    out = cli(fresh_db_url, "import", "csv", str(workbook), "--store", str(store))
    assert out.returncode == 1
    assert "error: the file is a zip archive (an .xlsx or .ods workbook?), not CSV" in out.stderr
    assert "Traceback" not in out.stderr
    unicode_text = tmp_path / "stock.txt"
    unicode_text.write_bytes(b"\xff\xfe" + TABLE.encode("utf-16-le"))
    ok = cli(fresh_db_url, "import", "csv", str(unicode_text), "--store", str(store))
    assert ok.returncode == 0, ok.stderr
    assert "2 rows, 2 mapped" in ok.stdout
    assert uuid.UUID(ok.stdout.split("batch ")[1].split()[0])


def test_an_upload_says_which_columns_it_ignored_and_keeps_its_file_name(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/imports"
    data = b"sku,name,price,quantity,colour,\nv1,Vase,9.50,2,blue,x\n"
    accepted = httpx.post(url, files={"file": ("vases.csv", data, "text/csv")}, headers=bearer(key))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["ignored_columns"] == ["colour", "(column 6, no header)"]
    status = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    assert status["file_name"] == "vases.csv"
    plain = httpx.post(
        url, content=b"sku,name,price,quantity\nv2,Jug,3,1\n", headers={**bearer(key), "content-type": "text/csv"}
    )
    assert plain.status_code == 202 and plain.json()["ignored_columns"] == []


def test_the_errors_csv_quotes_every_cell_and_defuses_formulas_past_spaces() -> None:
    """Unquoted, `x;=cmd|…` split into a formula where a spreadsheet's list separator is `;`."""
    from search_service.ingest.csv_errors import errors_csv

    cells = ["x;=cmd|' /C calc'!A0", " =1+1", "|calc", "\uff1d1+1", "-1", "plain", 'say "hi"']
    text = errors_csv([(2, "=bad", cells, {}), (3, "no raw", 5, {"sku": "@s"})])  # type: ignore[list-item]
    lines = text.splitlines()
    assert lines[0] == '"row","reason","cells"'
    assert lines[1] == (
        '"2","\'=bad","x;=cmd|\' /C calc\'!A0","\' =1+1","\'|calc","\'\uff1d1+1","\'-1","plain","say ""hi"""'
    )
    assert lines[2] == '"3","no raw","sku=@s"'  # a sender's `_raw` that is no list of cells: the row's fields


def test_a_header_of_too_many_columns_is_refused_and_a_ragged_rows_cells_are_bounded() -> None:
    """A 20 MB header of 10M columns held ~1 GB and answered a 40 MB list of ignored columns; a row of 10M cells
    was stored whole as its original cells, a 1 GB value PostgreSQL could not allocate (a 500)."""
    with pytest.raises(CsvError, match="the header has 501 columns; at most 500 are read"):
        parse_csv(("sku" + ",x" * 500 + "\n").encode())
    parsed = parse_csv(b"sku,name,price,quantity\n" + b"a" + b",b" * 10_000 + b"\n")
    (row,) = parsed.rows
    assert row["_error"] == "the row has 10001 cells, the header has 4"
    assert len(row["_raw"]) == 4 + 20 + 1 and row["_raw"][-1] == "…"


@pytest.mark.parametrize("space", ["\u3000", "\u00a0", "\u2003", "\n", "\x0b", "\x0c", "\u2028", "\t "])
def test_a_formula_past_any_whitespace_is_defused(space: str) -> None:
    """Only ASCII spaces were passed over: an ideographic space (an East Asian input method's) or a line break
    before `=1+1` left the formula live, though the row's own reason strips them (`price '=1+1' is not a number`)."""
    from search_service.ingest.csv_errors import escape_cell

    assert escape_cell(f"{space}=1+1") == f"'{space}=1+1"
    plain = f"{space}plain"  # text is left alone, unless it starts with a tab (a cell a spreadsheet may split)
    assert escape_cell(plain) == ("'" + plain if space.startswith("\t") else plain)


MAC = b"sku,name,price,quantity\rM-001,Mac Apfel,0.5,10\rM-002,Mac Birne,0.6,11\r"  # Excel for Mac's "CSV (Macintosh)"


def test_a_file_of_cr_line_ends_imports_over_http_and_by_import_csv(base: str, db_url: str, tmp_path: Path) -> None:
    """Its header was cut at the first `\\n`, so the whole file was one line the csv module refused: a 500 with
    a traceback, a batch left `receiving` that held the store's writes back two minutes, a traceback from `import
    csv`. A header cell past the reader's limit raised the same csv.Error."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/imports"
    plain = httpx.post(url, content=MAC, headers={**bearer(key), "content-type": "text/csv"})
    assert plain.status_code == 202, plain.text
    named = b"sep=;\rsku;name;price;quantity\rM-003;Mac Quitte;0,7;12\r"
    form = httpx.post(url, files={"file": ("mac.csv", named, "text/csv")}, headers=bearer(key))
    assert form.status_code == 202, form.text
    huge_cell = b'sku,"' + b"x" * 140_000 + b'",price,quantity\nA,b,1,1\n'
    huge = httpx.post(url, content=huge_cell, headers={**bearer(key), "content-type": "text/csv"})
    assert (huge.status_code, huge.json()["error"]["parameter"]) == (400, "file"), huge.text[:300]
    assert "the header cannot be read (field larger than field limit" in huge.json()["error"]["message"]
    file = tmp_path / "mac.csv"
    file.write_bytes(MAC.replace(b"M-00", b"C-00"))
    out = cli(db_url, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0 and "2 rows, 2 mapped" in out.stdout, out.stdout + out.stderr
    drain_imports(db_url)
    with psycopg.connect(db_url) as conn:
        batches = conn.execute("SELECT status FROM import_batch WHERE store_id = %s ORDER BY seq", (store,)).fetchall()
        listed = conn.execute(
            "SELECT sku, title, price::text, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
    assert batches == [("completed",), ("completed",), ("aborted",), ("completed",)]
    assert [sku for sku, *_ in listed] == ["C-001", "C-002", "M-001", "M-002", "M-003"]
    assert listed[2:] == [("M-001", "Mac Apfel", "0.50", 10), ("M-002", "Mac Birne", "0.60", 11),
                          ("M-003", "Mac Quitte", "0.70", 12)]  # fmt: skip


def test_blank_lines_before_the_header_are_passed_over(base: str, db_url: str) -> None:
    """The first line was the header even when blank: `the file has no 'sku' or 'price' or 'quantity' column
    (columns: )`, a 400, though blank rows and rows of separators only are passed over everywhere else."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    data = b"\r\n\r\nsku,name,price,quantity\r\nB-001,Blank,1,1\r\n"
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", files={"file": ("b.csv", data, "text/csv")},
                          headers=bearer(key))  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    status = httpx.get(f"{base}{accepted.json()['status_url']}", headers=bearer(key)).json()
    assert (status["status"], status["total_rows"], status["error_rows"]) == ("completed", 1, 0)
    assert parse_csv(b" \n;;;\nsep=;\n\nsku;name;price;quantity\nQ-1;a;1;1\n").rows[0]["sku"] == "Q-1"
    with pytest.raises(CsvError, match="a quote opened in column name on line 4 is never closed"):
        parse_csv(b'\n;;\nsku;name;price;quantity\nQ-3;"Zoll;3;3\nQ-4;vier;4;4\n')  # the file's line, not the text's
    with pytest.raises(CsvError, match="the file is empty"):
        parse_csv(b"\r\n;;;\r\n \r\n")
