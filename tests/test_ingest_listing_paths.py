"""Listings addressed by SKU over real HTTP: a `/` in a SKU (`1/2 GAL`, sent as `%2F`), `//`, a trailing `/`,
spaces and umlauts reach the listing exactly; errors name their parameter; a store reads its listings back (one by
SKU, all a page at a time), and anyone reads a store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import asyncpg
import httpx
import psycopg
import pytest

from search_service.ingest import pipeline
from search_service.settings import Settings
from tests.ingest_helpers import bearer, drain_imports, ingest_settings, new_store, serve, store_key


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings: Settings = ingest_settings(db_url, tmp_path_factory.mktemp("keys"))
    with serve(settings, None) as url:
        yield url


@pytest.fixture
def shop(db_url: str) -> tuple[uuid.UUID, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        return store, store_key(conn, store, "listings:write")


def listing_url(base: str, store: uuid.UUID, sku: str) -> str:
    return f"{base}/v1/stores/{store}/listings/{quote(sku, safe='')}"


SKUS = ["1/2 GAL", "a//b/", "/lead", "K\u00e4se 250 g", "batches/1", "50%"]


def test_skus_with_slashes_and_other_characters_round_trip(base: str, db_url: str, shop: tuple[uuid.UUID, str]) -> None:
    store, key = shop
    for i, sku in enumerate(SKUS):
        body = {"name": f"Item {i}", "price": "1.50", "quantity": 3}
        created = httpx.put(listing_url(base, store, sku), json=body, headers=bearer(key))
        assert created.status_code == 200, (sku, created.text)
        assert created.json()["sku"] == sku and created.json()["listing"]["sku"] == sku
        patched = httpx.patch(listing_url(base, store, sku), json={"quantity": 0}, headers=bearer(key))
        assert patched.status_code == 200, (sku, patched.text)
        assert patched.json()["listing"]["quantity"] == 0
    gone = httpx.delete(listing_url(base, store, "1/2 GAL"), headers=bearer(key))
    assert gone.status_code == 200 and gone.json()["listing"]["is_active"] is False
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT sku, quantity, is_active FROM store_product WHERE store_id = %s ORDER BY sku", (store,)
        ).fetchall()
    assert sorted(stored) == sorted((sku, 0, sku != "1/2 GAL") for sku in SKUS)
    missing = httpx.patch(listing_url(base, store, "1/2"), json={"quantity": 1}, headers=bearer(key))
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "sku"


def test_a_sku_that_is_not_utf8_or_holds_a_nul_is_a_400_naming_it(base: str, shop: tuple[uuid.UUID, str]) -> None:
    store, key = shop
    body = {"name": "Thing", "price": 1, "quantity": 1}
    for tail in ("%FF%FE", "%00x"):
        answer = httpx.put(f"{base}/v1/stores/{store}/listings/{tail}", json=body, headers=bearer(key))
        assert answer.status_code == 400, (tail, answer.text)
        assert answer.json()["error"]["parameter"] == "sku"


def test_a_second_sku_for_a_gtins_product_is_refused_naming_the_gtin(base: str, shop: tuple[uuid.UUID, str]) -> None:
    store, key = shop
    oat = {"name": "Oat drink", "price": "2,49", "quantity": 5, "gtin": "4006381333931"}
    assert httpx.put(listing_url(base, store, "oat-1"), json=oat, headers=bearer(key)).status_code == 200
    again = httpx.put(listing_url(base, store, "oat-2"), json=oat, headers=bearer(key))
    assert again.status_code == 400
    assert again.json()["error"] == {
        "parameter": "gtin",
        "message": "gtin 04006381333931: this store already lists its product as sku 'oat-1'; to move it to sku "
        "'oat-2', take 'oat-1' off sale first (is_active no)",
    }


def test_a_retired_sku_written_again_without_its_gtin_takes_its_product_back(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """X (GTIN G) off sale, its listing taken over by Y (G), Y off sale: X written again without a GTIN (an empty
    barcode cell) found no listing and made a second product beside X's own; it takes that one back now, as a
    deleted listing's SKU keeps its product. In one batch after Y's delete too (as one by one); while Y is on sale,
    X is another item (a store lists a product once)."""
    store, key = shop
    rye = {"name": "Rye bread", "price": 2, "quantity": 3, "gtin": "5411188112709"}
    no_gtin = {"name": "Rye bread", "price": 2, "quantity": 4}

    def write(sku: str, body: dict[str, object] | None = None) -> dict[str, object]:
        url = listing_url(base, store, sku)
        answer = httpx.put(url, json=body, headers=bearer(key)) if body else httpx.delete(url, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    product = write("X", rye)["product_id"]
    write("X")
    assert write("Y", rye)["product_id"] == product  # took X's deleted listing over: X retired
    write("Y")
    back = write("X", no_gtin)
    assert (back["matched_by"], back["product_id"]) == ("sku", product), back
    assert back["notes"] == "took back this store's deleted listing of its product (sku 'Y')"
    write("X")
    assert write("Y", rye)["product_id"] == product
    items = [{"sku": "Y", "op": "delete"}, {"sku": "X", **no_gtin}]
    batch = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert batch.status_code == 200, batch.text
    assert [i.get("product_id") for i in batch.json()["results"]] == [product, product], batch.text
    write("X")
    assert write("Y", rye)["product_id"] == product
    assert write("X", no_gtin)["matched_by"] == "created"  # Y sells it
    with psycopg.connect(db_url) as conn:
        listed = conn.execute(
            "SELECT sku, product_master_id = %s FROM store_product WHERE store_id = %s ORDER BY sku", (product, store)
        ).fetchall()
    assert listed == [("X", False), ("Y", True)]


NOT_TEXT = "must be a string or null, not 5"  # msgspec's `Expected `str | null`, got `int``: Python's words


def test_a_body_missing_a_field_or_with_an_unknown_one_names_that_field(base: str, shop: tuple[uuid.UUID, str]) -> None:
    store, key = shop
    cases = [
        ("PUT", "listings/m1", {"name": "Milk", "quantity": 1}, "price", "missing required field `price`"),
        ("PUT", "listings/m1", {"name": "Milk", "price": 1, "quantity": 1, "colour": "white"}, "colour", "unknown"),
        ("POST", "listings/batch", {}, "items", "missing required field `items`"),
        ("POST", "listings/batch", {"items": [{"sku": "a", "price": 1, "quantity": 1, "x": 2}]}, "items[0].x", "`x`"),
        ("POST", "listings/batch", {"items": [{"sku": "a", "price": 1, "name": 5}]}, "items[0].name", NOT_TEXT),
    ]
    for method, path, body, parameter, says in cases:
        url = f"{base}/v1/stores/{store}/{path}"
        answer = httpx.request(method, url, json=body, headers=bearer(key))
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["parameter"] == parameter, body
        assert says in answer.json()["error"]["message"]


def test_a_store_reads_back_its_listings_one_by_sku_and_all_a_page_at_a_time(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    store, key = shop
    skus = [*(f"r{i:03d}" for i in range(7)), "s/1"]
    items = [{"sku": sku, "name": f"Item {sku}", "price": "1.25", "quantity": i} for i, sku in enumerate(skus)]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert written.status_code == 200, written.text
    httpx.delete(listing_url(base, store, "r003"), headers=bearer(key)).raise_for_status()
    one = httpx.get(listing_url(base, store, "s/1"), headers=bearer(key))
    assert one.status_code == 200, one.text
    assert (one.json()["sku"], one.json()["quantity"], one.json()["price"]) == ("s/1", 7, 1.25)
    seen: list[dict[str, object]] = []
    after: str | None = None
    for _ in range(5):
        params = {"page_size": 3, **({"after": after} if after else {})}
        page = httpx.get(f"{base}/v1/stores/{store}/listings", params=params, headers=bearer(key)).json()
        seen += page["items"]
        after = page["next_after"]
        if after is None:
            break
    assert [s["sku"] for s in seen] == skus  # every listing once, in SKU order, over three pages
    assert [s["is_active"] for s in seen] == [sku != "r003" for sku in skus]
    with psycopg.connect(db_url) as conn:
        products = dict(conn.execute("SELECT sku, product_master_id FROM store_product WHERE store_id = %s", (store,)))
    assert {s["sku"]: uuid.UUID(str(s["product_id"])) for s in seen} == products


def test_listing_reads_are_the_stores_own_and_bad_pages_are_400s(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    store, key = shop
    with psycopg.connect(db_url, autocommit=True) as conn:
        other_key = store_key(conn, new_store(conn), "listings:write")
    url = f"{base}/v1/stores/{store}/listings"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=bearer(other_key)).status_code == 403
    assert httpx.get(listing_url(base, store, "nope"), headers=bearer(key)).json()["error"]["parameter"] == "sku"
    for bad in ({"page_size": 0}, {"page_size": 1001}, {"page_size": "x"}):
        answer = httpx.get(url, params=bad, headers=bearer(key))
        assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "page_size"
        assert "between 1 and 1000" in answer.json()["error"]["message"]
    empty = httpx.get(url, headers=bearer(key)).json()
    assert empty == {"items": [], "next_after": None}


def test_a_sku_or_after_past_200_characters_is_a_400_saying_so_on_the_reads_too(
    base: str, shop: tuple[uuid.UUID, str]
) -> None:
    """The spec gives the SKU of `…/listings/{sku}` and the `after` of the listings' pages 200 characters at most.
    PUT, PATCH and DELETE of a longer SKU said so (400), but its GET answered 404 `no listing with sku 'xxx…'`
    (echoing the whole SKU), and a longer `after` was msgspec's bare ``Expected `str` of length <= 200``."""
    store, key = shop
    long_sku = "x" * 201
    for method in ("GET", "DELETE"):
        answer = httpx.request(method, listing_url(base, store, long_sku), headers=bearer(key))
        assert answer.status_code == 400, (method, answer.text)
        assert answer.json()["error"] == {"parameter": "sku", "message": "sku is longer than 200 characters"}
    at_most = httpx.get(listing_url(base, store, "x" * 200), headers=bearer(key))
    assert at_most.status_code == 404 and at_most.json()["error"]["parameter"] == "sku"
    page = httpx.get(f"{base}/v1/stores/{store}/listings", params={"after": long_sku}, headers=bearer(key))
    assert page.status_code == 400, page.text
    assert page.json()["error"] == {"parameter": "after", "message": "must be at most 200 characters (an SKU): give "
                                    "the answer's next_after"}  # fmt: skip
    fine = httpx.get(f"{base}/v1/stores/{store}/listings", params={"after": "x" * 200}, headers=bearer(key))
    assert fine.status_code == 200 and fine.json() == {"items": [], "next_after": None}


