"""The response side of the OpenAPI document, as served (real HTTP, real PostgreSQL): every example is valid for its
schema, one error schema, the headers each response sends, the key scope of each keyed operation, enums."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from search_service.api.schemas import EXAMPLE_PRODUCT_ID
from search_service.db.schema.base import BATCH_STATUSES, INGEST_SOURCES
from search_service.db.secretbox import SecretBox
from search_service.engine.results import Strategy
from search_service.engine.suggest import Kind
from search_service.events.config import EVENT_TYPES, PING_TYPE
from search_service.settings import Settings
from tests import ingest_helpers as helpers
from tests.ingest_helpers import bearer, drain_imports, ingest_settings, new_store, operations, store_key

jsonschema_rs = pytest.importorskip("jsonschema_rs")  # schemathesis' validator, in the dev environment


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # a key's bucket holds 3 requests, refilled one a 100 s: the 4th of a key is a 429
    return ingest_settings(db_url, tmp_path_factory.mktemp("keys"), rate_burst=3, rate_per_s=0.01)


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def examples(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, value) of every example: responses, request bodies and parameters, the webhooks' too."""
    webhooks = [(f"webhook {name}", "post", item["post"]) for name, item in (spec.get("webhooks") or {}).items()]
    for path, method, op in [*operations(spec), *webhooks]:
        where = f"{method.upper()} {path}"
        typed = [
            (f"{where} {status}", t) for status, r in op["responses"].items() for t in r.get("content", {}).values()
        ]
        typed += [(f"{where} body", t) for t in (op.get("requestBody") or {}).get("content", {}).values()]
        typed += [(f"{where} {p['name']}", p) for p in op.get("parameters", [])]
        for place, holder in typed:
            for name, example in (holder.get("examples") or {}).items():
                yield f"{place} {name}", holder["schema"], example["value"]


