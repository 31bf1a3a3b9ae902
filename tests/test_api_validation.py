"""Bad input never reaches the engine and never gives a 500: a JSON 400 that names the parameter."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from search_service.api.params import Q_PATTERN, BadParameter, clean_query
from tests.ingest_helpers import bearer, store_key
from tests.test_api import app_settings, load_test_encoder, running_client

POINT = {"lat": "52.37", "lon": "4.89"}


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[TestClient[Any]]:
    encoder: Encoder = load_test_encoder()
    with running_client(app_settings(db_url), encoder) as c:
        yield c


def assert_bad(response: Any, parameter: str | tuple[str, ...] | None) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"parameter", "message"}
    if isinstance(parameter, tuple):  # several are wrong: any one of them may be named
        assert body["error"]["parameter"] in parameter, body
    else:
        assert body["error"]["parameter"] == parameter, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


SEARCH_CASES: list[tuple[dict[str, str], str]] = [
    ({}, "q"),
    ({"q": ""}, "q"),
    ({"q": "   "}, "q"),
    ({"q": "\t\n "}, "q"),
    ({"q": "\u00a0\u2003"}, "q"),  # Unicode spaces only
    ({"q": "oat\x00milk"}, "q"),
    ({"q": "bell\x07"}, "q"),
    ({"q": "line\nbreak"}, "q"),
    ({"q": "c1\x85control"}, "q"),
    ({"q": "x" * 10_000}, "q"),
    ({"q": "y" * 257}, "q"),
    ({"q": "milk", "lat": "nan", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "NaN", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "inf", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "-Infinity", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "1e400", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "90.0001", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "-91", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "52.37", "lon": "nan"}, "lon"),
    ({"q": "milk", "lat": "52.37", "lon": "180.5"}, "lon"),
    ({"q": "milk", "lat": "52.37", "lon": "-inf"}, "lon"),
    ({"q": "milk", "lat": "abc", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "", "lon": "4.89"}, "lat"),
    ({"q": "milk", "lat": "52.37"}, "lon"),
    ({"q": "milk", "lon": "4.89"}, "lat"),
    ({"q": "milk", "radius_m": "-1", **POINT}, "radius_m"),
    ({"q": "milk", "radius_m": "0", **POINT}, "radius_m"),
    ({"q": "milk", "radius_m": "100001", **POINT}, "radius_m"),
    ({"q": "milk", "radius_m": "nan", **POINT}, "radius_m"),
    ({"q": "milk", "radius_m": "far", **POINT}, "radius_m"),
    ({"q": "milk", "limit": "0"}, "limit"),
    ({"q": "milk", "limit": "1000"}, "limit"),
    ({"q": "milk", "limit": "101"}, "limit"),
    ({"q": "milk", "limit": "-1"}, "limit"),
    ({"q": "milk", "limit": "abc"}, "limit"),
    ({"q": "milk", "limit": "2.5"}, "limit"),
    ({"q": "milk", "limit": ""}, "limit"),
    ({"q": "milk", "limit": "99999999999999999999999"}, "limit"),
    ({"q": "milk", "offset": "-1"}, "offset"),
    ({"q": "milk", "offset": "1001"}, "offset"),
    ({"q": "milk", "category_id": "0"}, "category_id"),
    ({"q": "milk", "category_id": "-5"}, "category_id"),
    ({"q": "milk", "category_id": "dairy"}, "category_id"),
    ({"q": "milk", "category_id": "99999999999999999999999"}, "category_id"),
    ({"q": "milk", "min_price": "-1"}, "min_price"),
    ({"q": "milk", "min_price": "nan"}, "min_price"),
    ({"q": "milk", "min_price": "cheap"}, "min_price"),
    ({"q": "milk", "max_price": "-0.01"}, "max_price"),
    ({"q": "milk", "max_price": "inf"}, "max_price"),
    ({"q": "milk", "min_price": "5", "max_price": "1"}, "min_price"),
    ({"q": "milk", "in_stock": "maybe"}, "in_stock"),
    ({"q": "milk", "stores_per_product": "0"}, "stores_per_product"),
    ({"q": "milk", "stores_per_product": "11"}, "stores_per_product"),
    ({"q": "milk", "mode": "fuzzy"}, "mode"),
    ({"q": "milk", "mode": "HYBRID"}, "mode"),
    ({"q": "milk", "mode": ""}, "mode"),
    ({"q": "milk", "brand": "b" * 201}, "brand"),
    ({"q": "milk", "brand": "  " + "b" * 201 + "  "}, "brand"),
    ({"q": "milk", "brand": ""}, "brand"),
    ({"q": "milk", "brand": "   "}, "brand"),
    ({"q": "milk", "brand": "Fix\x00Pro"}, "brand"),
]


@pytest.mark.parametrize(
    ("params", "parameter"), SEARCH_CASES, ids=[f"{p}-{i}" for i, (_, p) in enumerate(SEARCH_CASES)]
)
def test_search_rejects(client: TestClient[Any], params: dict[str, str], parameter: str) -> None:
    assert_bad(client.get("/v1/search", params=params), parameter)


@pytest.mark.parametrize(
    "product_id",
    [
        "abc",
        "123",
        "6f1c2a1e8a534c1e9d3b2f8f6c1d2e3a",  # no hyphens: not the canonical form
        "{6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a}",
        "6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3g",
        "6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a0",
        "%00",
        "x" * 5000,
        "'; DROP TABLE product_master; --",
    ],
)
def test_invalid_product_id(client: TestClient[Any], product_id: str) -> None:
    assert_bad(client.get(f"/v1/products/{product_id}"), "product_id")
    assert_bad(client.get(f"/v1/products/{product_id}/similar"), "product_id")


SIMILAR_CASES: list[tuple[dict[str, str], str]] = [
    ({"lat": "nan", "lon": "4.89"}, "lat"),
    ({"lat": "52.37"}, "lon"),
    ({"radius_m": "-5", **POINT}, "radius_m"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1000"}, "limit"),
    ({"min_price": "3", "max_price": "2"}, "min_price"),
    ({"stores_per_product": "abc"}, "stores_per_product"),
    ({"brand": "b" * 201}, "brand"),
    ({"brand": " "}, "brand"),
]


@pytest.mark.parametrize(("params", "parameter"), SIMILAR_CASES)
def test_similar_rejects(client: TestClient[Any], params: dict[str, str], parameter: str) -> None:
    assert_bad(client.get(f"/v1/products/{uuid.uuid4()}/similar", params=params), parameter)


NEARBY_CASES: list[tuple[dict[str, str], str | tuple[str, ...]]] = [
    ({}, ("lat", "lon")),
    ({"lat": "52.37"}, "lon"),
    ({"lon": "4.89"}, "lat"),
    ({"lat": "nan", "lon": "4.89"}, "lat"),
    ({"lat": "52.37", "lon": "inf"}, "lon"),
    ({"lat": "95", "lon": "4.89"}, "lat"),
    ({"radius_m": "0", **POINT}, "radius_m"),
    ({"radius_m": "-100", **POINT}, "radius_m"),
    ({"radius_m": "1e9", **POINT}, "radius_m"),
    ({"limit": "0", **POINT}, "limit"),
    ({"limit": "1001", **POINT}, "limit"),  # up to 1,000 stores (the page's radar)
    ({"limit": "ten", **POINT}, "limit"),
    ({"offset": "-1", **POINT}, "offset"),
    ({"offset": "100001", **POINT}, "offset"),
]


@pytest.mark.parametrize(("params", "parameter"), NEARBY_CASES)
def test_stores_nearby_rejects(
    client: TestClient[Any], params: dict[str, str], parameter: str | tuple[str, ...]
) -> None:
    assert_bad(client.get("/v1/stores/nearby", params=params), parameter)


@pytest.mark.parametrize(
    "params",
    [
        {"q": "  oat milk  "},
        {"q": "y" * 256},
        {"q": "  " + "z" * 256 + "  "},  # 256 after trimming
        {"q": "café crème, 50% off & more?"},
        {"q": "牛乳"},
        {"q": "milk", "unknown_parameter": "ignored"},
        {"q": "milk", "in_stock": "false", "mode": "keyword"},
        {"q": "milk", "lat": "-90", "lon": "180", "radius_m": "100000", "limit": "100", "offset": "1000"},
        {"q": "milk", "lat": "0", "lon": "0", "radius_m": "1", "limit": "1", "stores_per_product": "10"},
        {"q": "milk", "min_price": "0", "max_price": "0"},
        {"q": "milk", "brand": "b" * 200},
        {"q": "milk", "brand": "  " + "b" * 200 + "  "},  # 200 after trimming
    ],
)
def test_valid_edge_cases_are_accepted(client: TestClient[Any], params: dict[str, str]) -> None:
    response = client.get("/v1/search", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []  # the database is empty


def test_unknown_routes_and_methods_are_json(client: TestClient[Any]) -> None:
    response = client.get("/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["message"]
    response = client.post("/v1/search", params={"q": "milk"})
    assert response.status_code == 405
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/v1/search", "q=milk&lat=52.5&lon=13.4&lat=48.1", "lat"),
        ("/v1/search", "q=milk&q=bread", "q"),
        ("/v1/suggest", "q=mi&limit=5&limit=6", "limit"),
        ("/v1/stores/nearby", "lat=52.5&lon=13.4&radius_m=1000&radius_m=2000", "radius_m"),
        ("/v1/search", "q=milk&limit=1e1", "limit"),
        ("/v1/search", "q=milk&limit=2.0", "limit"),
        ("/v1/search", "q=milk&limit=1.5", "limit"),
        ("/v1/search", "q=milk&offset=1E3", "offset"),
        ("/v1/search", "q=milk&category_id=23.000", "category_id"),
        ("/v1/search", "q=milk&stores_per_product=2e0", "stores_per_product"),
        ("/v1/suggest", "q=mi&limit=5.0", "limit"),
        ("/v1/stores/nearby", "lat=52.5&lon=13.4&limit=1e3", "limit"),
        ("/v1/search", "q=%FF%FE", "q"),
        ("/v1/search", "q=%ED%A0%80", "q"),  # an encoded lone surrogate
        ("/v1/suggest", "q=mi&lat=5%C0", "lat"),
        ("/v1/search", "q=milk&radius_m=1000", "radius_m"),  # it was ignored: a search of everywhere
        ("/v1/suggest", "q=mi&radius_m=1000", "radius_m"),
    ],
)
def test_query_strings_the_framework_would_read_loosely(
    client: TestClient[Any], path: str, query: str, parameter: str
) -> None:
    """The last of a repeated parameter won silently (a client that built its query wrongly searched where it did
    not mean); `1e1` and `2.0` were read as integers; bytes that are not UTF-8 were searched as U+FFFD; a radius
    without its point was ignored."""
    response = client.get(f"{path}?{query}")
    assert_bad(response, parameter)


@pytest.mark.parametrize(
    ("path", "query", "parameter", "sent"),
    [
        ("/v1/search", "q=milk&lat=%2052.52&lon=13.4", "lat", "' 52.52'"),
        ("/v1/search", "q=milk&lat=52.52&lon=13.4%20", "lon", "'13.4 '"),
        ("/v1/search", "q=milk&lat=52.52&lon=13.4&radius_m=%201000", "radius_m", "' 1000'"),
        ("/v1/search", "q=milk&min_price=1%20", "min_price", "'1 '"),
        ("/v1/search", "q=milk&in_stock=%20true", "in_stock", "' true'"),
        ("/v1/search", "q=milk&limit=%205", "limit", "' 5'"),
        ("/v1/suggest", "q=mi&lat=%2052.5&lon=13.4", "lat", "' 52.5'"),
        ("/v1/stores/nearby", "lat=52.5%20&lon=13.4", "lat", "'52.5 '"),
    ],
)
def test_a_number_with_spaces_around_it_is_refused_saying_so(
    client: TestClient[Any], path: str, query: str, parameter: str, sent: str
) -> None:
    """`facets=%20brand` and `bbox=%2013,...` are trimmed; a number is not: `lat=%2052.52` was a 400 ending in
    msgspec's `Expected `float | null`, got `str``, which said nothing of the spaces. It names the parameter, quotes
    what was sent and says what is wrong."""
    response = client.get(f"{path}?{query}")
    assert_bad(response, parameter)
    message = response.json()["error"]["message"]
    assert f"(got {sent}: send it without the spaces around it)" in message and "Expected" not in message, message


@pytest.mark.parametrize(
    "url",
    [
        "/v1/search?q=milk&limit=05",
        "/v1/search?q=milk&offset=00",
        "/v1/search?q=milk&category_id=012",
        "/v1/search?q=milk&stores_per_product=03",
        "/v1/search?q=milk&min_price=01.5",
        "/v1/search?q=milk&lat=52.5&lon=13.4&radius_m=05000",
        "/v1/search?q=milk&lon=13.4&lat=-052.5",
        "/v1/stores/nearby?lat=52.5&lon=13.4&limit=05",
        "/v1/suggest?q=mi&limit=05",
        "/v1/stores/0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b/listings?page_size=05",
    ],
)
def test_a_number_with_a_leading_zero_is_refused_saying_so(client: TestClient[Any], db_url: str, url: str) -> None:
    """A number is read as JSON writes one: `limit=05` was refused as "must be an integer between 1 and 100 (got
    '05')", which `05` looks to be to every client language. The message says what is wrong with it (the last
    parameter of each URL)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, None)  # a store's listings are read with a key
    response = client.get(url, headers=bearer(key))
    parameter, sent = url.rsplit("&" if "&" in url else "?", 1)[1].split("=")
    assert_bad(response, parameter)
    message = response.json()["error"]["message"]
    assert message.endswith(f"(got {sent!r}: send it without the leading zero, as JSON writes numbers)"), message
    flag = client.get("/v1/search?q=milk&in_stock=01")  # no number: its rule says what it takes
    assert_bad(flag, "in_stock")
    assert flag.json()["error"]["message"] == "must be true or false (got '01')"