def test_a_store_is_read_openly_and_an_unknown_one_is_a_404(base: str, shop: tuple[uuid.UUID, str]) -> None:
    store, _key = shop
    found = httpx.get(f"{base}/v1/stores/{store}")
    assert found.status_code == 200 and found.json()["id"] == str(store) and found.json()["currency"] == "EUR"
    missing = httpx.get(f"{base}/v1/stores/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "store_id"


def test_a_put_to_a_product_another_store_lists_says_what_it_kept(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """The PUT answered `notes: null` while the shared product kept its description and brand."""
    store, key = shop
    with psycopg.connect(db_url, autocommit=True) as conn:
        other = new_store(conn)
        other_key = store_key(conn, other, "listings:write")
    body = {
        "gtin": "4000000000105",
        "name": "Hafer",
        "brand": "Oatly",
        "description": "Typo",
        "price": 1,
        "quantity": 5,
    }
    assert httpx.put(listing_url(base, store, "SH-1"), json=body, headers=bearer(key)).json()["notes"] is None
    assert httpx.put(listing_url(base, other, "O-9"), json=body, headers=bearer(other_key)).json()["notes"] is None
    fixed = httpx.put(listing_url(base, store, "SH-1"), json={**body, "description": "Fixed", "brand": "Oatly AB"},
                      headers=bearer(key))  # fmt: skip
    assert fixed.status_code == 200 and fixed.json()["status"] == "mapped", fixed.text
    assert fixed.json()["notes"].startswith("brand, description not applied: the product keeps its own"), fixed.text


def test_a_price_with_more_than_cents_is_rounded_and_the_answer_says_so(base: str, shop: tuple[uuid.UUID, str]) -> None:
    store, key = shop
    put = httpx.put(
        listing_url(base, store, "p1"), json={"name": "Fuel", "price": "1.999", "quantity": 1}, headers=bearer(key)
    )
    assert put.status_code == 200, put.text
    assert put.json()["listing"]["price"] == 2.0
    assert put.json()["notes"] == (
        "price '1.999' read as 1.999, rounded to 2.00 (a lone point is a decimal point, and a listing holds 2 "
        "decimals): if it is 1999, write it without a thousands separator"
    )
    patched = httpx.patch(listing_url(base, store, "p1"), json={"price": 0.125}, headers=bearer(key))
    assert patched.json()["listing"]["price"] == 0.13 and "0.125 rounded to 0.13" in patched.json()["notes"]
    exact = httpx.patch(listing_url(base, store, "p1"), json={"price": "3,40"}, headers=bearer(key))
    assert exact.json()["listing"]["price"] == 3.4 and exact.json()["notes"] is None


def test_a_price_is_rounded_to_its_currencys_decimals_and_the_answer_says_so(base: str, db_url: str) -> None:
    """ISO 4217's minor units: a yen has no decimals, so 199.5 JPY (the store's currency, named by no row) is 200
    and noted, by a PUT, a PATCH, a batch item and a CSV row alike (it went in as 199.50 without a word); a dinar has
    3, of which a listing holds 2, and its note says so."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store, other = new_store(conn, currency="JPY"), new_store(conn, currency="USD")
        key, other_key = store_key(conn, store, "listings:write"), store_key(conn, other, "listings:write")
    put = httpx.put(listing_url(base, store, "HALF"), json={"name": "Matcha", "price": 199.5, "quantity": 5},
                    headers=bearer(key))  # fmt: skip
    assert put.status_code == 200, put.text
    assert (put.json()["listing"]["price"], put.json()["notes"]) == (
        200,
        "price 199.5 rounded to 200 (JPY has no decimals)",
    )
    patched = httpx.patch(listing_url(base, store, "HALF"), json={"price": "0.5"}, headers=bearer(key))
    assert (
        patched.json()["listing"]["price"] == 1
        and patched.json()["notes"] == "price 0.5 rounded to 1 (JPY has no decimals)"
    )
    items = [
        {"sku": "C4", "name": "Tea", "price": "199.5", "quantity": 1},
        {"sku": "C5", "name": "Tea", "price": "1.000"},
    ]
    batch = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["notes"] for r in batch.json()["results"]] == [
        "price 199.5 rounded to 200 (JPY has no decimals)",
        "price '1.000' read as 1 (a lone point is a decimal point): if it is 1000, write it without a thousands "
        "separator; quantity not given: a new listing, stored with quantity 0 (an existing one keeps its level)",
    ], batch.text
    upload = httpx.post(f"{base}/v1/stores/{store}/imports", content=b'sku,name,price,quantity\nK1,Tea,"199,5",3\n',
                        headers={**bearer(key), "content-type": "text/csv"})  # fmt: skip
    assert upload.status_code == 202, upload.text
    drain_imports(db_url)
    dinar = httpx.put(listing_url(base, other, "B9"), json={"name": "Dinar", "price": 1.995, "currency": "KWD",
                      "quantity": 3}, headers=bearer(other_key))  # fmt: skip
    assert (dinar.json()["listing"]["price"], dinar.json()["notes"]) == (
        2.0,
        "price 1.995 rounded to 2.00 (a listing holds 2 decimals, KWD has 3)",
    ), dinar.text
    with psycopg.connect(db_url) as conn:
        held = conn.execute("SELECT sku, price::text FROM store_product WHERE store_id = %s ORDER BY sku", (store,))
        assert held.fetchall() == [("C4", "200.00"), ("C5", "1.00"), ("HALF", "1.00"), ("K1", "200.00")]
        noted = conn.execute(
            "SELECT r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
            "WHERE b.store_id = %s AND b.kind = 'csv'",
            (store,),
        )
        assert noted.fetchall() == [("price 199.5 rounded to 200 (JPY has no decimals)",)]


def test_a_price_whose_rounding_passes_the_limit_is_refused_with_the_rounding_named(base: str, db_url: str) -> None:
    """9999999999.5 JPY rounds to 10000000000, past what a listing holds, and was refused with "price must be at most
    9999999999.99", a limit the price sent meets. A PUT, a batch item and a CSV row now name the rounding and the most
    a listing holds in that currency; 9999999999.4 still goes in, rounded."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store, other = new_store(conn, currency="JPY"), new_store(conn, currency="EUR")
        key, other_key = store_key(conn, store, "listings:write"), store_key(conn, other, "listings:write")
    why = (
        "price 9999999999.5 rounds to 10000000000 (JPY has no decimals), past the most a listing holds in JPY, "
        "9999999999"
    )
    put = httpx.put(listing_url(base, store, "P7"), json={"name": "Probe bread", "price": 9999999999.5, "quantity": 3},
                    headers=bearer(key))  # fmt: skip
    assert (put.status_code, put.json()["error"]["message"]) == (400, why), put.text
    items = [{"sku": "B7", "name": "Bread", "price": 9999999999.5, "currency": "JPY", "quantity": 1},
             {"sku": "B8", "name": "Bread", "price": "9999999999.4", "currency": "JPY", "quantity": 1}]  # fmt: skip
    batch = httpx.post(f"{base}/v1/stores/{other}/listings/batch", json={"items": items}, headers=bearer(other_key))
    results = batch.json()["results"]
    assert [(r["status"], r.get("error")) for r in results] == [("rejected", why), ("mapped", None)], batch.text
    assert results[1]["notes"] == "price 9999999999.4 rounded to 9999999999 (JPY has no decimals)", batch.text
    upload = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nM1,Max,9999999999.5,1",
                        headers={**bearer(key), "content-type": "text/csv"})  # fmt: skip
    assert upload.status_code == 202, upload.text
    drain_imports(db_url)
    with psycopg.connect(db_url) as conn:
        refused = conn.execute(
            "SELECT r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
            "WHERE b.store_id = %s AND b.kind = 'csv'",
            (store,),
        )
        assert refused.fetchall() == [(why,)]


def test_a_store_lists_its_imports_newest_first_a_page_at_a_time(base: str, shop: tuple[uuid.UUID, str]) -> None:
    store, key = shop
    for i in range(4):
        httpx.put(listing_url(base, store, f"i{i}"), json={"name": "I", "price": 1, "quantity": i}, headers=bearer(key))
    upload = httpx.post(
        f"{base}/v1/stores/{store}/imports",
        content=b"sku,name,price,quantity\nc1,C,1,1\nc2,C,-1,1\n",
        headers={**bearer(key), "content-type": "text/csv"},
    )
    assert upload.status_code == 202, upload.text
    url = f"{base}/v1/stores/{store}/imports"
    pages, before = [], None
    for _ in range(5):
        params = {"page_size": 2, **({"before": before} if before else {})}
        page = httpx.get(url, params=params, headers=bearer(key)).json()
        pages.append(page["items"])
        before = page["next_before"]
        if before is None:
            break
    seen = [item for page in pages for item in page]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s["source"] for s in seen] == ["csv", "api", "api", "api", "api"]  # newest first
    assert seen[0]["batch_id"] == upload.json()["batch_id"] and seen[0]["total_rows"] == 2
    only_csv = httpx.get(url, params={"source": "csv"}, headers=bearer(key)).json()
    assert [s["batch_id"] for s in only_csv["items"]] == [upload.json()["batch_id"]]
    assert only_csv["next_before"] is None
    bad = httpx.get(url, params={"source": "fax"}, headers=bearer(key))
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "source"


