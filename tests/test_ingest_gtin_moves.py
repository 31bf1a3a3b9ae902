"""A listing's GTIN as a store's catalogue changes: a new GTIN names another article (the listing moves to its
product), a deleted listing does not block the product's relisting under a new SKU, another store's deleted listing
does not freeze a product's text, and a category that does not exist is reported as what happened."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.ingest_helpers import bearer, new_store, store_key

KETTLE, TOASTER, TYPO, RADIO = "4001234000015", "4001234000022", "4001234000046", "4001234000077"


def _shop(db_url: str) -> tuple[uuid.UUID, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        return store, store_key(conn, store, "listings:write")


def _put(base: str, shop: tuple[uuid.UUID, str], sku: str, body: dict[str, Any]) -> httpx.Response:
    store, key = shop
    return httpx.put(f"{base}/v1/stores/{store}/listings/{sku}", json=body, headers=bearer(key), timeout=30)


def _gtin_of_product(db_url: str, product: str) -> str | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT gtin FROM product_master WHERE id = %s", (product,)).fetchone()
    return None if row is None else row[0]


def test_a_new_gtin_moves_the_listing_to_its_own_product(base: str, db_url: str) -> None:
    """The new GTIN was ignored: the listing kept the kettle's product, so search showed a kettle at the toaster's
    price, and a store alone with a mistyped GTIN could never correct it."""
    a, b = _shop(db_url), _shop(db_url)
    kettle = _put(base, a, "G1", {"gtin": KETTLE, "name": "Quantum Kettle 1.7 L", "price": 29.99, "quantity": 5})
    assert _put(base, b, "G1B", {"gtin": KETTLE, "name": "Kettle", "price": 27.5, "quantity": 3}).status_code == 200
    moved = _put(base, a, "G1", {"gtin": TOASTER, "name": "Blorpex Toaster 2-slot", "price": 19.99, "quantity": 5})
    assert moved.status_code == 200, moved.text
    assert moved.json()["matched_by"] == "created" and moved.json()["product_id"] != kettle.json()["product_id"]
    assert _gtin_of_product(db_url, moved.json()["product_id"]) == "0" + TOASTER
    assert _gtin_of_product(db_url, kettle.json()["product_id"]) == "0" + KETTLE  # store B's stays the kettle
    alone = _shop(db_url)
    typo = _put(base, alone, "C3", {"gtin": TYPO, "name": "Mug", "price": 4, "quantity": 1})
    fixed = _put(base, alone, "C3", {"gtin": "4001234000053", "name": "Mug", "price": 4, "quantity": 1})
    assert fixed.json()["product_id"] != typo.json()["product_id"] and not fixed.json()["notes"]
    without_name = httpx.post(
        f"{base}/v1/stores/{alone[0]}/listings/batch", headers=bearer(alone[1]),
        json={"items": [{"sku": "C3", "gtin": KETTLE[:-1] + "8", "price": 4, "quantity": 1}]},
    )  # fmt: skip
    assert "ignored" in without_name.json()["results"][0]["notes"]  # nothing to make a product of: noted


def test_a_deleted_listing_is_taken_over_by_a_new_sku_of_its_product(base: str, db_url: str) -> None:
    """A POS that recreated an item under a new id was refused for good: "this store already lists its product as
    sku 'G1B'" (a deleted listing)."""
    shop = _shop(db_url)
    first = _put(base, shop, "OLD-1", {"gtin": RADIO, "name": "Kettle", "price": 27.5, "quantity": 3})
    assert first.status_code == 200
    live = _put(base, shop, "NEW-1", {"gtin": RADIO, "name": "Kettle relisted", "price": 26, "quantity": 9})
    assert live.status_code == 400 and live.json()["error"]["parameter"] == "gtin"  # the old one is still sold
    store, key = shop
    assert httpx.delete(f"{base}/v1/stores/{store}/listings/OLD-1", headers=bearer(key)).status_code == 200
    relisted = _put(base, shop, "NEW-1", {"gtin": RADIO, "name": "Kettle relisted", "price": 26, "quantity": 9})
    assert relisted.status_code == 200, relisted.text
    body = relisted.json()
    assert body["listing"]["id"] == first.json()["listing"]["id"] and body["listing"]["is_active"] is True
    assert (body["listing"]["quantity"], body["matched_by"]) == (9, "gtin") and "OLD-1" in body["notes"]
    gone = httpx.get(f"{base}/v1/stores/{store}/listings/OLD-1", headers=bearer(key))
    assert gone.status_code == 404
    with psycopg.connect(db_url) as conn:  # the store's own product takes the row's text at once, not on a replay
        name = conn.execute("SELECT name FROM product_master WHERE id = %s", (body["product_id"],)).fetchone()
    assert name == ("Kettle relisted",)


