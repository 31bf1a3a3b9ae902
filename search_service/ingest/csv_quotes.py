"""Where a CSV file's quoted cell ran past its line. A stray `"` at a cell's start (an inch mark: `"Zoll`, `5"`
typed first) opens a quoted cell that swallows the lines after it, as the csv module reads it: up to the next
quote, or to the end of the file. Only looked into when a record spans lines (its quoted cell's lines are read again
for lines that are rows of their own) or the reader gave up, so the scans here are no cost of a file without
cells over several lines. On one line, a quote that closes a quoted cell with text after it (`"28" Zoll`): a line
holding a quote is searched for one (`quote_then_text`), and only a line that may hold one is walked."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the lines the reader reads (io.StringIO with newline="")
_NUMBER = re.compile(r"[+-]?[\d.,' \u00a0]*\d[\d.,' \u00a0]*")  # a price or a level as a file writes it
STRAY_QUOTE_HINT = 'check for a stray " such as 5" (inside a quoted cell write it "")'


@dataclass
class SpanningQuote:
    """A quoted cell holding line breaks: its column, the file's line its quote opens on and the one it closes
    on (None: never)."""

    column: str
    opens: int
    closes: int | None
    mid_cell: bool = False  # closed by a quote with text after it (`"fuenf`): no well-formed file has that

    def says(self) -> str:
        where = f"a quote opened in column {self.column} on line {self.opens}"
        if self.closes is None:
            return f"{where} is never closed"
        return f"{where} closes only on line {self.closes}" + (", inside a cell" if self.mid_cell else "")


class LineIndex:
    """The offset of a line of the text, found by walking forward from the last one asked for (records are
    looked into in file order, so a file of many such rows is walked once)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line, self._offset = 1, 0

    def offset(self, line: int) -> int:
        if line < self._line:
            self._line, self._offset = 1, 0
        while self._line < line:
            found = LINE_BREAK.search(self.text, self._offset)
            if found is None:
                return len(self.text)
            self._line, self._offset = self._line + 1, found.end()
        return self._offset

    def lines(self) -> int:
        text = self.text
        breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
        return breaks + (0 if text.endswith(("\n", "\r")) or not text else 1)


def closing_quote(text: str, start: int) -> int | None:
    """Where the quoted cell whose content starts at `start` closes, as the csv module reads it: `""` is a quote
    inside the cell, any other `"` closes it; None when none does."""
    pos = start
    while (found := text.find('"', pos)) >= 0:
        if not text.startswith('"', found + 1):
            return found
        pos = found + 2
    return None


def spanning_quote(index: LineIndex, line: int, delimiter: str, header: list[str], shift: int) -> SpanningQuote | None:
    """The first quoted cell holding a line break in the record starting on the text's `line`; `shift`: the
    lines before the text in the file (Excel's `sep=` line)."""
    text = index.text
    start = pos = index.offset(line)
    stops = re.compile(f"[{re.escape(delimiter)}\r\n]")
    cell = 0
    while pos < len(text):
        if text[pos] == '"':  # a quote opens a cell only at its start
            close = closing_quote(text, pos + 1)
            stop = len(text) if close is None else close
            if LINE_BREAK.search(text, pos, stop):
                opens = line + _breaks(text, start, pos)
                if close is None:
                    return SpanningQuote(_column(header, cell), opens + shift, None)
                closes = opens + _breaks(text, pos, close) + shift
                mid_cell = text[close + 1 : close + 2] not in ("", delimiter, "\r", "\n")
                return SpanningQuote(_column(header, cell), opens + shift, closes, mid_cell)
            pos = stop + 1  # the rest of the cell is read as it stands
        found = stops.search(text, pos)
        if found is None or found.group() != delimiter:
            return None
        cell, pos = cell + 1, found.end()
    return None


def _breaks(text: str, start: int, end: int) -> int:
    return sum(1 for _ in LINE_BREAK.finditer(text, start, end))


def _column(header: list[str], cell: int) -> str:
    return header[cell] if cell < len(header) and header[cell] else f"{cell + 1}"


def row_inside(index: LineIndex, quote: SpanningQuote, delimiter: str, header: list[str], shift: int) -> int | None:
    """The first line wholly inside a quoted cell that reads as a row of its own (the header's number of cells, a
    number for price and quantity), as a file line; None when none does. Two stray quotes (`"28 Zoll`, then
    `1/2"` rows later) make a well-formed cell of the rows between: the first row took the last one's price and
    stock, and those between were never read."""
    if quote.closes is None:
        return None
    numeric = [header.index(c) for c in ("price", "quantity") if c in header]
    for line in range(quote.opens - shift + 1, quote.closes - shift):
        start, end = index.offset(line), index.offset(line + 1)
        cells = next(csv.reader([index.text[start:end].rstrip("\r\n")], delimiter=delimiter), [])
        if len(cells) == len(header) and all(_NUMBER.fullmatch(cells[i].strip()) for i in numeric):
            return line + shift
    return None


def remembered(lines: Iterable[str], last: list[str]) -> Iterator[str]:
    """`lines`, each kept in `last[0]` as the reader reads it: a record on one line is its last line."""
    for line in lines:
        last[0] = line
        yield line


def quote_then_text(delimiter: str) -> Callable[[str], re.Match[str] | None]:
    """A search for a quote that may close a quoted cell with text after it (`"28" Zoll`): an odd run of quotes (a
    closing one after `""` pairs) not at a cell's start, then, past any spaces, text. `closed_inside` says whether
    one does (`5" Zoll` in a cell not quoted is read as written); a well-formed line of quoted cells has none."""
    d, spaces = re.escape(delimiter), "" if delimiter == " " else " *"
    return re.compile('"(?<=[^' + d + '"]")(?:"")*' + spaces + "[^" + d + '"\r\n ]').search  # a quote first: fast


def closed_inside(line: str, delimiter: str, header: list[str], number: int) -> str | None:
    """Why a record on one line, the file's line `number`, is rejected when a quote closes one of its quoted cells
    with text after it (`"28" Zoll`, `"Monitor 27" Full HD"`): the reader drops that quote and keeps the text, so
    the cell was stored altered, without a trace. None when no quoted cell is closed so."""
    stops = re.compile(f"[{re.escape(delimiter)}\r\n]")
    pos = cell = 0
    while pos < len(line):
        if line[pos] == '"':
            close = closing_quote(line, pos + 1)
            if close is None:
                return None
            found = stops.search(line, close + 1)
            pos = found.start() if found else len(line)
            if line[close + 1 : pos].strip(" "):
                return (f"a quote opened in column {_column(header, cell)} on line {number} closes inside a cell, "
                        f"with text after it: the cell was read without that quote; {STRAY_QUOTE_HINT}")  # fmt: skip
        found = stops.search(line, pos)
        if found is None or found.group() != delimiter:
            return None
        cell, pos = cell + 1, found.end()
    return None


def split_first_line(text: str) -> tuple[str, str]:
    """The text's first line and the text after it, cut where the csv reader cuts lines: at `\r\n`, `\r` or `\n`
    (a file of `\r` line ends, Excel for Mac's "CSV (Macintosh)", was one line: a 500 from the csv module)."""
    found = LINE_BREAK.search(text)
    return (text, "") if found is None else (text[: found.start()], text[found.end() :])
