"""The value types of the ingest request bodies (their rules and descriptions are also their OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# One listing's body (PUT/PATCH) at most: its texts and attributes (~22,000 characters) take ~130 KB even written
# as \u escapes. An 8 MB one was decoded whole before its attributes were refused, holding the event loop (and
# every other request) for a second and more: the decoder holds the GIL, so no thread helps; a 413 reads none of it.
LISTING_BODY_MAX = 1024 * 1024

Price = Annotated[
    float | str,
    msgspec.Meta(
        description='A decimal >= 0: 3.49 or "3,49". Rounded half up to the decimals its currency has (ISO 4217: '
        "none for JPY or KRW), at most the 2 a listing holds, and noted.",
        examples=[3.49],
    ),
]
Quantity = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1, description="Absolute stock level.")]
Version = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # a bigint
# Text read by the pipeline (rows.parse_timestamp), as a signed delivery's is: one reading on every path.
SourceClock = Annotated[
    str,
    msgspec.Meta(
        description="The source's clock, ISO-8601 as Python reads it (2026-12-01T08:00:00Z, +02:00 or +02, "
        "20261201T080000Z, 2026-12-01, a comma or point before fractions; naive = UTC; digits past the microsecond "
        "dropped). 1970 to a day ahead of the server's clock. A batch item with another is rejected alone.",
        examples=["2026-12-03T08:00:00Z"],
    ),
]
Currency = Annotated[
    str,
    msgspec.Meta(
        description="A current ISO 4217 code (EUR, USD, ...), either case, whitespace around it trimmed, stored in "
        "capitals; default (absent or ''): the store's currency."
    ),
]
Attributes = Annotated[
    dict[str, Any], msgspec.Meta(description="Free-form; part of the embedded text; at most 10,000 characters as JSON.")
]

# In a batch, a level that is no whole number ≥ 0 rejects its own item (its result says why), as a CSV row's does,
# not the whole request: the schema takes any number or text and the pipeline's validation judges it.
ItemQuantity = Annotated[
    int | float | str,
    msgspec.Meta(description="Absolute stock level, a whole number >= 0; an item with another is rejected alone."),
]

# A GTIN as a product holds it (one field of the answers): matched as 14 digits whatever the width (ingest.md).
StoredGtin = Annotated[
    str,
    msgspec.Meta(
        description="The product's GTIN as stored: a write (PUT, batch, CSV, connector) stores the 14-digit GTIN-14, "
        "zero-padded (04006381333931 for the EAN-13 4006381333931, 00012345678905 for the UPC-A 012345678905); a "
        "product loaded by SQL or the demo's loader keeps its width. GTINs are matched as 14 digits: the forms of "
        "one article name one product.",
        examples=["04006381333931"],
    ),
]