def schema_errors(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    """Draft 2020-12 errors of `value` against `schema`, whose `#/components/...` refs are the document's."""
    validator = jsonschema_rs.Draft202012Validator({"components": spec["components"], **schema})
    return [error.message for error in validator.iter_errors(value)]


def test_every_example_is_valid_for_its_schema(spec: dict[str, Any]) -> None:
    found = [(where, schema_errors(spec, schema, value)) for where, schema, value in examples(spec)]
    invalid = [f"{where}: {errors[0]}" for where, errors in found if errors]
    assert len(found) > 200
    assert not invalid, f"{len(invalid)} of {len(found)} examples fail their schema:\n" + "\n".join(invalid)


def test_one_error_schema_with_a_clean_name(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert not [name for name in schemas if "_" in name], "module-prefixed names leak into generated clients"
    assert not [name for name in schemas if name.startswith("Error") and name not in ("ErrorBody", "ErrorDetail")]
    refs = {
        typed["schema"].get("$ref")
        for path, _, op in operations(spec)
        for status, response in op["responses"].items()
        if status[0] in "45" and path != "/readyz"  # a 503 of /readyz is its Readiness
        for typed in (response.get("content") or {}).values()
    }
    assert refs == {"#/components/schemas/ErrorBody"}
    store = spec["paths"]["/v1/stores/{store_id}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert store["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def sent_as_documented(spec: dict[str, Any], path: str, method: str, response: httpx.Response) -> httpx.Response:
    """`response`, once each header its documented status requires is checked to be there."""
    documented = spec["paths"][path][method]["responses"][str(response.status_code)].get("headers") or {}
    missing = [name for name, header in documented.items() if header["required"] and name not in response.headers]
    assert not missing, f"{method.upper()} {path} {response.status_code} lacks {missing}"
    return response


def test_every_response_documents_the_headers_it_sends(spec: dict[str, Any]) -> None:
    keyed = [(path, method, op) for path, method, op in operations(spec) if op.get("security")]
    for path, method, op in operations(spec):
        for status in {"429", "503"} & set(op["responses"]):
            assert "Retry-After" in op["responses"][status].get("headers", {}), f"{method} {path} {status}"
    for path, method, op in keyed:
        assert "WWW-Authenticate" in op["responses"]["401"].get("headers", {}), f"{method} {path}"
    listing, batch = "/v1/stores/{store_id}/listings/{sku}", "/v1/stores/{store_id}/listings/batch"
    located = [(listing, "put", "202"), (listing, "patch", "202"), (listing, "delete", "202"), (batch, "post", "202")]
    located += [("/v1/stores/{store_id}/imports", "post", "202"), ("/v1/stores", "post", "201")]
    for path, method, status in located:
        assert spec["paths"][path][method]["responses"][status]["headers"]["Location"]["required"], (path, method)
    delivery = spec["paths"]["/v1/ingest/{connection_id}"]["post"]["responses"]
    assert delivery["401"]["headers"]["WWW-Authenticate"]["schema"]["const"] == "Signature"  # signed: no key
    assert not delivery["202"].get("headers")  # no status URL


def test_a_refused_delivery_s_401_sends_a_challenge(
    base: str, conn: psycopg.Connection, settings: Settings, spec: dict[str, Any]
) -> None:
    """A delivery with a wrong signature, none, or a timestamp 400 s old was a 401 without `WWW-Authenticate`,
    which RFC 9110 requires on every 401 (some clients and proxies take one without it as malformed)."""
    connection, secret = helpers.webhook_connection(conn, settings, new_store(conn))
    body = b'{"type": "stock.set", "data": {"sku": "A", "quantity": 1}}'
    forged = {**helpers.signed(secret, body), "webhook-signature": "v1,AAAA"}
    stale = helpers.signed(secret, body, at=datetime.now(UTC) - timedelta(seconds=400))
    for headers in (forged, {"content-type": "application/json"}, stale):
        answer = httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=headers)
        refused = sent_as_documented(spec, "/v1/ingest/{connection_id}", "post", answer)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Signature", refused.headers


def test_the_documented_headers_are_sent(base: str, conn: psycopg.Connection, spec: dict[str, Any]) -> None:
    store = new_store(conn)
    imports, listings = "/v1/stores/{store_id}/imports", "/v1/stores/{store_id}/listings"
    key, url = store_key(conn, store, "listings:write"), f"{base}/v1/stores/{store}"
    unknown = sent_as_documented(spec, listings, "get", httpx.get(f"{url}/listings", headers=bearer("plq_no")))
    assert unknown.status_code == 401 and unknown.headers["WWW-Authenticate"] == "Bearer"
    csv = {"Content-Type": "text/csv", **bearer(key)}
    upload = httpx.post(f"{url}/imports", content=b"sku,name,price,quantity\nA,Apple,1,2\n", headers=csv)
    assert sent_as_documented(spec, imports, "post", upload).status_code == 202
    assert upload.headers["Location"] == upload.json()["status_url"]
    while (answer := httpx.get(f"{url}/listings", headers=bearer(key))).status_code != 429:  # a bucket of 3
        assert answer.status_code == 200
    assert int(sent_as_documented(spec, listings, "get", answer).headers["Retry-After"]) >= 1
    admin = bearer(store_key(conn, None, "stores:write"))
    created = httpx.post(f"{base}/v1/stores", json={"name": "Eck", "lat": 52.5, "lon": 13.4}, headers=admin)
    assert sent_as_documented(spec, "/v1/stores", "post", created).status_code == 201
    assert created.headers["Location"] == f"/v1/stores/{created.json()['id']}"
    assert httpx.get(base + created.headers["Location"]).json() == created.json()


def test_an_answer_no_retry_can_help_goes_without_retry_after_as_documented(
    base: str, conn: psycopg.Connection, spec: dict[str, Any]
) -> None:
    """A failed import's rows (409) and a ping of a webhook whose secret the server's key cannot open (503) send no
    Retry-After, as their prose says; their headers said it was required (a generated client's `retryAfter` typed
    as always there, a strict validator failing both answers)."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    csv = {"Content-Type": "text/csv", **bearer(key)}
    batch = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nA,x,1,1\n", headers=csv)
    failed = batch.json()["batch_id"]
    conn.execute("UPDATE import_batch SET status = 'failed', finished_at = now(), mapping_failures = 5, error = "
                 "'mapping failed 5 times, now given up: RaiseError: refused' WHERE id = %s", (failed,))  # fmt: skip
    for which in ("errors", "notes"):
        answer = httpx.get(f"{base}/v1/imports/{failed}/{which}", headers=bearer(key))
        assert answer.status_code == 409 and "Retry-After" not in answer.headers, answer.headers
        sent_as_documented(spec, f"/v1/imports/{{batch_id}}/{which}", "get", answer)
    token = SecretBox(Fernet.generate_key()).encrypt("whsec_x").decode()  # not the server's key
    webhook = conn.execute("INSERT INTO store_webhook (store_id, url, secret) VALUES (%s, 'https://1.1.1.1/h', %s) "
                           "RETURNING id", (store, token)).fetchone()  # fmt: skip
    assert webhook is not None
    ping = httpx.post(
        f"{base}/v1/stores/{store}/webhooks/{webhook[0]}/test", headers=bearer(store_key(conn, store, "webhooks:write"))
    )
    assert ping.status_code == 503 and "Retry-After" not in ping.headers, ping.text
    sent_as_documented(spec, "/v1/stores/{store_id}/webhooks/{webhook_id}/test", "post", ping)
    listings = spec["paths"]["/v1/stores/{store_id}/listings"]["get"]["responses"]
    assert listings["503"]["headers"]["Retry-After"]["required"]  # a busy database: always sent


def test_an_imports_rows_state_the_attachment_name_they_send(
    base: str, conn: psycopg.Connection, db_url: str, spec: dict[str, Any]
) -> None:
    """F-H D3: `…/errors` and `…/notes` send `Content-Disposition` (the file name; cors.py exposes it for a page
    to read) and their 200 stated no header: a generated client had no way to read it, a page's code no word of it."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    csv = {"Content-Type": "text/csv", **bearer(key)}
    upload = httpx.post(
        f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nA,x,-1,1\n", headers=csv
    )
    batch = upload.json()["batch_id"]
    drain_imports(db_url)
    for which in ("errors", "notes"):
        path = f"/v1/imports/{{batch_id}}/{which}"
        header = spec["paths"][path]["get"]["responses"]["200"].get("headers", {}).get("Content-Disposition")
        assert header and header["required"] and f'filename="import-<batch_id>-{which}.csv"' in header["description"]
        answer = httpx.get(f"{base}/v1/imports/{batch}/{which}", headers=bearer(key))
        assert sent_as_documented(spec, path, "get", answer).status_code == 200, answer.text
        assert answer.headers["Content-Disposition"] == f'attachment; filename="import-{batch}-{which}.csv"'


KEYED = 20  # listings 6, imports and CSV 5 (its notes too), stores 2 (admin), webhooks 7


def test_each_keyed_operation_names_its_scope(spec: dict[str, Any]) -> None:
    keyed = [(path, method, op) for path, method, op in operations(spec) if op.get("security")]
    assert len(keyed) == KEYED
    for path, method, op in keyed:
        [[scope]] = [requirement["apiKey"] for requirement in op["security"]]
        forbidden = op["responses"]["403"]
        messages = [
            e["value"]["error"]["message"] for e in forbidden["content"]["application/json"]["examples"].values()
        ]
        assert scope in op["description"] and scope in forbidden["description"], (method, path)
        assert f"this API key lacks the scope {scope!r}" in messages, (method, path)
    scopes = {(path, method): op["security"][0]["apiKey"][0] for path, method, op in keyed}
    assert scopes[("/v1/imports/{batch_id}", "get")] == scopes[("/v1/stores/{store_id}/listings", "get")]
    assert scopes[("/v1/stores/{store_id}/listings", "get")] == "listings:write"
    assert scopes[("/v1/stores", "post")] == "stores:write"


def test_a_key_without_the_scope_is_answered_as_documented(
    base: str, conn: psycopg.Connection, spec: dict[str, Any]
) -> None:
    store = new_store(conn)
    hooks_only = bearer(store_key(conn, store, "webhooks:write"))
    refused = httpx.get(f"{base}/v1/stores/{store}/listings", headers=hooks_only)
    assert refused.status_code == 403
    documented = spec["paths"]["/v1/stores/{store_id}/listings"]["get"]["responses"]["403"]["content"]
    assert refused.json() in [example["value"] for example in documented["application/json"]["examples"].values()]


def enum_of(spec: dict[str, Any], component: str, field: str) -> list[Any]:
    prop = spec["components"]["schemas"][component]["properties"][field]
    return [value for value in prop.get("items", prop)["enum"] if value is not None]


def test_a_closed_set_of_values_is_an_enum_of_the_code_s_own(spec: dict[str, Any]) -> None:
    assert enum_of(spec, "ImportStatus", "status") == enum_of(spec, "ImportAccepted", "status") == [*BATCH_STATUSES]
    assert enum_of(spec, "ImportStatus", "source") == [*INGEST_SOURCES]
    for field in ("status", "matched_by"):
        assert enum_of(spec, "BatchResultItem", field) == enum_of(spec, "ListingResult", field), field
    assert enum_of(spec, "SearchResponse", "strategy") == enum_of(spec, "ExplainOut", "plan") == [*get_args(Strategy)]
    assert enum_of(spec, "SuggestionOut", "kind") == [*get_args(Kind)]
    assert enum_of(spec, "WebhookOut", "events") == enum_of(spec, "WebhookCreated", "events") == [*EVENT_TYPES, "*"]
    assert sorted(enum_of(spec, "WebhookDelivery", "type")) == sorted([*EVENT_TYPES, PING_TYPE])


def test_real_answers_are_in_the_enums(base: str, conn: psycopg.Connection, spec: dict[str, Any]) -> None:
    store = new_store(conn)
    key = bearer(store_key(conn, store, "listings:write"))
    csv = {"Content-Type": "text/csv", **key}
    upload = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\n", headers=csv)
    status = httpx.get(base + upload.headers["Location"], headers=key)
    found = httpx.get(f"{base}/v1/search", params={"q": "oat drink", "lat": 52.52, "lon": 13.4, "radius_km": 5})
    answers = [(upload, "ImportAccepted"), (status, "ImportStatus"), (found, "SearchResponse")]
    for answer, component in answers:
        assert answer.status_code in (200, 202), answer.text
        assert not schema_errors(spec, {"$ref": f"#/components/schemas/{component}"}, answer.json()), component


BAD_REQUESTS = {  # an operation with a 400 example: a request it refuses (the example must be that answer)
    ("/v1/search", "get"): "/v1/search?q=milk&limit=101",
    ("/v1/products/{product_id}/similar", "get"): f"/v1/products/{EXAMPLE_PRODUCT_ID}/similar?limit=101",
    ("/v1/suggest", "get"): "/v1/suggest?q=mi&limit=11",
    ("/v1/stores/nearby", "get"): "/v1/stores/nearby?lat=52.37&lon=4.89&limit=1001",
    ("/v1/products/{product_id}", "get"): "/v1/products/not-a-uuid",
}


def test_the_search_routes_400_examples_are_the_answers_they_give(spec: dict[str, Any], base: str) -> None:
    """/v1/suggest's example said `limit` <= 100 where it takes 10, the product's named `limit`, which it has not,
    and none had the message's wording as sent."""
    for (path, method), request in BAD_REQUESTS.items():
        (example,) = spec["paths"][path][method]["responses"]["400"]["content"]["application/json"]["examples"].values()
        answer = httpx.get(base + request)
        assert answer.status_code == 400, (request, answer.text)
        assert answer.json() == example["value"], (path, answer.json(), example["value"])


def test_an_integer_parameters_rule_states_its_real_bounds(base: str) -> None:
    """category_id's rule said "between 1 and 9223372036854775808" (the bound through a float), one past its maximum."""
    answer = httpx.get(f"{base}/v1/search", params={"q": "milk", "category_id": "1.5"})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "parameter": "category_id",
        "message": f"must be an integer between 1 and {2**63 - 1} (got '1.5')",
    }


def test_the_schema_says_when_total_candidates_is_an_estimate(spec: dict[str, Any]) -> None:
    """`total_candidates` is the planner's estimate on most plans (`in_stock=false` among them): undocumented, a
    front end showed it as a result count."""
    description = spec["components"]["schemas"]["SearchResponse"]["properties"]["total_candidates"]["description"]
    assert "ESTIMATE" in description and "in_stock=false" in description and "`total`" in description


def test_the_schema_says_noted_rows_is_null_in_a_list_of_imports(
    base: str, db_url: str, conn: psycopg.Connection, spec: dict[str, Any]
) -> None:
    """An import's `noted_rows` is a count in its own status and null in the store's list of imports: the schema
    said nothing of it (`integer|null`, no description), so a list's null read as "no notes"."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    csv = {"Content-Type": "text/csv", **bearer(key)}
    batch = httpx.post(f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nA,x,1.999,1\n",
                       headers=csv).json()["batch_id"]  # fmt: skip
    drain_imports(db_url)
    one = httpx.get(f"{base}/v1/imports/{batch}", headers=bearer(key)).json()
    listed = httpx.get(f"{base}/v1/stores/{store}/imports", headers=bearer(key)).json()["items"]
    assert (one["noted_rows"], [i["noted_rows"] for i in listed]) == (1, [None])  # price 1.999 rounded to 2.00
    description = spec["components"]["schemas"]["ImportStatus"]["properties"]["noted_rows"]["description"]
    assert "null in a list of imports" in description and "not counted there" in description, description
