"""A JSON body's value of another JSON type than its schema's is a 400 in JSON's words, naming the value as sent
(`must be an integer or null, not '5'`), over real HTTP. It said msgspec's `Expected `int | null`, got `str``:
Python's names for the types (`str`, `int`, `float`, `bool`), and not the value."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.ingest_helpers import bearer, ingest_settings, new_store, serve, store_key


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(ingest_settings(db_url, tmp_path_factory.mktemp("keys")), None) as url:
        yield url


@pytest.fixture(scope="module")
def keys(db_url: str) -> tuple[uuid.UUID, str, str]:
    """(a store, its listings:write key, an admin key)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        return store, store_key(conn, store, "listings:write"), store_key(conn, None)


GOOD = {"name": "Thing", "price": 1, "quantity": 5}


@pytest.mark.parametrize(
    ("body", "parameter", "message"),
    [
        ({**GOOD, "quantity": "5"}, "quantity", "must be an integer, not '5'"),
        ({**GOOD, "quantity": 1.5}, "quantity", "must be an integer, not 1.5"),
        ({**GOOD, "is_active": 0}, "is_active", "must be true, false or null, not 0"),
        ({**GOOD, "updated_at": 0}, "updated_at", "must be a string or null, not 0"),
        ({**GOOD, "name": ["Mug", 1]}, "name", 'must be a string or null, not ["Mug",1]'),
        ({**GOOD, "attributes": [1]}, "attributes", "must be an object or null, not [1]"),
        ({**GOOD, "price": True}, "price", "must be a number or a string, not true"),
        ({**GOOD, "quantity": "5", "name": {"a": 1}}, "name", 'must be a string or null, not {"a":1}'),
        ([GOOD], "body", 'must be an object, not [{"name":"Thing","price":1,"quantity":5…'),
        # the first field refused leniently too is litestar's error, past the strict check: named as sent as well
        ({**GOOD, "quantity": "5", "version": [1]}, "version", "must be an integer or null, not [1]"),
        ({**GOOD, "is_active": 0, "updated_at": {"a": 1}}, "updated_at", 'must be a string or null, not {"a":1}'),
    ],
    ids=["text-for-integer", "fraction", "0-for-false", "0-for-time", "list", "list-for-object", "true-for-price",
         "object-beside-a-lenient-one", "array-body", "litestars-list", "litestars-object"],
)  # fmt: skip
def test_a_listings_value_of_another_json_type_is_named_as_sent(
    base: str, keys: tuple[uuid.UUID, str, str], body: Any, parameter: str, message: str
) -> None:
    """`"quantity": "5"` answered "Expected `int`, got `str`", `"is_active": 0` "Expected `bool | null`, got
    `int`", `"name": ["Mug", 1]` "Expected `str | null`, got `array`"."""
    store, key, _admin = keys
    answer = httpx.put(f"{base}/v1/stores/{store}/listings/T-1", json=body, headers=bearer(key))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == {"parameter": parameter, "message": message}, answer.text


def test_a_batch_items_and_a_stores_value_of_another_json_type_are_named_as_sent(
    base: str, keys: tuple[uuid.UUID, str, str]
) -> None:
    """A batch item's field is named by its path (`items[1].updated_at`); a store's `lat` sent as text too."""
    store, key, admin = keys
    batch = {"items": [{"sku": "B-1", **GOOD}, {"sku": "B-2", **GOOD, "updated_at": True}]}
    answer = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json=batch, headers=bearer(key))
    said = {"parameter": "items[1].updated_at", "message": "must be a string or null, not true"}
    assert answer.status_code == 400 and answer.json()["error"] == said, answer.text
    new = {"name": "Shop", "lat": "52.52", "lon": 13.4}
    answer = httpx.post(f"{base}/v1/stores", json=new, headers=bearer(admin))
    said = {"parameter": "lat", "message": "must be a number, not '52.52'"}
    assert answer.status_code == 400 and answer.json()["error"] == said, answer.text
