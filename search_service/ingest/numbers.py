"""Numbers as stores write them, for the pipeline's rows (`rows.py`): prices and stock levels with a decimal comma
or point, thousands grouped by points, commas, spaces or apostrophes, and what is refused (a spreadsheet's
exponent, a currency code in the cell, a lone separator that could be either) with a reason naming the value.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from search_service.engine.text import searchable
from search_service.ingest.sent_values import as_sent

MAX_PRICE = Decimal("9999999999.99")  # numeric(12, 2)
MAX_QUANTITY = 2**31 - 1
NEGATIVE_PRICE = "price must not be negative"  # a 400 of the listing writes too (api/error_specs.py)
# A level past its range: a batch item's reason, and a PUT's or PATCH's 400 in the same words (api/errors.py)
QUANTITY_RANGE = ("quantity must not be negative", f"quantity must be at most {MAX_QUANTITY}")


class Rejected(ValueError):
    """The row cannot be mapped; the message is the reason shown to the store."""


_GROUPED = {",": re.compile(r"^\d{1,3}(,\d{3})+$"), ".": re.compile(r"^\d{1,3}(\.\d{3})+$")}
_AMBIGUOUS = re.compile(r"([1-9]\d{0,2}),(\d{3})")  # 1,299: 1299 grouped (en), or 1.299 (de)
_LONE_POINT = re.compile(r"([1-9]\d{0,2})\.(\d{3})")  # 2.500: 2.5 as read, or 2500 grouped (de): noted
_EXAMPLE = {"price": "1234.50 or 1234,50", "quantity": "a whole number such as 1500"}
_SPACES = str.maketrans("", "", " \u00a0\u202f'\u2019")  # grouping by spaces (fr) or apostrophes (ch)
_SPACED = re.compile("[ \u00a0\u202f'\u2019]")
# groups of three after the first, then any decimals: `1 234,56`, `1'234'567.50` (`3 49`, `1'2'3` are not)
_SPACE_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0\u202f'\u2019]\d{3})+(?:[.,]\d+)?")
_EXPONENT = re.compile(r"[\d.,][eE][+-]?\d+$")  # 1.23E+03: a General-format cell too narrow for its digits
_ARABIC_SIGNS = str.maketrans("\u066b\u066c", ".,")  # ٫ decimal, ٬ thousands: each says which it is
_CODE_IN_PRICE = re.compile(r"^[A-Za-z]{3}[+-]?[\d.,]|[\d.,][A-Za-z]{3}$")  # `3.49 EUR`, `EUR 3.49` (spaces dropped)


def _ascii_forms(text: str) -> str:
    """A number's text with full-width digits and signs as ASCII (`３．４９`, `３，４９`: a Japanese input method) and
    invisible characters dropped (`5` and a zero-width space), as search reads `q` (engine/text.searchable)."""
    return text if text.isascii() else searchable(text)


def decimal_sign(text: str) -> str | None:
    """The decimal sign a number's text uses, when it shows one: the last of `,` and `.` when both appear (the
    other groups thousands), the only one when it appears once; None for a plain or grouped whole number."""
    text = _ascii_forms(text)
    comma, dot = text.rfind(","), text.rfind(".")
    if comma >= 0 and dot >= 0:
        return "," if comma > dot else "."
    sign = "," if comma >= 0 else "." if dot >= 0 else None
    return sign if sign and text.count(sign) == 1 else None


_ONE_GROUP = re.compile(r"[+-]?\d{1,3}[.,]\d{3}")  # 1.000: a thousand, or one; the row's price says which


def _spaces_group_thousands(text: str) -> bool:
    """Whether the spaces and apostrophes in a number's text, if any, group thousands: they are dropped before the
    `.`/`,` groups are checked, and `3 49` or `1'2'3` were read as 349 and 123."""
    text = text.strip()
    return not _SPACED.search(text) or _SPACE_GROUPED.fullmatch(text) is not None


def level_decimal(text: str, price_decimal: str | None) -> str | None:
    """The decimal sign of a stock level's text: its own where the text shows it (`10.0`, `10,00`: a group of
    one, two or four digits groups no thousands; `1.000,0`: the last of both), the price's for `1.000`, which
    could be either."""
    text = _ascii_forms(text)
    if not _spaces_group_thousands(text):
        return None  # not a number: `_plain_number` refuses it
    text = text.strip().translate(_SPACES)
    if not _ONE_GROUP.fullmatch(text):
        return decimal_sign(text)
    whole, fraction = re.split("[.,]", text.lstrip("+-"))
    if whole.startswith("0"):  # `0.000`, `05.000`: no thousands group starts with 0 (an ERP's three decimals)
        return decimal_sign(text)
    if price_decimal is None:  # a whole price (`2`) settles nothing: 5.000 was 5 beside it, 5000 beside 3,49
        small = format(Decimal(f"{whole}.{fraction}").normalize(), "f")
        raise Rejected(
            f"quantity {text!r} could be {small} or {whole}{fraction}: write it without a thousands separator"
        )
    return price_decimal


def _plain_number(text: str, key: str, decimal: str | None) -> Decimal:
    """A number written as people write them: `3,49`, `1.234,56`, `1,234.56`, `1 234,56`, `1'234.50`. The
    thousands separator is the sign that is not `decimal` (None: the text's own, `decimal_sign`); groups of
    three digits are checked, so `1,2,3` is refused rather than read as 123. Without `decimal`, a lone `.` is
    the decimal sign (as every program writes numbers: `1.999` is 1.999), and `1,299` (a lone comma, then three
    digits), 1299 in English and 1.299 in German, is refused rather than guessed. Digits of any script read
    (`٣٫٤٩`, `１０`), the full-width signs (`３．４９`) and the Arabic decimal and thousands signs."""
    shown_text, read = text.strip(), _ascii_forms(text.strip())
    shown = f"{key} {as_sent(shown_text)}"  # as written: `2,10 €`, not the `2,10€` read
    text = read.translate(_SPACES)
    if key == "price" and any(unicodedata.category(c) == "Sc" for c in text):
        raise Rejected(f"{shown} holds a currency sign: drop it (write {_EXAMPLE[key]}), or put the code in currency")
    if key == "price" and (text[:1].isalpha() or text[-1:].isalpha()) and _CODE_IN_PRICE.search(text):
        raise Rejected(f"{shown} holds a currency code: drop it (write {_EXAMPLE[key]}), and put the code in currency")
    if _EXPONENT.search(text):  # Decimal reads it; digits may be lost (what a GTIN's note says too)
        raise Rejected(f"{shown} is in scientific notation, which may have lost digits: write the number in full "
                       f"({_EXAMPLE[key]})")  # fmt: skip
    # Python's digit grouping (1_000), which Decimal reads and no till or spreadsheet writes; spaces or apostrophes
    # that do not group thousands (`3 49`)
    if "_" in text or not _spaces_group_thousands(read):
        raise Rejected(f"{shown} is not a number (write {_EXAMPLE[key]})")
    if "\u066b" in text or "\u066c" in text:
        if "," in text or "." in text:
            raise Rejected(f"{shown} is not a number (write {_EXAMPLE[key]})")
        text, decimal = text.translate(_ARABIC_SIGNS), "."
    if decimal is None and (split := _AMBIGUOUS.fullmatch(text)):
        small = format(Decimal(f"{split[1]}.{split[2]}").normalize(), "f")
        raise Rejected(f"{shown} could be {small} or {split[1]}{split[2]}: write it without a thousands separator")
    decimal = decimal or decimal_sign(text)
    if decimal is None:  # a whole number, perhaps grouped: 1.000.000 or 1,234,567
        grouping, whole, fraction = ("," if "," in text else "."), text, ""
    else:
        grouping = "." if decimal == "," else ","
        whole, _, fraction = text.partition(decimal)
    if grouping in whole:
        if not _GROUPED[grouping].match(whole.lstrip("+-")) or grouping in fraction:
            raise Rejected(f"{shown} is not a number (write {_EXAMPLE[key]})")
        whole = whole.replace(grouping, "")
    try:
        return Decimal(f"{whole}.{fraction}" if fraction else whole)
    except InvalidOperation:
        raise Rejected(f"{shown} is not a number (write {_EXAMPLE[key]})") from None


def parse_price(value: Any) -> Decimal:
    """A price ≥ 0 as given (`3,49`, `3.49` and `1.234,56` all read); `cents` rounds it to what a listing holds."""
    if isinstance(value, bool):
        raise Rejected("price must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected("price must be a finite number")
    if isinstance(value, int | float | Decimal):  # a JSON number says what it is
        price = Decimal(str(value))
    else:
        price = _plain_number(_text_of(value, "price"), "price", None)
    if not price.is_finite():
        raise Rejected("price must be a finite number")
    if price < 0:
        raise Rejected(NEGATIVE_PRICE)
    if price >= MAX_PRICE + Decimal("0.005"):  # what rounds to a cent past it (9999999999.994 is .99)
        raise Rejected(f"price must be at most {MAX_PRICE}")
    return price


def _text_of(value: Any, key: str) -> str:
    """A number's text, refused when the value is no text (a JSON list or object), named as sent: its str() was
    read, and quoted as a text (`"['3']"`)."""
    if not isinstance(value, str):
        raise Rejected(f"{key} {as_sent(value)} is not a number (write {_EXAMPLE[key]})")
    return value


def cents(price: Decimal) -> Decimal:
    return price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def parse_quantity(value: Any, decimal: str | None = None) -> int:
    """An absolute stock level: a whole number ≥ 0. `decimal`: the decimal sign of the row's price, which says
    what a level's lone separator before three digits is (`1.000`: a thousand beside `3,49`, one beside `3.49`)."""
    if isinstance(value, bool):
        raise Rejected("quantity must be a whole number")
    if isinstance(value, int | float | Decimal):
        number = Decimal(value)
    else:
        text = _text_of(value, "quantity")
        number = _plain_number(text, "quantity", level_decimal(text, decimal))
    if not number.is_finite() or number != number.to_integral_value():
        raise Rejected(f"quantity {as_sent(value)} is not a whole number")
    if number < 0:
        raise Rejected(QUANTITY_RANGE[0])
    if number > MAX_QUANTITY:
        raise Rejected(QUANTITY_RANGE[1])
    return int(number)


def rounded_level(sent: Any, quantity: int) -> list[str]:
    """The note of a connector's level that was a fraction (`quantity_sent`: 0.750 kg of cheese), rounded up to
    the whole units a listing holds: none when `quantity` is not that fraction rounded up."""
    try:
        number = Decimal(str(sent).strip())
    except InvalidOperation:
        return []
    if not number.is_finite() or not quantity - 1 < number < quantity:
        return []
    return [f"stock level {str(sent).strip()[:40]} rounded up to {quantity} (a listing holds whole units)"]


def lone_point(value: Any) -> re.Match[str] | None:
    """A text with a lone point before three digits (`2.500`: 2.5, or 2500 grouped in German), split there."""
    return _LONE_POINT.fullmatch(_ascii_forms(value.strip())) if isinstance(value, str) else None


def lone_point_note(value: Any, key: str, read: Any, why: str) -> str | None:
    """The note of a `lone_point` text read with its point a decimal point (`why`), naming the thousands reading;
    None for any other value."""
    split = lone_point(value)
    if split is None:
        return None
    thousands = f"{split[1]}{split[2]}"
    return f"{key} {split[0]!r} read as {read} ({why}): if it is {thousands}, write it without a thousands separator"
