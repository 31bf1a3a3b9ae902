"""Property-based API tests from the app's own OpenAPI schema (schemathesis): no 5xx, no schema violation.

The app runs in a real uvicorn server (a thread) against a seeded database; schemathesis generates requests
from /schema/openapi.json and checks every response against it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.ingest_helpers import serve
from tests.test_api import app_settings, load_test_encoder, seed_catalogue

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))  # more for a longer hunt


@pytest.fixture(scope="module")
def base_url(db_url: str) -> Iterator[str]:
    encoder = load_test_encoder()
    seed_catalogue(db_url, encoder)
    with serve(app_settings(db_url), encoder) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PATHS = [
    "/v1/search",
    "/v1/suggest",
    "/v1/presets",
    "/v1/products/{product_id}/similar",
    "/v1/products/{product_id}",
    "/v1/stores/nearby",
    "/v1/categories",
    "/healthz",
    "/readyz",
    "/metrics",
]


# One test per operation, driven by hypothesis directly (schemathesis' lazy pytest loader, `from_fixture`,
# does not work with pytest 9).
@pytest.mark.parametrize("path", PATHS)
def test_api_conforms_to_its_schema(api_schema: Any, base_url: str, path: str) -> None:
    operation = api_schema[path]["GET"]

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

    check()


def test_schema_documents_every_route(api_schema: Any, base_url: str) -> None:
    document = httpx.get(f"{base_url}/schema/openapi.json").json()
    paths = set(document["paths"])
    assert {
        "/v1/search",
        "/v1/stores/nearby",
        "/v1/products/{product_id}",
        "/v1/products/{product_id}/similar",
        "/v1/categories",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    search = document["paths"]["/v1/search"]["get"]
    assert {"200", "400", "503"} <= set(search["responses"])
    assert search["responses"]["200"]["content"]["application/json"]["examples"]
    params = {p["name"]: p for p in search["parameters"]}
    assert params["q"]["required"] is True
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["mode"]["schema"]["enum"] == ["hybrid", "semantic", "keyword"]
    # bbox's beside radius_m's was a 400 (tests/test_api_parameter_examples.py): its description shows one
    assert all(p["schema"].get("examples") for name, p in params.items() if name != "bbox")
    assert "`13.30,52.48,13.48,52.56`" in params["bbox"]["description"]


def test_schema_states_the_key_the_raw_bodies_and_body_minimums(api_schema: Any, base_url: str) -> None:
    """The OpenAPI left out what a client needs to write: no security scheme (every write route answers 401
    without a key), no body for the CSV upload or the signed delivery (their handlers read it raw), and every
    body field's minimum of 0 (litestar drops a falsy `ge`), while the server refuses `{"quantity": -1}`, and
    `additionalProperties: false` of the bodies that refuse unknown fields."""
    document = httpx.get(f"{base_url}/schema/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer") and "keys create" in scheme["description"]
    paths = document["paths"]
    guarded = [(path, verb) for path, item in paths.items() for verb, op in item.items() if op.get("security")]
    assert ("/v1/stores/{store_id}/listings/{sku}", "patch") in guarded and ("/v1/stores", "post") in guarded
    # with PATCH …/webhooks/{id}, …/rotate-secret and GET /v1/imports/{id}/notes
    assert not paths["/v1/search"]["get"].get("security") and len(guarded) == 20
    upload = paths["/v1/stores/{store_id}/imports"]["post"]["requestBody"]["content"]
    assert set(upload) == {
        "text/csv",
        "application/csv",
        "text/plain",
        "application/vnd.ms-excel",
        "text/tab-separated-values",
        "multipart/form-data",
    }
    delivery = paths["/v1/ingest/{connection_id}"]["post"]
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= {p["name"] for p in delivery["parameters"]}
    schemas = document["components"]["schemas"]
    assert schemas["StockPatch"]["properties"]["quantity"]["minimum"] == 0
    assert schemas["ListingIn"]["properties"]["version"]["minimum"] == 0
    quantity = schemas["BatchItem"]["properties"]["quantity"]  # oneOf of integer and number: no whole number valid
    assert "oneOf" not in quantity and {"integer", "number"} <= {m["type"] for m in quantity["anyOf"]}
    assert "503" in paths["/v1/stores/{store_id}"]["get"]["responses"]
    price = schemas["ListingIn"]["properties"]["price"]  # the server refuses a negative one: 400
    assert {"type": "number", "minimum": 0, "maximum": 9999999999.99} in price["oneOf"] + price.get("anyOf", [])
    assert schemas["StoreIn"]["properties"]["lat"]["maximum"] == 90
    not_null = {"not": {"type": "null"}}
    assert schemas["StockPatch"]["allOf"] == [{"anyOf": [
        {"required": ["quantity"], "properties": {"quantity": not_null}},
        {"required": ["price"], "properties": {"price": not_null}},
    ]}]  # fmt: skip
    delete = paths["/v1/stores/{store_id}/listings/{sku}"]["delete"]["requestBody"]  # an optional clock
    assert delete["required"] is False and "DeleteClock" in json.dumps(delete) and "null" not in json.dumps(delete)
    closed = {name for name, schema in schemas.items() if schema.get("additionalProperties") is False}
    assert closed == {
        "ListingIn",
        "StockPatch",
        "DeleteClock",
        "BatchItem",
        "BatchIn",
        "StoreIn",
        "StorePatch",
        "WebhookCreate",
        "WebhookUpdate",
        # what the outbound webhooks send (webhook_docs.py): exactly these fields
        "WebhookDelivery",
        "EventData",
        "ListingRef",
        "ProductRef",
        "ImportOutcome",
    }
