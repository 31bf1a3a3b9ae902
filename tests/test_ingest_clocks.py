"""A listing write's clocks: `updated_at` orders the catalogue (text, price, on sale) and `version` the level on
every path (PUT, PATCH, a batch's stock change, DELETE) alike."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.ingest_helpers import bearer, new_store, store_key


def _shop(db_url: str) -> tuple[uuid.UUID, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        return store, store_key(conn, store, "listings:write")


def _send(base: str, shop: tuple[uuid.UUID, str], method: str, sku: str, body: dict[str, Any]) -> httpx.Response:
    store, key = shop
    return httpx.request(method, f"{base}/v1/stores/{store}/listings/{sku}", json=body, headers=bearer(key))


def _batch(base: str, shop: tuple[uuid.UUID, str], items: list[dict[str, Any]]) -> httpx.Response:
    store, key = shop
    return httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))


LEVEL_KEPT = "the stock level is older than the listing's (version); the listing keeps its level"


def test_a_newer_catalogue_clock_with_an_older_level_clock_applies_on_every_path(base: str, db_url: str) -> None:
    """PATCH, a batch's stock change and DELETE with a newer `updated_at` and an older `version` were `stale`
    (the DELETE left the listing on sale) where an upsert with the same clocks applied its price and kept its
    level."""
    shop = _shop(db_url)
    held = {"name": "mix", "price": "1.00", "quantity": 10, "version": 10, "updated_at": "2026-12-01T08:00:00Z"}
    assert _send(base, shop, "PUT", "MC", held).status_code == 200
    patched = _send(base, shop, "PATCH", "MC", {"price": "9.00", "quantity": 3, "version": 5,
                                                 "updated_at": "2026-12-01T10:00:00Z"})  # fmt: skip
    assert patched.status_code == 200 and patched.json()["status"] == "mapped", patched.text
    assert patched.json()["notes"] == LEVEL_KEPT
    listing = patched.json()["listing"]
    assert (listing["price"], listing["quantity"]) == (9.0, 10)
    stock = {"op": "stock", "sku": "MC", "price": "7.00", "version": 5, "updated_at": "2026-12-01T12:00:00Z"}
    result = _batch(base, shop, [stock]).json()["results"][0]
    assert result["status"] == "mapped" and result["notes"] == LEVEL_KEPT, result
    deleted = _send(base, shop, "DELETE", "MC", {"version": 5, "updated_at": "2026-12-01T13:00:00Z"})
    assert deleted.status_code == 200 and deleted.json()["status"] == "mapped", deleted.text
    listing = deleted.json()["listing"]
    assert (listing["price"], listing["quantity"], listing["is_active"]) == (7.0, 10, False)
    assert deleted.json()["notes"] is None  # a delete carries no level
    with psycopg.connect(db_url) as conn:
        clocks = conn.execute(
            "SELECT source_version, source_updated_at::text FROM store_product WHERE store_id = %s AND sku = 'MC'",
            (shop[0],),
        ).fetchone()
    assert clocks == (10, "2026-12-01 13:00:00+00")  # the level's clock never goes back
    older = _send(base, shop, "PATCH", "MC", {"price": "5.00", "version": 20, "updated_at": "2026-12-01T11:00:00Z"})
    assert older.json()["status"] == "stale"  # an older catalogue clock: nothing, as for an upsert
    alone = _send(base, shop, "PATCH", "MC", {"quantity": 1, "version": 5})
    assert alone.json()["status"] == "stale"  # one clock is the whole row's
