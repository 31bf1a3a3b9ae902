"""Validation of the pipeline's normalized rows (see `pipeline` for the shape): each row becomes a `ValidRow`
or a rejection reason. Pure Python, no database: the mapping validates a chunk, then applies it set-based.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pycountry

from search_service.engine.text import searchable, trim_invisible
from search_service.ingest.gtins import digits_of_a_number, gtin14, store_local_gtin, why_not_a_gtin

OPS = ("upsert", "delete", "stock")
MAX_PRICE = Decimal("9999999999.99")  # numeric(12, 2)
MAX_QUANTITY = 2**31 - 1
MAX_ATTRIBUTES = 10_000  # characters of their JSON
NEGATIVE_PRICE = "price must not be negative"  # a 400 of the listing writes too (api/error_specs.py)
MAX_TEXT = {"sku": 200, "name": 500, "brand": 200, "description": 10_000, "category": 1000}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# ISO 4217's current codes (pycountry's copy of the standard): `EUO` or `ERU` would price a listing in nothing. Less
# the codes that are no money a shop takes: metals, bond units, SDR-like units, testing (XTS), "no currency" (XXX).
# And the funds codes (accounting units, no cash).
_METALS_AND_UNITS = ("XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX")
_FUNDS = ("BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW")
_NOT_MONEY = frozenset(_METALS_AND_UNITS + _FUNDS)
ISO_CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies) - _NOT_MONEY
# English and the words German Excel writes and types (WAHR/FALSCH, ja/nein); French and Dutch (vrai/faux, waar/onwaar).
_TRUE = {"true", "1", "yes", "y", "t", "wahr", "ja", "j", "vrai", "oui", "waar"}
_FALSE = {"false", "0", "no", "n", "f", "falsch", "nein", "faux", "non", "onwaar", "nee"}


class Rejected(ValueError):
    """The row cannot be mapped; the message is the reason shown to the store."""


@dataclass
class ValidRow:
    op: str
    sku: str
    gtin: str | None = None
    name: str | None = None
    brand: str | None = None
    description: str | None = None
    category: int | str | None = None  # an id or a path "A > B > C" (resolved by the mapping)
    price: Decimal | None = None
    currency: str | None = None
    quantity: int | None = None
    is_active: bool | None = None
    attributes: dict[str, Any] | None = None
    updated_at: datetime | None = None
    version: int | None = None
    catalog_version: int | None = None  # a connector's product version: the catalogue's clock where it has one
    notes: list[str] = field(default_factory=list)  # what was ignored; kept on the row with status mapped


def trimmed(text: str) -> str:
    """A text cell as rows are read, a SKU too: less surrounding whitespace (spaces, tabs, line breaks, no-break
    spaces) and format characters (a BOM, a zero-width space: a CSV's SKU cell drops them, and the same SKU sent by
    the API was another listing). The API's answers and reads key a SKU by this, so ` A1 ` is `A1` everywhere."""
    stripped = text.strip()
    return stripped if stripped.isascii() else trim_invisible(stripped)


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if type(value) is not str:  # the common case first: an isinstance against the union costs an ABC check
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise Rejected(f"{key} must be a string")
        value = str(value)
    text = trimmed(value)
    if len(text) > MAX_TEXT.get(key, 1000):
        raise Rejected(f"{key} is longer than {MAX_TEXT.get(key, 1000)} characters")
    return text or None


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
_LINE_BREAKS = re.compile(r"\s*[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]\s*")  # with the spaces around them
_CODE_IN_PRICE = re.compile(r"^[A-Za-z]{3}[+-]?[\d.,]|[\d.,][A-Za-z]{3}$")  # `3.49 EUR`, `EUR 3.49` (spaces dropped)


