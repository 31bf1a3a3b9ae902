"""The request side of the write API against its OpenAPI spec, over real HTTP and PostgreSQL: what the spec's request
schemas take, the server takes, and what they refuse, the server answers with a 400 naming the field."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import psycopg
import pytest
from litestar.openapi.spec import Schema

from search_service.api.request_rules import checked_rules
from search_service.demo.catalog import build_categories
from search_service.events.config import EventsConfig
from search_service.settings import Settings
from tests.ingest_helpers import bearer, ingest_settings, new_store, store_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def error_of(response: httpx.Response) -> tuple[Any, str]:
    body = response.json()["error"]
    return body["parameter"], body["message"]


def _new_store(base: str, admin: str) -> str:
    created = httpx.post(f"{base}/v1/stores", json={"name": "Laden", "lat": 52.5, "lon": 13.4}, headers=bearer(admin))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_delivery_area_with_altitudes_is_stored_in_two_dimensions(base: str, conn: psycopg.Connection) -> None:
    admin = store_key(conn, None)
    store = _new_store(base, admin)
    url, auth = f"{base}/v1/stores/{store}", bearer(admin)
    with_z = [[[13.3, 52.4, 1], [13.5, 52.4, 1], [13.5, 52.6, 1], [13.3, 52.4, 1]]]
    one_z = [[[13.3, 52.4], [13.5, 52.4, 30.5], [13.5, 52.6], [13.3, 52.4]]]
    # closed in lon/lat, not in altitude: a ring that ends where it starts on the map
    open_in_z = [[[13.3, 52.4, 1], [13.5, 52.4, 1], [13.5, 52.6, 1], [13.3, 52.4, 2]]]
    areas = [
        {"type": "Polygon", "coordinates": with_z},
        {"type": "MultiPolygon", "coordinates": [with_z]},
        {"type": "Polygon", "coordinates": one_z},
        {"type": "MultiPolygon", "coordinates": [open_in_z]},
    ]
    for area in areas:
        patched = httpx.patch(url, json={"delivery_area": area}, headers=auth)
        assert patched.status_code == 200, (area, patched.text)
        answered = patched.json()["delivery_area"]
        assert answered["type"] == "MultiPolygon"
        assert all(len(p) == 2 for poly in answered["coordinates"] for ring in poly for p in ring), answered
        row = conn.execute(
            "SELECT ST_NDims(delivery_area::geometry), ST_Covers(delivery_area, ST_MakePoint(13.45, 52.45)::geography)"
            " FROM store WHERE id = %s",
            (store,),
        ).fetchone()
        assert row == (2, True), (area, row)
    four_numbers = {"type": "Polygon", "coordinates": [[[*p[:2], 1, 2] for p in with_z[0]]]}
    four = httpx.patch(url, json={"delivery_area": four_numbers}, headers=auth)
    assert four.status_code == 400 and error_of(four)[0] == "delivery_area", four.text
    # a store is created without an area (POST takes none): a clear 400, no 500
    posted = httpx.post(
        f"{base}/v1/stores",
        json={"name": "Z", "lat": 52.5, "lon": 13.4, "delivery_area": areas[0]},
        headers=auth,
    )
    assert posted.status_code == 400 and error_of(posted)[0] == "delivery_area", posted.text


# --- the spec's request schemas state the rules the server checks
HOOK = "http://127.0.0.1:9/hook/"  # allowed below (allow_hosts), never called: no event is sent
OPERATIONS = {  # name -> (method, path under the store, component schema, a valid body)
    "store-post": ("POST", "", "StoreIn", {"name": "Laden", "lat": 52.5, "lon": 13.4}),
    "store-patch": ("PATCH", "{store}", "StorePatch", {}),
    "listing-put": (
        "PUT",
        "{store}/listings/{sku}",
        "ListingIn",
        {"name": "Oat drink", "price": "2,49", "quantity": 5},
    ),
    "stock-patch": ("PATCH", "{store}/listings/STOCK", "StockPatch", {"quantity": 3}),
    "webhook-post": ("POST", "{store}/webhooks", "WebhookCreate", {"url": HOOK, "events": ["stock.out"]}),
    "webhook-patch": ("PATCH", "{store}/webhooks/{webhook}", "WebhookUpdate", {"events": ["stock.out"]}),
}
# (operation, field, values at the bound: schema-valid and accepted, values past it: schema-invalid and a 400)
BOUNDS: list[tuple[str, str, list[Any], list[Any]]] = [
    ("store-post", "name", ["n" * 200, "Laden am Eck"], ["", "   ", " \ufeff", "n" * 201, "Laden\tEck", "Laden\x00",
                                                          "\u3164", "\u2800", "\uffa0", "\u115f\u1160"]),
    ("store-post", "postal_code", ["1" * 32, ""], ["1" * 33, "10\n115"]),
    ("store-post", "phone", ["+" * 64], ["1" * 65]),
    ("store-post", "address", ["a" * 500], ["a" * 501, "Str. 1\r\nBerlin", "Str.\x85 1"]),
    ("store-post", "city", ["c" * 200], ["c" * 201]),
    ("store-post", "store_type", ["t" * 64], ["t" * 65]),
    ("store-post", "country_code", ["DE", "de", "", "xk"], ["XYZW", "D", "D1", "XX", "zz", "QQ", "UK"]),
    ("store-patch", "country_code", ["gb", "NL"], ["xx", "EU"]),
    # trimmed as all store text before the check, stored in capitals: the spec's pattern refused what the server took
    ("store-post", "country_code", ["GB ", " gb", "GB\n", "\u200bDE\t", "  "], ["G B", "G\nB", "GB.", " XX "]),
    ("store-patch", "country_code", ["GB ", "nl\r\n"], ["G B", "xx\n"]),
    # the other store text, trimmed too: a line break or an invisible character around it was refused by the spec
    ("store-post", "name", ["\nLaden\t", "\u200bEck\r\n"], ["\nLa\tden\n"]),
    ("store-post", "postal_code", ["10115\n", "\t10115 "], ["10\t115\n"]),
    ("store-post", "phone", ["+49 30 1234\r\n"], ["+49\n30\n"]),
    ("store-post", "address", ["\tStr. 1\n"], ["\tStr.\n1\n"]),
    ("store-post", "city", ["Berlin\n", "\ufeffBerlin"], ["Ber\x1blin\n"]),
    ("store-post", "store_type", ["\u200bGROCERY\n"], ["GRO\x00CERY\n"]),
    ("store-post", "website", [" https://shop.example/\n", "\thttp://[::1]:8080 "], [" https://sh op.example\n"]),
    ("store-patch", "website", ["https://shop.example\r\n"], ["\nhttp://[\n"]),
    ("store-post", "currency", ["GBP", "EUR"], ["ABCD", "ZZZ", "XAU"]),
    ("store-post", "website", ["https://shop.example/x?y=1", "HTTP://shop.example", ""],
     ["javascript:alert(1)", "https://user@shop.example", "ftp://shop.example", "https://" + "s" * 2041]),
    ("store-post", "website", ["http://[::1]:8080/x", "https://shop.example:443", "http://[2001:db8::7]"],
     ["http://[", "https://[::1", "http://a:99999", "http://a:0", "http://%zz", "http://[v1.x]/", "http://a<b"]),
    ("store-post", "lat", [90, -90], [90.5, -91]),
    ("store-patch", "name", ["n" * 200, "\ufeffLaden"], ["", "\u200b", "n" * 201]),
    ("store-patch", "currency", ["CHF"], ["ABCD", "ZZZ"]),
    ("store-patch", "website", ["https://[::1]/"], ["http://[", "https://[::1", "http://a:99999", "http://%zz"]),
    ("store-patch", "delivery_radius_m", [1, 1_000_000], [0, -5, 1_000_001, 10**12]),
    ("listing-put", "name", ["n" * 500], ["n" * 501]),
    ("listing-put", "brand", ["b" * 200], ["b" * 201]),
    ("listing-put", "description", ["d" * 10_000], ["d" * 10_001]),
    ("listing-put", "category", ["c" * 1000], ["c" * 1001]),
    ("listing-put", "price", [9_999_999_999.99, 0, "3,49", "1.234,56", "1 234,56", "+2"],
     [10_000_000_000, -1, "-1", "NaN", "Infinity", "abc", "1_000", "1.23E+03"]),
    ("listing-put", "currency", ["USD"], ["ZZZ", "EURO", "XXX"]),
    # either case, trimmed, as the server reads a currency (stored in capitals): the spec's enum took upper case only
    ("store-post", "currency", ["eur", " EUR ", "Gbp\n", "\u200bchf\t"], ["E U R", "", "  ", "\u017fek", " xxx "]),
    ("store-patch", "currency", ["usd ", "\tnok"], ["\u0131dr", "us d"]),
    ("listing-put", "currency", ["usd", " EUR\n", "\ufeffgbp", ""], ["  ", "E UR", "\u017fek", " xau "]),
    ("listing-put", "version", [2**63 - 1, 0], [2**63, -1]),
    ("stock-patch", "price", [9_999_999_999.99, "0,99"], [10_000_000_000, "-1", "NaN"]),
    ("stock-patch", "version", [2**63 - 1], [2**63]),
    ("webhook-post", "events", [["*"], ["stock.out", "price.changed"]], [[], ["nope"], ["webhook.ping"]]),
    ("webhook-post", "url", [HOOK + "u" * (2000 - len(HOOK))], [HOOK + "u" * (2001 - len(HOOK))]),
    ("webhook-patch", "events", [["*"], ["stock.out", "price.changed"]], [[], ["stock.chnged"], [""]]),
    ("webhook-patch", "url", [HOOK + "p" * (2000 - len(HOOK))], [HOOK + "p" * (2001 - len(HOOK))]),
]  # fmt: skip


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    plain = ingest_settings(db_url, tmp_path_factory.mktemp("keys"), rate_per_s=1e6, rate_burst=1e6)
    return dataclasses.replace(plain, events=EventsConfig(allow_hosts=frozenset({"127.0.0.1"})))


@pytest.fixture(scope="module")
def world(base: str, db_url: str) -> dict[str, Any]:
    """A store with a listing (STOCK), an admin key and the store's key, and the served spec's components."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        keys = {"admin": store_key(conn, None), "store": store_key(conn, store, "listings:write", "webhooks:write")}
    stock = httpx.put(f"{base}/v1/stores/{store}/listings/STOCK", json=OPERATIONS["listing-put"][3],
                      headers=bearer(keys["store"]))  # fmt: skip
    assert stock.status_code == 200, stock.text
    hook = httpx.post(f"{base}/v1/stores/{store}/webhooks", json={"url": f"{HOOK}patched", "events": ["stock.out"]},
                      headers=bearer(keys["store"]))  # fmt: skip
    assert hook.status_code == 201, hook.text
    components = httpx.get(f"{base}/schema/openapi.json").json()["components"]
    return {"store": store, "keys": keys, "components": components, "webhook": hook.json()["id"]}