def test_a_batch_item_with_a_bad_level_is_rejected_alone(base: str, db_url: str, shop: tuple[uuid.UUID, str]) -> None:
    """As a CSV row's: the other items of the request are applied, and each bad one says why."""
    store, key = shop
    levels: list[object] = [-1, 1.5, "lots", 2, "3", 4.0]
    items = [{"sku": f"q{i}", "name": "Q", "price": 1, "quantity": q} for i, q in enumerate(levels)]
    items.append({"sku": "q-version", "name": "Q", "price": 1, "quantity": 1, "version": -2})
    answer = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    results = [(r["status"], r["error"]) for r in answer.json()["results"]]
    assert results == [
        ("rejected", "quantity must not be negative"),
        ("rejected", "quantity 1.5 is not a whole number"),  # a JSON number as sent: it read '1.5'
        ("rejected", "quantity 'lots' is not a number (write a whole number such as 1500)"),
        ("mapped", None),
        ("mapped", None),
        ("mapped", None),
        ("rejected", "version must be a whole number >= 0"),
    ]
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT sku, quantity FROM store_product WHERE store_id = %s ORDER BY sku", (store,))
        assert stored.fetchall() == [("q3", 2), ("q4", 3), ("q5", 4)]


def test_a_percent_encoded_listings_segment_or_a_nul_is_a_400_naming_the_sku(
    base: str, shop: tuple[uuid.UUID, str]
) -> None:
    """The route matches the decoded path, but the SKU is read from the raw one: `%6cistings/…` and
    `listings%2F…` were a 500 (IndexError) on every method; a NUL in a read was a 400 naming nothing. With a later
    `/listings/` (`%6cistings/KB-5/listings/KB-6`: the route's SKU is `KB-5/listings/KB-6`) KB-6 was written."""
    store, key = shop
    body = {"name": "Thing", "price": 1, "quantity": 1}
    assert httpx.put(listing_url(base, store, "KB-5"), json=body, headers=bearer(key)).status_code == 200
    paths = ("%6cistings/KB-5", "listings%2FKB-5", "%6cistings/KB-5/listings/KB-6", "listings%2FKB-5/listings/KB-6")
    for path in paths:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            sent = body if method == "PUT" else {"quantity": 2} if method == "PATCH" else None
            answer = httpx.request(method, f"{base}/v1/stores/{store}/{path}", json=sent, headers=bearer(key))
            assert answer.status_code == 400, (path, method, answer.text)
            assert answer.json()["error"]["parameter"] == "sku" and "/listings/" in answer.json()["error"]["message"]
    assert httpx.get(listing_url(base, store, "KB-6"), headers=bearer(key)).status_code == 404
    answer = httpx.get(f"{base}/v1/stores/{store}/listings/a%00b", headers=bearer(key))
    assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "sku"


