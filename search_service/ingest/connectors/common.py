"""What every connector shares: the page it yields, the mapping context, and tolerant value readers.

Vendors send numbers as strings ("24", "24.00000"), a single child as an object instead of a list, negative stock,
and barcodes that are not GTINs. The readers here absorb all of that once, so the mappers stay declarative.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import html
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Protocol

from search_service.ingest.gtins import gtin14, store_local_gtin
from search_service.ingest.numbers import MAX_PRICE, MAX_QUANTITY
from search_service.ingest.sent_values import as_sent

Row = dict[str, Any]
Cursor = dict[str, Any]


@dataclass(frozen=True)
class MapContext:
    """What a mapper needs besides the vendor record: the connection's location and the store's currency."""

    location: str
    currency: str | None = None  # None: the store's currency (no POS sends one)


@dataclass
class Page:
    """One page of normalized rows and the cursor to persist once those rows are stored (never before)."""

    kind: str  # "catalog" or "stock"
    rows: list[Row]
    cursor: Cursor
    read: int  # vendor records read, mapped or skipped
    links: list[ItemLink] = field(default_factory=list)
    shifted: bool = False  # a full pass's set shifted under its pages: a record may have gone unread


@dataclass(frozen=True)
class ItemLink:
    """A vendor id that later messages use instead of the listing key (Shopify inventory items, products)."""

    external_id: str
    parent_id: str | None
    sku: str
    whole_at: str | None = None  # its parent read with every child: a linked SKU not among them is deleted then


class Connector(Protocol):
    source: str

    def pages(self, cursor: Cursor, *, full: bool = False) -> Iterator[Page]: ...

    def close(self) -> None: ...


FOLD_MAX_LEVELS = 500_000  # a poll holds this many stock levels in memory (~100 MB) to write each new listing once


@dataclass
class HeldLevels:
    """A poll's stock levels, read before the products and carried on their upserts (see `fold_levels`)."""

    key: str  # the stock query's cursor key
    levels: dict[str, Row] = field(default_factory=dict)  # sku -> its stock row
    read: int = 0  # vendor stock records read
    end: Any = None  # the stock query's cursor at the end of its pass: saved only with the leftover levels
    taken: set[str] = field(default_factory=set)  # the skus whose level an upsert carries

    @classmethod
    def read_ahead(cls, stock_pages: Iterable[Page], key: str, cap: int = FOLD_MAX_LEVELS) -> HeldLevels | None:
        """A whole stock pass in memory; None past `cap` levels (the sync then reads the stock after the products)."""
        held = cls(key)
        for page in stock_pages:
            held.read += page.read
            held.levels.update((row["sku"], row) for row in page.rows)  # read later, so newer: the last one wins
            held.end = page.cursor.get(key, held.end)
            if len(held.levels) > cap:
                return None
        return held

    def carry(self, page: Page) -> Page:
        page.rows = [self.with_level(row) for row in page.rows]
        return page

    def with_level(self, row: Row) -> Row:
        """An upsert with its held level (and the level's own version, for newest wins, as its stock row has it)."""
        if row.get("op") != "upsert" or "quantity" in row or row.get("sku") not in self.levels:  # no sku: refused
            return row
        if "_error" in self.levels[row["sku"]] or "_error" in row:  # a refused level: a rejected row (`leftover`);
            return row  # a row refused as read is never mapped: its level goes as a stock row
        # every upsert of the sku carries it: one sent twice in a pass took it once, and the later copy won (at 0)
        self.taken.add(row["sku"])
        carried = {k: v for k, v in self.levels[row["sku"]].items() if k in ("quantity", "quantity_sent", "version")}
        return {**row, **carried, "own_level": True}  # refused for the rest of it, the level applies alone (ingest)

    def leftover(self, cursor: Cursor, *, every: bool = False) -> Page:
        """The levels no product took (`every`: all, a taken one without its `quantity_sent`: its upsert noted the
        rounding, and each fractional level was noted twice), with the stock cursor: it is saved only now."""
        if self.end is not None:
            cursor[self.key] = self.end
        bare = {s: {k: v for k, v in self.levels[s].items() if k != "quantity_sent"} for s in self.taken if every}
        left = [bare.get(sku, row) for sku, row in self.levels.items() if every or sku not in self.taken]
        return Page("stock", left, dict(cursor), self.read)


