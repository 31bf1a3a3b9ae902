"""What a hostile client's request does to the answer and to the log, over a real server: no server path in an
answer, no 500 (and no traceback) for a path the file system refuses, no forged log line."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import get
from litestar.params import PathParameter

from search_service.settings import Settings
from tests.ingest_helpers import serve


def raw_request(base: str, method: str, target: str) -> tuple[int, bytes]:
    """The status and body of `method target` sent byte for byte (an HTTP client normalises `%2e` and the like)."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize("target", ["/static/app.js%00.css", "/static/%00", "/static/" + "a" * 300])
def test_a_static_name_the_file_system_refuses_is_a_404_not_a_500(
    base: str, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A NUL byte made Path.stat() raise ValueError, a name over NAME_MAX an OSError: a 500 each time, the NUL's
    with a 40-line traceback at ERROR."""
    with caplog.at_level(logging.WARNING):
        for method in ("GET", "HEAD"):
            status, body = raw_request(base, method, target)
            assert status == 404, (method, target, body)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    status, body = raw_request(base, "GET", "/static/app.js")
    assert status == 200 and body


@pytest.mark.parametrize("target", ["/static/%2e", "/static/%2e%2e", "/static/nope.js", "/static/app.js%00"])
def test_a_static_404_names_no_path_on_the_server(base: str, target: str) -> None:
    """It said "no file or directory match the path /work/main/search_service/api/static was found"."""
    status, body = raw_request(base, "GET", target)
    assert status == 404
    assert json.loads(body) == {"error": {"parameter": None, "message": "no such file under /static"}}


@pytest.mark.parametrize("target", ["/static/app.js/", "/static/app.js/.", "/static/app.js%2f", "/static/app.js%2F."])
def test_a_static_file_named_as_a_directory_is_a_404(base: str, target: str) -> None:
    """A trailing slash (or `/.`) after a file's name served the file, as if it were a directory's index."""
    for method in ("GET", "HEAD"):
        status, body = raw_request(base, method, target)
        assert status == 404, (method, target, body[:200])
    assert raw_request(base, "GET", "/static/./app.js")[0] == 200


def test_options_asterisk_is_the_servers_methods(base: str) -> None:
    """`OPTIONS *` (RFC 9110 9.3.7: the server as a whole) was a 404."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "http/1.1 204 no content" and body == b"", answer
    assert "allow: delete, get, head, options, patch, post, put" in lines, lines
    assert any(line.startswith("x-request-id: ") for line in lines), lines


@contextmanager
def logged_to(caplog: pytest.LogCaptureFixture, name: str, level: int) -> Iterator[None]:
    """`name`'s records at `level` and above in caplog, whatever the server's logging set-up did to the root's
    handlers (litestar's replaces them; uvicorn's access logger does not propagate)."""
    logger = logging.getLogger(name)
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(level, logger=name):
            yield
    finally:
        logger.removeHandler(caplog.handler)


FORGED = "2026-12-06 10:00:00,000 CRITICAL forged: admin key leaked"


@get("/v1/test-crash/{rest:str}", sync_to_thread=False)
def crash(rest: Annotated[str, PathParameter()]) -> None:
    raise RuntimeError("an unexpected error")


def test_a_request_s_control_characters_stay_in_its_error_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The unhandled error's line wrote the decoded path as it was: its %0a wrote a whole forged line, its %00 a raw
    NUL (grep then called the log binary); and it said GET of a HEAD."""
    target = "/v1/test-crash/x%0a" + FORGED.replace(" ", "%20") + "%00%1b[2J"
    with serve(settings, None, [crash]) as url, logged_to(caplog, "search_service.api", logging.ERROR):
        assert raw_request(url, "HEAD", target) == (500, b"")
        status, body = raw_request(url, "GET", target)
    assert status == 500 and json.loads(body)["error"]["message"] == "internal error"
    lines = [
        re.sub(r" request_id=[0-9a-f]{32}$", "", r.getMessage())
        for r in caplog.records
        if r.name == "search_service.api"
    ]
    escaped = "/v1/test-crash/x\\n" + FORGED + "\\x00\\x1b[2J"
    assert lines == [f"unhandled error on HEAD {escaped}", f"unhandled error on GET {escaped}"]


def test_an_unhandled_error_s_line_carries_the_request_s_id(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The ERROR line with the traceback named the method and path only: with several workers and concurrent requests
    it was not matched to the client's `X-Request-Id` nor to the access line that has the id."""
    with serve(settings, None, [crash]) as url, logged_to(caplog, "search_service.api", logging.ERROR):
        sent = httpx.get(f"{url}/v1/test-crash/a", headers={"X-Request-Id": "crash-7"}, timeout=30)
        made = httpx.get(f"{url}/v1/test-crash/b", timeout=30)
    assert sent.status_code == made.status_code == 500 and sent.headers["x-request-id"] == "crash-7"
    records = [r for r in caplog.records if r.name == "search_service.api"]
    assert [r.getMessage() for r in records] == [
        "unhandled error on GET /v1/test-crash/a request_id=crash-7",
        f"unhandled error on GET /v1/test-crash/b request_id={made.headers['x-request-id']}",
    ]
    assert all(r.exc_info for r in records)  # the traceback is still the line's


def test_a_request_s_control_characters_stay_in_its_access_line(base: str, caplog: pytest.LogCaptureFixture) -> None:
    """The access line's redaction decodes a query string that hides a key in percent-encoding: the %0a after it
    ended the line and forged the next."""
    with logged_to(caplog, "uvicorn.access", logging.INFO):
        query = "api_key=%70%6C%71%5F469Eab%0a" + FORGED.replace(" ", "%20")
        raw_request(base, "GET", f"/healthz?{query}")
    # uvicorn's own line and api/access_log's (this fixture runs plain uvicorn, not serve's protocol): both escaped
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert lines and any("request_id=" in line for line in lines), lines
    for line in lines:
        assert "\n" not in line and "plq_[redacted]\\n2026-12-06" in line, line
