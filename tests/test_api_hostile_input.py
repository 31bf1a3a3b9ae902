"""What a hostile client's request does to the answer and to the log, over a real server: no server path in an
answer, no 500 (and no traceback) for a path the file system refuses, no forged log line."""

from __future__ import annotations

import json
import logging
import socket
from urllib.parse import urlsplit

import pytest


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
