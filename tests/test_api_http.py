"""HTTP semantics that proxies, CDNs and browsers rely on, over a real server: HEAD wherever GET works, 304 on a
matching validator, gzip."""

from __future__ import annotations

import dataclasses
import email.utils
import os
import re
from pathlib import Path

import httpx
import pytest

from search_service.settings import Settings, SettingsError
from tests.ingest_helpers import serve

# Headers that may differ between two answers of the same resource.
PER_ANSWER = {"date"}


def test_head_answers_wherever_get_does(base: str) -> None:
    """HEAD was 405 (`allow: GET, OPTIONS`) on every API route; only / and /static/* answered it."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in ("/healthz", "/readyz", "/v1/search?q=milk&limit=3", "/schema/openapi.json", "/"):
            got, head = client.get(path), client.head(path)
            assert head.status_code == got.status_code == 200, (path, head.status_code, head.text)
            assert head.content == b"", path
            assert {k for k in head.headers if k not in PER_ANSWER} == {k for k in got.headers if k not in PER_ANSWER}
            assert head.headers["content-type"] == got.headers["content-type"], path
            if path in ("/healthz", "/schema/openapi.json", "/"):  # the others say how long they took
                assert head.headers["content-length"] == got.headers["content-length"], path
        refused = client.head("/v1/search?q=milk&limit=0")
        assert refused.status_code == 400 and refused.content == b"", refused.headers
        options = client.options("/healthz")
        assert {m.strip() for m in options.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
        not_allowed = client.delete("/healthz")
        assert not_allowed.status_code == 405
        assert {m.strip() for m in not_allowed.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
        write_only = client.head("/v1/stores")  # a path that serves no GET answers HEAD as it answers GET
        assert write_only.status_code == 405 and "HEAD" not in write_only.headers["allow"]
        for _ in range(3):  # counted as the HEAD it is: uptime checkers' traffic swelled the GET figures
            client.head("/v1/presets")
        metrics = client.get("/metrics").text
        assert 'method="HEAD",route="/v1/presets",status="200"' in metrics.replace("} ", "}")


def test_a_revalidation_with_a_matching_validator_gets_304(base: str) -> None:
    """The page and its static files sent an ETag (and Last-Modified) with `no-cache`, yet a browser's revalidation
    always got 200 and the whole file again; `/` sent no validator at all."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in ("/", "/static/app.js", "/static/style.css"):
            first = client.get(path)
            etag = first.headers["etag"]
            assert first.status_code == 200 and "no-cache" in first.headers["cache-control"], path
            for validator in (etag, f"W/{etag.removeprefix('W/')}", "*", f'"other", {etag}'):
                again = client.get(path, headers={"If-None-Match": validator})
                assert again.status_code == 304 and again.content == b"", (path, validator, again.status_code)
                assert again.headers["etag"] == etag and "no-cache" in again.headers["cache-control"], path
            assert client.head(path, headers={"If-None-Match": etag}).status_code == 304, path
            assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200, path
        static = client.get("/static/app.js")
        modified = static.headers["last-modified"]
        assert client.get("/static/app.js", headers={"If-Modified-Since": modified}).status_code == 304
        # the same instant as asctime writes it (RFC 9110: a recipient takes all three forms; it came back naive)
        asctime = email.utils.parsedate_to_datetime(modified).strftime("%a %b %e %H:%M:%S %Y")
        assert client.get("/static/app.js", headers={"If-Modified-Since": asctime}).status_code == 304, asctime
        older = {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        assert client.get("/static/app.js", headers=older).status_code == 200
        # If-None-Match decides alone where given; a date that is none is ignored
        mixed = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert client.get("/static/app.js", headers=mixed).status_code == 200
        assert client.get("/static/app.js", headers={"If-Modified-Since": "yesterday"}).status_code == 200
        # an API answer has no validator: a tag never matches it
        assert client.get("/healthz", headers={"If-None-Match": '"x"'}).status_code == 200


def test_answers_of_a_kilobyte_and_more_are_gzipped(base: str, settings: Settings) -> None:
    """Every answer went out uncompressed to a client that accepts gzip (a 100-hit search: 135 KB for 14 KB)."""
    gzip, identity = {"Accept-Encoding": "gzip, br"}, {"Accept-Encoding": "identity"}
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in ("/schema/openapi.json", "/static/app.js", "/static/style.css", "/"):
            packed, plain = client.get(path, headers=gzip), client.get(path, headers=identity)
            assert packed.headers.get("content-encoding") == "gzip", (path, packed.headers)
            assert int(packed.headers["content-length"]) < len(plain.content) / 2, path
            assert packed.content == plain.content, path  # httpx decoded it
            for answer in (packed, plain):  # a shared cache keeps the two apart
                assert "accept-encoding" in answer.headers["vary"].lower(), (path, answer.headers)
            assert "content-encoding" not in plain.headers, path
            head = client.head(path, headers=gzip)
            assert head.headers["content-length"] == packed.headers["content-length"], path
        refused = client.get("/schema/openapi.json", headers={"Accept-Encoding": "gzip;q=0, br"})
        assert "content-encoding" not in refused.headers
        assert "content-encoding" not in client.get("/healthz", headers=gzip).headers  # under a kilobyte
        js = client.get("/static/app.js", headers=gzip)  # its bytes are not the identity file's
        assert js.headers["etag"].startswith("W/")
        assert client.get("/static/app.js", headers={**gzip, "If-None-Match": js.headers["etag"]}).status_code == 304
    with serve(dataclasses.replace(settings, gzip_level=0), None) as uncompressed:  # behind a proxy that compresses
        assert "content-encoding" not in httpx.get(f"{uncompressed}/schema/openapi.json", headers=gzip).headers
    with pytest.raises(SettingsError, match="PLINQY_GZIP_LEVEL"):
        Settings.from_env({**os.environ, "PLINQY_GZIP_LEVEL": "10"})


def test_the_readme_names_the_cdns_the_schema_pages_need(base: str) -> None:
    """/schema/swagger and /schema/redoc render blank without internet (their scripts come from CDNs) while the
    README pointed at /schema alone: it names each page and host, and the JSON and YAML are served here."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    with httpx.Client(base_url=base, timeout=30) as client:
        for document in ("/schema/openapi.json", "/schema/openapi.yaml"):
            assert client.get(document).status_code == 200, document
        for page in ("/schema", "/schema/redoc", "/schema/swagger", "/schema/rapidoc", "/schema/elements"):
            html = client.get(page)
            assert html.status_code == 200, page
            hosts = set(re.findall(r"""(?:src|href)=["']https?://([\w.-]+)""", html.text))  # not the spec's URLs
            assert hosts, f"{page} loads nothing from outside: the README's warning is out of date"
            named = {h for h in hosts if h in readme}
            assert f"`{page}`" in readme and named == hosts, (page, hosts - named)
