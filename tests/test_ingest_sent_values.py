"""A row's reasons and notes name a value that is no text as its sender wrote it in JSON (`true`, `12.5`, `["EUR"]`,
`{"a":1}`), a text quoted as before (`'x y'`): a signed delivery's rows over real HTTP, mapped into real PostgreSQL,
and a vendor's stock time. They read as Python's repr of its str() (`'True'`, `'12.5'`, `"['EUR']"`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from search_service.ingest.connectors import lightspeed_r, shopify
from search_service.ingest.connectors.common import MapContext
from search_service.ingest.sent_values import as_cell, as_json, as_sent
from search_service.settings import Settings
from tests.connector_helpers import SECRET_KEY, make_connection, map_batches, sync
from tests.ingest_helpers import drain_imports, ingest_settings, new_store, serve, signed, webhook_connection
from tests.pos_fakes.vendors import ErplyFake, Item
from tests.test_api import app_settings, running_client


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_settings(db_url, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def base(settings: Settings) -> Iterator[str]:
    with serve(settings, None) as url:  # no model: the write path needs none
        yield url


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


LISTING = {"name": "Tea", "price": "1.00", "quantity": 1}
NOT_ISO = "is not an ISO-8601 time"
NO_LEVEL = "quantity not given: a new listing, stored with quantity 0 (an existing one keeps its level)"


def _reasons(shown: str) -> dict[str, tuple[str, str | None]]:
    """Each field's row (its SKU) for a value that reads `shown` and is refused or ignored as no text or list is."""
    return {
        "currency": ("rejected", f"currency {shown} is not a 3-letter code (ISO 4217, e.g. EUR)"),
        "gtin": ("mapped", f"gtin {shown} ignored: a GTIN is 8 to 14 digits"),
        "quantity": ("rejected", f"quantity {shown} is not a number (write a whole number such as 1500)"),
        "price": ("rejected", f"price {shown} is not a number (write 1234.50 or 1234,50)"),
        "updated_at": ("rejected", f"updated_at {shown} {NOT_ISO}"),
        "category": ("mapped", f"category {shown} not found; ignored: write its full path (Parent > Child) or its id"),
    }


NO_TEXT = ("rejected", "category must be a string")


NUMBER = {
    **_reasons("12.5"),
    "quantity": ("rejected", "quantity 12.5 is not a whole number"),
    "price": ("mapped", None),  # a price
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, {**_reasons("true"), "quantity": ("rejected", "quantity must be a whole number"),
                "price": ("rejected", "price must be a number"), "category": NO_TEXT}),
        (12.5, NUMBER),
        (None, {"currency": ("mapped", None), "gtin": ("mapped", None), "quantity": ("mapped", NO_LEVEL),
                "price": ("rejected", "price is required"), "updated_at": ("mapped", None),
                "category": ("mapped", None)}),  # none sent
        (["EUR"], {**_reasons('["EUR"]'), "category": NO_TEXT}),
        ({"a": 1}, {**_reasons('{"a":1}'), "category": NO_TEXT}),
        ("x y", _reasons("'x y'")),  # a text reads as before: quoted as typed
    ],
    ids=["true", "number", "null", "list", "object", "text"],
)  # fmt: skip
def test_a_delivered_value_that_is_no_text_is_named_as_sent_in_its_rows_reason(
    base: str, db_url: str, settings: Settings, conn: psycopg.Connection, value: Any, expected: dict[str, Any]
) -> None:
    """`"currency": true` was rejected as "currency 'True' is not a 3-letter code", `["EUR"]` as `"['EUR']"`; a
    GTIN `12.5` was ignored as `'12.5'`; a quantity `12.5` "is not a whole number" as `'12.5'`, a list one (and a
    list price) "is not a number" as `"['EUR']"`; a category `12.5` "not found" as `'12.5'`. Each row holds one
    field set to the value, the rest valid."""
    store = new_store(conn)
    connection, secret = webhook_connection(conn, settings, store)
    rows = [{"sku": field, **LISTING, field: value} for field in expected]
    body = json.dumps({"type": "listings.upsert", "data": rows}).encode()
    accepted = httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=signed(secret, body))
    assert accepted.status_code == 202, accepted.text
    drain_imports(db_url)
    got = conn.execute(
        "SELECT payload->>'sku', status, error FROM imported_product_raw WHERE import_batch_id = %s"
        " ORDER BY row_number",
        (uuid.UUID(accepted.json()["batch_id"]),),
    ).fetchall()
    assert {sku: (status, error) for sku, status, error in got} == expected


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        (True, f"the stock time true {NOT_ISO}"),
        (12.5, f"the stock time 12.5 {NOT_ISO}"),
        (None, None),  # none sent: the level goes unclocked, as before
        (["2026-01-01T00:00:00Z"], f'the stock time ["2026-01-01T00:00:00Z"] {NOT_ISO}'),
        ({"a": 1}, f'the stock time {{"a":1}} {NOT_ISO}'),
        ("yesterday", f"the stock time 'yesterday' {NOT_ISO}"),  # a text as before
    ],
    ids=["true", "number", "null", "list", "object", "text"],
)
def test_a_vendors_stock_time_that_is_no_text_is_named_as_sent(stamp: Any, reason: str | None) -> None:
    """An R-Series ItemShop's `timeStamp` (a Shopify level's `updated_at` goes the same way, `clocked_level`):
    `true` was "the stock time 'True' is not an ISO-8601 time"."""
    shop = {"itemShopID": "1", "itemID": "7", "shopID": "1", "qoh": "2", "timeStamp": stamp}
    row = lightspeed_r.map_item_shop(shop, MapContext("1"))
    assert row is not None and row.get("_error") == reason


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "true"), (Decimal("12.5"), "12.5"), (None, None), (["1"], '["1"]'), ({"a": 1}, '{"a":1}'),
     ("abc", "'abc'")],
    ids=["true", "number", "null", "list", "object", "text"],
)  # fmt: skip
def test_a_shopify_id_that_is_no_id_is_named_as_sent(value: Any, shown: str | None) -> None:
    """A Shopify delivery's JSON reads its numbers as Decimals; `true` or `[1]` as an id read `bool`, `list`."""
    why = shopify.not_an_id({"inventory_item_id": value}, "inventory_item_id", "variants[].")
    assert why == (None if shown is None else f"variants[].inventory_item_id must be a positive integer, not {shown}")


