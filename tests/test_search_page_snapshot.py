"""A page's stores while its listings change: a listing sold out (or repriced) between the ranking and hydrate, over
HTTP on every /v1/search path and in the engine. Never a hit without a store; a sorted page keeps its prices' order.
The catalogue and app of test_api (real database, real model); the change is written by a hook that runs hydrate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from search_service.engine import hydrate as hydrate_module
from search_service.engine import modes, ux
from search_service.engine.scope import Scope
from search_service.engine.search import SearchParams
from tests.test_api import AT_CENTER, Seeded, app_settings, load_test_encoder, running_client, seed_catalogue

NEAR = {**AT_CENTER, "radius_m": 40000, "limit": 100}


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def seeded(db_url: str, encoder: Encoder) -> Seeded:
    return seed_catalogue(db_url, encoder)


@pytest.fixture(scope="module")
def client(db_url: str, seeded: Seeded, encoder: Encoder) -> Iterator[TestClient[Any]]:
    with running_client(app_settings(db_url), encoder) as c:
        yield c


def _before_hydrate(monkeypatch: pytest.MonkeyPatch, db_url: str, change: str, undo: str) -> list[uuid.UUID]:
    """Hydrate, on every path, runs after `change` (committed on a connection of its own) to the page's first product's
    listings, and `undo` after it. Returns the products changed."""
    changed: list[uuid.UUID] = []

    async def hydrate_after_a_change(conn: Any, scope: Scope, ids: list[uuid.UUID], *args: Any) -> Any:
        if not ids:
            return await hydrate_module.hydrate(conn, scope, ids, *args)
        changed.append(ids[0])
        with psycopg.connect(db_url, autocommit=True) as writer:
            writer.execute(change, (ids[0],))
            try:
                return await hydrate_module.hydrate(conn, scope, ids, *args)
            finally:
                writer.execute(undo, (ids[0],))

    monkeypatch.setattr(modes, "hydrate", hydrate_after_a_change)
    monkeypatch.setattr(ux, "hydrate", hydrate_after_a_change)
    return changed


def _paths(seeded: Seeded) -> dict[str, dict[str, Any]]:
    near = str(seeded.stores["near"])
    return {
        "plain": {},
        "facets": {"facets": "store"},
        "store_id": {"store_id": near},
        "distance": {"sort": "distance"},
        "price": {"sort": "price"},
        "store_id+facets": {"store_id": near, "facets": "store,price"},
        "price_range": {"min_price": 1, "max_price": 50},
        "price_range+facets": {"min_price": 1, "max_price": 50, "facets": "price"},
    }


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_a_hit_sold_out_before_hydrate_never_comes_without_a_store(
    client: TestClient[Any], seeded: Seeded, db_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # "500 g" (keyword) and "food" (hybrid) match products at "near"; the first of each page sells out, then back
    sold_out = "UPDATE store_product SET quantity = 0 WHERE product_master_id = %s"
    back = "UPDATE store_product SET quantity = 10 WHERE product_master_id = %s AND quantity = 0"
    changed = _before_hydrate(monkeypatch, db_url, sold_out, back)
    q = "500 g" if mode == "keyword" else "food"
    for name, extra in _paths(seeded).items():
        response = client.get("/v1/search", params={"q": q, "mode": mode, **NEAR, **extra})
        assert response.status_code == 200, response.text
        body = response.json()
        assert changed and body["results"], name
        empty = [r["product"]["name"] for r in body["results"] if not r["stores"]]
        assert not empty, (name, empty)
        if name not in (
            "plain",
            "price_range",
        ):  # ux_search, on one connection and one snapshot: the page shows the listings its set was read from
            assert body["results"][0]["product"]["id"] == str(changed[-1]), name
            assert body["results"][0]["stores"][0]["quantity"] > 0, name
        else:  # the ranking and hydrate on two connections: the product sold out leaves the page
            assert str(changed[-1]) not in {r["product"]["id"] for r in body["results"]}, name


def test_a_price_sorted_page_shows_the_prices_it_was_sorted_by(
    client: TestClient[Any], seeded: Seeded, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the page's cheapest product (pasta, 1.09) costs 100 more while the page is hydrated
    dearer = "UPDATE store_product SET price = price + 100 WHERE product_master_id = %s"
    back = "UPDATE store_product SET price = price - 100 WHERE product_master_id = %s"
    changed = _before_hydrate(monkeypatch, db_url, dearer, back)
    for extra in ({}, {"facets": "price"}, {"store_id": str(seeded.stores["near"])}):
        body = client.get("/v1/search", params={"q": "500 g", "mode": "keyword", "sort": "price", **NEAR, **extra})
        assert body.status_code == 200, body.text
        prices = [r["stores"][0]["price"] for r in body.json()["results"]]
        assert changed[-1] == seeded.products["pasta"] and len(prices) >= 2, prices
        assert prices == sorted(prices) and prices[0] == pytest.approx(1.09), (extra, prices)


def _in_engine(db_url: str, work: Callable[[asyncpg.Connection], Any]) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(db_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_hydrate_leaves_out_a_product_with_no_qualifying_store(seeded: Seeded, db_url: str) -> None:
    pasta, coffee = seeded.products["pasta"], seeded.products["coffee"]
    scope = Scope(None, None, SearchParams(q="500 g", **AT_CENTER))

    async def work(conn: asyncpg.Connection) -> Any:
        await conn.execute("UPDATE store_product SET quantity = 0 WHERE product_master_id = $1", pasta)
        try:
            return await hydrate_module.hydrate(conn, scope, [pasta, coffee], {pasta: 1.0, coffee: 0.5})
        finally:
            await conn.execute("UPDATE store_product SET quantity = 10 WHERE product_master_id = $1", pasta)

    hits = _in_engine(db_url, work)
    assert [h.product.id for h in hits] == [coffee] and all(h.stores for h in hits)
