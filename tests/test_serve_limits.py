"""`serve` against slow and oversized clients, over raw sockets: a request head's size and read time,
keep-alive, and the answers the HTTP layer gives before the app sees a request (search_service/cli/http_server.py)."""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import struct
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from benchmarks.run import Server
from tests.ingest_helpers import new_store, store_key

HEADER_LIMIT = 8192
LIMITS = {"PLINQY_MAX_HEADER_BYTES": str(HEADER_LIMIT), "PLINQY_HEADER_TIMEOUT_S": "1", "PLINQY_KEEP_ALIVE_S": "2"}

pytestmark = pytest.mark.slow  # a real server, which loads the query model


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIMITS.items():
            env.setenv(name, value)
        server = Server(db_url, 64, tmp_path_factory.mktemp("serve") / "api.log", workers=1)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def port(server: Server) -> int:
    return server.port


def exchange(port: int, sent: bytes, wait_s: float = 10.0) -> tuple[bytes, float]:
    """What the server answers to `sent` until it closes the connection, and after how many seconds it closed."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(wait_s)
        started, answer = time.monotonic(), b""
        with contextlib.suppress(OSError):  # closed while we still sent: what it answered is read below
            for start in range(0, len(sent), 65536):  # until it answers
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(sent[start : start + 65536])
        with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread: after its answer
            while chunk := sock.recv(65536):
                answer += chunk
        return answer, time.monotonic() - started


def one_answer(sock: socket.socket) -> bytes:
    """One whole answer of a kept-alive connection (its head says its Content-Length)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def error_of(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert "content-type: application/json" in lines and "connection: close" in lines, answer[:400]
    return int(lines[0].split()[1]), json.loads(body)["error"]["message"]


def test_a_head_past_the_limit_is_a_431_or_414_and_closed(port: int) -> None:
    """Five clients each sending a 60 MB header took a worker from 313 to 613 MB; a whole 50 MB header was 200."""
    ok, _ = exchange(
        port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 7000 + b"\r\nConnection: close\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]
    big, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5_000_000 + b"\r\n\r\n")
    assert error_of(big) == (
        431,
        "the request's headers are too large: the request line and headers may take 8192 bytes",
    )
    long_url, _ = exchange(port, b"GET /v1/search?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert error_of(long_url) == (414, "the URL is too long: the request line and headers may take 8192 bytes")
    # a head within the limit read with its body in one go is not counted past its end
    body = b'{"name": "x"}' + b" " * 200_000
    put = b"PUT /v1/stores/00000000-0000-0000-0000-000000000000/listings/A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    put += b"Content-Type: application/json\r\nContent-Length: %d\r\nX-Pad: %s\r\n\r\n" % (len(body), b"p" * 7800)
    answer, _ = exchange(port, put + body)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]


def test_a_head_that_does_not_arrive_whole_in_time_is_a_408(port: int) -> None:
    """Half a request line, then nothing, was open after 200 s; a header line every 10 s kept a connection open."""
    half, waited = exchange(port, b"GET /heal")
    assert error_of(half) == (408, "the request's head did not arrive whole within 1 s") and 0.9 < waited < 4
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        with contextlib.suppress(OSError):  # a line every 0.3 s until the server answers
            while not select.select([sock], [], [], 0.3)[0] and time.monotonic() - started < 6:
                sock.sendall(b"X-Slow: b\r\n")
        answer = sock.recv(4096)
        assert time.monotonic() - started < 4
    assert error_of(answer)[0] == 408


def test_an_idle_connection_is_closed_after_the_keep_alive_setting(port: int) -> None:
    """Keep-alive was uvicorn's fixed 5 s (a load balancer idling 60 s then got occasional 502s): PLINQY_KEEP_ALIVE_S.
    A connection opened with nothing sent was held for ever; it is idle as a kept-alive one."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert one_answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(1.0)  # within the keep-alive: still served
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert one_answer(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(4096) == b""  # then closed, idle
        assert 1.5 < time.monotonic() - started < 4
    silent, waited = exchange(port, b"")
    assert silent == b"" and 1.5 < waited < 4


def test_a_request_the_parser_refuses_is_a_json_400(port: int) -> None:
    """It was `400 text/plain "Invalid HTTP request received."`: raw non-ASCII bytes in the URL, for one."""
    answer, _ = exchange(port, "GET /v1/search?q=crème HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, message = error_of(answer)
    assert status == 400 and message.startswith("invalid HTTP request") and "percent-encode" in message


def test_an_http11_request_needs_exactly_one_host(port: int) -> None:
    """RFC 9112 3.2: an HTTP/1.1 request without Host, or any with two, is a 400 (both were served)."""
    for head in (b"GET /healthz HTTP/1.1\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        status, message = error_of(exchange(port, head)[0])
        assert status == 400 and "Host" in message, (head, message)
    head, _ = exchange(port, b"HEAD /healthz HTTP/1.1\r\n\r\n")  # a HEAD's answer has no body (RFC 9110 9.3.2)
    assert head.startswith(b"HTTP/1.1 400") and head.endswith(b"\r\n\r\n"), head
    for served in (b"GET /healthz HTTP/1.0\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"):
        answer, _ = exchange(port, served)
        assert answer.split(b" ", 2)[1] == b"200", answer[:200]


def test_a_transfer_encoding_not_ending_in_chunked_is_one_400_before_the_app(port: int, server: Server) -> None:
    """RFC 9112 6.3. llhttp refused it only once the app had the request: a GET was answered 200 and then 400 (two
    lines logged, a pipelined request after it eaten), and a PATCH with a body waited for the connection's end."""
    for n, coding in enumerate((b"gzip", b"xchunked", b"chunked ;q=1", b"gzip\r\nTransfer-Encoding: deflate")):
        rid = f"te-{n}"
        sent = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\nTransfer-Encoding: %s\r\n\r\n" % (
            rid.encode(),
            coding,
        )
        answer, _ = exchange(port, sent + b"GET /v1/categories HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.count(b"HTTP/1.1 ") == 1 and error_of(answer) == (
            400,
            "invalid HTTP request: a Transfer-Encoding whose last coding is not chunked",
        ), answer[:600]
        assert '"GET /healthz HTTP/1.1" 400 Bad Request ' in logged_line(server, f"request_id={rid}")
    patch = b"PATCH /v1/stores/00000000-0000-0000-0000-000000000000/listings/TE2 HTTP/1.1\r\nHost: x\r\n"
    patch += b"Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n" + b'{"quantity": 7}'
    answer, waited = exchange(port, patch)
    assert error_of(answer)[0] == 400 and waited < 2, (answer[:300], waited)


