"""HTTP semantics that proxies, CDNs and browsers rely on, over a real server: HEAD wherever GET works."""

from __future__ import annotations

import httpx

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