def decimal_sign(text: str) -> str | None:
    """The decimal sign a number's text uses, when it shows one: the last of `,` and `.` when both appear (the
    other groups thousands), the only one when it appears once; None for a plain or grouped whole number."""
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
    (`٣٫٤٩`, `１０`), and the Arabic decimal and thousands signs."""
    shown_text = text.strip()
    shown = f"{key} {shown_text[:40]!r}"  # as written: `2,10 €`, not the `2,10€` read
    text = shown_text.translate(_SPACES)
    if key == "price" and any(unicodedata.category(c) == "Sc" for c in text):
        raise Rejected(f"{shown} holds a currency sign: drop it (write {_EXAMPLE[key]}), or put the code in currency")
    if key == "price" and (text[:1].isalpha() or text[-1:].isalpha()) and _CODE_IN_PRICE.search(text):
        raise Rejected(f"{shown} holds a currency code: drop it (write {_EXAMPLE[key]}), and put the code in currency")
    if _EXPONENT.search(text):  # Decimal reads it; digits may be lost (what a GTIN's note says too)
        raise Rejected(f"{shown} is in scientific notation, which may have lost digits: write the number in full "
                       f"({_EXAMPLE[key]})")  # fmt: skip
    # Python's digit grouping (1_000), which Decimal reads and no till or spreadsheet writes; spaces or apostrophes
    # that do not group thousands (`3 49`)
    if "_" in text or not _spaces_group_thousands(shown_text):
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
        price = _plain_number(str(value), "price", None)
    if not price.is_finite():
        raise Rejected("price must be a finite number")
    if price < 0:
        raise Rejected(NEGATIVE_PRICE)
    if price >= MAX_PRICE + Decimal("0.005"):  # what rounds to a cent past it (9999999999.994 is .99)
        raise Rejected(f"price must be at most {MAX_PRICE}")
    return price


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
        number = _plain_number(str(value), "quantity", level_decimal(str(value), decimal))
    if not number.is_finite() or number != number.to_integral_value():
        raise Rejected(f"quantity {str(value)[:40]!r} is not a whole number")
    if number < 0:
        raise Rejected("quantity must not be negative")
    if number > MAX_QUANTITY:
        raise Rejected(f"quantity must be at most {MAX_QUANTITY}")
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


def parse_currency(value: Any) -> str:
    text = str(value).strip().upper()
    if not _CURRENCY.match(text):
        raise Rejected(f"currency {str(value)[:20]!r} is not a 3-letter code (ISO 4217, e.g. EUR)")
    if text not in ISO_CURRENCIES:
        raise Rejected(f"currency {text!r} is not a current ISO 4217 code of money (e.g. EUR, USD, GBP)")
    return text


def _attributes(value: Any) -> dict[str, Any] | None:
    """A listing's attributes, at most MAX_ATTRIBUTES characters as JSON: they are served whole by the public
    product read and embedded with the name (9.5 MB went in, and out to anyone)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Rejected("attributes must be an object")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
    if size > MAX_ATTRIBUTES:
        raise Rejected(f"attributes take {size} characters as JSON; at most {MAX_ATTRIBUTES}")
    return value


def parse_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Rejected(f"{key} must be true or false (also yes/no, 1/0, wahr/falsch, ja/nein)")


# How far ahead of this server's clock a source's clock may be: past it, a write would make every later one stale
# (a POS set to the wrong year, 9999-12-31) and nothing could write the listing with a clock again.
CLOCK_AHEAD_MAX = timedelta(days=1)
CLOCK_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)  # no till's clock reads earlier unless it was never set


def parse_timestamp(value: Any) -> datetime:
    try:
        stamp = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        stamp = stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    except ValueError:
        raise Rejected(f"updated_at {str(value)[:40]!r} is not an ISO-8601 time") from None
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past the year 9999 in UTC
        raise Rejected(f"updated_at {str(value)[:40]!r} is out of range (years 1-9999 in UTC)") from None
    if stamp < CLOCK_FLOOR:  # 0001-01-01T00:00Z went in as -infinity, and every later clocked write was a 500
        raise Rejected(f"updated_at {str(value)[:40]!r} is before 1970: a clock that was never set")
    if stamp - datetime.now(UTC) > CLOCK_AHEAD_MAX:
        raise Rejected(
            f"updated_at {str(value)[:40]!r} is more than a day ahead of this server's clock: check the sender's clock"
        )
    return stamp


def parse_version(value: Any, key: str = "version") -> int:
    if isinstance(value, bool) or not str(value).strip().isdecimal():
        raise Rejected(f"{key} must be a whole number >= 0")
    number = int(str(value).strip())
    if number >= 2**63:
        raise Rejected(f"{key} is too large")
    return number


def parse_category(value: Any) -> int | str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _text({"category": value}, "category")
    if text is None:
        return None
    text = searchable(text)
    if not text:
        return None
    return int(text) if text.isdecimal() and len(text) < 18 else text