@pytest.mark.parametrize(
    ("client_code", "shown"), [(999, "999"), ("999", "'999'"), (True, "true")], ids=["number", "text", "true"]
)
def test_an_erply_event_of_another_client_code_names_it_as_sent(
    db_url: str, conn: psycopg.Connection, client_code: Any, shown: str
) -> None:
    """An Erply `clientCode` is a number (`123456`): another account's, sent as one, read `'999'`."""
    erply = make_connection(conn, new_store(conn), "erply", "1", "http://127.0.0.1:9", {"client_code": "123456"},
                            secret="e-secret")  # fmt: skip
    event = {"id": "e-1", "clientCode": client_code, "table": "wm_product", "items": []}
    event["hmac"] = hmac.new(b"e-secret", b"e-1", hashlib.sha256).hexdigest()
    with running_client(app_settings(db_url, secret_key=SECRET_KEY), None) as client:
        answer = client.post(
            f"/v1/ingest/{erply}", content=json.dumps(event), headers={"content-type": "application/json"}
        )
    assert answer.status_code == 401, answer.text
    said = f"the event's clientCode is {shown}, not this connection's account '123456'"
    assert answer.json()["error"]["message"] == said, answer.text


def _x_series_form(topic: str, payload: str) -> tuple[dict[str, str], bytes]:
    """An X-Series webhook as the vendor posts it: a form whose `payload` is the JSON, signed with `x-secret`."""
    body = f"type={topic}&payload={quote(payload)}".encode()
    signature = hmac.new(b"x-secret", body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Signature": f"signature={signature},algorithm=HMAC-SHA256"}  # fmt: skip
    return headers, body


def _x_series(conn: psycopg.Connection) -> uuid.UUID:
    return make_connection(conn, new_store(conn), "lightspeed-x", "outlet-1", "http://127.0.0.1:9",
                           {"domain_prefix": "s"}, "x-secret")  # fmt: skip


@pytest.mark.parametrize(
    ("sent_id", "shown"),
    [("true", "true"), ("12.5", "12.5"), ("[1]", "[1]"), ('{"a": 1}', '{"a":1}'), ('""', "''")],
    ids=["true", "number", "list", "object", "empty-text"],
)
def test_an_x_series_webhook_id_that_is_no_id_is_named_as_sent(
    db_url: str, conn: psycopg.Connection, sent_id: str, shown: str
) -> None:
    """An X-Series `product.update` whose payload's `id` was `true` or `[1]` answered "the payload's id must be
    text, not bool" (`list`, `dict`; a number `12.5` "not Decimal", an empty text "must be text, not str")."""
    headers, body = _x_series_form("product.update", f'{{"id": {sent_id}, "name": "Mug"}}')
    with running_client(app_settings(db_url, secret_key=SECRET_KEY), None) as client:
        answer = client.post(f"/v1/ingest/{_x_series(conn)}", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    said = f"the payload's id must be text (not empty) or a whole number, not {shown}"
    assert answer.json()["error"]["message"] == said, answer.text


def _rejected(conn: psycopg.Connection, connection: uuid.UUID) -> dict[str, str]:
    """sku -> the reason of each upsert row of the connection's batches refused (a level of a refused listing's
    is refused too, "no listing with sku …")."""
    rows = conn.execute(
        "SELECT r.payload->>'sku', r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id"
        " WHERE b.connection_id = %s AND r.status = 'rejected' AND r.payload->>'op' = 'upsert'",
        (connection,),
    ).fetchall()
    return {sku: error for sku, error in rows}


NO_TEXT_SENT = [  # (the JSON sent, as a reason names it)
    ("true", "true"),
    ('["Mug", 1.5]', '["Mug",1.5]'),  # a number in it as sent, not the text "1.5"
    ('{"en": "Mug"}', '{"en":"Mug"}'),
    ("[" + ", ".join(map(str, range(30))) + "]", "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,…"),  # cut short
]


def test_a_webhook_products_field_that_is_no_text_is_named_as_sent(db_url: str, conn: psycopg.Connection) -> None:
    """An X-Series `product.update` whose `name` was a list was refused "name must be text or a number, not list"
    (`true`: `bool`, an object: `dict`). Over HTTP, signed, mapped into PostgreSQL: the row's reason names it as
    sent."""
    connection = _x_series(conn)
    with running_client(app_settings(db_url, secret_key=SECRET_KEY), None) as client:
        for n, (sent, _shown) in enumerate(NO_TEXT_SENT):
            headers, body = _x_series_form("product.update", f'{{"id": "x{n}", "name": {sent}, "price": "2.00"}}')
            answer = client.post(f"/v1/ingest/{connection}", content=body, headers=headers)
            assert answer.status_code == 202, answer.text
    map_batches(conn)
    assert _rejected(conn, connection) == {
        f"x{n}": f"name must be text or a number, not {shown}" for n, (_sent, shown) in enumerate(NO_TEXT_SENT)
    }


def test_a_synced_products_field_that_is_no_text_is_named_as_sent(conn: psycopg.Connection) -> None:
    """An Erply product whose `name` was a list, `brandName` true or `longdesc` an object: refused naming its
    type as Python calls it (`list`, `bool`, `dict`). Through a fake Erply over HTTP, the sync, and the mapping."""
    fake = ErplyFake(warehouses=("1",))
    for key, field, value in (("101", "name", ["Tea", 1.5]), ("102", "brandName", True),
                              ("103", "longdesc", {"en": "Tea"}), ("104", "name", "Tea")):  # fmt: skip
        fake.add(Item(key, "Tea", "2.00", 5))
        fake.products[key][field] = value
    connection = make_connection(conn, new_store(conn), "erply", "1", fake.server.url + "/api/",
                                 {"client_code": "123456", "username": "api-user", "password": "api-pass"})  # fmt: skip
    try:
        sync(conn, connection)
        map_batches(conn)
    finally:
        fake.server.close()
    assert _rejected(conn, connection) == {
        "101": 'name must be text or a number, not ["Tea",1.5]',
        "102": "brandName must be text or a number, not true",
        "103": 'longdesc must be text or a number, not {"en":"Tea"}',
    }


@pytest.mark.parametrize(
    ("value", "sent", "json_text", "cell"),
    [
        ("EUR", "'EUR'", '"EUR"', "EUR"),
        (True, "true", "true", "true"),
        (12.5, "12.5", "12.5", "12.5"),
        (Decimal("12.50"), "12.50", "12.50", "12.50"),  # a connector's number: a number, not a text
        (["Mug", Decimal("1.50"), {"a": [Decimal("2")]}], '["Mug",1.50,{"a":[2]}]', '["Mug",1.50,{"a":[2]}]',
         '["Mug",1.50,{"a":[2]}]'),  # in a list or object too: it was `"1.50"`, a text
        (None, "null", "null", "null"),
        (["EUR", 1], '["EUR",1]', '["EUR",1]', '["EUR",1]'),
        ({"a": 1}, '{"a":1}', '{"a":1}', '{"a":1}'),
        ("é" * 50, repr("é" * 40), '"' + "é" * 38 + "…", "é" * 50),  # cut short, but for a cell
        (list(range(30)), "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,…", "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,…",
         json.dumps(list(range(30)), separators=(",", ":"))),
    ],
)  # fmt: skip
def test_a_value_is_written_as_its_sender_wrote_it(value: Any, sent: str, json_text: str, cell: str) -> None:
    assert (as_sent(value), as_json(value), as_cell(value)) == (sent, json_text, cell)
