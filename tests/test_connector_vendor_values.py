"""Vendor values as a store means them: an HTML description's entities read as text, a fractional stock level
kept in stock. Each through a fake vendor over HTTP, the sync, the import job's mapping into real PostgreSQL, and
the served API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.connector_helpers import make_connection, make_store, map_batches, sync
from tests.pos_fakes.vendors import Item, LightspeedXFake, ShopifyFake


def _product(conn: psycopg.Connection, store: uuid.UUID, sku: str) -> tuple[Any, ...]:
    """(product id, description) of the store's listing `sku`."""
    row = conn.execute(
        "SELECT p.id, p.description FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
        "WHERE sp.store_id = %s AND sp.sku = %s",
        (store, sku),
    ).fetchone()
    assert row is not None
    return tuple(row)


def _matches(conn: psycopg.Connection, product: uuid.UUID, word: str) -> bool:
    row = conn.execute(
        "SELECT search_tsv @@ plainto_tsquery('plinqy_english', %s) FROM product_master WHERE id = %s", (word, product)
    ).fetchone()
    return bool(row and row[0])


def test_html_entities_in_vendor_descriptions_are_read_as_text(conn: psycopg.Connection, base: str) -> None:
    """Shopify's `body_html` and X-Series' `description` lost their tags but kept their entities: `Tea &amp; coffee
    &ndash; 300&nbsp;ml` was stored, served and searched as written ("amp", "nbsp" words; "grün" not found). An
    escaped tag stays text: it is not read as a tag once its entities are."""
    shopify, x_series = ShopifyFake(), LightspeedXFake()
    try:
        shopify.add(Item("1", "Tea sampler", "4.00", 3), product_id=501, variant_id=601, inventory_item_id=701)
        shopify.products["1"]["body_html"] = "<p>Tea &amp; coffee &ndash; 300&nbsp;ml. It&#39;s gr&uuml;n</p>"
        x_series.add(Item("x1", "Milk frother", "19.00", 2))
        x_series.products["x1"]["description"] = "<p>Foams &amp; froths &lt;script&gt;x&lt;/script&gt;</p>"
        s_store, x_store = make_store(conn, "S", 52.1, 4.1), make_store(conn, "X", 52.2, 4.2)
        s_cid = make_connection(conn, s_store, "shopify", "24826418", shopify.server.url,
                                {"shop": "s.myshopify.com", "token": "shpat_test"})  # fmt: skip
        x_cid = make_connection(conn, x_store, "lightspeed-x", "outlet-1", x_series.server.url,
                                {"domain_prefix": "shop", "token": "x-token"})  # fmt: skip
        sync(conn, s_cid)
        sync(conn, x_cid)
        map_batches(conn)
    finally:
        shopify.server.close()
        x_series.server.close()
    tea, tea_text = _product(conn, s_store, "701")
    frother, frother_text = _product(conn, x_store, "x1")
    assert tea_text == "Tea & coffee – 300 ml. It's grün"
    assert frother_text == "Foams & froths <script>x</script>"
    served = httpx.get(f"{base}/v1/products/{tea}")
    assert served.status_code == 200, served.text
    assert served.json()["description"] == "Tea & coffee – 300 ml. It's grün"
    assert _matches(conn, tea, "grün") and not _matches(conn, tea, "amp") and not _matches(conn, frother, "amp")
