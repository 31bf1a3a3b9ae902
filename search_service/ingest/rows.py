"""Validation of the pipeline's normalized rows (see `pipeline` for the shape): each row becomes a `ValidRow`
or a rejection reason. Pure Python, no database: the mapping validates a chunk, then applies it set-based.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import pycountry

from search_service.engine.text import searchable, trim_invisible
from search_service.ingest.currencies import price_decimals, why_rounded
from search_service.ingest.gtins import digits_of_a_number, gtin14, store_local_gtin, why_not_a_gtin
from search_service.ingest.numbers import (
    MAX_PRICE,
    Rejected,
    cents,
    decimal_sign,
    lone_point,
    lone_point_note,
    parse_price,
    parse_quantity,
    rounded_level,
)
from search_service.ingest.sent_values import as_sent
from search_service.ingest.spreadsheet_cells import sku_note

OPS = ("upsert", "delete", "stock")
# What a delete row may carry but does not apply: it takes the listing off sale, its clocks alone read.
NOT_ON_A_DELETE = ("name", "brand", "description", "category", "gtin", "price", "currency", "quantity", "is_active",
                   "attributes")  # fmt: skip
# What a stock row may carry but does not apply (it sets a listing's price and level): an upsert changes them.
NOT_ON_A_STOCK_ROW = ("name", "brand", "description", "category", "gtin", "is_active", "attributes")
MAX_ATTRIBUTES = 10_000  # characters of their JSON
MAX_TEXT = {"sku": 200, "name": 500, "brand": 200, "description": 10_000, "category": 1000}
SEARCHABLE_TEXT = ("name", "brand", "description", "category")  # stored as search reads them: `searchable`
_CURRENCY = re.compile(r"[A-Za-z]{3}")
# ISO 4217's current codes (pycountry's copy of the standard): `EUO` or `ERU` would price a listing in nothing. Less
# the codes that are no money a shop takes: metals, bond units, SDR-like units, testing (XTS), "no currency" (XXX).
# And the funds codes (accounting units, no cash).
_METALS_AND_UNITS = ("XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX")
_FUNDS = ("BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW")
_NOT_MONEY = frozenset(_METALS_AND_UNITS + _FUNDS)
ISO_CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies) - _NOT_MONEY
# English and the words German Excel writes and types (WAHR/FALSCH, ja/nein); French and Dutch (vrai/faux, waar/onwaar).
_TRUE = {"true", "1", "yes", "y", "t", "wahr", "ja", "j", "vrai", "oui", "waar"}
# A name's or brand's run of control characters (C0, DEL, C1: line breaks, tabs, an ESC, a BEL) and line separators,
# with the spaces around it: one space. An ESC or BEL was stored, suggested, and refused by search as q or brand.
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_ONE_LINE = re.compile(rf"[\s{_CONTROLS}]*[{_CONTROLS}][\s{_CONTROLS}]*")
# A description keeps its lines (tab, LF, CR; the other line breaks, Excel for Mac's VT among them, as LF); its other
# control characters are spaces.
_DESCRIPTION_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_AS_LINE_BREAK = frozenset("\v\f\x1c\x1d\x1e\x85")
_FALSE = {"false", "0", "no", "n", "f", "falsch", "nein", "faux", "non", "onwaar", "nee"}


@dataclass
class ValidRow:
    op: str
    sku: str
    gtin: str | None = None
    name: str | None = None
    brand: str | None = None
    description: str | None = None
    category: int | str | None = None  # an id or a path "A > B > C" (resolved by the mapping)
    category_sent: Any = None  # as sent: a JSON number's note (not found) names it as one, not as a text
    price: Decimal | None = None
    currency: str | None = None
    quantity: int | None = None
    is_active: bool | None = None
    attributes: dict[str, Any] | None = None
    updated_at: datetime | None = None
    version: int | None = None
    catalog_version: int | None = None  # a connector's product version: the catalogue's clock where it has one
    stock_apart: bool = False  # a connector's catalogue row whose vendor sends the level apart (no note without it)
    notes: list[str] = field(default_factory=list)  # what was ignored; kept on the row with status mapped
    price_sent: Any = None  # the price as sent, and as read (`given`): rounded again in the listing's currency
    price_given: Decimal | None = None
    price_notes: list[str] = field(default_factory=list)  # the notes of its rounding, among `notes`
    by_people: bool = True  # people wrote its values (not a POS connector's program): the thousands hints apply


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
    text, most = trimmed(value), MAX_TEXT.get(key, 1000)
    # Counted as stored: a decomposed `é` (macOS, PDFs) is one letter once composed (the ligature check is apart)
    if len(text) > most and (key not in SEARCHABLE_TEXT or len(searchable(text)) > most):
        raise Rejected(f"{key} is longer than {most} characters")
    return text or None


def parse_currency(value: Any) -> str:
    """A code in either case, trimmed as a store's text is (api/request_rules.py states it so), in capitals."""
    text = trimmed(value) if isinstance(value, str) else ""  # `true`, `["EUR"]`: no code (as sent in the reason)
    if not _CURRENCY.fullmatch(text):  # ASCII letters before upper(): 'ſek' and 'ıdr' were SEK and IDR
        raise Rejected(f"currency {as_sent(value, 20)} is not a 3-letter code (ISO 4217, e.g. EUR)")
    if (code := text.upper()) not in ISO_CURRENCIES:
        raise Rejected(f"currency {code!r} is not a current ISO 4217 code of money (e.g. EUR, USD, GBP)")
    return code


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
        raise Rejected(f"updated_at {as_sent(value)} is not an ISO-8601 time") from None
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past the year 9999 in UTC
        raise Rejected(f"updated_at {as_sent(value)} is out of range (years 1-9999 in UTC)") from None
    if stamp < CLOCK_FLOOR:  # 0001-01-01T00:00Z went in as -infinity, and every later clocked write was a 500
        raise Rejected(f"updated_at {as_sent(value)} is before 1970: a clock that was never set")
    if stamp - datetime.now(UTC) > CLOCK_AHEAD_MAX:
        raise Rejected(
            f"updated_at {as_sent(value)} is more than a day ahead of this server's clock: check the sender's clock"
        )
    return stamp


