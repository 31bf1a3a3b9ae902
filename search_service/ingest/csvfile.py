"""CSV files into pipeline rows: the delimiter (`,` `;` tab) detected, or named by Excel's `sep=` first line; UTF-8
with or without a BOM, or UTF-16/32 with one (Excel's "Unicode text"); headers case-insensitive. A row the file
itself makes unreadable (ragged, not UTF-8) becomes a row with `_error`, stored and reported `rejected` like any
other; a file without a `sku`, `price` or `quantity` column, empty, not text at all (a workbook), or one the reader
cannot read to its end (a quote never closed, a cell past the reader's limit) is refused whole (CsvError).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from search_service.engine.text import INVISIBLE_CHARS, trim_invisible
from search_service.ingest.csv_quotes import (
    STRAY_QUOTE_HINT,
    LineIndex,
    closed_inside,
    quote_then_text,
    remembered,
    row_inside,
    spanning_quote,
    split_first_line,
)
from search_service.ingest.csv_text import SAVE_AS, decoded
from search_service.ingest.csv_text import CsvError as CsvError  # raised here, caught by every caller
from search_service.ingest.spreadsheet_cells import read_sku

COLUMNS = ("sku", "gtin", "name", "brand", "description", "category", "price", "currency", "quantity", "is_active")
REQUIRED = ("sku", "price", "quantity")
DELIMITERS = (",", ";", "\t")
# How a file that is not UTF-8 names its charset, by the door it came through (a row not UTF-8 is told which).
CHARSET_BY_HTTP = (
    "upload it with its charset (Content-Type: text/csv; charset=windows-1252, on the body or its multipart part)"
)
CHARSET_BY_CLI = "import it with its charset (--charset windows-1252)"
# Excel writes (and reads) the delimiter as the first line; a sheet saved again pads it with empty cells (`sep=;;;`),
# LibreOffice quotes it as the cell holding the delimiter it is (`"sep=;";;;`); a second BOM or a zero-width space
# a tool left before it (the header's cells are read without them) made the line the header, and the file refused
_SEP_LINE = re.compile(
    rf"[{INVISIBLE_CHARS}]*(?P<quote>\"?)sep=(?P<sep>[^\"\r\n])(?P=quote)(?P=sep)*\s*", re.IGNORECASE
)
_BLANK_LINE = re.compile(r"[\s,;]*")  # a line without a cell: blank, or of separators only (`;;;`)
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, as surrogateescape holds them


@dataclass
class ParsedCsv:
    columns: list[str]
    ignored_columns: list[str]
    rows: list[dict[str, Any]]
    delimiter: str


def _counts(header_line: str) -> dict[str, int]:
    """How often the header uses each delimiter (outside quotes)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return counts


def detect_delimiter(header_line: str) -> str:
    """The delimiter under which the header names the required columns, the one it uses most first (a `;` file's
    `Maße (B,H,T,L,G)` has more commas); when none does, the one it uses most (the header is then refused)."""
    counts = _counts(header_line)
    used = sorted((d for d in DELIMITERS if counts[d]), key=lambda d: -counts[d])
    for delimiter in used:
        try:
            cells = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error:  # a cell past the reader's limit: the header's reader refuses it (a CsvError)
            continue
        if all(column in {_name(cell) for cell in cells} for column in REQUIRED):
            return delimiter
    return used[0] if used else ","


def _name(header_cell: str) -> str:
    """A header cell as its column's name: without the BOM or zero-width space a re-saved file left at its ends."""
    return trim_invisible(_clean(header_cell)).lower()


def _visible(text: str) -> str:
    """`text` for a message, the characters a reader cannot see escaped (`\\ufeff`, `\\t`)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _clean(cell: str) -> str:
    """A cell whose bytes were not UTF-8 (held as surrogates), made storable."""
    return cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _has_bad_bytes(cells: list[str]) -> bool:
    return any(_UNDECODABLE.search(cell) for cell in cells)


MAX_COLUMNS = 500
RAGGED_EXTRA = 20  # a ragged row keeps this many cells past the header's count (one of 10M cells was a 1 GB row)


def _row(
    header: list[str], cells: list[str], undecodable: bool = True, naming_charset: str = CHARSET_BY_HTTP
) -> dict[str, Any]:
    """`undecodable`: whether the file has any bytes that were not UTF-8 (else no cell needs the check);
    `naming_charset`: how to name the file's charset (CHARSET_BY_HTTP or CHARSET_BY_CLI)."""
    if undecodable and _has_bad_bytes(cells):
        return {
            "_error": f"the row is not valid UTF-8: {SAVE_AS}, or {naming_charset}",
            "_raw": [_clean(c) for c in cells],
        }
    if len(cells) != len(header):
        if len(cells) > len(header) and not any(c.strip() for c in cells[len(header) :]):
            cells = cells[: len(header)]  # a spreadsheet's trailing separators (`TR-1;x;1;1;;`): nothing lost
        else:  # the cells kept for the errors CSV: as many as the header's, and a few more
            kept = cells if len(cells) <= len(header) + RAGGED_EXTRA else [*cells[: len(header) + RAGGED_EXTRA], "…"]
            return {"_error": f"the row has {len(cells)} cells, the header has {len(header)}", "_raw": kept}
    row: dict[str, Any] = {"_raw": cells}
    for column, cell in zip(header, cells, strict=True):
        if column in COLUMNS and cell.strip() != "":
            row[column] = cell.strip()
    if "quantity" not in row:  # an empty level is no level: a new listing went in out of stock, silently
        row["_error"] = "quantity is required: the cell is empty (write the stock level, 0 when there is none)"
    read_sku(row)  # a spreadsheet's text marker dropped; scientific notation rejected
    return row


