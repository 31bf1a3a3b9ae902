"""Query parameters of the API: their declared types (what OpenAPI shows) and the checks types cannot express.

Type and range checks run in litestar's signature model (msgspec); its `ValidationException` is rendered by
`app.py` in our error format. What a type cannot say (trimmed length, control characters, lat/lon given
together, min_price <= max_price) is checked here and raised as `BadParameter`, rendered the same way.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from litestar.openapi.spec import Example
from litestar.params import Parameter

from search_service.engine.suggest import MAX_SUGGESTIONS
from search_service.engine.text import INVISIBLE_CHARS, Q_MAX_LENGTH, query_text, searchable, trim_invisible
from search_service.ingest.numbers import MAX_PRICE  # what a listing holds: every price a filter can meet
from search_service.ingest.rows import MAX_TEXT

BRAND_MAX_LENGTH = 200
MAX_RADIUS_M = 100_000
DEFAULT_RADIUS_M = 5000
MAX_LIMIT = 100
MAX_OFFSET = 1000
MAX_CATEGORY_ID = 2**63 - 1

# What `q` accepts, as the OpenAPI schema states it: no control characters, at least one character that is neither
# a space nor an invisible one (text.INVISIBLE_CHARS, what the server trims: a zero-width space, a BOM, a filler).
Q_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f{INVISIBLE_CHARS}][^\x00-\x1f\x7f-\x9f]*$"
# Every UUID the API takes, in a path or a query: the form it writes them, 8-4-4-4-12 hex digits (either case).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID_RE = re.compile(UUID_PATTERN[1:-1])  # fullmatch: `$` would let a trailing newline through
UUID_FORM = "8-4-4-4-12 hex digits, as the API writes ids (32 bare digits, braces or `urn:uuid:` are refused)"

Mode = Literal["hybrid", "semantic", "keyword"]

LISTINGS_PAGE_MAX = 1000  # a store's listings and imports read back a page at a time (api/listing_reads.py)

# What each parameter accepts, in words: the message of a 400 for a value of the wrong type or range.
RULES = {
    "q": f"is required: 1–{Q_MAX_LENGTH} characters of text",
    "lat": "must be a number between -90 and 90",
    "lon": "must be a number between -180 and 180",
    "radius_m": f"must be a number of metres between 1 and {MAX_RADIUS_M}",
    "limit": f"must be an integer between 1 and {MAX_LIMIT}",
    "offset": f"must be an integer between 0 and {MAX_OFFSET}",
    "category_id": "must be a positive integer (a category id)",
    "min_price": f"must be a number between 0 and {MAX_PRICE}",
    "max_price": f"must be a number between 0 and {MAX_PRICE}",
    "in_stock": "must be true or false",
    "stores_per_product": "must be an integer between 1 and 10",
    "mode": "must be one of hybrid, semantic, keyword",
    "brand": f"must be 1–{BRAND_MAX_LENGTH} characters of text",
    "sort": "must be one of relevance, distance, price",
    "fulfilment": "must be one of pickup, delivery, any",
    "explain": "must be true or false",
    "page_size": f"must be an integer between 1 and {LISTINGS_PAGE_MAX}",
    "after": f"must be at most {MAX_TEXT['sku']} characters (an SKU): give the answer's next_after",
}
SPACED_VALUE = "send it without the spaces around it"  # a number or flag with spaces around it: refused, said why
# A number is read as JSON writes one (msgspec, query_string.py): `05` and `01.5` are refused, and the message says why.
LEADING_ZERO = "send it without the leading zero, as JSON writes numbers"
_LEADING_ZERO = re.compile(r"-?0[0-9]")
UUID_RULE = "must be a UUID like 6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a (8-4-4-4-12 hex digits)"
# A parameter whose rule differs on one path.
NEARBY_MAX = 1000  # the page's radar draws every store of the radius, not the nearest 100
NEARBY_MAX_OFFSET = 100_000  # a radius of 100 km holds a country's stores: paged `limit` at a time
PATH_RULES = {
    ("/v1/suggest", "limit"): f"must be an integer between 1 and {MAX_SUGGESTIONS}",
    ("/v1/stores/nearby", "limit"): f"must be an integer between 1 and {NEARBY_MAX}",
    ("/v1/stores/nearby", "offset"): f"must be an integer between 0 and {NEARBY_MAX_OFFSET}",
}


class BadParameter(Exception):
    """A request parameter is invalid; rendered as 400 `{"error": {"parameter", "message"}}`."""

    def __init__(self, parameter: str | None, message: str) -> None:
        super().__init__(f"{parameter}: {message}" if parameter else message)
        self.parameter = parameter
        self.message = message


class NotFound(Exception):
    """The addressed resource does not exist; rendered as 404 in the same error format."""

    def __init__(self, parameter: str | None, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


class Gone(NotFound):
    """The addressed resource was there and was deleted for good (pruned); rendered as 410."""


# The parameters' examples are the demo's (`seed-demo`, its default scale and seed 42, what `make run` serves), and
# agree with each other: sent together (Swagger's "try it out"), a search finds the product at the store.
EXAMPLE_LAT, EXAMPLE_LON = 52.52, 13.405  # the demo city's centre, Berlin
EXAMPLE_CATEGORY_ID = 96  # Plumbing > Tap Repair
EXAMPLE_BRAND = "Plumbright"
EXAMPLE_PRODUCT_ID = "ae13e71b-fdb6-4ea5-afaf-315ef12d9c5f"  # Tap Washer Assortment 30 pcs, Plumbright
EXAMPLE_STORE_ID = "762ae74f-bb89-4f03-91ac-c3fd51c5c1fd"  # Handyman's Depot Pankow: 4 km off, delivers there


def _ex(value: object, summary: str | None = None) -> list[Example]:
    return [Example(summary=summary or f"{value}", value=value)]


# Declared parameter types, shared by the routes. `q` is checked by `clean_query`, so that its errors say
# what is wrong in words; its schema still states the constraints.
Q = Annotated[
    str,
    Parameter(
        description=(
            f"What to look for, in natural language. 1–{Q_MAX_LENGTH} characters after trimming surrounding "
            "whitespace; no control characters; a no-break space is a space. A barcode (GTIN-8/12/13/14, spaces "
            "and dashes allowed) finds its product first in hybrid and keyword mode (semantic ranks by meaning "
            "alone: a barcode means nothing to the model), whatever its leading zeros. A size glued to its unit "
            "(`1l`, `500g`, `6x1l`) also finds "
            "names that space it (`1 L`, `500 g`). The last word is also a prefix (`choc` finds Chocolate) unless a "
            "space follows it (`choc `: the word only). A word or phrase after `-` is excluded in every mode "
            '(`milk -oat`, `milk (-oat)`, `milk -"oat milk"`: no result holds it; the meaning ranked is the rest\'s, '
            "`milk`; a size in its spaced forms too: `milk -1l` leaves out `1 L`; `--` cancels, as PostgreSQL reads "
            "it: `milk --oat` wants oat). A query "
            "of excluded words only (`-oat`) finds nothing in any mode; one that needs no word because an excluded "
            "one is `or`-ed (`milk or -oat`) has no keyword matches: hybrid ranks by meaning alone."
        ),
        schema_extra={"minLength": 1, "maxLength": Q_MAX_LENGTH, "pattern": Q_PATTERN},
        examples=[Example(summary="natural language", value="something to fix a dripping tap")],
    ),
]
Lat = Annotated[
    float | None,
    Parameter(
        ge=-90, le=90, description="Latitude (WGS 84) of the searcher; give with `lon`.", examples=_ex(EXAMPLE_LAT)
    ),
]
Lon = Annotated[
    float | None,
    Parameter(
        ge=-180,
        le=180,
        description="Longitude (WGS 84) of the searcher; give with `lat`.",
        examples=_ex(EXAMPLE_LON),
    ),
]
RequiredLat = Annotated[float, Parameter(ge=-90, le=90, description="Latitude (WGS 84).", examples=_ex(EXAMPLE_LAT))]
RequiredLon = Annotated[float, Parameter(ge=-180, le=180, description="Longitude (WGS 84).", examples=_ex(EXAMPLE_LON))]
RadiusM = Annotated[
    float,
    Parameter(ge=1, le=MAX_RADIUS_M, description="Metres around lat/lon (needs them).", examples=_ex(5000)),
]
# Where lat/lon are optional: no schema default, since a radius without its point is a 400 (generated clients
# send a declared default with every call).
PointRadiusM = Annotated[
    float | None,
    Parameter(
        ge=1,
        le=MAX_RADIUS_M,
        description=f"Metres around lat/lon (needs them; not with `bbox`); {DEFAULT_RADIUS_M} when lat/lon are given "
        "without it.",
        examples=_ex(DEFAULT_RADIUS_M),
    ),
]
Limit = Annotated[
    int,
    Parameter(
        ge=1,
        le=MAX_LIMIT,
        description="Number of results to return, at most: a product sold out while its page is read leaves it.",
        examples=_ex(20),
    ),
]
NearbyLimit = Annotated[int, Parameter(ge=1, le=NEARBY_MAX, description="Stores to return.", examples=_ex(20))]
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description="Results to skip (pagination).", examples=_ex(0))]
NearbyOffset = Annotated[
    int,
    Parameter(
        ge=0,
        le=NEARBY_MAX_OFFSET,
        description="Stores to skip, nearest first: the next page of the radius (`total` says how many it holds).",
        examples=_ex(0),
    ),
]
CategoryId = Annotated[
    int | None,
    Parameter(
        ge=1,
        le=MAX_CATEGORY_ID,
        description="Only products in this category or its subcategories.",
        examples=_ex(EXAMPLE_CATEGORY_ID, "Tap Repair"),
    ),
]
MinPrice = Annotated[
    float | None,
    Parameter(
        ge=0,
        le=float(MAX_PRICE),
        description="Only listings priced at least this much, in whatever currency each is priced (no conversion: "
        "2.00 USD passes as 2.00 EUR).",
        examples=_ex(1.5),
        schema_extra={"minimum": 0},  # litestar drops a falsy `ge` from the schema
    ),
]
MaxPrice = Annotated[
    float | None,
    Parameter(
        ge=0,
        le=float(MAX_PRICE),
        description="Only listings priced at most this much, in whatever currency each is priced (no conversion).",
        examples=_ex(20),
        schema_extra={"minimum": 0},
    ),
]
InStock = Annotated[
    bool,
    Parameter(description="Only listings with quantity > 0 (inactive listings are never shown).", examples=_ex(True)),
]
StoresPerProduct = Annotated[
    int, Parameter(ge=1, le=10, description="Nearest stores listed per product.", examples=_ex(3))
]
ModeParam = Annotated[
    Mode,
    Parameter(
        description="hybrid (semantic + keyword; default), semantic (vectors) or keyword (full text: the words as "
        "typed, then the last word as a prefix, then typo corrections; `oatmilk` also matches oat milk, "
        "`tooth paste` toothpaste). A query the model knows no word of (emoji only, `😀`) is searched in keyword "
        "mode whatever the mode asked (`strategy` says `keyword`).",
        examples=_ex("hybrid"),
    ),
]
# Checked by `clean_brand` (trimmed first), like `q`; the schema states the constraints.
Brand = Annotated[
    str | None,
    Parameter(
        description=(
            f"Only products of this brand, whatever its case and accents. 1–{BRAND_MAX_LENGTH} characters after "
            "trimming surrounding whitespace (a decomposed accent, as macOS pastes it, counts as the letter it "
            "composes, as the brand is stored); no control characters."
        ),
        schema_extra={"minLength": 1, "maxLength": BRAND_MAX_LENGTH, "pattern": Q_PATTERN},
        examples=_ex(EXAMPLE_BRAND),
    ),
]
ProductIdParam = Annotated[
    str,
    Parameter(
        description=f"Product id (UUID): {UUID_FORM}.",
        schema_extra={"format": "uuid", "pattern": UUID_PATTERN},
        examples=_ex(EXAMPLE_PRODUCT_ID, "Tap Washer Assortment 30 pcs"),
    ),
]


def too_long(sent: str, most: int) -> bool:
    """Whether a parameter is over `most` characters both as sent (what the schema counts: a ligature is one) and
    as searched (`searchable`: a decomposed `é` pasted from macOS is one, as a stored name counts it)."""
    return len(trim_invisible(sent)) > most and len(searchable(sent)) > most


def clean_query(q: str, max_length: int | None = None) -> str:
    """`q` trimmed, or BadParameter: empty, whitespace only, longer than `max_length` (default Q_MAX_LENGTH), or
    holding control characters."""
    if any(unicodedata.category(ch) == "Cc" for ch in q):
        raise BadParameter("q", "must not contain control characters")
    text = query_text(q)  # as names are stored (engine/text.py): a decomposed ü, `ＯＡＴ`, `ﬂour` matched nothing
    if not text:
        raise BadParameter("q", "must not be empty or whitespace only")
    most = Q_MAX_LENGTH if max_length is None else max_length
    if too_long(q, most):
        raise BadParameter("q", f"must be at most {most} characters")
    return text


def check_point(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    if lat is None and lon is None:
        return None
    if lat is None:
        raise BadParameter("lat", "lat and lon must be given together")
    if lon is None:
        raise BadParameter("lon", "lat and lon must be given together")
    for name, value, bound in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        if not math.isfinite(value) or abs(value) > bound:
            raise BadParameter(name, f"must be a finite number between -{bound:g} and {bound:g}")
    return lat, lon


def _price(name: str, value: float | None) -> Decimal | None:
    if value is None:
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_PRICE:
        raise BadParameter(name, f"must be a number between 0 and {MAX_PRICE}")
    return Decimal(repr(value))


def sent_value(value: str, number: bool = True) -> str:
    """`got '…'` for a 400 on a parameter's text, with what is wrong where the rule alone does not say it (spaces
    around it, a number's leading zero: `limit=05` was "must be an integer between 1 and 100", which it looks to be)."""
    if value != value.strip():
        why = SPACED_VALUE
    elif number and _LEADING_ZERO.match(value):
        why = LEADING_ZERO
    else:
        return f"got {value[:40]!r}"
    return f"got {value[:40]!r}: {why}"