def test_json_bodies_keep_their_schemas_json_types(base: str, db_url: str, shop: tuple[uuid.UUID, str]) -> None:
    """litestar converted bodies as leniently as query strings: `"updated_at": 0` was 1970, 253402300799 the year
    9999 (every later write then stale), `"is_active": 0` false, `"quantity": "5"` 5; a body nested 1,000 deep
    was a 500 (RecursionError)."""
    store, key = shop
    good = {"name": "Thing", "price": 1, "quantity": 5}
    wrong = [
        ({**good, "updated_at": 253402300799}, "updated_at"),
        ({**good, "quantity": "5"}, "quantity"),
        ({**good, "is_active": 0}, "is_active"),
        ({**good, "version": "7"}, "version"),
    ]
    for sent, field in wrong:
        answer = httpx.put(listing_url(base, store, "T-1"), json=sent, headers=bearer(key))
        assert answer.status_code == 400, (sent, answer.text)
        assert answer.json()["error"]["parameter"] == field, answer.text
    batch = {"items": [{"sku": "T-2", **good}, {"sku": "T-3", **good, "updated_at": 1}]}
    answer = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json=batch, headers=bearer(key))
    assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "items[1].updated_at"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (0,)
    answer = httpx.put(listing_url(base, store, "T-1"), json={**good, "quantity": 5.5}, headers=bearer(key))
    assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "quantity"
    nested = "[" * 1000 + "]" * 1000
    headers = {**bearer(key), "Content-Type": "application/json"}
    for url in (listing_url(base, store, "T-1"), f"{base}/v1/stores/{store}/listings/batch"):
        answer = httpx.request("PUT" if "batch" not in url else "POST", url, content=nested, headers=headers)
        assert answer.status_code == 400 and "nested too deeply" in answer.json()["error"]["message"], answer.text
    whole = httpx.put(
        listing_url(base, store, "T-0"), json={**good, "quantity": 5.0, "version": 1.0}, headers=bearer(key)
    )
    assert whole.status_code == 200 and whole.json()["listing"]["quantity"] == 5, whole.text  # 5.0 is an integer
    ok = httpx.put(listing_url(base, store, "T-1"), json={**good, "updated_at": "2026-12-05T09:00:00Z"},
                   headers=bearer(key))  # fmt: skip
    assert ok.status_code == 200, ok.text