def schema_takes(world: dict[str, Any], component: str, body: dict[str, Any]) -> bool:
    schema = {"$ref": f"#/components/schemas/{component}", "components": world["components"]}
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(body))


def send(base: str, world: dict[str, Any], operation: str, body: dict[str, Any]) -> httpx.Response:
    method, path, _, _ = OPERATIONS[operation]
    store = world["store"]
    if operation == "store-patch":
        store = httpx.post(
            f"{base}/v1/stores", json=OPERATIONS["store-post"][3], headers=bearer(world["keys"]["admin"])
        )
        store = store.json()["id"]
    url = f"{base}/v1/stores/" + path.format(store=store, sku=f"SKU-{uuid.uuid4().hex[:8]}", webhook=world["webhook"])
    key = world["keys"]["admin" if operation.startswith("store") else "store"]
    return httpx.request(method, url.rstrip("/"), json=body, headers=bearer(key), timeout=30)


@pytest.mark.parametrize(
    ("operation", "field", "at_bound", "past_bound"), BOUNDS, ids=[f"{o}-{f}" for o, f, *_ in BOUNDS]
)
def test_the_request_schemas_state_the_rules_the_server_checks(
    base: str, world: dict[str, Any], operation: str, field: str, at_bound: list[Any], past_bound: list[Any]
) -> None:
    component, valid = OPERATIONS[operation][2], OPERATIONS[operation][3]
    for value in at_bound:
        body = {**valid, field: value}
        if operation == "webhook-post" and field == "events":  # one active webhook a URL
            body["url"] = f"{HOOK}{uuid.uuid4().hex}"
        assert schema_takes(world, component, body), (field, value)
        answer = send(base, world, operation, body)
        assert answer.status_code in (200, 201), (field, value, answer.text)
    for value in past_bound:
        body = {**valid, field: value}
        assert not schema_takes(world, component, body), (field, value)
        answer = send(base, world, operation, body)
        assert answer.status_code == 400 and error_of(answer)[0] == field, (field, value, answer.text)


