"""The links a product's children leave (`ingest_connector_link`), and the children a product read whole lost.

Shopify sends a product's every variant in its record (a poll's, a `products/create` or `/update` body). A variant
linked to the product and gone from such a record was deleted at the shop: its listing gets a `delete` row, as a
`products/delete` deletes the whole product's, stamped a microsecond before the record's `updated_at` (a listing
written later outlives it). It stayed on sale with its last level until a `sync --full`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from search_service.ingest.connectors.common import ItemLink, Row, objects


def unique(links: Iterable[ItemLink]) -> list[ItemLink]:
    """One link per vendor id, the last read winning: one upsert may not touch a row twice (a page repeating a
    product, or merged pages that overlap, raised CardinalityViolation). By id: a poll's and a delivery's upserts
    lock them in one order."""
    return sorted({link.external_id: link for link in links}.values(), key=lambda link: link.external_id)


def link_params(connection_id: Any, links: Sequence[ItemLink]) -> dict[str, Any]:
    """`save_links`'s parameters."""
    return {
        "connection_id": connection_id,
        "external_ids": [link.external_id for link in links],
        "parent_ids": [link.parent_id for link in links],
        "skus": [link.sku for link in links],
    }


def read_whole(links: list[ItemLink], rows: list[Row], children: Any, stamp: str | None) -> list[ItemLink]:
    """One product's links, marked `whole_at` when its record held every child: `children` a list of objects only,
    none of its rows refused (a variant whose id is none may be a linked one), and its time (`stamp`, checked)."""
    if not isinstance(children, list) or len(objects(children)) < len(children) or any("_error" in r for r in rows):
        return links
    try:
        at = (datetime.fromisoformat(str(stamp)) - timedelta(microseconds=1)).isoformat() if stamp else None
    except (ValueError, OverflowError):
        return links
    return [dataclasses.replace(link, whole_at=at) for link in links] if at else links


def removal_params(connection_id: Any, store_id: Any, links: Sequence[ItemLink]) -> dict[str, Any] | None:
    """`removed_variants`' parameters, None when no product was read whole."""
    parents = sorted({link.parent_id for link in links if link.whole_at and link.parent_id})
    if not parents:
        return None
    kept = sorted({link.external_id for link in links})
    return {"connection_id": connection_id, "store_id": store_id, "parent_ids": parents, "kept": kept}


def removal_rows(links: Sequence[ItemLink], found: Iterable[Sequence[Any]]) -> list[Row]:
    """A `delete` row for each (parent id, sku) `removed_variants` found, stamped by its product's record."""
    at = {link.parent_id: link.whole_at for link in links if link.whole_at}
    return [{"op": "delete", "sku": str(sku), "updated_at": at[parent]} for parent, sku in found if parent in at]