def test_a_listing_write_queues_behind_the_stores_waiting_import(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """A PATCH mapped inline jumped ahead of the store's CSV upload still waiting for a worker, which then set
    the till's level back to the file's (a CSV has no clock to lose by). It is queued behind it now: 202, applied
    in order by the worker; answered as usual when a worker maps it within the wait."""
    store, key = shop
    milk = {"name": "Milk", "price": "1.00", "quantity": 5}
    assert httpx.put(listing_url(base, store, "Q-1"), json=milk, headers=bearer(key)).status_code == 200
    csv_headers = {**bearer(key), "Content-Type": "text/csv"}
    upload = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nQ-1,Milk,1.00,10\n",
                        headers=csv_headers)  # fmt: skip
    assert upload.status_code == 202
    patched = httpx.patch(listing_url(base, store, "Q-1"), json={"quantity": 3}, headers=bearer(key))
    assert patched.status_code == 202, patched.text
    queued = patched.json()
    assert queued["status"] == "queued" and patched.headers["location"] == queued["status_url"]
    assert queued["message"].startswith("the store has an earlier import or delivery still waiting"), queued
    waiting = httpx.get(f"{base}{queued['status_url']}", headers=bearer(key)).json()
    assert waiting["status"] == "pending" and waiting["results"] is None
    batch = {"items": [{"sku": "Q-2", **milk}]}
    later = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json=batch, headers=bearer(key))
    assert later.status_code == 202  # behind both
    negative = httpx.put(listing_url(base, store, "Q-3"), json={**milk, "price": -1}, headers=bearer(key))
    assert negative.status_code == 400 and negative.json()["error"]["parameter"] == "price"  # queued, yet answered
    drain_imports(db_url)
    got = httpx.get(listing_url(base, store, "Q-1"), headers=bearer(key)).json()
    assert got["quantity"] == 3  # the file's 10 first, then the till's 3
    status = httpx.get(f"{base}{queued['status_url']}", headers=bearer(key)).json()
    assert (status["status"], status["mapped_rows"]) == ("completed", 1)
    assert status["results"] == [{"sku": "Q-1", "status": "mapped", "matched_by": None,
                                  "product_id": got["product_id"], "error": None, "notes": None}]  # fmt: skip
    upload = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nQ-1,Milk,1.00,8\n",
                        headers=csv_headers)  # fmt: skip
    worker = threading.Timer(0.3, drain_imports, (db_url,))
    worker.start()
    try:
        patched = httpx.patch(listing_url(base, store, "Q-1"), json={"quantity": 2}, headers=bearer(key))
    finally:
        worker.join()
    assert patched.status_code == 200 and patched.json()["listing"]["quantity"] == 2, patched.text
    alone = httpx.patch(listing_url(base, store, "Q-1"), json={"quantity": 1}, headers=bearer(key))
    assert alone.status_code == 200 and alone.json()["listing"]["quantity"] == 1  # nothing waiting: inline


