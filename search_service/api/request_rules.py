"""The rules the server checks in code on a request body, stated on the body's OpenAPI schema, so that a body the
schema takes is not refused with a 400: a store's text lengths and formats (ingest/stores.py), a listing's text
lengths, price range and currency (ingest/rows.py), a delivery radius (engine/geo_areas.py), a webhook's event types
(events/subscriptions.py). Each value is read from the code that checks it.

The server's own messages stay (msgspec would answer its own had the structs carried these as `Meta`). A batch item
is judged per item (its result says why, the request is not refused), so its schema states none of these. What
JSON Schema cannot say stays in the field's description: attributes' size as JSON, a clock's distance from now.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import OpenAPI, Schema
from litestar.openapi.spec.enums import OpenAPIType

from search_service.engine.geo_areas import DELIVERY_RADIUS_M as RADIUS
from search_service.engine.text import INVISIBLE_CHARS
from search_service.events.config import EVENT_TYPES
from search_service.events.subscriptions import MAX_URL_LENGTH
from search_service.ingest.numbers import MAX_PRICE
from search_service.ingest.rows import ISO_CURRENCIES, MAX_TEXT
from search_service.ingest.stores import ISO_COUNTRIES, TEXT_LIMITS, web_host_port

_CONTROL = r"\x00-\x1f\x7f-\x9f"  # Unicode's control characters (Cc), which a store's text fields refuse
# What the server trims from a store's text before checking it (rows.trimmed): whitespace, line breaks included, and
# invisible characters. Each store pattern takes them around the value, as the server does: `GB\n` and ` gb` are GB,
# `Berlin\n` is Berlin (the patterns refused these, which the server took).
TRIMMED = rf"[\s{INVISIBLE_CHARS}]*"
NO_CONTROL = rf"^{TRIMMED}[^{_CONTROL}]*{TRIMMED}$"
# a store's name: more than spaces and invisible characters (a zero-width space, a BOM, a Hangul filler), which it is
# trimmed of
NOT_BLANK = rf"^{TRIMMED}[^{_CONTROL}]*[^\s{_CONTROL}{INVISIBLE_CHARS}][^{_CONTROL}]*{TRIMMED}$"
# stores.is_web_address (its match ignores case), or '' (clears it)
WEB_ADDRESS = rf"^{TRIMMED}([Hh][Tt][Tt][Pp][Ss]?://{web_host_port(_CONTROL)}([/?#][^\s{_CONTROL}]*)?)?{TRIMMED}$"


def _either_case(codes: frozenset[str]) -> str:
    """Upper-case codes in either case, as alternatives grouped by all but their last letter:
    `[Aa][DEFGILMOQRSTUWXZdefgilmoqrstuwxz]|…` (ISO 3166-1), `[Ee][Uu][Rr]|…` (ISO 4217)."""
    heads = sorted({code[:-1] for code in codes})
    lasts = {head: "".join(sorted(c[-1] for c in codes if c[:-1] == head)) for head in heads}
    return "|".join(
        "".join(f"[{c}{c.lower()}]" for c in head) + f"[{last}{last.lower()}]" for head, last in lasts.items()
    )


# stores.ISO_COUNTRIES, or '' (clears it), TRIMMED around it (the server trims a store's text, stores it in capitals)
COUNTRY_CODE = f"^{TRIMMED}({_either_case(ISO_COUNTRIES)})?{TRIMMED}$"
# rows.ISO_CURRENCIES as rows.parse_currency reads one: either case, TRIMMED around it; a listing's '' is none (the
# store's currency), a store's currency is never empty
CURRENCY = f"^{TRIMMED}({_either_case(ISO_CURRENCIES)}){TRIMMED}$"
LISTING_CURRENCY = f"^({TRIMMED}({_either_case(ISO_CURRENCIES)}){TRIMMED})?$"

# A price as text: a decimal >= 0 as people write it (3,49 / 1.234,56 / 1 234,56 / 1'234.50), no sign but +: not -1,
# NaN, Infinity or 1.23E+03 (a spreadsheet's display, digits lost). The server reads each such text (rows.parse_price),
# grouping checked.
DECIMAL_TEXT = r"^\s*\+?(\d|[.,\u066b]\d)[\d.,'\u2019 \u00a0\u202f\u066b\u066c]*\s*$"

_TEXT, _NUMBER, _ARRAY = OpenAPIType.STRING, OpenAPIType.NUMBER, OpenAPIType.ARRAY
# (component schema, property) -> [(the type of the members it applies to, litestar Schema attributes)]; a number
# rule applies to integer members too.
Rules = dict[tuple[str, str], list[tuple[OpenAPIType, dict[str, Any]]]]


def _store_rules(struct: str) -> Rules:
    rules: Rules = {
        (struct, field): [(_TEXT, {"max_length": limit, "pattern": NO_CONTROL})] for field, limit in TEXT_LIMITS.items()
    }
    rules[(struct, "name")] = [(_TEXT, {"min_length": 1, "max_length": TEXT_LIMITS["name"], "pattern": NOT_BLANK})]
    rules[(struct, "website")] = [(_TEXT, {"max_length": TEXT_LIMITS["website"], "pattern": WEB_ADDRESS})]
    rules[(struct, "country_code")] = [(_TEXT, {"pattern": COUNTRY_CODE})]
    rules[(struct, "currency")] = [(_TEXT, {"pattern": CURRENCY})]
    rules[(struct, "lat")] = [(_NUMBER, {"minimum": -90, "maximum": 90})]
    rules[(struct, "lon")] = [(_NUMBER, {"minimum": -180, "maximum": 180})]
    return rules


_PRICE: list[tuple[OpenAPIType, dict[str, Any]]] = [
    (_NUMBER, {"minimum": 0, "maximum": float(MAX_PRICE)}),
    (_TEXT, {"pattern": DECIMAL_TEXT}),
]


def checked_rules() -> Rules:
    """Every rule stated, by component schema and property."""
    listing: Rules = {("ListingIn", key): [(_TEXT, {"max_length": MAX_TEXT[key]})] for key in MAX_TEXT if key != "sku"}
    return {
        **_store_rules("StoreIn"),
        **_store_rules("StorePatch"),
        ("StorePatch", "delivery_radius_m"): [(_NUMBER, {"minimum": RADIUS[0], "maximum": RADIUS[1]})],
        **listing,
        ("ListingIn", "price"): _PRICE,
        ("ListingIn", "currency"): [(_TEXT, {"pattern": LISTING_CURRENCY})],
        ("StockPatch", "price"): _PRICE,
        **_webhook_rules("WebhookCreate"),
        **_webhook_rules("WebhookUpdate"),
    }


def _webhook_rules(struct: str) -> Rules:
    return {
        (struct, "url"): [(_TEXT, {"max_length": MAX_URL_LENGTH})],
        (struct, "events"): [(_ARRAY, {"min_items": 1, "items": Schema(type=_TEXT, enum=["*", *EVENT_TYPES])})],
    }


def _applies(rule_type: OpenAPIType, member: Schema) -> bool:
    numbers = (OpenAPIType.NUMBER, OpenAPIType.INTEGER)
    return member.type == rule_type or (rule_type == _NUMBER and member.type in numbers)


def state_request_rules(openapi: OpenAPI) -> None:
    """checked_rules() on the members of their properties (tests/test_api_request_rules.py checks that each lands),
    and the rules that tie a body's fields together (_state_together)."""
    schemas = openapi.components.schemas or {} if openapi.components else {}
    for (struct, field), rules in checked_rules().items():
        schema = schemas.get(struct)
        prop = (schema.properties or {}).get(field) if isinstance(schema, Schema) else None
        members = (prop.one_of or prop.any_of or [prop]) if isinstance(prop, Schema) else []
        for rule_type, keywords in rules:
            for member in members:
                if isinstance(member, Schema) and _applies(rule_type, member):
                    for name, value in keywords.items():
                        setattr(member, name, value)
    _state_together(schemas)


# A patch the server refuses unless one of these is given, not null ({"quantity": null, "price": null}, {}: a 400).
ONE_NOT_NULL = {"StockPatch": ("quantity", "price"), "WebhookUpdate": ("url", "events")}


def _state_together(schemas: dict[str, Any]) -> None:
    """Each rule an `anyOf` inside `allOf`: at the schema's top, generators made the body that union (openapi-python-
    client: `StockPatchType0(quantity: Any)`, `price` and the others untyped); `allOf` keeps the struct's model."""
    not_null, null = Schema(schema_not=Schema(type=OpenAPIType.NULL)), Schema(type=OpenAPIType.NULL)
    rules = {
        struct: [Schema(required=[key], properties={key: not_null}) for key in keys]
        for struct, keys in ONE_NOT_NULL.items()
    }
    both = Schema(required=["lat", "lon"], properties={"lat": not_null, "lon": not_null})
    # lat and lon go together: both given, or neither (absent or null)
    rules["StorePatch"] = [Schema(properties={"lat": null, "lon": null}), both]
    for struct, members in rules.items():
        schema = schemas.get(struct)
        if isinstance(schema, Schema):
            schema.all_of = [*(schema.all_of or []), Schema(any_of=members)]