def test_a_transfer_coding_before_chunked_is_a_501_naming_it(port: int, server: Server) -> None:
    """RFC 9112 6.1: a transfer coding the server does not implement is a 501. `gzip, chunked` was served, its body
    handed to the app still gzipped (a listing's PATCH: 'the body is not JSON')."""
    target = b"/v1/stores/00000000-0000-0000-0000-000000000000/listings/TE3"
    patch = b"PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % target
    body = (
        b"\r\n" + b"f\r\n" + b'{"quantity": 7}' + b"\r\n0\r\n\r\n" + b"GET /v1/categories HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    codings = {"gzip": b"gzip, chunked", "GZIP, deflate": b"GZIP ,deflate\r\nTransfer-Encoding: Chunked"}
    for n, (named, coding) in enumerate(codings.items()):
        answer, waited = exchange(
            port, patch + b"X-Request-Id: te-gzip-%d\r\nTransfer-Encoding: %s\r\n" % (n, coding) + body
        )
        status, message = error_of(answer)
        assert status == 501 and answer.count(b"HTTP/1.1 ") == 1 and waited < 2, (answer[:600], waited)
        assert message.startswith(f"the Transfer-Encoding {named} is not implemented"), message
        line = logged_line(server, f"request_id=te-gzip-{n}")
        assert f'"PATCH {target.decode()} HTTP/1.1" 501 Not Implemented ' in line, line
    head = b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    answer, _ = exchange(port, head)  # a HEAD's answer has no body
    assert answer.startswith(b"HTTP/1.1 501") and answer.endswith(b"\r\n\r\n"), answer
    plain = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"
    answer, _ = exchange(port, plain)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_a_transfer_encoding_refused_in_the_headers_or_sent_with_http10_is_a_400_naming_it(
    port: int, server: Server
) -> None:
    """RFC 9112 6.1. llhttp refuses `chunked, gzip`, chunked twice and chunked beside a Content-Length before
    on_headers_complete: the 400 sent the client to fix its request line. HTTP/1.0 has no chunked framing: its
    Transfer-Encoding is faulty framing (a 400 and close), it was served."""
    target = b"/v1/stores/00000000-0000-0000-0000-000000000000/listings/TE4"
    put = b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % target
    body = b"\r\n" + b"f\r\n" + b'{"quantity": 7}' + b"\r\n0\r\n\r\n"
    last, both = "whose last coding is not chunked", "both a Transfer-Encoding and a Content-Length"
    framings = {
        b"Transfer-Encoding: chunked, gzip": last,
        b"Transfer-Encoding: chunked, chunked": "chunked twice",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked": "chunked twice",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5": both,
        b"Content-Length: 5\r\nTransfer-Encoding: chunked": both,
    }
    for n, (framing, said) in enumerate(framings.items()):
        answer, waited = exchange(port, put + b"X-Request-Id: te-head-%d\r\n%s\r\n" % (n, framing) + body)
        status, message = error_of(answer)
        assert status == 400 and message.startswith("invalid HTTP request: ") and said in message, (framing, message)
        assert "Transfer-Encoding" in message and "request line" not in message and waited < 2, (message, waited)
        line = logged_line(server, f"request_id=te-head-{n}")
        assert f'"PUT {target.decode()} HTTP/1.1" 400 Bad Request ' in line, line
    for old in (b"GET /healthz HTTP/1.0\r\n", b"PUT %s HTTP/1.0\r\nContent-Type: application/json\r\n" % target):
        answer, waited = exchange(port, old + b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n" + body)
        status, message = error_of(answer)
        assert status == 400 and "Transfer-Encoding in an HTTP/1.0 request" in message, answer[:400]
        assert answer.count(b"HTTP/1.1 ") == 1 and waited < 2, (answer[:600], waited)


def test_an_unknown_method_is_a_501_naming_it(port: int) -> None:
    """RFC 9110 9.1: a method the server does not recognise is a 501 (it was the parser's 400)."""
    for method in ("FOO", "get", "BREW"):
        status, message = error_of(exchange(port, f"{method} /healthz HTTP/1.1\r\nHost: x\r\n\r\n".encode())[0])
        assert status == 501 and f"method {method} " in message, (method, message)
    known, _ = exchange(port, b"PROPFIND /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert known.split(b" ", 2)[1] == b"405", known[:200]


def test_a_bad_request_pipelined_behind_a_good_one_is_answered_after_it(port: int) -> None:
    """The connection was closed at once, throwing away the good request's answer still being written: the client
    got nothing for either."""
    good = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    for bad, status in ((b"FOO /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 501), (b"GET /healthz HTTP/1.1\r\n\r\n", 400)):
        answer, _ = exchange(port, good + good + bad)
        first, second, rest = answer.split(b"HTTP/1.1 ", 3)[1:]
        assert first.startswith(b"200") and second.startswith(b"200"), answer[:300]
        assert error_of(b"HTTP/1.1 " + rest)[0] == status, answer[-300:]


def test_a_connect_is_a_json_405_and_an_absolute_url_without_a_path_is_served_as_slash(port: int) -> None:
    """`CONNECT host:port` (authority form) was closed with no answer (the 501 probe met the parser's upgrade);
    `GET http://host:port` was the parser's 400, where RFC 9112 3.2.1 reads the empty path as `/`."""
    for connect in (
        f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
        "CONNECT / HTTP/1.0\r\n\r\n",
    ):
        answer, _ = exchange(port, connect.encode())
        status, message = error_of(answer)
        assert status == 405 and "CONNECT is not allowed" in message, answer[:300]
        assert b"\r\nallow: DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT\r\n" in answer, answer[:300]
    for absolute, origin in ((f"http://127.0.0.1:{port}", "/"), (f"http://127.0.0.1:{port}?q=milk", "/?q=milk")):
        answers = [
            exchange(port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())[0]
            for target in (absolute, origin)
        ]
        assert b"invalid HTTP request" not in answers[0], answers[0][:300]
        assert answers[0].split(b"\r\n", 1)[0] == answers[1].split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK", answers
        assert answers[0].partition(b"\r\n\r\n")[2] == answers[1].partition(b"\r\n\r\n")[2]


def test_each_access_line_has_the_requests_duration_and_id(server: Server) -> None:
    """uvicorn's access line, written when the answer's head went out, had neither a duration nor a request id.
    Each answer says its id (the client's own where usable) and the line written once it is sent names both."""
    answers = {
        "own": httpx.get(f"{server.base}/healthz?line=own", headers={"X-Request-Id": "trace-7.a:b/c+d=e@f"}),
        "none": httpx.get(f"{server.base}/healthz?line=none"),
        "unusable": httpx.get(f"{server.base}/healthz?line=unusable", headers={"X-Request-Id": "a b\\c" + "x" * 200}),
        "head": httpx.head(f"{server.base}/v1/search?q=milk&line=head", headers={"X-Request-Id": "h-1"}),
    }
    ids = {name: answer.headers["x-request-id"] for name, answer in answers.items()}
    assert ids["own"] == "trace-7.a:b/c+d=e@f" and ids["head"] == "h-1", ids
    assert (
        all(re.fullmatch(r"[0-9a-f]{32}", ids[name]) for name in ("none", "unusable"))
        and ids["none"] != ids["unusable"]
    ), ids
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while len(lines) < len(answers):
        assert time.monotonic() < deadline, server.log_path.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
        logged = server.log_path.read_text(errors="replace").splitlines()
        lines = {name: line for name in answers for line in logged if f"line={name} HTTP/1.1" in line}
    for name, line in lines.items():
        method = "HEAD" if name == "head" else "GET"
        access = re.search(rf' INFO \[\d+\] uvicorn\.access: 127\.0\.0\.1:\d+ - "{method} \S+ HTTP/1\.1" 200 OK '
                           r"(\d+\.\d)ms request_id=(\S+)$", line)  # fmt: skip
        assert access is not None and access.group(2) == ids[name], line
        assert 0 <= float(access.group(1)) < 30_000, line
    assert sum("line=own" in line for line in logged) == 1  # one line a request (uvicorn's own is off)


def logged_line(server: Server, marker: str) -> str:
    """The server log's one line holding `marker`, once written (within 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in server.log_path.read_text(errors="replace").splitlines() if marker in line]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, server.log_path.read_text(errors="replace")[-3000:]
            return found[0]
        time.sleep(0.1)


def test_a_client_that_leaves_before_its_body_is_whole_is_logged_and_counted_as_499(
    server: Server, db_url: str
) -> None:
    """The app, finding the body cut short, answered 500 to no one: the access line said 500 Internal Server Error
    and /metrics counted a status="500" though nothing failed and no 500 was sent. nginx's 499 is the convention."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, None, "stores:write")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/stores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\nX-Request-Id: left-early-1\r\n\r\n{\"name\":"
        )  # fmt: skip
        time.sleep(0.3)  # the app is reading the body
    line = logged_line(server, "request_id=left-early-1")
    assert '"POST /v1/stores HTTP/1.1" 499 Client Closed Request ' in line, line
    counted = re.findall(r'plinqy_http_request_duration_seconds_count\{([^}]*)\} (\S+)', httpx.get(
        f"{server.base}/metrics").text)  # fmt: skip
    stores = {labels: value for labels, value in counted if 'route="/v1/stores"' in labels and "POST" in labels}
    assert [labels for labels in stores if 'status="499"' in labels] and not [
        labels for labels in stores if 'status="500"' in labels
    ], stores


def test_the_servers_own_answers_carry_a_request_id_cors_and_one_access_line(port: int, server: Server) -> None:
    """serve's protocol answers some requests before the app sees them: they had no X-Request-Id and no CORS
    headers, a 408/414/431 left no log line and a 400/405/501 only 'Invalid HTTP request received.'. Each now has
    the client's id where its header was read (else a new one), the app's Access-Control-Allow-Origin, and a line."""

    def own(rid: bytes) -> bytes:  # a header is read whole once the next begins
        return b"Host: x\r\nX-Request-Id: " + rid + b"\r\nOrigin: https://shop.example\r\n"

    cases = [
        (431, b"GET /healthz HTTP/1.1\r\n" + own(b"own-431") + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n", "own-431"),
        (414, b"GET /healthz?q=" + b"a" * 40_000 + b" HTTP/1.1\r\n" + own(b"own-414") + b"\r\n", None),
        (408, b"GET /healthz HTTP/1.1\r\n" + own(b"own-408"), "own-408"),
        (405, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n" + own(b"own-405") + b"\r\n", "own-405"),
        (501, b"FOO /healthz HTTP/1.1\r\n" + own(b"own-501") + b"\r\n", None),
        (400, "GET /v1/search?q=crème HTTP/1.1\r\n".encode() + own(b"own-400") + b"\r\n", None),
    ]
    expected_line = {431: '"GET /healthz HTTP/1.1" 431 Request Header Fields Too Large ',
                     414: '"GET /healthz?q=' + "a" * (256 - 11) + '...[8188B] HTTP/-" 414 Request-URI Too Long ',
                     408: '"GET /healthz HTTP/1.1" 408 Request Timeout ',
                     405: '"CONNECT 127.0.0.1:1 HTTP/1.1" 405 Method Not Allowed ',
                     501: '"FOO /healthz HTTP/-" 501 Not Implemented ',
                     400: '"GET /v1/search?q=cr%C3%A8me HTTP/-" 400 Bad Request '}  # fmt: skip
    for status, sent, kept_id in cases:
        answer, _ = exchange(port, sent)
        assert error_of(answer)[0] == status, answer[:300]
        head = dict(line.split(": ", 1) for line in answer.partition(b"\r\n\r\n")[0].decode().lower().split("\r\n")[1:])
        rid = answer.partition(b"\r\n\r\n")[0].split(b"x-request-id: ", 1)[-1].split(b"\r\n", 1)[0].decode()
        assert "x-request-id" in head and head.get("access-control-allow-origin") == "*", (status, answer[:600])
        assert rid == kept_id if kept_id else re.fullmatch(r"[0-9a-f]{32}", rid), (status, rid)
        line = logged_line(server, f"request_id={rid}")
        assert re.search(r' INFO \[\d+\] uvicorn\.access: 127\.0\.0\.1:\d+ - "', line), line
        assert expected_line[status] in line and re.search(r" \d+\.\dms request_id=", line), (status, line)


def test_the_access_line_shows_the_target_as_sent(port: int, server: Server) -> None:
    """The line showed the path after the routing changed it: `/static/app.js/` as `/static/app.js`, a trailing
    slash dropped, `OPTIONS *` as `%2A`, `/v1/search%3Fq=oat` as `/v1/search%3Fq%3Doat`."""
    sent = {
        "as-sent-1": ("GET", "/static/app.js/"),
        "as-sent-2": ("GET", "/v1/search/?q=milk"),
        "as-sent-3": ("OPTIONS", "*"),
        "as-sent-4": ("GET", "/v1/search%3Fq=oat"),
        "as-sent-5": ("GET", '/healthz?a=%0a&b="x"'),
    }
    for rid, (method, target) in sent.items():
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nX-Request-Id: {rid}\r\nConnection: close\r\n\r\n"
        assert exchange(port, head.encode())[0].startswith(b"HTTP/1.1 "), rid
    for rid, (method, target) in sent.items():
        shown = target.replace('"', "%22")  # a quote could end the line's quoted request
        assert f'"{method} {shown} HTTP/1.1" ' in logged_line(server, f"request_id={rid}"), rid


def test_a_long_target_is_cut_in_every_access_line(port: int, server: Server) -> None:
    """A served request's target was logged whole (a 20 KB query string, 20 KB of log a request: a cheap flood)
    while serve's own refusals cut theirs at 256 bytes: every line cuts it there, saying so and how long it was."""
    target = "/healthz?at=long-target&pad=" + "a" * 7000
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Request-Id: long-target\r\nConnection: close\r\n\r\n"
    assert exchange(port, head.encode())[0].startswith(b"HTTP/1.1 200"), target[:40]
    line = logged_line(server, "request_id=long-target")
    assert f'"GET {target[:256]}...[{len(target)}B] HTTP/1.1" 200 OK ' in line and len(line) < 500, line[:600]


def test_a_request_refused_for_its_url_bytes_is_logged_with_its_target(port: int, server: Server) -> None:
    """Raw UTF-8 or a control byte in the target was logged `"GET - HTTP/-" 400` though its bytes were read: the
    target is shown as far as read, percent-encoded."""
    for target, shown in (
        (b"/v1/search?q=cr\xc3\xa8me&at=url-bytes", "/v1/search?q=cr%C3%A8me&at=url-bytes"),
        (b"/a\x01b", "/a%01b"),
        (b"/x" + b"\xff" * 300, "/x" + "%FF" * 254 + "...[302B]"),
    ):
        assert error_of(exchange(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0])[0] == 400, target
        logged_line(server, f'"GET {shown} HTTP/-" 400 Bad Request ')  # its id is a new one: the header was not read


def test_a_request_line_with_a_bad_method_is_logged_as_received(port: int, server: Server) -> None:
    """A method that is no token (a control byte, a TLS handshake sent to the HTTP port) was logged
    `"- - HTTP/-" 400`: its method and target are shown as received, percent-encoded and cut as a target is."""
    tls = b"\x16\x03\x01\x02\x00\x01\x00" + b"\xfc" * 400
    for sent, shown in (
        (b"G\x01T /?at=bad-method HTTP/1.1\r\nHost: x\r\n\r\n", '"G%01T /?at=bad-method HTTP/-" 400 Bad Request '),
        (b'G"T /?at=quoted-method HTTP/1.1\r\nHost: x\r\n\r\n', '"G%22T /?at=quoted-method HTTP/-" 400 '),
        (tls, '"%16%03%01%02%00%01%00' + "%FC" * 249 + '...[336B] - HTTP/-" 400 Bad Request '),  # as far as kept
    ):
        assert error_of(exchange(port, sent)[0])[0] == 400, sent[:40]
        logged_line(server, shown)
    # a request after a body read on its own: the protocol finds no start of its line (the marker, not "- -")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(b"POST /v1/stores HTTP/1.1\r\nHost: x\r\nX-Request-Id: body-first\r\nContent-Length: 5\r\n\r\n")
        time.sleep(0.3)
        sock.sendall(b"abcdeG\x01T /?at=after-body HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answers += chunk
    assert b"HTTP/1.1 400" in answers, answers[:600]
    logged_line(server, '"<unparsable request line>" 400 Bad Request ')
    assert ' - "- - HTTP/-" ' not in server.log_path.read_text(errors="replace")


def test_a_refusal_is_logged_once_without_uvicorns_warning(port: int, server: Server) -> None:
    """uvicorn's 'WARNING uvicorn.error: Invalid HTTP request received.' (no request id) preceded each 400, 405 and
    501's access line: every refusal was logged twice."""
    warned = "Invalid HTTP request received."
    before = server.log_path.read_text(errors="replace").count(warned)
    for status, head in (
        (400, b"GET /a\x02b?at=once HTTP/1.1\r\nHost: x\r\n\r\n"),
        (405, b"CONNECT /?at=once HTTP/1.1\r\nHost: x\r\nX-Request-Id: once-405\r\n\r\n"),
        (501, b"FOO /?at=once HTTP/1.1\r\nHost: x\r\n\r\n"),
    ):
        assert error_of(exchange(port, head)[0])[0] == status
    for marker in ('"GET /a%02b?at=once HTTP/-" 400', "request_id=once-405", '"FOO /?at=once HTTP/-" 501'):
        logged_line(server, marker)
    assert server.log_path.read_text(errors="replace").count(warned) == before


def test_a_client_that_leaves_during_a_get_is_logged_and_counted_as_499(server: Server) -> None:
    """A GET never calls receive(), so the app never heard the client leave: a search whose client reset the
    connection 5 ms after asking was logged and counted as a 200 sent."""
    before = _search_count(httpx.get(f"{server.base}/metrics").text, "499")
    for attempt in range(3):  # a search faster than the reset is a 200 indeed: another, on a new query
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                f"GET /v1/search?q=oat+milk+{attempt}&facets=brand,category HTTP/1.1\r\nHost: x\r\n"
                f"X-Request-Id: left-get-{attempt}\r\n\r\n".encode()
            )
            time.sleep(0.005)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closed with an RST
        if " 499 Client Closed Request " in logged_line(server, f"request_id=left-get-{attempt}"):
            break
    else:
        raise AssertionError(server.log_path.read_text(errors="replace")[-3000:])
    assert _search_count(httpx.get(f"{server.base}/metrics").text, "499") == before + 1


def _search_count(metrics: str, status: str) -> float:
    counted = re.findall(r"plinqy_http_request_duration_seconds_count\{([^}]*)\} (\S+)", metrics)
    found = [
        float(value) for labels, value in counted if 'route="/v1/search"' in labels and f'status="{status}"' in labels
    ]
    return sum(found)


def test_a_refusal_pipelined_behind_a_slow_request_is_logged_after_it(port: int, server: Server) -> None:
    """It was logged as it was read, before the requests ahead of it were answered, with a 0.2 ms duration."""
    slow = b"GET /v1/search?q=pipelined+oat+drink&facets=brand HTTP/1.1\r\nHost: a\r\nX-Request-Id: pipe-7\r\n\r\n"
    answer, _ = exchange(port, slow + b"FOO /?at=pipe-7 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 501" in answer, answer[:300]
    refused = logged_line(server, '"FOO /?at=pipe-7 HTTP/-" 501 ')
    logged = server.log_path.read_text(errors="replace").splitlines()
    searched = logged_line(server, "request_id=pipe-7")
    assert logged.index(searched) < logged.index(refused), (searched, refused)
    duration = [float(re.findall(r" (\d+\.\d)ms ", line)[0]) for line in (searched, refused)]
    assert duration[1] >= duration[0] * 0.9, duration  # from the refused head's first byte, read with the search's


def _counted(metrics: str, route: str, method: str, status: str) -> float:
    counted = re.findall(r"plinqy_http_request_duration_seconds_count\{([^}]*)\} (\S+)", metrics)
    wanted = (f'route="{route}"', f'method="{method}"', f'status="{status}"')
    return sum(float(value) for labels, value in counted if all(label in labels for label in wanted))


def test_options_asterisk_preflights_and_the_servers_own_refusals_are_counted(port: int, server: Server) -> None:
    """`OPTIONS *`, CORS preflights and serve's own 400/405/408/414/431/501 never appeared in /metrics: a scanner's
    flood was invisible. The app's are counted under route "unmatched", serve's under "refused"."""
    preflight = "OPTIONS /v1/search HTTP/1.1\r\nHost: x\r\nOrigin: https://shop.example\r\n"
    sent = {
        ("unmatched", "OPTIONS", "204"): [
            "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            preflight + "Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
        ],
        ("refused", "other", "501"): ["FOO / HTTP/1.1\r\nHost: x\r\n\r\n", "BREW / HTTP/1.1\r\nHost: x\r\n\r\n"],
        ("refused", "GET", "400"): ["GET / HTTP/1.1\r\n\r\n"],
        ("refused", "CONNECT", "405"): ["CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n"],
        ("refused", "GET", "431"): ["GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 9000 + "\r\n\r\n"],
    }
    before = httpx.get(f"{server.base}/metrics").text
    for heads in sent.values():
        for head in heads:
            assert exchange(port, head.encode())[0].startswith(b"HTTP/1.1 "), head[:60]
    time.sleep(0.2)  # the last line and count follow its answer
    after = httpx.get(f"{server.base}/metrics").text
    for labels, heads in sent.items():
        assert _counted(after, *labels) - _counted(before, *labels) == len(heads), (labels, after[-3000:])


CHUNKED_BODY_FAULT = "invalid HTTP request: a malformed chunked body"


def test_a_malformed_chunked_body_is_one_prompt_400(port: int, server: Server, db_url: str) -> None:
    """A bad chunk was taken for a later pipelined request's fault: a write, its app awaiting the body, was answered
    408 'the request body stalled' after 30 s, and a GET (its app not reading the body) got its 200 and then the
    400: two answers to one request. It is that request's 400, at once, and one line."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, None, "stores:write")
    head = b"POST /v1/stores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
    head += b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-Request-Id: bad-chunk-%d\r\n\r\n"
    name = b'{"name": "chunk"}'
    for n, body in enumerate((b"11\r\n" + name + b"\r\nzz\r\n\r\n", b"+11\r\n" + name + b"\r\n0\r\n\r\n",
                              b"11\r\n" + name + b"0\r\n\r\n", b"zz\r\n")):  # fmt: skip
        answer, waited = exchange(port, head % n + body)
        assert answer.count(b"HTTP/1.1 ") == 1 and error_of(answer)[0] == 400 and waited < 3, (n, answer[:400])
        assert error_of(answer)[1].startswith(CHUNKED_BODY_FAULT), answer[:400]
        assert '"POST /v1/stores HTTP/1.1" 400 Bad Request ' in logged_line(server, f"request_id=bad-chunk-{n}")
    bad_get = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    answer, _ = exchange(port, bad_get)
    assert answer.count(b"HTTP/1.1 ") == 1 and error_of(answer)[1].startswith(CHUNKED_BODY_FAULT), answer[:400]
    answer, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + bad_get)  # pipelined behind a good one
    assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1 ") == 2, answer[:600]
    assert error_of(b"HTTP/1.1 " + answer.split(b"HTTP/1.1 ")[2])[1].startswith(CHUNKED_BODY_FAULT), answer[-300:]
    with socket.create_connection(("127.0.0.1", port)) as sock:  # the app already reading the body
        sock.settimeout(5)
        sock.sendall(head % 9 + b'2\r\n{"\r\n')
        time.sleep(0.3)
        started = time.monotonic()
        sock.sendall(b"zz\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert error_of(answer)[0] == 400 and time.monotonic() - started < 3, answer[:400]
    assert '"POST /v1/stores HTTP/1.1" 400 Bad Request ' in logged_line(server, "request_id=bad-chunk-9")
    with socket.create_connection(("127.0.0.1", port)) as sock:  # answered before its body went bad: closed
        sock.settimeout(5)
        sock.sendall(bad_get.replace(b"zz", b"1\r\na"))
        assert one_answer(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"\r\nzz\r\n")
        assert sock.recv(4096) == b""


def test_a_websocket_handshake_is_answered_and_logged_by_the_app_its_key_redacted(
    port: int, server: Server, db_url: str
) -> None:
    """uvicorn's WebSocket handler took an `Upgrade: websocket` request: a bare 403 without X-Request-Id, and a
    `"WebSocket <target>" 403` line with the target as sent, a key in it too, outside the access log's redaction.
    The API has no WebSocket route: the app answers it as any request, logged once with the key redacted, and the
    connection closes after it; an h2c upgrade is served without uvicorn's 'Unsupported upgrade request.'."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, None, "stores:write")
    upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    targets = {"ws-1": f"/v1/search?q=milk&api_key={key}", "ws-2": f"/v1/stores/{uuid.uuid4()}/listings/{key}"}
    for rid, target in targets.items():
        sent = f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Request-Id: {rid}\r\n".encode() + upgrade
        pipelined = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # not read: the connection ends with the answer
        answer, _ = exchange(port, sent + b"Sec-WebSocket-Version: 13\r\n\r\n" + pipelined)
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode().lower().split("\r\n")
        assert f"x-request-id: {rid}" in lines and "connection: close" in lines, answer[:600]
        assert isinstance(json.loads(body), dict) and answer.count(b"HTTP/1.1 ") == 1, answer[:600]
        assert f" request_id={rid}" in logged_line(server, f"request_id={rid}")
    h2c = b"GET /healthz?h2c HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    answer, _ = exchange(port, h2c + b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nX-Request-Id: h2c-1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-request-id: h2c-1" in answer, answer[:600]
    logged_line(server, "request_id=h2c-1")
    log_text = server.log_path.read_text(errors="replace")
    assert key not in log_text and key[4:] not in log_text and "api_key=plq_[redacted]" in log_text
    assert "WebSocket" not in log_text and "Unsupported upgrade" not in log_text, log_text[-3000:]


def test_the_body_of_a_request_with_upgrade_is_read_and_applied(port: int, server: Server, db_url: str) -> None:
    """httptools leaves what follows the head of a request with `Upgrade` (curl --http2's h2c, a WebSocket header)
    for the new protocol: the app read no body, a listing write was told 'the body is empty' and a CSV import
    'the file is empty' (an aborted batch recorded). The API ignores the Upgrade: the body, whole as its
    Content-Length or chunks frame it, even sent after the head, is the app's, and the write applied."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store_id = new_store(conn)
        key = store_key(conn, store_id, "listings:write")
    sent = {
        "h2c": (b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n"),
        "ws": b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    }
    for name, upgrade in sent.items():
        body = json.dumps({"name": f"Upgrade {name}", "price": 2, "quantity": 1}).encode()
        framed = b"content-length: %d\r\n\r\n" % len(body) + body
        if name == "ws":  # chunked, in two chunks
            framed = b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (5, body[:5])
            framed += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 5, body[5:])
        head = f"PUT /v1/stores/{store_id}/listings/UP-{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(10)
            split = framed.index(b"\r\n\r\n") + 4 + 3
            sock.sendall(head.encode() + b"content-type: application/json\r\n" + upgrade + framed[:split])
            time.sleep(0.3)  # the rest of the body in a later read
            sock.sendall(framed[split:])
            answer = b""
            while chunk := sock.recv(65536):  # the connection closes after the answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:600]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["listing"]["sku"] == f"UP-{name}", answer[:600]
    bad = b"POST /v1/stores/%s/listings/batch HTTP/1.1\r\nHost: x\r\n" % str(store_id).encode()
    answer, _ = exchange(port, bad + sent["ws"] + b"transfer-encoding: chunked\r\n\r\nzz\r\n")
    assert error_of(answer) == (400, "invalid HTTP request: a malformed chunked body (each chunk: its size in hex, "
                                "CRLF, its bytes, CRLF; the last: 0, CRLF, CRLF)"), answer[:600]  # fmt: skip