def test_a_number_that_is_no_number_quotes_what_was_sent(client: TestClient[Any]) -> None:
    response = client.get("/v1/search?q=milk&lat=abc&lon=13.4")
    assert_bad(response, "lat")
    assert response.json()["error"]["message"] == "must be a number between -90 and 90 (got 'abc')"


def test_the_strict_reading_holds_a_route_to_its_own_parameters(client: TestClient[Any]) -> None:
    """Each route's own ranges; a parameter a route does not declare is ignored, as elsewhere (a cache-buster
    given twice, a vendor's query on a signed delivery)."""
    limit = client.get("/v1/suggest?q=mil&limit=2.0")
    assert_bad(limit, "limit")
    assert "between 1 and 10 " in limit.json()["error"]["message"]
    nearby = client.get("/v1/stores/nearby?lat=52.37&lon=4.89&limit=2.0")
    assert "between 1 and 1000 " in nearby.json()["error"]["message"]
    assert_bad(client.get("/v1/search?q=milk&limit=0005"), "limit")
    for path in ("/healthz?_=1&_=2", "/v1/categories?radius_m=5", "/v1/search?q=milk&before=abc&x=1&x=2",
                 "/v1/search?q=milk&=a&=b&%FF=1"):  # fmt: skip
        assert client.get(path).status_code == 200, path