def is_uuid_text(raw: str) -> bool:
    """Whether `raw` is a UUID written as UUID_PATTERN says (the one form the API takes)."""
    return _UUID_RE.fullmatch(raw) is not None


def parse_uuid(parameter: str, raw: str) -> UUID:
    """`raw` as a UUID when written as UUID_PATTERN says, or BadParameter naming `parameter`."""
    if not is_uuid_text(raw):
        raise BadParameter(parameter, UUID_RULE)
    return UUID(raw)


def clean_brand(brand: str | None) -> str | None:
    """`brand` trimmed, or BadParameter: empty, whitespace only, too long, or holding control characters."""
    if brand is None:
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in brand):
        raise BadParameter("brand", "must not contain control characters")
    text = searchable(brand)
    if not text:
        raise BadParameter("brand", "must not be empty or whitespace only")
    if too_long(brand, BRAND_MAX_LENGTH):  # a facet's value, stored at most this long
        raise BadParameter("brand", f"must be at most {BRAND_MAX_LENGTH} characters")
    return text


def check_radius(radius_m: float | None) -> float:
    """A PointRadiusM: the default where it is left out."""
    radius_m = DEFAULT_RADIUS_M if radius_m is None else radius_m
    if not math.isfinite(radius_m) or not 1 <= radius_m <= MAX_RADIUS_M:
        raise BadParameter("radius_m", f"must be between 1 and {MAX_RADIUS_M}")
    return float(radius_m)


def check_prices(min_price: float | None, max_price: float | None) -> tuple[Decimal | None, Decimal | None]:
    low = _price("min_price", min_price)
    high = _price("max_price", max_price)
    if low is not None and high is not None and low > high:
        raise BadParameter("min_price", "must not exceed max_price")
    return low, high