def test_a_late_write_to_a_taken_over_sku_is_stale(base: str, db_url: str) -> None:
    """After the takeover the old SKU named no listing: a late write to it, older than its delete (a retry queue),
    created a second, sellable product instead of ending stale."""
    shop = _shop(db_url)
    store, key = shop
    radio = "4001234000084"
    old = {"gtin": radio, "name": "Probe Radio", "price": 30, "quantity": 3, "updated_at": "2026-12-05T20:00:00Z"}
    assert _put(base, shop, "D1", old).status_code == 200
    late_delete = {"updated_at": "2026-12-05T21:00:00Z"}
    deleted = httpx.request("DELETE", f"{base}/v1/stores/{store}/listings/D1", json=late_delete, headers=bearer(key))
    assert deleted.status_code == 200
    assert _put(base, shop, "D2", {"gtin": radio, "name": "Probe Radio", "price": 31, "quantity": 2}).status_code == 200
    late = _put(base, shop, "D1", {"name": "Probe Radio", "price": 29, "quantity": 9,
                                   "updated_at": "2026-12-05T20:30:00Z"})  # fmt: skip
    assert late.status_code == 200 and late.json()["status"] == "stale", late.text
    with psycopg.connect(db_url) as conn:
        sold = conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s AND is_active", (store,)).fetchone()
    assert sold == (1,)  # D2 alone
    newer = _put(base, shop, "D1", {"name": "Probe Radio mk2", "price": 29, "quantity": 9,
                                    "updated_at": "2026-12-05T22:00:00Z"})  # fmt: skip
    assert newer.json()["status"] == "mapped" and newer.json()["matched_by"] == "created"  # a new item: applies


def test_other_stores_deleted_listings_do_not_freeze_the_products_text(base: str, db_url: str) -> None:
    a, b = _shop(db_url), _shop(db_url)
    gtin = "4001234000060"
    made = _put(base, a, "P1", {"gtin": gtin, "name": "Kettle 1 L", "price": 20, "quantity": 2})
    assert _put(base, b, "P1B", {"gtin": gtin, "name": "Other title", "price": 21, "quantity": 2}).status_code == 200
    store, key = b
    assert httpx.delete(f"{base}/v1/stores/{store}/listings/P1B", headers=bearer(key)).status_code == 200
    assert _put(base, a, "P1", {"gtin": gtin, "name": "Kettle 1.5 L", "price": 20, "quantity": 2}).status_code == 200
    with psycopg.connect(db_url) as conn:
        name = conn.execute("SELECT name FROM product_master WHERE id = %s", (made.json()["product_id"],)).fetchone()
    assert name == ("Kettle 1.5 L",)  # the one store selling it renames it