def test_the_q_pattern_of_the_schema_accepts_what_the_api_accepts() -> None:
    """Every character, alone (and those of the Basic Multilingual Plane between letters): the OpenAPI pattern
    and the server agree (a zero-width space alone matched the pattern and was refused, a tag character too)."""
    pattern = re.compile(Q_PATTERN)
    disagree = []
    for code in (c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF):
        for text in (chr(code), f"a{chr(code)}b") if code < 0x10000 else (chr(code),):
            try:
                clean_query(text)
                accepted = True
            except BadParameter:
                accepted = False
            if accepted != (pattern.fullmatch(text) is not None):
                disagree.append(hex(code))
    assert disagree == []


def test_options_allows_every_method_of_the_path(client: TestClient[Any]) -> None:
    """It listed one route handler's methods (`OPTIONS, PUT`) for a path that serves four."""
    listing = client.options("/v1/stores/0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b/listings/SKU-1")
    assert listing.status_code == 204, listing.text
    every = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"}
    assert {m.strip() for m in listing.headers["allow"].split(",")} == every
    search = client.options("/v1/search")
    assert {m.strip() for m in search.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    ("path", "required"),
    [
        ("/v1/search", {"q": "milk"}),
        ("/v1/search", {"q": "milk", "bbox": "13.30,52.48,13.48,52.56"}),
        ("/v1/search", {"q": "milk", **POINT}),
        ("/v1/suggest", {"q": "mi"}),
        ("/v1/products/6f1c2a1e-8a53-4c1e-9d3b-2f8f6c1d2e3a/similar", {}),  # none such: a 404 either way
        ("/v1/stores/nearby", POINT),
    ],
)
def test_a_documented_default_sent_is_as_if_left_out(
    client: TestClient[Any], path: str, required: dict[str, str]
) -> None:
    """Generated clients send each parameter's schema default with every call: `radius_m`'s 5000 was declared
    where lat/lon are optional, and sent without them (or with bbox) it was a 400. Each default the schema
    declares, sent, answers as leaving it out does."""
    template = re.sub(r"/[0-9a-f-]{36}/", "/{product_id}/", path)
    declared = client.get("/schema/openapi.json").json()["paths"][template]["get"]["parameters"]
    defaults = {p["name"]: p["schema"]["default"] for p in declared if "default" in p.get("schema", {})}
    assert defaults, template
    plain = client.get(path, params=required).status_code
    sent = client.get(path, params={**required, **{k: str(v).lower() for k, v in defaults.items()}})
    assert sent.status_code == plain, (sent.status_code, sent.text)
