"""The decimals a currency's prices have: ISO 4217's minor units (pycountry carries none), and what a listing holds
of them (`store_product.price` is numeric(12, 2))."""

from __future__ import annotations

LISTING_DECIMALS = 2
# ISO 4217 (list one, minor units): the current codes of money whose unit is not 2 decimals. A fraction of a yen,
# won or franc CFA is no price; a dinar's third decimal is one, though a listing holds 2 (docs/ingest.md).
_WHOLE = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF",
          "XPF")  # fmt: skip
_THOUSANDTHS = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
MINOR_UNITS = {**dict.fromkeys(_WHOLE, 0), **dict.fromkeys(_THOUSANDTHS, 3)}


def minor_units(currency: str | None) -> int:
    """The decimals of `currency` (ISO 4217); 2 for a code not known or None (the store's, not yet read)."""
    return MINOR_UNITS.get(currency or "", 2)


def price_decimals(currency: str | None) -> int:
    """The decimals a listing's price in `currency` keeps: the currency's, at most the listing's 2."""
    return min(minor_units(currency), LISTING_DECIMALS)


def why_rounded(currency: str | None) -> str:
    """Why a price was rounded to `price_decimals`, for its note."""
    digits = minor_units(currency)
    if digits == 0:
        return f"{currency} has no decimals"
    if digits > LISTING_DECIMALS:
        return f"a listing holds {LISTING_DECIMALS} decimals, {currency} has {digits}"
    return f"a listing holds {LISTING_DECIMALS} decimals"