@dataclass
class _Opened:
    header: list[str]
    delimiter: str
    reader: Any  # the csv module's reader: its `line_num` is the line it has read up to
    source: io.StringIO
    shift: int  # the file's lines before the text read (blank ones, Excel's `sep=` line)
    undecodable: bool  # whether the file holds any bytes that were not UTF-8
    last: list[str]  # the line the reader read last, kept when the file holds a quote (`remembered`)


def _records(data: bytes, charset: str | None = None) -> _Opened:
    """The file opened past its header (one scan of the whole text for bytes that were not UTF-8, not one per
    cell: that per-character check was two thirds of parsing a clean file)."""
    first_line, text, shift = _past_blank_lines(decoded(data, charset))
    named = _SEP_LINE.fullmatch(first_line)
    if named:
        first_line, text, after = _past_blank_lines(split_first_line(text)[1])
        shift += 1 + after
    if _BLANK_LINE.fullmatch(first_line):  # the first line holding a cell: none
        raise CsvError("the file is empty")
    if "\x00" in first_line:
        raise CsvError(
            "the file's first line holds NUL bytes, so it is not UTF-8 text (a binary file, or UTF-16 without a "
            f"byte-order mark?): {SAVE_AS}"
        )
    delimiter = named.group("sep") if named else detect_delimiter(first_line)
    source, last = io.StringIO(text, newline=""), [""]
    reader = csv.reader(remembered(source, last) if '"' in text else source, delimiter=delimiter)
    try:
        header = [_name(h) for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise CsvError(f"the header cannot be read ({exc})") from None
    if len(header) > MAX_COLUMNS:  # 10M columns held ~1 GB and answered a 40 MB list of ignored ones
        raise CsvError(f"the header has {len(header)} columns; at most {MAX_COLUMNS} are read: keep the known ones")
    _check_header(header, None if named else _other_delimiter(first_line, delimiter))
    return _Opened(header, delimiter, reader, source, shift, _UNDECODABLE.search(text) is not None, last)


def _past_blank_lines(text: str) -> tuple[str, str, int]:
    """The text's first line holding a cell, the text from it on, and how many lines came before it: blank lines
    and lines of separators only are passed over before the header as they are after it (the first one was read
    as the header, and the file refused for columns it had)."""
    skipped = 0
    line, rest = split_first_line(text)
    while rest and _BLANK_LINE.fullmatch(line):
        text, skipped = rest, skipped + 1
        line, rest = split_first_line(text)
    return line, text, skipped


def _other_delimiter(header_line: str, delimiter: str) -> str | None:
    """A delimiter the header holds besides the one it was read with, for a `sep=` line to name."""
    return next((d for d in (*DELIMITERS, "|") if d != delimiter and d in header_line), None)


def _check_header(header: list[str], other_delimiter: str | None = None) -> None:
    """`other_delimiter`: one the header holds besides the one it was read with (a missing column is then perhaps
    split at it: the refusal says how to name it)."""
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        names = " or ".join(repr(column) for column in missing)
        ignored = [_visible(h) for h in header if h not in COLUMNS]
        unread = f"; not read: {', '.join(ignored)[:200]}" if ignored else ""
        split = "a tab" if other_delimiter == "\t" else repr(other_delimiter)
        line = "sep= and a tab" if other_delimiter == "\t" else f"sep={other_delimiter}"
        sep = f"; if its columns are split by {split}, make {line} the file's first line" if other_delimiter else ""
        raise CsvError(
            f"the file has no {names} column (columns: {', '.join(map(_visible, header))[:200]}{unread}){sep}",
            missing[0],
        )
    for column in COLUMNS:
        where = [i + 1 for i, h in enumerate(header) if h == column]
        if len(where) > 1:  # which one holds the value is not ours to guess
            raise CsvError(f"the column {column!r} appears {len(where)} times (columns {where}): keep one", column)


class CsvRows:
    """A CSV file's rows, read a block at a time (`parse_csv` reads them all). The header is checked at once
    (CsvError); a file the reader cannot read to its end (a quote never closed, a cell past the reader's limit)
    raises CsvError from the block that meets it, saying where and how many lines were not read: a caller storing
    the rows in one transaction stores none. `naming_charset`: how a row not UTF-8 is told to name the file's
    charset, by the door it came through."""

    def __init__(self, data: bytes, charset: str | None = None, naming_charset: str = CHARSET_BY_HTTP) -> None:
        opened = _records(data, charset)
        self.delimiter, self._reader, self._undecodable = opened.delimiter, opened.reader, opened.undecodable
        self._source, self._shift = opened.source, opened.shift
        self._last, self._quote_then_text = opened.last, quote_then_text(opened.delimiter)
        self._naming_charset = naming_charset
        self._header = header = opened.header
        self.columns = [h for h in header if h in COLUMNS]
        self.ignored_columns = [h or f"(column {i + 1}, no header)" for i, h in enumerate(header) if h not in COLUMNS]
        self.done = False
        self._index: LineIndex | None = None

    def block(self, size: int) -> list[dict[str, Any]]:
        """The next `size` rows (fewer at the end; none once done)."""
        rows: list[dict[str, Any]] = []
        if self.done:
            return rows
        reader = self._reader
        start = reader.line_num
        try:
            while (cells := next(reader, None)) is not None:
                if any(cell.strip() for cell in cells):  # not a blank line, nor one of separators only (`;;;`)
                    row = _row(self._header, cells, self._undecodable, self._naming_charset)
                    if reader.line_num - start > 1:  # a quoted cell held line breaks
                        self._spanning(row, start + 1)
                    elif '"' in (line := self._last[0]) and self._quote_then_text(line):  # `"28" Zoll`
                        _stray(row, closed_inside(line, self.delimiter, self._header, start + 1 + self._shift))
                    rows.append(row)
                    if len(rows) >= size:
                        return rows
                start = reader.line_num
        except csv.Error as exc:
            raise self._unreadable(start + 1, exc) from None
        self.done = True
        return rows

    def _lines(self) -> LineIndex:
        if self._index is None:  # the text again, only for a file with a cell over several lines
            self._index = LineIndex(self._source.getvalue())
        return self._index

    def _spanning(self, row: dict[str, Any], line: int) -> None:
        """A record over several lines: a ragged one, or one whose quote closes inside a cell (`"fuenf`), says
        which quote swallowed them; one never closed fails the file."""
        quote = self._never_closed(line)
        if quote is None:
            return
        if quote.mid_cell or str(row.get("_error", "")).startswith("the row has"):
            _stray(row, f"{quote.says()}: the lines between were read as one cell; {STRAY_QUOTE_HINT}")
        elif (inside := row_inside(self._lines(), quote, self.delimiter, self._header, self._shift)) is not None:
            row["_error"] = (f"{quote.says()}: the rows between (from line {inside}) were read as part of this row's "
                             f"cell, not as rows; {STRAY_QUOTE_HINT}")  # fmt: skip

    def _never_closed(self, line: int) -> Any:
        """The quote spanning the record of the text's `line`; CsvError when it is never closed."""
        index = self._lines()
        quote = spanning_quote(index, line, self.delimiter, self._header, self._shift)
        if quote is not None and quote.closes is None:
            unread = index.lines() - line + 1
            raise CsvError(
                f"the file cannot be read whole: {quote.says()}, so the {unread} lines from line {quote.opens} to the "
                f"end were read as one cell, not as rows; {STRAY_QUOTE_HINT}"
            )
        return quote

    def _unreadable(self, line: int, exc: csv.Error) -> CsvError:
        """Why the reader stopped at the record of the text's `line`, and how many lines it left unread."""
        index = self._lines()
        unread, shown = index.lines() - line + 1, line + self._shift
        if "field larger than field limit" not in str(exc):
            return CsvError(f"the file cannot be read past line {shown} ({exc}); the {unread} lines from there on "
                            "were not read")  # fmt: skip
        limit = csv.field_size_limit()
        quote = spanning_quote(index, line, self.delimiter, self._header, self._shift)
        if quote is None:
            return CsvError(
                f"the file cannot be read past line {shown}: a cell there is longer than {limit} characters, the most "
                f"a cell may hold; the {unread} lines from line {shown} on were not read"
            )
        return CsvError(
            f"the file cannot be read past line {shown}: {quote.says()}, and a cell is read up to {limit} "
            f"characters; the {unread} lines from line {shown} on were not read; {STRAY_QUOTE_HINT}"
        )


def _stray(row: dict[str, Any], says: str | None) -> None:
    """`says` (a stray quote's doing) as the row's rejection, after a ragged row's cell count."""
    if says is not None:
        ragged = str(row.get("_error", "")).startswith("the row has")
        row["_error"] = f"{row['_error']}: {says}" if ragged else says


def parse_csv(data: bytes) -> ParsedCsv:
    reader = CsvRows(data)
    rows: list[dict[str, Any]] = []
    while not reader.done:
        rows.extend(reader.block(100_000))
    return ParsedCsv(reader.columns, reader.ignored_columns, rows, reader.delimiter)
