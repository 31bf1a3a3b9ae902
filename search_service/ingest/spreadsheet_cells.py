"""Cells as a spreadsheet writes them: the marker that keeps a cell text (a leading `'`, an `="…"` wrapper, an ERP
export's way to keep leading zeros from Excel), dropped from a GTIN (`gtins`) and a CSV's SKU; a SKU cell in
scientific notation (Excel's General format: `4.00638E+12`, `2E+12`) refused, as its digits may be lost and two
SKUs read the same; one that may be a number a program wrote (`12E4`, pandas' `4006381333948.0`) noted."""

from __future__ import annotations

import re
from typing import Any

from search_service.engine.text import trim_invisible

_TEXT_MARKER = re.compile(r"'(.*)|=\"(.*)\"")  # '0012345, ="0012345": a spreadsheet's text cell
# 4006381333948 in Excel's General format: 4.00638E+12, 4,00638E+12, 2E+12 (no decimal point, a sign: `12E4` is a
# model code a store may use; no spreadsheet writes an exponent without its sign)
_SCIENTIFIC = re.compile(r"\d+[.,]\d+E[+-]?\d{1,3}|\d+E[+-]\d{1,3}", re.IGNORECASE)
_SKU_CHANGED = (
    "is in scientific notation: a spreadsheet changed it (a number format keeps only some of its digits, and two "
    "SKUs may read the same): format the sku column as text and export the file again"
)


# Read as written but noted (`sku_note`): `12E4` reads as 120000 in scientific notation, but no spreadsheet writes
# an exponent without its sign and model codes are written so (no digits known lost); `4006381333948.0` is how pandas
# writes an integer column that has an empty cell (read as floats), where `1.0` is a size: a long number, or one
# whose row's GTIN ends `.0` too.
_UNSIGNED_EXPONENT = re.compile(r"\d+E\d{1,3}", re.IGNORECASE)
_POINT_ZERO = re.compile(r"(\d+)[.,]0+")
_ITEM_NUMBER_DIGITS = 6


def sku_note(sku: str, gtin: Any) -> str | None:
    """What an upsert's SKU, mapped as written, may be instead: a number a program wrote (`4006381333948.0`,
    `12E4`), said so that a store whose real SKU is 4006381333948 finds its new listing; None for any other."""
    if _UNSIGNED_EXPONENT.fullmatch(sku):
        return (
            f"sku {sku!r} is mapped as written, though it reads as a number in scientific notation: if a spreadsheet "
            "or program wrote it so, digits may be lost (format the sku column as text and export it again)"
        )
    point_zero = _POINT_ZERO.fullmatch(sku)
    if point_zero and (len(point_zero[1]) >= _ITEM_NUMBER_DIGITS or _POINT_ZERO.fullmatch(str(gtin or "").strip())):
        return (
            f"sku {sku!r} is mapped as written, though it looks like {point_zero[1]} written as a decimal (pandas "
            "writes an integer column with an empty cell so): if that is the SKU, write the column as whole numbers"
        )
    return None


def unmarked(text: str) -> str | None:
    """The text inside a spreadsheet's text marker (`'0012345`, `="0012345"`), or None when `text` has none."""
    if marked := _TEXT_MARKER.fullmatch(text):
        return marked[1] if marked[1] is not None else marked[2]
    return None


def read_sku(row: dict[str, Any]) -> None:
    """The row's `sku` cell (stripped) as the SKU it names, or the row rejected naming `sku`. Read as written, a
    marked cell (`="0012345"`) was a new listing beside 0012345, which kept its stock; one in scientific notation
    was another listing, or a "duplicate" of another SKU. A marked cell is text, so no spreadsheet changed it."""
    if "sku" not in row:
        return
    sku = row["sku"] if row["sku"].isascii() else trim_invisible(row["sku"])  # a BOM or zero-width space at its ends
    if _SCIENTIFIC.fullmatch(sku):
        row["_error"] = f"sku {sku!r} {_SKU_CHANGED}"
    elif (inside := unmarked(sku)) is not None:
        sku = trim_invisible(inside)
    row["sku"] = sku