def _op_and_sku(row: dict[str, Any]) -> tuple[str, str]:
    op = row.get("op", "upsert")
    if op not in OPS:
        raise Rejected(f"op must be one of {', '.join(OPS)}")
    sku = _text(row, "sku")
    if not sku:
        raise Rejected("sku is required")
    return op, sku


def _price_decimal(price: Any) -> str | None:
    """The decimal sign of a row's price: a text's own (`decimal_sign`); a number's (JSON, a connector's) is `.`,
    whole or not: the API reads a JSON 3 as 3.0, and a program that writes numbers writes a point."""
    if isinstance(price, str):
        return decimal_sign(price)
    return "." if isinstance(price, int | float | Decimal) and not isinstance(price, bool) else None


def _common(row: dict[str, Any], out: ValidRow) -> None:
    if row.get("updated_at") not in (None, ""):
        out.updated_at = parse_timestamp(row["updated_at"])
    if row.get("version") not in (None, ""):
        out.version = parse_version(row["version"])
    if row.get("catalog_version") not in (None, ""):
        out.catalog_version = parse_version(row["catalog_version"], "catalog_version")
    if row.get("price") not in (None, ""):
        given = parse_price(row["price"])
        out.price = cents(given)
        if out.price != given:  # a listing holds cents: say so rather than change the price silently
            out.notes.append(f"price {given} rounded to {out.price} (a listing holds 2 decimals)")
        elif isinstance(row["price"], str) and (split := _LONE_POINT.fullmatch(row["price"].strip())):  # 2.500
            out.notes.append(f"price {split[0]!r} read as {out.price} (a lone point is a decimal point): if it is "
                             f"{split[1]}{split[2]}, write it without a thousands separator")  # fmt: skip
    if row.get("currency") not in (None, ""):
        out.currency = parse_currency(row["currency"])
    if row.get("quantity") not in (None, ""):
        out.quantity = parse_quantity(row["quantity"], _price_decimal(row.get("price")))
        if row.get("quantity_sent") not in (None, ""):
            out.notes.extend(rounded_level(row["quantity_sent"], out.quantity))


def _upsert_fields(row: dict[str, Any], out: ValidRow) -> None:
    if out.price is None:
        raise Rejected("price is required")
    # No quantity: an existing listing keeps its stock, a new one starts at 0 (POS catalogues and stock arrive
    # apart: X-Series, Erply and Shopify send products without a level for the location).
    for key in ("name", "brand", "description"):  # as search reads them (engine/text.py): NFC, widths folded
        text = _text(row, key)
        if text is not None and key != "description" and not text.isprintable():  # Excel's Alt+Enter: a space
            text = _LINE_BREAKS.sub(" ", text)
        folded = (searchable(text) or None) if text is not None else None
        if folded is not None and len(folded) > MAX_TEXT[key]:  # a ligature spelled out is two or three letters
            raise Rejected(f"{key} is longer than {MAX_TEXT[key]} characters once its ligatures are spelled out")
        setattr(out, key, folded)
    out.category = parse_category(row.get("category"))
    if row.get("is_active") not in (None, ""):
        out.is_active = parse_bool(row["is_active"], "is_active")
    out.attributes = _attributes(row.get("attributes"))
    raw_gtin = row.get("gtin")
    if raw_gtin not in (None, ""):
        out.gtin = gtin14(digits_of_a_number(raw_gtin) or raw_gtin)
        if out.gtin is None:
            out.notes.append(f"gtin {str(raw_gtin)[:20]!r} ignored: {why_not_a_gtin(raw_gtin)}")
        elif (local := store_local_gtin(out.gtin)) is not None:  # not an article's: it would join other stores'
            out.gtin = None
            out.notes.append(f"gtin {str(raw_gtin)[:20]!r} ignored: {local}")


def validate(row: Any) -> ValidRow:
    """The row, checked and typed; raises Rejected with the reason."""
    if not isinstance(row, dict):
        raise Rejected("a row must be an object")
    if row.get("_error"):
        raise Rejected(str(row["_error"]))
    op, sku = _op_and_sku(row)
    out = ValidRow(op=op, sku=sku)
    _common(row, out)
    if op == "upsert":
        _upsert_fields(row, out)
    elif op == "stock" and out.quantity is None and out.price is None:
        raise Rejected("a stock row needs quantity or price")
    return out
