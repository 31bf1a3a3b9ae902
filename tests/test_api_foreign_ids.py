"""Ids of another store over real HTTP (uvicorn): each id-addressed route answers another store's id as it answers
an unknown one (404, the same body), so a key cannot learn which ids exist elsewhere; an admin key sees them all."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from tests.events_support import FAST, subscribe
from tests.ingest_helpers import bearer, drain_imports, new_store, store_key

# Rejected row 2 (a negative price), a note on row 3 (a price rounded): errors and notes both have rows.
CSV = b"sku,name,price,quantity\na1,Apple,1.25,3\na2,Pear,-1,2\na3,Plum,1.234,4\n"
IMPORT_ROUTES = ["/v1/imports/{batch_id}", "/v1/imports/{batch_id}/errors", "/v1/imports/{batch_id}/notes"]
WEBHOOK = "/v1/stores/{store_id}/webhooks/{webhook_id}"


def documented_404(spec: dict[str, Any], path: str, method: str) -> Any:
    [example] = spec["paths"][path][method]["responses"]["404"]["content"]["application/json"]["examples"].values()
    return example["value"]


@pytest.fixture(scope="module")
def stores(db_url: str) -> dict[str, Any]:
    """Two stores, each with its key (both scopes), and an admin key."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        mine, theirs = new_store(conn), new_store(conn)
        return {
            "mine": mine,
            "theirs": theirs,
            "my_key": bearer(store_key(conn, mine, "listings:write", "webhooks:write")),
            "their_key": bearer(store_key(conn, theirs, "listings:write", "webhooks:write")),
            "admin": bearer(store_key(conn, None, "listings:write", "webhooks:write")),
        }


@pytest.fixture(scope="module")
def their_import(base: str, db_url: str, stores: dict[str, Any]) -> str:
    headers = {**stores["their_key"], "content-type": "text/csv"}
    uploaded = httpx.post(f"{base}/v1/stores/{stores['theirs']}/imports", content=CSV, headers=headers, timeout=60)
    assert uploaded.status_code == 202, uploaded.text
    drain_imports(db_url)
    return str(uploaded.json()["batch_id"])


@pytest.mark.parametrize("route", IMPORT_ROUTES)
def test_another_stores_import_is_answered_as_an_unknown_one(
    base: str, spec: dict[str, Any], stores: dict[str, Any], their_import: str, route: str
) -> None:
    unknown = httpx.get(base + route.format(batch_id=uuid.uuid4()), headers=stores["my_key"])
    foreign = httpx.get(base + route.format(batch_id=their_import), headers=stores["my_key"])
    assert (unknown.status_code, unknown.json()) == (404, documented_404(spec, route, "get")), unknown.text
    assert (foreign.status_code, foreign.json()) == (404, unknown.json()), foreign.text
    for owner in (stores["their_key"], stores["admin"]):  # the store's own key, and an admin's, still see it
        seen = httpx.get(base + route.format(batch_id=their_import), headers=owner)
        assert seen.status_code == 200 and seen.content, seen.text


WEBHOOK_CALLS = [
    ("PATCH", "", {"events": ["stock.out"]}),
    ("DELETE", "", None),
    ("POST", "/rotate-secret", None),
    ("POST", "/enable", None),
    ("POST", "/test", None),
]


@pytest.mark.parametrize(("method", "tail", "body"), WEBHOOK_CALLS, ids=[f"{m}{t}" for m, t, _ in WEBHOOK_CALLS])
def test_another_stores_webhook_is_answered_as_an_unknown_one(
    base: str, spec: dict[str, Any], db_url: str, stores: dict[str, Any], method: str, tail: str, body: Any
) -> None:
    url = f"http://127.0.0.1:9/{uuid.uuid4()}"  # a store has one webhook a URL
    theirs = subscribe(db_url, stores["theirs"], url, ["stock.back"], FAST).subscription
    mine = f"{base}/v1/stores/{stores['mine']}/webhooks"
    for key in (stores["my_key"], stores["admin"]):  # an admin key under this store's path: this store's only
        unknown = httpx.request(method, f"{mine}/{uuid.uuid4()}{tail}", json=body, headers=key)
        foreign = httpx.request(method, f"{mine}/{theirs['id']}{tail}", json=body, headers=key)
        documented = documented_404(spec, WEBHOOK + tail, method.lower())
        assert (unknown.status_code, unknown.json()) == (404, documented), unknown.text
        assert (foreign.status_code, foreign.json()) == (404, unknown.json()), foreign.text
    listed = httpx.get(f"{base}/v1/stores/{stores['theirs']}/webhooks", headers=stores["their_key"]).json()
    kept = [w for w in listed["webhooks"] if w["id"] == str(theirs["id"])]
    assert [w["events"] for w in kept] == [["stock.back"]], listed  # neither changed nor removed
