"""The error examples of the OpenAPI document, held to the server's answers (real HTTP, real PostgreSQL): each
names a parameter its operation has, and each is sent by the operation it documents, in the very words (the guards'
401 and 403, the 400s of a malformed id or page size, the bodies' 415, a signed delivery's answers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from search_service.api.params import UUID_RULE
from search_service.settings import Settings
from tests.ingest_helpers import (
    bearer,
    ingest_settings,
    new_store,
    operations,
    signed,
    store_key,
    webhook_connection,
)

ALL_SCOPES = ("listings:write", "webhooks:write")


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_settings(db_url, tmp_path_factory.mktemp("errors"), rate_burst=1000, rate_per_s=100)


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def error_examples(op: dict[str, Any], status: str) -> list[dict[str, Any]]:
    """The `{"error": …}` bodies an operation's response shows."""
    typed = (op["responses"].get(status) or {}).get("content", {}).get("application/json", {})
    return [example["value"] for example in (typed.get("examples") or {}).values()]


def body_fields(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The top-level properties of a request body's schema ($refs and unions followed)."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    members = [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]
    return set(schema.get("properties", {})).union(*(body_fields(spec, m) for m in members))


def names_of(spec: dict[str, Any], op: dict[str, Any]) -> set[str | None]:
    """What an error of this operation may name: its parameters, its body's fields, or the body itself and its
    Content-Type, or nothing."""
    names: set[str | None] = {None, *(p["name"] for p in op.get("parameters", []))}
    for typed in (op.get("requestBody") or {}).get("content", {}).values():
        names |= {"body", "content-type", *body_fields(spec, typed["schema"])}
    return names


def test_every_error_example_names_a_parameter_its_operation_has(spec: dict[str, Any]) -> None:
    """A 400 naming `price` was on every keyed operation, stores and imports too; the webhooks list's named
    `webhook_id`, which it has not; a delivery's `data`, which no delivery's error names."""
    wrong, seen = [], 0
    for path, method, op in operations(spec):
        for status in (s for s in op["responses"] if s[0] == "4"):
            for value in error_examples(op, status):
                seen += 1
                if value["error"]["parameter"] not in names_of(spec, op):
                    wrong.append(f"{method.upper()} {path} {status}: {value['error']}")
    assert seen > 120
    assert not wrong, "\n".join(wrong)


def documented(spec: dict[str, Any], path: str, method: str, status: int) -> list[dict[str, Any]]:
    return error_examples(spec["paths"][path][method], str(status))


def test_the_guards_401_and_403_are_the_examples(base: str, conn: psycopg.Connection, spec: dict[str, Any]) -> None:
    """The 401 showed only an unknown key's answer; the admin operations' 403 a missing scope, where a store's key
    is told it needs an admin key."""
    store, other = new_store(conn), new_store(conn)
    listings, imports, stores = (
        f"{base}/v1/stores/{store}/listings",
        f"{base}/v1/imports/{uuid.uuid4()}",
        f"{base}/v1/stores",
    )
    unauthorized = [httpx.get(listings), httpx.get(listings, headers=bearer("plq_unknown"))]
    assert [a.status_code for a in unauthorized] == [401, 401]
    keyed = [(path, method, op) for path, method, op in operations(spec) if op.get("security")]
    for path, method, _ in keyed:
        assert sorted(map(str, documented(spec, path, method, 401))) == sorted(str(a.json()) for a in unauthorized)
    hooks_only, others = bearer(store_key(conn, store, "webhooks:write")), bearer(store_key(conn, other, *ALL_SCOPES))
    admin_without = bearer(store_key(conn, None, "listings:write"))
    new = {"name": "Eck", "lat": 52.5, "lon": 13.4}
    refused = {
        ("/v1/stores/{store_id}/listings", "get"): [httpx.get(listings, headers=k) for k in (hooks_only, others)],
        ("/v1/stores", "post"): [httpx.post(stores, json=new, headers=k) for k in (others, admin_without)],
        ("/v1/imports/{batch_id}", "get"): [httpx.get(imports, headers=hooks_only)],
    }
    for (path, method), answers in refused.items():
        assert {a.status_code for a in answers} == {403}, [a.text for a in answers]
        assert sorted(map(str, documented(spec, path, method, 403))) == sorted(str(a.json()) for a in answers), path


def bad_id_request(path: str, parameter: str, store: uuid.UUID) -> str:
    """`path` with `parameter` malformed, its other ids well formed (the ids are checked before anything else)."""
    ids = {name: str(uuid.uuid4()) for name in ("batch_id", "webhook_id", "product_id", "connection_id")}
    ids |= {"store_id": str(store), "sku": "A"}
    return path.format(**{**ids, parameter: "not-a-uuid"})


def test_each_400_example_is_an_answer_its_operation_gives(
    base: str, conn: psycopg.Connection, settings: Settings, spec: dict[str, Any]
) -> None:
    """A malformed id's and a page size's answers, for every operation that shows one; a store's empty name, a
    negative price, a signed delivery that is not JSON."""
    store = new_store(conn)
    key, admin = bearer(store_key(conn, store, *ALL_SCOPES)), bearer(store_key(conn, None, "stores:write"))
    connection, secret = webhook_connection(conn, settings, store)
    sent = 0
    for path, method, op in operations(spec):
        for value in error_examples(op, "400"):
            parameter, message = value["error"]["parameter"], value["error"]["message"]
            if message == UUID_RULE:
                answer = httpx.request(method, base + bad_id_request(path, parameter, store), headers=key)
            elif parameter == "page_size":
                answer = httpx.get(base + path.format(store_id=store), params={"page_size": 1001}, headers=key)
            else:
                continue
            sent += 1
            assert answer.status_code == 400 and answer.json() == value, (method, path, answer.text)
    assert sent >= 20
    listing = f"/v1/stores/{store}/listings/A"
    body = {"name": "Apple", "price": -1, "quantity": 1}
    not_json = b'{"type": "stock.set"'  # cut short
    answers = {
        ("/v1/stores", "post"): httpx.post(f"{base}/v1/stores", json={"name": " ", "lat": 1, "lon": 1}, headers=admin),
        ("/v1/stores/{store_id}", "patch"): httpx.patch(f"{base}/v1/stores/{store}", json={"name": ""}, headers=admin),
        ("/v1/stores/{store_id}/listings/{sku}", "put"): httpx.put(base + listing, json=body, headers=key),
        ("/v1/stores/{store_id}/listings/{sku}", "patch"): httpx.patch(base + listing, json={"price": -1}, headers=key),
        ("/v1/ingest/{connection_id}", "post"): httpx.post(
            f"{base}/v1/ingest/{connection}", content=not_json, headers=signed(secret, not_json)
        ),
    }
    for (path, method), answer in answers.items():
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json() in documented(spec, path, method, 400), (path, answer.json())


def test_the_media_type_and_signature_refusals_are_the_examples(
    base: str, conn: psycopg.Connection, settings: Settings, spec: dict[str, Any]
) -> None:
    """A delivery's 415 said "send application/json", its 401 ended in "...", and an upload's 415 lacked
    "(field `file`)": none was what the server sends."""
    store = new_store(conn)
    key, admin = bearer(store_key(conn, store, "listings:write")), bearer(store_key(conn, None, "stores:write"))
    connection, _ = webhook_connection(conn, settings, store)
    delivery = f"{base}/v1/ingest/{connection}"
    text = {"content-type": "text/plain"}
    answers = {
        ("/v1/ingest/{connection_id}", "post", 415): httpx.post(delivery, content=b"{}", headers=text),
        ("/v1/ingest/{connection_id}", "post", 401): httpx.post(delivery, json={"type": "stock.set"}),
        ("/v1/stores/{store_id}/imports", "post", 415): httpx.post(
            f"{base}/v1/stores/{store}/imports", content=b"a", headers={"content-type": "image/png", **key}
        ),
        ("/v1/stores", "post", 415): httpx.post(f"{base}/v1/stores", content=b"{}", headers={**text, **admin}),
    }
    for (path, method, status), answer in answers.items():
        assert answer.status_code == status, (path, answer.text)
        assert documented(spec, path, method, status) == [answer.json()], (path, status)


def test_a_listing_s_405_is_documented(base: str, conn: psycopg.Connection, spec: dict[str, Any]) -> None:
    """`PUT …/listings/batch` (a listing whose SKU is `batch`) is the batch route's 405, which the listing's
    operations did not list."""
    store = new_store(conn)
    key = bearer(store_key(conn, store, "listings:write"))
    answer = httpx.put(f"{base}/v1/stores/{store}/listings/batch", json={"name": "B", "price": 1}, headers=key)
    assert answer.status_code == 405 and answer.headers["Allow"] == "OPTIONS, POST"
    for method in ("get", "put", "patch", "delete"):
        response = spec["paths"]["/v1/stores/{store_id}/listings/{sku}"][method]["responses"]["405"]
        assert response["headers"]["Allow"]["required"] and "`batch`" in response["description"], method
        assert error_examples({"responses": {"405": response}}, "405") == [answer.json()], method
