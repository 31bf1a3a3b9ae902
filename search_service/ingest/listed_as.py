"""A row whose GTIN names a product the store lists under another SKU (a store lists a product once): refused,
or nothing to do; the store's listing without a SKU, or its deleted one, is adopted instead (`mapping`)."""

from __future__ import annotations

from typing import Any

from search_service.ingest.rows import ValidRow


def listed_otherwise(row: ValidRow, look: Any) -> str | None:
    """Why a row cannot take the product its GTIN names, when the store lists that product under another SKU or
    none (a listing without a SKU, from SQL or a seed, or a deleted one, is adopted instead when the row's SKU is
    new: `mapping._plan_product`; a POS that recreated an item under a new id was refused for good)."""
    listed_as = look["gtin_listed_as"]
    if not look["gtin_listed"] or listed_as == row.sku:
        return None
    if listed_as is not None and (look["gtin_listing_active"] or look["listing_id"] is not None):
        refused = f"gtin {row.gtin}: this store already lists its product as sku {listed_as!r}"
        if look["listing_id"] is None:  # a new SKU takes over a listing off sale: a store renumbering its SKUs
            return f"{refused}; to move it to sku {row.sku!r}, take {listed_as!r} off sale first (is_active no)"
        return refused
    if listed_as is not None:
        return None
    if look["listing_id"] is not None:
        return f"gtin {row.gtin}: this store lists its product without a sku, and sku {row.sku!r} is another listing"
    return None


def retired_and_listed(row: ValidRow, look: Any) -> str | None:
    """Why a row taking a retired SKU off sale has nothing to do, when its GTIN's product is on sale under another
    SKU: the renumbering's file sent again (daily, whole). It was refused, telling the store to take the new SKU
    off sale; its delete is `stale` as well (no listing with the SKU)."""
    listed_as = look["gtin_listed_as"]
    if look["listing_id"] is not None or not look["sku_retired"] or row.is_active is not False:
        return None
    if listed_as is None or listed_as == row.sku or not look["gtin_listing_active"]:
        return None
    return (
        f"sku {row.sku!r} was taken over by another sku, and this store lists the product of gtin {row.gtin} "
        f"as sku {listed_as!r}, on sale; nothing to take off sale"
    )