# A clock's version past its range, after its key: a batch item's reason, a PUT's or PATCH's 400 (api/errors.py)
VERSION_RANGE = ("must be a whole number >= 0", "is too large")


def parse_version(value: Any, key: str = "version") -> int:
    """A whole number >= 0; a JSON number written `7.0` is 7, as the API's bodies read it (a signed delivery's was
    rejected as no whole number: `str(7.0)` is `7.0`). A text's digits alone (a CSV cell)."""
    if isinstance(value, float | Decimal) and Decimal(value).is_finite() and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not str(value).strip().isdecimal():
        raise Rejected(f"{key} {VERSION_RANGE[0]}")
    number = int(str(value).strip())
    if number >= 2**63:
        raise Rejected(f"{key} {VERSION_RANGE[1]}")
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


def _price_notes(sent: Any, given: Decimal, price: Decimal, currency: str | None, by_people: bool) -> list[str]:
    """A price's note: rounded to the decimals its currency has in a listing, and a lone point's thousands reading
    (`2.500`), both in one when both apply: `1.234` (1234 in German) was noted as rounded alone, never as 1234. The
    thousands reading is for people (`by_people`): a POS connector's program writes a decimal point."""
    rounded, why = price != given, why_rounded(currency)
    if not by_people or lone_point(sent) is None:  # the common case: no note, or the rounding's alone
        return [f"price {given} rounded to {price} ({why})"] if rounded else []
    read, why = (f"{given}, rounded to {price}", f", and {why}") if rounded else (price, "")
    note = lone_point_note(sent, "price", read, f"a lone point is a decimal point{why}")
    return [note] if note else []


