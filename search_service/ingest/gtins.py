"""GTINs as stores write them: the normal form (14 digits, its check digit valid), the numbers that name no article
the world over, and the digits of one a spreadsheet wrote as a number."""

from __future__ import annotations

import re
from typing import Any

from search_service.engine.text import searchable
from search_service.ingest.spreadsheet_cells import unmarked


def _cell(value: Any) -> str:
    """A GTIN's text less spaces and hyphens, and less the marker that keeps a spreadsheet cell text (a leading `'`,
    an `="…"` wrapper: Excel's way to keep leading zeros), which was read as a length problem. Read as search reads
    `q` (`searchable`): full-width digits (a Japanese input method types `４００６…`) as ASCII, a ZWSP dropped."""
    text = re.sub(r"[\s-]", "", searchable(str(value)))
    inside = unmarked(text)
    return text if inside is None else inside


def gtin14(value: Any) -> str | None:
    """The GTIN in its normal form (14 digits, zero-padded) when it is a GTIN-8/12/13/14 with a valid check
    digit, else None. Spaces, hyphens and a spreadsheet's text marker are ignored. GTINs are right-aligned
    numbers (GS1): 9 to 11 digits are one whose leading zeros a spreadsheet dropped (UPC-A `036000291452` as
    `36000291452`)."""
    text = _cell(value)
    if not text.isascii() or not text.isdecimal() or not 8 <= len(text) <= 14:
        return None
    padded = text.zfill(14)
    body, check = padded[:13], int(padded[13])
    # GS1: weights 3,1,3,… from the digit left of the check digit.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return padded if (10 - total % 10) % 10 == check else None


def store_local_gtin(normal: str) -> str | None:
    """Why a valid GTIN-14 names no article the world over, or None: all zeros (a placeholder), or GS1's
    restricted circulation numbers a store gives its own goods (GTIN-13 prefixes 20-29, UPC number systems 2 and 4:
    loose produce, weighed cheese), which two stores use for different things."""
    if normal.strip("0") == "":
        return "all zeros: a placeholder, not an article's number"
    if normal.startswith("000000") and normal[6] in "02":  # GTIN-8 prefixes 0 and 2: RCN-8
        return f"GTIN-8 prefix {normal[6]}: a number for a store's own goods (GS1 restricted circulation)"
    prefix = normal[1:3]  # the GTIN-13's first two digits (after a GTIN-14's indicator digit)
    if "20" <= prefix <= "29" or prefix in ("02", "04"):
        return f"prefix {prefix.lstrip('0') or '0'}: a number for a store's own goods (GS1 restricted circulation)"
    return None


_SCIENTIFIC = re.compile(r"(\d)(?:[.,](\d+))?[eE]\+?(\d{1,3})")  # 4.067829728481E+12, as a spreadsheet writes
_POINT_ZERO = re.compile(r"(\d+)[.,]0+")  # 4044608329039.0, as pandas writes a column of floats


def digits_of_a_number(value: Any) -> str | None:
    """The digits of a GTIN written as a number that kept them all (`4.067829728481E+12`, `4044608329039.0`),
    else None: its check digit then decides, as for any other."""
    text = _cell(value)
    if point_zero := _POINT_ZERO.fullmatch(text):
        return point_zero[1]
    if not (scientific := _SCIENTIFIC.fullmatch(text)):
        return None
    fraction, exponent = scientific[2] or "", int(scientific[3])
    if len(fraction) < exponent or fraction[exponent:].strip("0"):  # digits lost, or no whole number
        return None
    return scientific[1] + fraction[:exponent]


def why_not_a_gtin(value: Any) -> str:
    text = _cell(value)
    if scientific := _SCIENTIFIC.fullmatch(text):
        kept, needed = 1 + len(scientific[2] or ""), 1 + int(scientific[3])
        if kept < needed and 8 <= needed <= 14:  # only here are a GTIN's digits known to be lost
            return (
                f"scientific notation keeps {kept} of its {needed} digits (a spreadsheet number format lost the "
                "rest: format the column as text)"
            )
        if kept > needed and digits_of_a_number(text) is None:
            return "not a whole number: a GTIN is 8 to 14 digits"
    text = digits_of_a_number(text) or text
    if not text.isdecimal() or not 8 <= len(text) <= 14:
        return "a GTIN is 8 to 14 digits"
    if not text.isascii():  # Arabic-Indic or other digits: search reads a barcode in 0-9 only
        return "a GTIN is written in the digits 0-9"
    return "its check digit is wrong"
