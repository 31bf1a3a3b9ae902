"""A listing write's clocks: `updated_at` orders the catalogue (text, price, on sale) and `version` the level on
every path (PUT, PATCH, a batch's stock change, DELETE) alike."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg

from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, new_store, signed, store_key, webhook_connection
from tests.test_ingest_numbers import listed_and_rejected


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


def test_an_unreadable_updated_at_rejects_its_batch_item_alone(base: str, db_url: str) -> None:
    """One such item failed the whole batch with a 400 (`Invalid RFC3339 encoded datetime`), nothing applied, while
    an `updated_at` before 1970 rejected its item alone."""
    shop = _shop(db_url)
    items = [{"sku": f"B-{i}", "name": "Tea", "price": "2.00", "quantity": 1} for i in range(1000)]
    items[3]["updated_at"] = "yesterday"
    items[4]["updated_at"] = "2026-13-01T08:00:00Z"
    answer = _batch(base, shop, items)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    for bad in (3, 4):
        assert results[bad]["status"] == "rejected" and results[bad]["error"].startswith("updated_at "), results[bad]
    assert sum(r["status"] == "mapped" for r in results) == 998
    single = _send(base, shop, "PUT", "B-1", {"name": "Tea", "price": "2.00", "quantity": 1, "updated_at": "soon"})
    assert single.status_code == 400 and single.json()["error"]["parameter"] == "updated_at", single.text
    number = _send(base, shop, "PUT", "B-1", {"name": "Tea", "price": "2.00", "quantity": 1, "updated_at": 0})
    assert number.status_code == 400 and "updated_at" in number.json()["error"]["parameter"]  # not a Unix time


def test_updated_at_is_read_one_way_by_the_write_api_and_signed_deliveries(
    base: str, db_url: str, settings: Settings
) -> None:
    """The write API read `updated_at` as RFC 3339 (a date alone, `+02`, a basic-format time: 400) and rounded
    past the microsecond; a signed delivery read ISO-8601 and truncated, so a PUT's clock re-delivered by webhook
    was `stale`."""
    shop = _shop(db_url)
    store, key = shop
    forms = {"2026-12-02": "2026-12-02 00:00:00+00", "20261202T080005Z": "2026-12-02 08:00:05+00",
             "2026-12-02T10:00:06+02": "2026-12-02 08:00:06+00", "2026-12-02T08:00:07,5Z": "2026-12-02 08:00:07.5+00",
             " 2026-12-02T09:00:00Z ": "2026-12-02 09:00:00+00"}  # fmt: skip
    for i, (sent, stored) in enumerate(forms.items()):
        body = {"name": "Tea", "price": "2.00", "quantity": 1, "updated_at": sent}
        assert _send(base, shop, "PUT", f"F-{i}", body).status_code == 200, sent
        item = {**body, "sku": f"FB-{i}"}
        assert _batch(base, shop, [item]).json()["results"][0]["status"] == "mapped", sent
        with psycopg.connect(db_url) as conn:
            got = conn.execute(
                "SELECT DISTINCT source_updated_at::text FROM store_product WHERE store_id = %s AND sku IN (%s, %s)",
                (store, f"F-{i}", f"FB-{i}"),
            ).fetchall()
        assert got == [(stored,)], sent
    fine = "2026-12-01T08:00:00.9999996Z"
    put = _send(base, shop, "PUT", "W1", {"name": "Tea", "price": "2.00", "quantity": 1, "updated_at": fine})
    assert put.json()["listing"]["source_updated_at"] == "2026-12-01T08:00:00.999999Z"  # it rounded to 08:00:01
    with psycopg.connect(db_url, autocommit=True) as conn:
        connection, secret = webhook_connection(conn, settings, store)
    data = {"sku": "W1", "name": "Tea", "price": "3.00", "quantity": 1, "updated_at": fine}
    delivery = json.dumps({"type": "listing.upsert", "data": data}).encode()
    sent = httpx.post(f"{base}/v1/ingest/{connection}", content=delivery, headers=signed(secret, delivery))
    assert sent.status_code == 202, sent.text
    drain_imports(db_url)
    read = httpx.get(f"{base}/v1/stores/{store}/listings/W1", headers=bearer(key)).json()
    assert read["price"] == 3.0  # an equal clock applies: the same write again, by webhook


def test_a_stale_or_level_only_write_names_its_listings_product(base: str, db_url: str) -> None:
    """A write older than its listing answered `product_id: null` and `matched_by: null` beside a `listing` naming
    the product (a batch item, with no `listing`, said nothing of it); a PUT that applied its level alone answered
    `matched_by: null`. They name the SKU's listing's product now; an upsert was matched by its SKU."""
    shop = _shop(db_url)
    held = {"name": "Clock Thing", "price": 1, "quantity": 3, "version": 10, "updated_at": "2026-12-01T08:00:00Z"}
    product = _send(base, shop, "PUT", "T-2", held).json()["product_id"]
    older = {"updated_at": "2026-12-01T07:00:00Z"}
    answers = [
        _send(base, shop, "PUT", "T-2", {**held, **older, "version": 11}),
        _send(base, shop, "PATCH", "T-2", {"quantity": 9, **older}),
        _send(base, shop, "DELETE", "T-2", older),
    ]
    said = [(a.json()["status"], a.json()["matched_by"], a.json()["product_id"]) for a in answers]
    assert said == [("mapped", "sku", product), ("stale", None, product), ("stale", None, product)], said
    assert answers[0].json()["notes"].startswith("older than the listing's last update: only its stock level applied")
    assert all(a.json()["listing"]["product_id"] == product for a in answers)
    items = [{"sku": "T-2", "op": "stock", "quantity": 1, **older}, {"sku": "T-2", "name": "x", "price": 2, **older},
             {"sku": "T-9", "op": "delete"}]  # fmt: skip
    results = _batch(base, shop, items).json()["results"]
    assert [(r["status"], r["matched_by"], r["product_id"]) for r in results] == [
        ("stale", None, product), ("stale", "sku", product), ("stale", None, None),
    ], results  # fmt: skip


def _deliver(base: str, connection: uuid.UUID, secret: str, data: dict[str, Any]) -> None:
    delivery = json.dumps({"type": "listing.upsert", "data": data}).encode()
    sent = httpx.post(f"{base}/v1/ingest/{connection}", content=delivery, headers=signed(secret, delivery))
    assert sent.status_code == 202, sent.text


def test_a_version_written_7_point_0_is_7_on_every_path(base: str, db_url: str, settings: Settings) -> None:
    """A signed delivery's `"version": 7.0` was rejected "version must be a whole number >= 0", where a PUT, a PATCH
    and a batch item read it as 7 (as JSON Schema reads a whole number); its `"quantity": 5.0` was mapped."""
    shop = _shop(db_url)
    store = shop[0]
    body = {"name": "ver item", "price": 2, "quantity": 1, "version": 7.0}
    assert _send(base, shop, "PUT", "V-put", body).json()["status"] == "mapped"
    assert _send(base, shop, "PATCH", "V-put", {"quantity": 1, "version": 7.0}).json()["status"] == "mapped"
    assert _batch(base, shop, [{**body, "sku": "V-batch"}]).json()["results"][0]["status"] == "mapped"
    with psycopg.connect(db_url, autocommit=True) as conn:
        connection, secret = webhook_connection(conn, settings, store)
    _deliver(base, connection, secret, {**body, "sku": "V-hook", "quantity": 5.0})
    drain_imports(db_url)
    listed, errors = listed_and_rejected(db_url, store, "r.error IS NOT NULL")  # no reason, no note
    levels = [(sku, level) for sku, _, level in listed]
    assert (levels, errors) == ([("V-batch", 1), ("V-hook", 5), ("V-put", 1)], [])
    with psycopg.connect(db_url) as conn:
        versions = conn.execute("SELECT DISTINCT source_version FROM store_product WHERE store_id = %s", (store,))
        assert versions.fetchall() == [(7,)]


def test_a_delivered_updated_at_that_is_no_text_is_named_as_json_writes_it(
    base: str, db_url: str, settings: Settings
) -> None:
    """The reason showed Python's repr of a non-text `updated_at` (`updated_at 'True'`, `"{'a': None}"`) where
    docs/ingest.md promises JSON's spelling, as the errors CSV's cells beside it have; a text is quoted as before."""
    store = _shop(db_url)[0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        connection, secret = webhook_connection(conn, settings, store)
    for n, sent in enumerate((True, {"a": None}, ["x"], 0, "soon")):
        _deliver(
            base, connection, secret, {"sku": f"T-{n}", "name": "t", "price": 1, "quantity": 1, "updated_at": sent}
        )
    drain_imports(db_url)
    _, errors = listed_and_rejected(db_url, store)
    assert errors == sorted(
        f"updated_at {shown} is not an ISO-8601 time" for shown in ("true", '{"a":null}', '["x"]', "0", "'soon'")
    )