def price_in(row: ValidRow, currency: str | None) -> None:
    """The row's price rounded half up to the decimals of `currency` (ISO 4217, at most a listing's 2: a yen has
    none), noted when that changed it; the note of an earlier rounding replaced (a row naming no currency is read
    as 2 decimals until its listing's or store's is known: 199.5 JPY went in as 199.50 without a word)."""
    if row.price_given is None or row.price is None:  # none sent, or dropped (`clocks.is_stale`)
        return
    step = Decimal(1).scaleb(-price_decimals(currency))
    price = row.price_given.quantize(step, rounding=ROUND_HALF_UP)
    if price > MAX_PRICE:  # 9999999999.5 JPY is 10000000000: the given price is under the limit, its rounding not
        most = MAX_PRICE.quantize(step, rounding=ROUND_DOWN)
        raise Rejected(
            f"price {row.price_given} rounds to {price} ({why_rounded(currency)}), past the most a listing holds"
            f" in {currency}, {most}"
        )
    notes = _price_notes(row.price_sent, row.price_given, price, currency, row.by_people)
    row.notes = notes + [note for note in row.notes if note not in row.price_notes]  # a price's notes come first
    row.price, row.price_notes = cents(price), notes


def _common(row: dict[str, Any], out: ValidRow, by_people: bool) -> None:
    out.by_people = by_people
    if row.get("updated_at") not in (None, ""):
        out.updated_at = parse_timestamp(row["updated_at"])
    if row.get("version") not in (None, ""):
        out.version = parse_version(row["version"])
    if row.get("catalog_version") not in (None, ""):
        out.catalog_version = parse_version(row["catalog_version"], "catalog_version")
    if row.get("price") not in (None, ""):
        out.price_sent, out.price_given = row["price"], parse_price(row["price"])
        out.price = out.price_given
    if row.get("currency") not in (None, ""):
        out.currency = parse_currency(row["currency"])
    price_in(out, out.currency)  # none named: 2 decimals, until `mapping` reads the listing's or store's
    if row.get("quantity") not in (None, ""):
        out.quantity = parse_quantity(row["quantity"], _price_decimal(row.get("price")))
        hint = by_people and lone_point(row.get("price"))  # 2.500 and 1.000: both thousands in a German file?
        if hint and (note := lone_point_note(row["quantity"], "quantity", out.quantity, "as the price's lone point")):
            out.notes.append(note)
        if row.get("quantity_sent") not in (None, ""):
            out.notes.extend(rounded_level(row["quantity_sent"], out.quantity))


def _in_text(control: re.Match[str]) -> str:
    """A description's control character as text holds it: a line break, else a space."""
    return "\n" if control.group() in _AS_LINE_BREAK else " "


def _upsert_fields(row: dict[str, Any], out: ValidRow) -> None:
    if out.price is None:
        raise Rejected("price is required")
    # No quantity: an existing listing keeps its stock, a new one starts at 0 (POS catalogues and stock arrive
    # apart: X-Series, Erply and Shopify send products without a level for the location).
    for key in ("name", "brand", "description"):  # as search reads them (engine/text.py): NFC, widths folded
        text = _text(row, key)
        if text is not None and not text.isprintable():  # Excel's Alt+Enter in a name: a space
            text = _ONE_LINE.sub(" ", text) if key != "description" else _DESCRIPTION_CONTROLS.sub(_in_text, text)
        folded = (searchable(text) or None) if text is not None else None
        if folded is not None and len(folded) > MAX_TEXT[key]:  # a ligature spelled out is two or three letters
            raise Rejected(f"{key} is longer than {MAX_TEXT[key]} characters once its ligatures are spelled out")
        setattr(out, key, folded)
    out.category, out.category_sent = parse_category(row.get("category")), row.get("category")
    if row.get("is_active") not in (None, ""):
        out.is_active = parse_bool(row["is_active"], "is_active")
    out.attributes = _attributes(row.get("attributes"))
    raw_gtin = row.get("gtin")
    if raw_gtin not in (None, ""):
        out.gtin = gtin14(digits_of_a_number(raw_gtin) or raw_gtin)
        if out.gtin is None:
            out.notes.append(f"gtin {as_sent(raw_gtin, 20)} ignored: {why_not_a_gtin(raw_gtin)}")
        elif (local := store_local_gtin(out.gtin)) is not None:  # not an article's: it would join other stores'
            out.gtin = None
            out.notes.append(f"gtin {as_sent(raw_gtin, 20)} ignored: {local}")