def test_every_stated_rule_is_on_its_schema(world: dict[str, Any]) -> None:
    """A renamed field would leave its rule unstated: each lands on a member of its property."""
    schemas = world["components"]["schemas"]
    for (component, field), rules in checked_rules().items():
        prop = schemas[component]["properties"][field]
        members = prop.get("oneOf") or prop.get("anyOf") or [prop]
        for _, keywords in rules:
            stated = Schema(**keywords).to_schema()
            assert any(stated.items() <= member.items() for member in members), (component, field, stated)


def test_a_stock_patch_names_a_quantity_or_price_that_is_not_null(base: str, world: dict[str, Any]) -> None:
    """The server asks for a quantity or price that is not null; the schema counted a null one."""
    for body in ({"quantity": None, "price": None}, {"quantity": None}, {"price": None, "version": 3}, {}):
        assert not schema_takes(world, "StockPatch", body), body
        answer = send(base, world, "stock-patch", body)
        assert answer.status_code == 400 and error_of(answer) == ("quantity", "give quantity and/or price"), body
    for body in ({"quantity": None, "price": 1.5}, {"quantity": 4, "price": None}, {"quantity": 2}):
        assert schema_takes(world, "StockPatch", body), body
        answer = send(base, world, "stock-patch", body)
        assert answer.status_code == 200, (body, answer.text)