def fold_levels(
    cursor: Cursor,
    *,
    full: bool,
    catalog_key: str,
    stock_key: str,
    catalog: Callable[[], Iterator[Page]],
    stock: Callable[[Cursor], Iterator[Page]],
) -> Iterator[Page]:
    """The catalogue pages, then the stock pages. Every poll reads the stock first (on a copy of the cursor) and
    carries each level on its product's upsert: a new listing is written with its stock instead of created at 0
    and then updated (a spurious `stock.back`). A first (no `catalog_key` cursor) or full sync writes each listing
    once (a stale upsert still applies its level: ingest's clocks); a later poll also sends the taken levels as
    stock rows (a refused upsert loses none), with the stock cursor: a sync cut before them reads the stock again."""
    first = full or not cursor.get(catalog_key)
    held = HeldLevels.read_ahead(stock(dict(cursor)), stock_key)
    for page in catalog():
        yield held.carry(page) if held is not None else page
    if held is None:
        yield from stock(cursor)
    else:
        yield held.leftover(cursor, every=not first)


class WebhookRejected(Exception):
    """A delivery that fails authentication (401) or cannot be read (400)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class WebhookResult:
    """What a verified delivery means: rows to record, and what to read again from the vendor."""

    delivery_id: str
    kind: str
    rows: list[Row] = field(default_factory=list)
    links: list[ItemLink] = field(default_factory=list)
    repoll: set[str] = field(default_factory=set)  # "stock", "catalog", or "stock=<external id>"
    deleted_parents: list[str] = field(default_factory=list)  # Shopify products/delete: resolve via links
    needs_listing: list[str] = field(default_factory=list)  # SKUs whose level the rows set (Shopify): webhooks.py
    levels_first: list[str] = field(default_factory=list)  # SKUs of products whose level may have come first (Shopify)
    totals: dict[str, Row] = field(default_factory=dict)  # a new variant's level where the shop has one location
    event_time: str | None = None  # the vendor's time of the event (a delete's `updated_at`, for newest wins)
    account: Any = None  # the vendor account the delivery names (Erply's `clientCode`), checked at intake


def as_list(value: Any) -> list[Any]:
    """A vendor child that may be missing, one object, or a list of objects, always as a list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]


def objects(value: Any) -> list[Mapping[str, Any]]:
    """A vendor list of objects, its entries that are none left out (`"variants": [null, "x", [1, 2]]` raised)."""
    return [entry for entry in as_list(value) if isinstance(entry, Mapping)]


def an_object(value: Any) -> Mapping[str, Any]:
    """A vendor child object, or an empty one when it is missing or not an object (`"brand": "Oatly"` raised)."""
    return value if isinstance(value, Mapping) else {}


def an_id(value: Any) -> str | None:
    """A vendor id as text: a number or a string; anything else (a list, an object, true) is no id."""
    return None if isinstance(value, bool) or not isinstance(value, str | int) or value == "" else str(value)


def not_text(record: Mapping[str, Any], names: Iterable[str], where: str = "") -> str | None:
    """Why a record cannot be read, naming the first of `names` whose value is neither text nor a number (a list, an
    object, true) as sent (`not ["Mug","Cup"]`, `not true`): such a title was stored as its Python repr. None when
    they all read."""
    for name in names:
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float | Decimal)):
            return f"{where}{name} must be text or a number, not {as_sent(value)}"  # not `list`, `bool`: Python's
    return None


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


MAX_LEVEL = MAX_QUANTITY  # what a listing's quantity holds


def stock_level(value: Any) -> int | None:
    """An absolute stock level: strings and decimals read, a fraction rounded up (0.75 kg of cheese is in stock:
    cut to 0 it left search), negative stock is 0 sellable, and a level past what a listing holds is that most
    (`1e12` rejected the whole item, its name and price too)."""
    number = to_decimal(value)
    if number is None:
        return None
    if number <= 0:
        return 0
    return MAX_LEVEL if number >= MAX_LEVEL else int(number.to_integral_value(ROUND_CEILING))  # int(1e999999): slow


def level_fields(value: Any) -> Row:
    """A row's `quantity` from a vendor's level (`stock_level`; {} when none) and, when a fraction was rounded up,
    `quantity_sent`: the level as sent, which ingest notes on the row (rows.rounded_level)."""
    level, number = stock_level(value), to_decimal(value)
    if level is None or number is None:
        return {}
    rounded = 0 < number < MAX_LEVEL and number != number.to_integral_value()
    return {"quantity": level, **({"quantity_sent": str(value).strip()[:40]} if rounded else {})}


def price_text(value: Any) -> str | None:
    """The price as the vendor sent it, written out: ingest rounds it to cents and notes that on the row (rounded
    here, `0.004` went on sale free without a word, and the raw row held 0.00). A negative price, or one past what
    a listing holds, goes as sent: ingest rejects that row with its reason (quantizing 1e26 raised and failed the
    whole page); so does text that is no plain number (it was dropped, and the row refused as "price is
    required")."""
    number = to_decimal(value)
    if number is None:  # text it cannot read (`5,49`) goes as sent: ingest reads it, or names it refusing it
        return (value.strip()[:40] or None) if isinstance(value, str) else None
    if number < 0 or number > MAX_PRICE:  # written out: ingest refuses text in scientific notation ('1E+26') as a
        # spreadsheet's lost digits, which no store could mend in its POS; within 30 digits (1e999999 is a megabyte)
        return format(max(min(number, OUT_OF_RANGE), -OUT_OF_RANGE), "f")
    written = format(number, "f")  # 1E-7 written out: ingest refuses scientific notation
    return written if len(written) <= 40 else str(number)  # 1e-999999 is a megabyte written out: refused as sent


