"""A shop's pages on another origin call the API from the browser: without CORS headers every such call failed
(the browser refused the answer, and a write's preflight). PLINQY_CORS_ORIGINS picks the origins."""

from __future__ import annotations

import httpx
import pytest

from search_service.settings import SettingsError, cors_origins

SHOP = "https://shop.example.com"


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


def test_the_origins_setting() -> None:
    assert cors_origins(None) == ("*",) and cors_origins(" none ") == ()
    assert cors_origins(f"{SHOP}/, http://127.0.0.1:5173") == (SHOP, "http://127.0.0.1:5173")
    # as a browser's Origin header says it (lower case, no default port): these never matched
    assert cors_origins("https://Shop.Example.COM:443, HTTP://[::1]:80") == (SHOP, "http://[::1]")
    refused = ("shop.example.com", "https://shop.example.com/app", "ftp://x", "https://u@shop.example.com")
    for bad in (*refused, "https://shop.example.com:abc", "https://shop.example.com:99999", f"{SHOP}?"):
        with pytest.raises(SettingsError, match="no origin"):
            cors_origins(bad)