def test_a_webhook_patch_names_a_url_or_events_and_no_other_field(base: str, world: dict[str, Any]) -> None:
    """WebhookUpdate stated none of the server's rules: `{}`, nulls only and an unknown field were schema-valid
    and a 400 (events' types and url's length: BOUNDS)."""
    nothing = ("url", "give url and/or events: nothing to change")
    unknown = ("enabled", "Object contains unknown field `enabled`")
    for body, error in [
        ({}, nothing),
        ({"url": None, "events": None}, nothing),
        ({"events": ["stock.out"], "enabled": False}, unknown),
    ]:
        assert not schema_takes(world, "WebhookUpdate", body), body
        answer = send(base, world, "webhook-patch", body)
        assert answer.status_code == 400 and error_of(answer) == error, (body, answer.text)
    for body in ({"url": None, "events": ["stock.back"]}, {"url": f"{HOOK}patched", "events": None}):
        assert schema_takes(world, "WebhookUpdate", body), body
        answer = send(base, world, "webhook-patch", body)
        assert answer.status_code == 200, (body, answer.text)


def test_a_store_patch_gives_lat_and_lon_together(base: str, world: dict[str, Any]) -> None:
    """One of lat and lon alone (or beside a null) is a 400, "lat and lon go together"; the schema took it."""
    for body in ({"lat": 52.5}, {"lon": 13.4}, {"lat": 52.5, "lon": None}, {"lat": None, "lon": 13.4}):
        assert not schema_takes(world, "StorePatch", body), body
        answer = send(base, world, "store-patch", body)
        assert answer.status_code == 400 and error_of(answer)[1] == "lat and lon go together", (body, answer.text)
    for body in ({"lat": 52.5, "lon": 13.4}, {"lat": None, "lon": None}, {"name": "Eck"}, {}):
        assert schema_takes(world, "StorePatch", body), body
        answer = send(base, world, "store-patch", body)
        assert answer.status_code == 200, (body, answer.text)