NO_LEVEL = "quantity not given: a new listing, stored with quantity 0 (an existing one keeps its level)"


def keep_level(row: ValidRow, listed: bool, held: int | None) -> None:
    """An upsert without a level keeps its listing's (`held`, read under the store lock); a new listing's is 0,
    noted: a batch item or delivery that left `quantity` out put it on sale out of stock without a word. Not a POS
    catalogue row (`stock_apart`): its vendor sends the level apart, so every new product read as bad data."""
    if row.quantity is None:
        row.quantity = held or 0
        if not listed and not row.stock_apart:
            row.notes.append(NO_LEVEL)


LEVEL_APPLIED = "; its stock level applied alone (the vendor's level is valid on its own)"


def level_alone(row: Any) -> ValidRow | None:
    """The stock row of a refused upsert's vendor level (`own_level`: a connector carries the level on its product's
    upsert), None without one or when it is refused too: a first or full sync sends each level once, on the upsert,
    so a bad price lost a valid level for good (the listing kept its old one); a later poll's stock row applies it."""
    if not isinstance(row, dict) or row.get("own_level") is not True or row.get("op", "upsert") != "upsert":
        return None
    try:
        return validate(
            {"op": "stock", **{k: row[k] for k in ("sku", "quantity", "quantity_sent", "version") if k in row}}
        )
    except Rejected:
        return None


def validate(row: Any, *, by_people: bool = True) -> ValidRow:
    """The row, checked and typed; raises Rejected with the reason. `by_people`: people wrote its values (a CSV, the
    listing API, the signed webhook), whose lone point may group thousands; False: a POS connector's program."""
    if not isinstance(row, dict):
        raise Rejected("a row must be an object")
    if row.get("_error"):
        raise Rejected(str(row["_error"]))
    op, sku = _op_and_sku(row)
    out = ValidRow(op=op, sku=sku)
    ignored = [key for key in NOT_ON_A_DELETE if row.get(key) not in (None, "")] if op == "delete" else []
    _common({key: value for key, value in row.items() if key not in ignored}, out, by_people)
    if ignored:  # its price and level were applied without a word (its name was not)
        out.notes.append(f"{', '.join(ignored)} ignored: a delete only takes the listing off sale")
    if op == "upsert":
        _upsert_fields(row, out)
        out.stock_apart = row.get("stock_apart") is True
        if note := sku_note(sku, row.get("gtin")):  # mapped as written: a real SKU may read so
            out.notes.append(note)
    elif op == "stock":
        if out.quantity is None and out.price is None:
            raise Rejected("a stock row needs quantity or price")
        if unread := [key for key in NOT_ON_A_STOCK_ROW if row.get(key) not in (None, "")]:  # dropped unsaid
            out.notes.append(
                f"{', '.join(unread)} ignored: a stock row sets the price and quantity (an upsert the rest)"
            )
    return out


def listing_values(store_id: UUID, listings: list[tuple[ValidRow, UUID, str]]) -> dict[str, Any]:
    """The parameters of `upsert_listings` (and `adopt_listings`) for (row, product, currency) triples."""
    rows = [r for r, _, _ in listings]
    return {
        "store_id": store_id,
        "skus": [r.sku for r in rows],
        "products": [p for _, p, _ in listings],
        "titles": [r.name for r in rows],
        "prices": [r.price if r.price is not None else Decimal(0) for r in rows],
        "currencies": [c for _, _, c in listings],
        "quantities": [r.quantity or 0 for r in rows],
        "actives": [True if r.is_active is None else r.is_active for r in rows],
        "updated_ats": [r.updated_at for r in rows],
        "versions": [r.version for r in rows],
        "catalog_versions": [r.catalog_version for r in rows],
    }
