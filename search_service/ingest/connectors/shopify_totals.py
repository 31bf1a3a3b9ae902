"""Shopify's `inventory_quantity`: a variant's stock summed over every location of the shop (the REST product and
variant payloads carry it; one location's level is an `inventory_levels` record). Where the shop has one location
it is that location's level, so a new variant's `products/create` creates its listing with it: one
`listing.created` at its quantity, not one at 0 and then `stock.back` once its `inventory_levels/update` came.
Where the shop has more locations, or their count is unknown, it is not our location's level and is not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from search_service.ingest.connectors.common import Row, level_fields
from search_service.ingest.connectors.http import VendorError, VendorHTTP
from search_service.ingest.connectors.vendor_clocks import clocked_level

LEVEL_KEYS = ("quantity", "quantity_sent", "version")


def count_locations(http: VendorHTTP, prefix: str) -> int | None:
    """The shop's locations (`GET locations/count.json`, one request a poll; kept in the cursor as `locations`).
    None when unread: a token without the `read_locations` scope (403) syncs on without it; a refused token fails
    the sync as any request of it would."""
    try:
        body, _ = http.request_json("GET", f"{prefix}/locations/count.json")
    except VendorError as exc:
        if exc.status == 401:
            raise
        return None
    count = body.get("count") if isinstance(body, dict) else None
    return count if type(count) is int and count >= 0 else None


def variant_totals(variants: Iterable[tuple[str | None, Mapping[str, Any]]], when: str) -> dict[str, Row]:
    """Each (listing SKU, variant)'s `inventory_quantity` as a level clocked by the delivery's time (`when`): any
    later level of our location wins. An untracked variant (`inventory_management: null`) has none."""
    totals: dict[str, Row] = {}
    for sku, variant in variants:
        if sku is None or ("inventory_management" in variant and variant["inventory_management"] is None):
            continue
        level = clocked_level({"op": "stock", "sku": sku, **level_fields(variant.get("inventory_quantity"))}, when)
        if "quantity" in level and "_error" not in level:
            totals[sku] = {key: level[key] for key in LEVEL_KEYS if key in level}
    return totals