def test_the_patch_bodies_state_their_rules_beside_their_typed_properties(world: dict[str, Any]) -> None:
    """F-H D2: the rules above sat in an `anyOf` at the schema's top, which generators make the body's type: the
    Python client's `StockPatchType0(quantity: Any)`, `StorePatchType0(lat: None, lon: None)`, the other fields
    untyped. An `allOf` of the `anyOf` keeps the rules (the tests above) and leaves the model to the properties."""
    schemas = world["components"]["schemas"]
    for component, fields in (("StockPatch", {"quantity", "price"}), ("WebhookUpdate", {"url", "events"}),
                              ("StorePatch", {"lat", "lon"})):  # fmt: skip
        schema = schemas[component]
        assert not {"anyOf", "oneOf"} & set(schema), (component, schema.get("anyOf") or schema.get("oneOf"))
        assert schema["type"] == "object" and fields <= set(schema["properties"]), component
        (rule,) = schema["allOf"]
        assert set(rule) == {"anyOf"} and all(set(m) <= {"required", "properties"} for m in rule["anyOf"]), rule


def test_a_delete_without_a_body_is_what_its_schema_leaves_out(base: str, world: dict[str, Any]) -> None:
    """F-H D2: the optional clock was `oneOf [DeleteClock, null]`, which the generated Python client's call without
    a body sent as JSON (`TypeError: Object of type Unset is not JSON serializable`, no request made). The body is
    DeleteClock, not required: that client then sends none, with its `Content-Type: application/json`."""
    spec = httpx.get(f"{base}/schema/openapi.json").json()
    body = spec["paths"]["/v1/stores/{store_id}/listings/{sku}"]["delete"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is False and schema["allOf"] == [{"$ref": "#/components/schemas/DeleteClock"}], body
    assert "oneOf" not in schema and "anyOf" not in schema, schema
    store, key = world["store"], world["keys"]["store"]
    for sku, sent in (("DEL-NONE", {}), ("DEL-CLOCK", {"content": b'{"updated_at": "2026-12-03T08:05:00Z"}'})):
        url = f"{base}/v1/stores/{store}/listings/{sku}"
        assert httpx.put(url, json=OPERATIONS["listing-put"][3], headers=bearer(key)).status_code == 200
        headers = {**bearer(key), "Content-Type": "application/json"}
        deleted = httpx.request("DELETE", url, headers=headers, **sent)  # type: ignore[arg-type]
        assert deleted.status_code == 200 and deleted.json()["status"] in ("mapped", "stale"), (sku, deleted.text)


# A category path as the docs write one, quoted or in backticks, parts capitalised: `Dairy, Eggs & Plant-Based > Milk`
DOCUMENTED_PATH = re.compile(r'[`"]([A-Z][^`"<>\n]*(?: > [A-Z][^`"<>\n]*)+)[`"]')


def test_the_documented_listing_examples_name_categories_that_exist(
    base: str, world: dict[str, Any], db_url: str
) -> None:
    """Each ListingIn example of the spec, and each category path the docs show, names a category of the shipped
    tree (the demo's, seed-demo): no 'not found; ignored' note."""
    categories, _ = build_categories()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO category (id, parent_id, name, slug, position) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            [(c.id, c.parent_id, c.name, c.slug, c.position) for c in categories],
        )
    spec = httpx.get(f"{base}/schema/openapi.json").json()
    put = spec["paths"]["/v1/stores/{store_id}/listings/{sku}"]["put"]["requestBody"]["content"]["application/json"]
    examples = [e["value"] for e in put.get("examples", {}).values()] + spec["components"]["schemas"]["ListingIn"].get(
        "examples", []
    )
    bodies = list({json.dumps(e, sort_keys=True): e for e in examples}.values())  # one GTIN a listing of a store
    docs = [(PROJECT_ROOT / "README.md").read_text(), *(p.read_text() for p in (PROJECT_ROOT / "docs").glob("*.md"))]
    paths = sorted({path for text in docs for path in DOCUMENTED_PATH.findall(text)})
    assert bodies and paths, (bodies, paths)
    bodies += [{**OPERATIONS["listing-put"][3], "category": path} for path in paths]
    for body in bodies:
        answer = send(base, world, "listing-put", body)
        assert answer.status_code == 200, (body, answer.text)
        assert "not found" not in (answer.json()["notes"] or ""), (body, answer.json()["notes"])