def test_a_category_that_does_not_exist_is_reported_as_ignored(base: str, db_url: str) -> None:
    shop = _shop(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            f"INSERT INTO category (name) VALUES ('Kettles {uuid.uuid4().hex[:6]}') RETURNING id"
        ).fetchone()
    assert row is not None
    made = _put(base, shop, "K1", {"name": "Kettle", "price": 20, "quantity": 2, "category": row[0]})
    again = _put(base, shop, "K1", {"name": "Kettle", "price": 20, "quantity": 2, "category": 999_999})
    ignored = "not found; ignored: write its full path (Parent > Child) or its id"
    assert again.json()["notes"] == f"category 999999 {ignored}"  # a JSON number as sent: it read '999999'
    as_text = _put(base, shop, "K1", {"name": "Kettle", "price": 20, "quantity": 2, "category": " 999999"})
    assert as_text.json()["notes"] == f"category '999999' {ignored}"  # a text quoted, as before
    with psycopg.connect(db_url) as conn:
        kept = conn.execute(
            "SELECT category_id FROM product_master WHERE id = %s", (made.json()["product_id"],)
        ).fetchone()
    assert kept == (row[0],)  # it said "mapped without a category" and kept it


def test_a_category_given_by_its_name_resolves_when_one_category_has_it(base: str, db_url: str) -> None:
    """`Coffee` for `Grocery > Coffee` was "category 'Coffee' not found; ignored", no hint what to write: a bare name
    one category has resolves; one several have, or a wrong path, is noted with the full paths to write."""
    shop, tag = _shop(db_url), uuid.uuid4().hex[:6]
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids: dict[str, int] = {}
        for path in ("Grocery", "Baby", "Grocery > Coffee", "Grocery > Milk", "Baby > Milk"):
            *parent, name = path.split(" > ")
            made = conn.execute(
                "INSERT INTO category (name, parent_id) VALUES (%s, %s) RETURNING id",
                (f"{name} {tag}", ids[parent[0]] if parent else None),
            ).fetchone()
            assert made is not None
            ids[path] = made[0]
    body = {"name": "Beans", "price": 5, "quantity": 1}
    named = _put(base, shop, "CF1", {**body, "category": f"  coffee {tag.upper()} "})
    assert named.status_code == 200 and not named.json()["notes"], named.text
    with psycopg.connect(db_url) as conn:
        got = conn.execute(
            "SELECT category_id FROM product_master WHERE id = %s", (named.json()["product_id"],)
        ).fetchone()
    assert got == (ids["Grocery > Coffee"],)
    several = _put(base, shop, "CF2", {**body, "category": f"Milk {tag}"})
    assert several.json()["notes"] == (
        f"category 'Milk {tag}' names 2 categories; ignored: write its full path, "
        f"'Baby {tag} > Milk {tag}' or 'Grocery {tag} > Milk {tag}'"
    ), several.text
    wrong = _put(base, shop, "CF3", {**body, "category": f"Drinks > Coffee {tag}"})
    assert wrong.json()["notes"] == (
        f"category 'Drinks > Coffee {tag}' not found; ignored: write its full path, 'Grocery {tag} > Coffee {tag}'"
    ), wrong.text
    unknown = _put(base, shop, "CF4", {**body, "category": "23.0"})
    assert unknown.json()["notes"] == (
        "category '23.0' not found; ignored: write its full path (Parent > Child) or its id"
    ), unknown.text


def test_a_moved_listing_takes_its_stock_off_the_old_product(base: str, db_url: str) -> None:
    """A move wrote one inventory_event for the new product (none at all when the level stayed): the old product
    kept the listing's stock in its deltas for good, so per-product sums drifted from the levels."""
    shop = _shop(db_url)
    first = _put(base, shop, "M1", {"gtin": KETTLE, "name": "Kettle", "price": 20, "quantity": 7})
    moved = _put(base, shop, "M1", {"gtin": TOASTER, "name": "Toaster", "price": 20, "quantity": 7})
    again = _put(base, shop, "M1", {"gtin": TOASTER, "name": "Toaster", "price": 20, "quantity": 4})
    assert {first.status_code, moved.status_code, again.status_code} == {200}
    old, new = first.json()["product_id"], moved.json()["product_id"]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT product_master_id::text, delta, reason FROM inventory_event WHERE store_product_id = %s"
            " ORDER BY id",
            (first.json()["listing"]["id"],),
        ).fetchall()
        sums = dict(
            conn.execute(
                "SELECT product_master_id::text, sum(delta) FROM inventory_event WHERE store_id = %s GROUP BY 1",
                (shop[0],),
            ).fetchall()
        )
    assert rows == [(old, 7, "listed"), (old, -7, "moved_out"), (new, 7, "moved_in"), (new, -3, "update")]
    assert sums == {old: 0, new: 4}  # each product's deltas add up to what the store holds of it


