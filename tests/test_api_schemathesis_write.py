"""The write path's operations, fuzzed from the app's own OpenAPI schema (schemathesis): no 5xx, and every
status, content type and body as the schema documents them. Requests carry a key that may do everything (an admin
key for the store operations, the store's own key, with every scope, for its listings), and the store in the path
exists, so the generated bodies reach the validation and the database instead of stopping at 401/404.

Not fuzzed here: the webhook subscriptions' POST and PATCH (a generated URL would be resolved in DNS: tests talk to
127.0.0.1 only; test_events_api.py covers it) and the two raw-body uploads (CSV, signed deliveries: their own
tests feed them malformed bodies)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.ingest_helpers import ingest_settings, new_store, serve, store_key

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STORE_OPERATIONS = [("POST", "/v1/stores"), ("PATCH", "/v1/stores/{store_id}")]
LISTING_OPERATIONS = [
    ("PUT", "/v1/stores/{store_id}/listings/{sku}"),
    ("PATCH", "/v1/stores/{store_id}/listings/{sku}"),
    ("DELETE", "/v1/stores/{store_id}/listings/{sku}"),
    ("POST", "/v1/stores/{store_id}/listings/batch"),
    ("GET", "/v1/stores/{store_id}/webhooks"),
    ("DELETE", "/v1/stores/{store_id}/webhooks/{webhook_id}"),
    ("POST", "/v1/stores/{store_id}/webhooks/{webhook_id}/enable"),
    ("POST", "/v1/stores/{store_id}/webhooks/{webhook_id}/rotate-secret"),
    ("GET", "/v1/imports/{batch_id}"),
    ("GET", "/v1/imports/{batch_id}/errors"),
]
SCOPES = ("listings:write", "webhooks:write")


EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))  # more for a longer hunt


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings_ = ingest_settings(db_url, tmp_path_factory.mktemp("keys"), rate_per_s=1e6, rate_burst=1e6)
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        keys = {"admin": store_key(conn, None), "store": store_key(conn, store, *SCOPES)}
    with serve(settings_, None) as url:
        schema = schemathesis.openapi.from_url(f"{url}/schema/openapi.json")
        yield {"url": url, "schema": schema, "store": store, "keys": keys}


def _fuzz(world: dict[str, Any], method: str, path: str, key: str, fixed: dict[str, Any]) -> None:
    operation = world["schema"][path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        case.path_parameters = {**(case.path_parameters or {}), **fixed}
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        case.call_and_validate(base_url=world["url"], checks=CHECKS, timeout=30)

    check()


@pytest.mark.parametrize(("method", "path"), STORE_OPERATIONS)
def test_store_operations_conform_to_their_schema(world: dict[str, Any], method: str, path: str) -> None:
    fixed = {"store_id": str(world["store"])} if "{store_id}" in path else {}
    _fuzz(world, method, path, world["keys"]["admin"], fixed)


@pytest.mark.parametrize(("method", "path"), LISTING_OPERATIONS)
def test_listing_operations_conform_to_their_schema(world: dict[str, Any], method: str, path: str) -> None:
    fixed = {"store_id": str(world["store"])} if "{store_id}" in path else {}
    if "{batch_id}" in path:  # unknown batches: the 404 must be documented too
        fixed["batch_id"] = str(uuid.uuid4())
    _fuzz(world, method, path, world["keys"]["store"], fixed)