def test_a_csv_upload_in_its_declared_charset(base: str, db_url: str, shop: tuple[uuid.UUID, str]) -> None:
    """Excel's "CSV" on Windows writes windows-1252: every row with an umlaut or € was rejected as not UTF-8, the
    Content-Type's charset ignored."""
    store, key = shop
    data = "sku;name;price;quantity\nK-1;Käse würzig 200 g;2,49;3\nK-2;Brötchen;0,39;12\n".encode("windows-1252")
    url = f"{base}/v1/stores/{store}/imports"
    headers = {**bearer(key), "Content-Type": "text/csv; charset=windows-1252"}
    assert httpx.post(url, content=data, headers=headers).status_code == 202
    drain_imports(db_url)
    with psycopg.connect(db_url) as conn:
        titles = conn.execute("SELECT title FROM store_product WHERE store_id = %s ORDER BY sku", (store,)).fetchall()
    assert titles == [("Käse würzig 200 g",), ("Brötchen",)]
    undeclared = httpx.post(url, content=data, headers={**bearer(key), "Content-Type": "text/csv"})
    drain_imports(db_url)
    errors = httpx.get(f"{base}{undeclared.json()['errors_url']}", headers=bearer(key)).text
    assert (
        "upload it with its charset (Content-Type: text/csv; charset=windows-1252, on the body or its multipart part)"
        in errors
    ), errors
    assert "--charset" not in errors
    unknown = httpx.post(url, content=data, headers={**bearer(key), "Content-Type": "text/csv; charset=klingon"})
    assert unknown.status_code == 400 and unknown.json()["error"]["parameter"] == "content-type"
    assert "klingon" in unknown.json()["error"]["message"]
    odd = httpx.post(url, content=b"sku,name,price,quantity\nA,b,1,1\n",
                     headers={**bearer(key), "Content-Type": "text/csv; charset=punycode"})  # fmt: skip
    assert odd.status_code == 400 and odd.json()["error"]["parameter"] == "content-type", odd.text  # it was a 500