def test_a_write_without_a_gtin_keeps_the_listings_product_and_its_gtin(base: str, db_url: str) -> None:
    """Pins what docs/ingest.md says: an absent or empty GTIN is not given (a CSV's empty cell, a till's item with
    no barcode), not "this article has none": the listing keeps its product, the product its GTIN."""
    shop = _shop(db_url)
    first = _put(base, shop, "NG1", {"gtin": RADIO, "name": "Radio", "price": 12, "quantity": 2}).json()
    for gtin in ({"gtin": ""}, {}, {"gtin": None}):
        again = _put(base, shop, "NG1", {**gtin, "name": "Radio", "price": 12, "quantity": 2}).json()
        assert (again["product_id"], again["matched_by"]) == (first["product_id"], "sku"), gtin
    batch = httpx.post(
        f"{base}/v1/stores/{shop[0]}/listings/batch", headers=bearer(shop[1]),
        json={"items": [{"sku": "NG1", "gtin": "", "name": "Radio", "price": 12, "quantity": 2}]},
    ).json()["results"][0]  # fmt: skip
    assert batch["product_id"] == first["product_id"]
    assert _gtin_of_product(db_url, first["product_id"]) == "0" + RADIO


def test_a_corrected_gtin_keeps_the_text_its_row_leaves_out(base: str, db_url: str) -> None:
    """A new GTIN made the listing a product of the row alone: a corrected barcode without brand, description,
    category and attributes lost them without a word (an absent field keeps the stored value), and the listing
    left the brand's and the category's filters. The row's fields still win; the note says what was kept."""
    a, b = _shop(db_url), _shop(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        category = conn.execute(f"INSERT INTO category (name) VALUES ('Oat {uuid.uuid4().hex[:6]}') RETURNING id")
        category_id = category.fetchone()[0]  # type: ignore[index]
    text = {"brand": "Kiezbauer", "description": "Cremig, vegan", "category": category_id, "attributes": {"l": 1}}
    old = _put(base, a, "R1", {"gtin": "4001234001005", "name": "Hafer 1 L", "price": 2.49, "quantity": 3, **text})
    assert (
        _put(base, b, "R1B", {"gtin": "4001234001005", "name": "Hafer", "price": 2, "quantity": 1}).status_code == 200
    )
    moved = _put(base, a, "R1", {"gtin": "4001234001012", "name": "Hafer 1 L", "price": 2.49, "quantity": 3})
    assert moved.status_code == 200 and moved.json()["matched_by"] == "created", moved.text
    assert moved.json()["notes"] == (
        "brand, description, category, attributes kept from the product this listing left (gtin 04001234001005): "
        "the row gives none; send them if this article's differ"
    )
    own = _put(base, a, "R1", {"gtin": "4001234001029", "name": "Hafer 1 L", "brand": "Neu", "price": 2, "quantity": 3})
    assert "description, category, attributes kept" in own.json()["notes"], own.text
    with psycopg.connect(db_url) as conn:
        products = [
            conn.execute(
                "SELECT gtin, brand, description, category_id, attributes FROM product_master WHERE id = %s",
                (answer.json()["product_id"],),
            ).fetchone()
            for answer in (old, moved, own)
        ]
    kept = ("Cremig, vegan", category_id, {"l": 1})
    assert products == [
        ("04001234001005", "Kiezbauer", *kept),  # the product left keeps its text (store B lists it)
        ("04001234001012", "Kiezbauer", *kept),
        ("04001234001029", "Neu", *kept),
    ]
