"""A shop's pages on another origin call the API from the browser: without CORS headers every such call failed
(the browser refused the answer, and a write's preflight). PLINQY_CORS_ORIGINS picks the origins."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from search_service.settings import Settings, SettingsError, cors_headers, cors_origins
from tests.ingest_helpers import bearer, drain_imports, new_store, serve, store_key

SHOP = "https://shop.example.com"
OTHER = "https://other.example.org"


def test_a_page_of_another_origin_reads_and_writes(base: str) -> None:
    read = httpx.get(f"{base}/v1/categories", headers={"Origin": SHOP})
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == "*"
    preflight = httpx.options(
        f"{base}/v1/stores/0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b/listings/SKU-1",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code in (200, 204), preflight.text
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    refused = httpx.get(f"{base}/v1/search", params={"q": "x", "limit": 0}, headers={"Origin": SHOP})
    assert refused.status_code == 400 and refused.headers["access-control-allow-origin"] == "*"  # the page reads why
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()


def test_a_page_reads_an_attachment_s_name_and_a_401_s_challenge(
    base: str, conn: psycopg.Connection, db_url: str
) -> None:
    """A dashboard follows an upload's `errors_url` with `fetch` (it sends the key): it could not read the CSV's
    Content-Disposition (to save it under the name the API gives), nor a 401's WWW-Authenticate."""
    store = new_store(conn)
    key = bearer(store_key(conn, store))
    csv = {"Content-Type": "text/csv", **key}
    upload = httpx.post(
        f"{base}/v1/stores/{store}/imports", content=b"sku,name,price,quantity\nA,Apple,-1,2\n", headers=csv
    )
    drain_imports(db_url)
    errors = httpx.get(f"{base}{upload.json()['errors_url']}", headers={"Origin": SHOP, **key})
    unkeyed = httpx.patch(f"{base}/v1/stores/{store}/listings/A", json={"price": 1}, headers={"Origin": SHOP})
    for answer, header in ((errors, "content-disposition"), (unkeyed, "www-authenticate")):
        exposed = {name.strip().lower() for name in answer.headers["access-control-expose-headers"].split(",")}
        assert header in answer.headers and header in exposed, (answer.status_code, answer.headers)


def test_the_origins_setting() -> None:
    assert cors_origins(None) == ("*",) and cors_origins(" none ") == ()
    assert cors_origins(f"{SHOP}/, http://127.0.0.1:5173") == (SHOP, "http://127.0.0.1:5173")
    # as a browser's Origin header says it (lower case, no default port): these never matched
    assert cors_origins("https://Shop.Example.COM:443, HTTP://[::1]:80") == (SHOP, "http://[::1]")
    # an internationalised name is sent in its ASCII form, a port as a number: as written, they never matched
    assert cors_origins("https://bücher.example, https://a.example:0443, https://b.example:08443") == (
        "https://xn--bcher-kva.example",
        "https://a.example",
        "https://b.example:8443",
    )
    refused = ("shop.example.com", "https://shop.example.com/app", "ftp://x", "https://u@shop.example.com")
    for bad in (*refused, "https://shop.example.com:abc", "https://shop.example.com:99999", f"{SHOP}?"):
        with pytest.raises(SettingsError, match="no origin"):
            cors_origins(bad)


@pytest.fixture(scope="module")
def listed(settings: Settings) -> Iterator[str]:
    """The API with one origin listed."""
    with serve(dataclasses.replace(settings, cors_origins=(SHOP,)), None) as url:
        yield url


def test_an_answer_for_listed_origins_says_it_varies_by_origin(base: str, listed: str) -> None:
    """With a list of origins `Vary: Origin` came only with an answer to a listed origin: a shared cache could hand
    the answer to a request without Origin (no CORS headers) to the shop's page, or one origin's to another."""
    gzip = {"Accept-Encoding": "gzip"}
    for origin in ({"Origin": SHOP}, {"Origin": OTHER}, {}):
        answer = httpx.get(f"{listed}/schema/openapi.json", headers={**origin, **gzip})
        vary = {v.strip().lower() for v in answer.headers.get("vary", "").split(",")}
        assert {"origin", "accept-encoding"} <= vary, (origin, answer.headers)  # neither replaces the other
        assert answer.headers.get("access-control-allow-origin") == (SHOP if origin.get("Origin") == SHOP else None)
    ask = {"Access-Control-Request-Method": "GET"}
    preflight = httpx.options(f"{listed}/v1/search", headers={"Origin": SHOP, **ask})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == SHOP
    assert "origin" in preflight.headers["vary"].lower()
    refused = httpx.options(f"{listed}/v1/search", headers={"Origin": OTHER, **ask})
    assert refused.status_code == 400 and refused.json()["error"]["parameter"] == "Origin", refused.text
    assert "origin" in refused.headers["vary"].lower()
    # with `*` an answer is the same whatever the Origin: it says so without one too
    plain = httpx.get(f"{base}/healthz")
    assert plain.headers["access-control-allow-origin"] == "*" and "origin" not in plain.headers.get("vary", "").lower()


def test_a_preflight_may_ask_for_tracing_and_configured_headers(base: str, listed: str, settings: Settings) -> None:
    """A preflight asking for any header past Authorization and Content-Type was refused (400 text/plain
    'Disallowed CORS headers'), with no setting: a page's tracing (traceparent, X-Request-Id) broke every call."""
    ask = {"Origin": SHOP, "Access-Control-Request-Method": "PATCH"}
    path = "/v1/stores/0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b/listings/SKU-1"
    tracing = "authorization, content-type, x-request-id, traceparent, tracestate, baggage, sentry-trace"
    for url in (base, listed):
        preflight = httpx.options(url + path, headers={**ask, "Access-Control-Request-Headers": tracing})
        assert preflight.status_code == 204, preflight.text
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {h.strip() for h in tracing.split(",")} <= allowed
    profile = {**ask, "Access-Control-Request-Headers": "accept, accept-language, content-language"}
    for url in (base, listed):  # asked for when the value is not safelisted: an Accept with a `profile="..."`
        preflight = httpx.options(url + path, headers=profile)
        assert preflight.status_code == 204, preflight.text
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"accept", "accept-language", "content-language"} <= allowed, allowed
    refused = httpx.options(f"{listed}{path}", headers={**ask, "Access-Control-Request-Headers": "x-request-id, x-b"})
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/json"
    error = refused.json()["error"]
    assert error["parameter"] == "Access-Control-Request-Headers" and "x-b" in error["message"], error
    assert "x-request-id" not in error["message"]
    with serve(dataclasses.replace(settings, cors_origins=(SHOP,), cors_headers=("x-shop-id",)), None) as configured:
        asked = {**ask, "Access-Control-Request-Headers": "X-Shop-Id, traceparent"}
        assert httpx.options(configured + path, headers=asked).status_code == 204


def test_the_headers_setting() -> None:
    assert cors_headers(None) == () and cors_headers(" X-Shop-Id, x-shop-id ,x-b ") == ("x-shop-id", "x-b")
    assert cors_headers("x-a, *") == ("*",)
    for bad in ("x shop", "x-a, a:b", "é"):
        with pytest.raises(SettingsError, match="PLINQY_CORS_HEADERS"):
            cors_headers(bad)