OUT_OF_RANGE = Decimal("1e30")  # any price past this says the same: too large (or negative)


def truthy(value: Any) -> bool:
    """Vendor booleans: true/"true"/1/"1"."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def gtin_or_none(raw: Any) -> str | None:
    """The barcode when it is a GTIN-8/12/13/14 with a right check digit, or a UPC-A whose leading zero was dropped
    (11 digits: R-Series' `ean`/`upc` are 11-14 digits); free text ("1234_pink") is not."""
    if raw is None:
        return None
    code = re.sub(r"[\s-]", "", str(raw))
    return code if len(code) in (8, 11, 12, 13, 14) and gtin14(code) is not None else None


def _names_an_article(code: str) -> bool:
    normal = gtin14(code)
    return normal is not None and store_local_gtin(normal) is None


def barcode_fields(*candidates: Any) -> dict[str, Any]:
    """`gtin`: the first of a record's barcodes, tried in turn, that is a GTIN naming an article, else the first
    GTIN at all (ingest notes why it is ignored): a store's junk or own code in one field ("N/A", "0000") hid a
    real GTIN in the next. With no GTIN, the first barcode kept as an attribute (still a listing, no GTIN match)."""
    texts = [text for text in ("" if raw is None else str(raw).strip() for raw in candidates) if text]
    gtins = [gtin for gtin in map(gtin_or_none, texts) if gtin]
    if gtins:
        return {"gtin": next((gtin for gtin in gtins if _names_an_article(gtin)), gtins[0])}
    return {"attributes": {"barcode": texts[0]}} if texts else {}


_TAG = re.compile(r"<[^>]+>")


def plain_text(markup: Any) -> str | None:
    """A vendor's HTML description as text: tags out, then entities read (`&amp;` was stored and searched as
    "amp"). In that order, so an escaped `&lt;script&gt;` stays the text `<script>`; white space (NBSP too) as
    one space."""
    if not markup:
        return None
    text = re.sub(r"\s+", " ", html.unescape(_TAG.sub(" ", str(markup)))).strip()
    return text or None


PASS_OVERLAP_S = 60.0  # how far before its pass's start a cursor goes: the vendor's own clocks differ by seconds


def pass_start(headers: Mapping[str, str], asked_at: float, overlap_s: float = PASS_OVERLAP_S) -> datetime:
    """When a poll's pass began by the vendor's clock (the `Date` of its first answer; `asked_at`, this machine's
    clock, without one), less `overlap_s`. A time cursor goes no later than this: a record changed while the
    pass ran is read again by the next poll wherever its page lay, and one stamped ahead cannot carry the cursor
    past changes still to come."""
    try:
        when = email.utils.parsedate_to_datetime(headers.get("date") or "")
    except (TypeError, ValueError, IndexError):
        when = datetime.fromtimestamp(asked_at, UTC)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.fromtimestamp(when.timestamp() - overlap_s, UTC)


def iso_from_naive(text: Any) -> str | None:
    """X-Series 1.0 "YYYY-MM-DD HH:MM:SS" (no zone; taken as UTC) to ISO-8601."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace(" ", "T"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def merge_attributes(row: Row, extra: dict[str, Any]) -> Row:
    values = {k: v for k, v in extra.items() if v not in (None, "")}
    if values:
        row["attributes"] = {**row.get("attributes", {}), **values}
    return row


def compact(row: Row) -> Row:
    """Drop absent values: a missing field means "not sent", never "set to null"."""
    return {k: v for k, v in row.items() if v is not None}


def hmac_sha256(key: str, message: bytes, encoding: str = "hex") -> str:
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def matches_any(given: str, key_candidates: Iterable[str], message: bytes, encoding: str = "hex") -> bool:
    """Constant-time check of a signature against each valid secret (several during a rotation)."""
    found = False
    for key in key_candidates:
        if key:
            expected = hmac_sha256(key, message, encoding)
            offered = given.strip().lower() if encoding == "hex" else given.strip()  # hex in either case
            found |= hmac.compare_digest(expected.encode(), offered.encode())
    return found


def compact_json(text: str) -> str:
    """`text` (valid JSON) without the white space between its tokens; strings and numbers stay as written."""
    out, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            escaped, in_string = (not escaped and char == "\\"), in_string and (escaped or char != '"')
        elif char == '"':
            in_string = True
        elif char in " \t\r\n":
            continue
        out.append(char)
    return "".join(out)