def test_queued_writes_hold_no_connection_while_they_wait(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A queued write waited for the worker on its pooled connection: a burst of one store's writes behind its
    waiting CSV took every connection, and reads (searches too) answered 503."""
    settings = dataclasses.replace(ingest_settings(db_url, tmp_path_factory.mktemp("keys")), pool_max_size=3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    with serve(settings, None) as base:
        milk = {"name": "Milk", "price": "1.00", "quantity": 5}
        assert httpx.put(listing_url(base, store, "P-1"), json=milk, headers=bearer(key)).status_code == 200
        csv_headers = {**bearer(key), "Content-Type": "text/csv"}
        httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nP-1,Milk,1,9\n",
                   headers=csv_headers)  # fmt: skip

        def patch(quantity: int) -> int:
            url = listing_url(base, store, "P-1")
            return httpx.patch(url, json={"quantity": quantity}, headers=bearer(key), timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            writes = [pool.submit(patch, n) for n in range(8)]
            time.sleep(0.5)  # every write is waiting now
            reads = [httpx.get(f"{base}/v1/stores/{store}", timeout=30).status_code for _ in range(5)]
            assert [w.result() for w in writes] == [202] * 8
        assert reads == [200] * 5


API_LOCK_WAIT = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s "
    "AND wait_event_type = 'Lock' AND wait_event = ANY(%s) AND query LIKE %s"
)


def _lock_waiter(db_url: str, application: str, table: str, events: tuple[str, ...] = ("relation",)) -> int:
    """The backend of `application` waiting for a lock (`table`'s, or a row's with events transactionid and tuple)
    in a statement that names `table` (waited for up to 5 s)."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        deadline = time.monotonic() + 5
        while not (rows := admin.execute(API_LOCK_WAIT, (application, list(events), f"%{table}%")).fetchall()):
            assert time.monotonic() < deadline, f"no {application} backend waited for {table}"
            time.sleep(0.01)
        return int(rows[0][0])


def _terminate_api_waiting_for(db_url: str, table: str) -> None:
    """The API's connection that waits for `table`'s lock, terminated: a real lost connection mid-statement."""
    pid = _lock_waiter(db_url, "plinqy-search-api", table)
    with psycopg.connect(db_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


@contextlib.contextmanager
def _table_locked(db_url: str, table: str) -> Iterator[None]:
    """`table` locked ACCESS EXCLUSIVE by another session until the block ends: asked for on entry, and granted
    once no transaction holds it any more (it waits in line behind any that does)."""
    release = threading.Event()

    def hold() -> None:
        with psycopg.connect(db_url, application_name="test-lock") as conn:
            conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            release.wait(30)
            conn.rollback()

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(hold)
        try:
            yield
        finally:
            release.set()
        held.result()


def _listing_batches(db_url: str, store: uuid.UUID) -> int:
    with psycopg.connect(db_url) as conn:
        found = conn.execute("SELECT count(*) FROM import_batch WHERE store_id = %s AND kind = 'listing'", (store,))
        return int(found.fetchall()[0][0])


def _assert_queued(answer: httpx.Response) -> str:
    assert answer.status_code == 202, answer.text  # it was a 503 "retry shortly", and the write applied anyway
    queued = answer.json()
    assert queued["status"] == "queued" and answer.headers["location"] == queued["status_url"]
    return str(queued["status_url"])


def test_a_queued_write_whose_wait_loses_its_connection_is_answered_queued(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """A queued write (single or batch) whose outcome poll lost its connection (pg_terminate_backend) answered 503
    "the database is unavailable; retry shortly", and the worker applied it seconds later: a retry stored it twice,
    a client that gave up found it applied. Once its batch is committed it is answered queued, whatever fails."""
    store, key = shop
    milk = {"name": "Milk", "price": "1.00", "quantity": 5}
    assert httpx.put(listing_url(base, store, "L-1"), json=milk, headers=bearer(key)).status_code == 200
    upload = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nL-0,Tea,1,1\n",
                        headers={**bearer(key), "Content-Type": "text/csv"})  # fmt: skip
    assert upload.status_code == 202
    writes = [("PATCH", listing_url(base, store, "L-1"), {"quantity": 3}),
              ("POST", f"{base}/v1/stores/{store}/listings/batch", {"items": [{"sku": "L-2", **milk}]})]  # fmt: skip
    status_urls = []
    for method, url, body in writes:
        before = _listing_batches(db_url, store)
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(httpx.request, method, url, json=body, headers=bearer(key), timeout=30)
            while _listing_batches(db_url, store) == before:  # committed: the API polls for its outcome now
                assert not sent.done(), sent.result().text
                time.sleep(0.01)
            with _table_locked(db_url, "import_batch"):  # the next poll waits for it, and is terminated
                _terminate_api_waiting_for(db_url, "import_batch")
            status_urls.append(_assert_queued(sent.result()))
            assert "an earlier import or delivery still waiting" in sent.result().json()["message"]  # behind it
    drain_imports(db_url)
    for status_url in status_urls:
        assert httpx.get(f"{base}{status_url}", headers=bearer(key)).json()["status"] == "completed"
    assert httpx.get(listing_url(base, store, "L-1"), headers=bearer(key)).json()["quantity"] == 3
    assert httpx.get(listing_url(base, store, "L-2"), headers=bearer(key)).json()["quantity"] == 5


def test_a_write_applied_inline_whose_answer_loses_its_connection_is_answered_queued(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """A write mapped and committed inline whose answer's read (the listing) then lost its connection answered 503
    "retry shortly" though applied. It is answered queued: its outcome is at status_url."""
    store, key = shop
    url = listing_url(base, store, "M-1")
    assert httpx.put(url, json={"name": "Milk", "price": 1, "quantity": 5}, headers=bearer(key)).status_code == 200
    with psycopg.connect(db_url) as row_lock, ThreadPoolExecutor(1) as pool:
        # the write waits for the listing's row, holding the listings table: the lock asked for next is granted
        # only once the write commits, and its answer's read of the listing waits for it
        row_lock.execute("SELECT 1 FROM store_product WHERE store_id = %s AND sku = 'M-1' FOR UPDATE", (store,))
        sent = pool.submit(httpx.patch, url, json={"quantity": 4}, headers=bearer(key), timeout=30)
        _lock_waiter(db_url, "plinqy-search-api", "", ("transactionid", "tuple"))
        with _table_locked(db_url, "store_product"):
            _lock_waiter(db_url, "test-lock", "LOCK TABLE store_product")
            row_lock.commit()
            _terminate_api_waiting_for(db_url, "store_product")
        status_url = _assert_queued(sent.result())
        said = sent.result().json()["message"]  # it said an earlier import was waiting, the write applied after it
        assert said.startswith("this write was stored and mapped") and "earlier" not in said, said
    outcome = httpx.get(f"{base}{status_url}", headers=bearer(key)).json()
    assert outcome["status"] == "completed" and outcome["results"][0]["status"] == "mapped", outcome
    assert httpx.get(url, headers=bearer(key)).json()["quantity"] == 4


def test_a_write_during_an_upload_still_arriving_applies_after_it(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """A PATCH sent while a CSV was still uploading was mapped at once, and the file (exported before it) set the
    till's level back when it was mapped later. An upload's place in the store's order is where it began."""
    store, key = shop
    assert httpx.put(listing_url(base, store, "U-1"), json={"name": "Tea", "price": 1, "quantity": 5},
                     headers=bearer(key)).status_code == 200  # fmt: skip
    started = threading.Event()

    def slow_file() -> Iterator[bytes]:
        yield b"sku,name,price,quantity\n"
        started.set()
        time.sleep(1.5)
        yield b"U-1,Tea,1,1000\n"

    def upload() -> int:
        headers = {**bearer(key), "Content-Type": "text/csv"}
        return httpx.post(f"{base}/v1/stores/{store}/imports", content=slow_file(), headers=headers).status_code

    with ThreadPoolExecutor(1) as pool:
        uploaded = pool.submit(upload)
        assert started.wait(10)
        time.sleep(0.3)
        patched = httpx.patch(listing_url(base, store, "U-1"), json={"quantity": 7}, headers=bearer(key))
        assert uploaded.result() == 202
    assert patched.status_code == 202, patched.text  # behind the upload, not before it
    drain_imports(db_url)
    assert httpx.get(listing_url(base, store, "U-1"), headers=bearer(key)).json()["quantity"] == 7


def test_an_upload_whose_api_died_holds_the_store_back_only_until_its_heartbeat_lapses(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """An upload still arriving holds its store's later batches back; one whose API process died (its heartbeat
    lapsed) held them for PLINQY_INGEST_UPLOAD_TIMEOUT_S (an hour): now for the heartbeat's lease at most, and the
    import job aborts it at once."""
    store, key = shop
    with psycopg.connect(db_url, autocommit=True) as conn:
        dead = conn.execute("INSERT INTO import_batch (store_id, source, kind, status, locked_until) VALUES "
                            "(%s, 'csv', 'csv', 'receiving', now() - interval '1 second') RETURNING id",
                            (store,)).fetchone()  # fmt: skip
        assert dead is not None
        put = httpx.put(listing_url(base, store, "D-1"), json={"name": "Tea", "price": 1, "quantity": 2},
                        headers=bearer(key))  # fmt: skip
        assert put.status_code == 200, put.text  # mapped at once: the dead upload holds nothing back

        async def abort() -> list[uuid.UUID]:
            aconn = await asyncpg.connect(db_url)
            try:
                return await pipeline.abort_stale_uploads(aconn, 3600)
            finally:
                await aconn.close()

        assert asyncio.run(abort()) == [dead[0]]
        assert conn.execute("SELECT status FROM import_batch WHERE id = %s", (dead[0],)).fetchone() == ("aborted",)


def test_a_refused_multipart_upload_aborts_its_batch(base: str, db_url: str, shop: tuple[uuid.UUID, str]) -> None:
    """A multipart body without a file part was answered 400 but left its batch `receiving`, with a live heartbeat:
    the store's writes were queued behind it for two minutes, again at every such request."""
    store, key = shop
    answer = httpx.post(f"{base}/v1/stores/{store}/imports", files={"other": (None, "1")}, headers=bearer(key))
    assert answer.status_code == 400, answer.text
    with psycopg.connect(db_url) as conn:
        batches = conn.execute("SELECT status FROM import_batch WHERE store_id = %s", (store,)).fetchall()
    assert batches == [("aborted",)]
    put = httpx.put(
        listing_url(base, store, "M-1"), json={"name": "Tea", "price": 1, "quantity": 1}, headers=bearer(key)
    )
    assert put.status_code == 200  # mapped at once: nothing holds the store back


def test_a_sku_with_whitespace_around_it_is_the_trimmed_listing_on_every_path(
    base: str, db_url: str, shop: tuple[uuid.UUID, str]
) -> None:
    """The writes keyed ` NEWPAD ` as `NEWPAD`, but answered sku ' NEWPAD ' with `listing: null`, a GET by the
    same path was a 404, and a batch item echoed the untrimmed SKU: one reading of a SKU everywhere now."""
    store, key = shop
    body = {"name": "Pad", "price": 1, "quantity": 1}
    sent_and_written = [(" NEWPAD ", "NEWPAD"), ("\tTABSKU\n", "TABSKU"), ("\u00a0NBSP", "NBSP")]
    # a BOM or zero-width space at its ends, as a CSV's SKU cell drops them (the API kept them: another listing)
    sent_and_written += [("\ufeffBOMSKU", "BOMSKU"), ("ZW\u200b", "ZW")]
    for sent, written in sent_and_written:
        put = httpx.put(listing_url(base, store, sent), json=body, headers=bearer(key))
        assert put.status_code == 200, (sent, put.text)
        assert put.json()["sku"] == written and put.json()["listing"]["sku"] == written, put.text
        read = httpx.get(listing_url(base, store, sent), headers=bearer(key))
        assert read.status_code == 200 and read.json()["sku"] == written, (sent, read.text)
        patched = httpx.patch(listing_url(base, store, sent), json={"quantity": 4}, headers=bearer(key))
        assert patched.status_code == 200 and patched.json()["sku"] == written, patched.text
        assert patched.json()["listing"]["quantity"] == 4
    gone = httpx.delete(listing_url(base, store, " NEWPAD "), headers=bearer(key))
    assert gone.status_code == 200 and gone.json()["sku"] == "NEWPAD", gone.text
    assert gone.json()["listing"]["is_active"] is False
    items = [{"sku": " dupe", "name": "Dupe", "price": 1, "quantity": 2}, {"sku": "x", "name": "X", "price": -1}]
    batch = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert batch.status_code == 200, batch.text
    assert [(r["sku"], r["status"]) for r in batch.json()["results"]] == [("dupe", "mapped"), ("x", "rejected")]
    status = httpx.get(f"{base}/v1/imports/{batch.json()['batch_id']}", headers=bearer(key)).json()
    assert [r["sku"] for r in status["results"]] == ["dupe", "x"]
    blank = httpx.get(listing_url(base, store, "  "), headers=bearer(key))
    assert blank.status_code == 404 and blank.json()["error"]["parameter"] == "sku", blank.text
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT sku FROM store_product WHERE store_id = %s ORDER BY sku", (store,)).fetchall()
    assert stored == [("BOMSKU",), ("NBSP",), ("NEWPAD",), ("TABSKU",), ("ZW",), ("dupe",)]
