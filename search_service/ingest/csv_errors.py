"""The CSV a batch's rejected rows (`…/errors`) and rows mapped with notes (`…/notes`) are answered as: every cell
quoted, none a spreadsheet runs as a formula."""

from __future__ import annotations

import csv
import io
from typing import Any

from search_service.ingest.sent_values import as_cell

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # full-width too


def escape_cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): one starting, past any spaces, with
    `= + - @ |` (or their full-width forms), a tab or a CR gets a `'`. Any whitespace is passed over, not only
    spaces: an ideographic or no-break space, a line break before `=` (the reason strips them too)."""
    text = "" if value is None else str(value)
    starts = text[:1] in _FORMULA_START or text.lstrip()[:1] in _FORMULA_START
    return "'" + text if starts else text


def errors_csv(
    rows: list[tuple[int, str, list[str] | None, dict[str, Any]]], reason_column: str = "reason", header: bool = True
) -> str:
    """The rejected rows: row number, reason, then the original cells (or the row's fields); `reason_column`: the
    second column's name (`note` for the rows mapped with notes); `header`: False for a page after the first."""
    out = io.StringIO()
    # Every cell quoted: a spreadsheet whose list separator is `;` or a tab would split `x;=cmd|…` unquoted and
    # run the second half.
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if header:
        writer.writerow(["row", reason_column, "cells"])
    for number, reason, raw, payload in rows:
        cells = raw if isinstance(raw, list) else [f"{k}={as_cell(v)}" for k, v in payload.items()]
        writer.writerow([number, escape_cell(reason), *(escape_cell(c) for c in cells)])
    return out.getvalue()
