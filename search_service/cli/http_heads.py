"""The request heads' readings the server's protocol (http_server.py) needs beyond httptools': the method and target
of a refused request, an absolute-form target, a Transfer-Encoding's codings, and the body of a request carrying
`Upgrade`, which httptools leaves unread."""

from __future__ import annotations

import re
from collections.abc import Callable

import httptools

from search_service.api.access_log import shown_target

METHOD_TOKEN = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}) ")  # RFC 9110's token, then the space


def unknown_method(head_start: bytes) -> str | None:
    """The request's method when it is a well-formed token the parser does not know (501), else None."""
    token = METHOD_TOKEN.match(head_start)
    if token is None:
        return None
    probe = httptools.HttpRequestParser(None)
    try:
        probe.feed_data(token.group(1) + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    except httptools.HttpParserUpgrade:  # CONNECT: known (its head is refused in on_headers_complete)
        return None
    except httptools.HttpParserError:
        return token.group(1).decode("ascii")
    return None


REQUEST_LINE_START = re.compile(rb"([^ \r\n]*)(?: ([^ \r\n]*))?")  # its first two words, as far as read


def received_line(head_start: bytes, url: bytes) -> tuple[str, str]:
    """The method and target of a refused request as received, for its access line: the parser gives no method
    when it failed in it (`G\\x01T`), and no target when it failed inside it; each cut and percent-encoded, "-"
    where not read. Both "" when no byte of the line is known."""
    words = REQUEST_LINE_START.match(head_start.lstrip(b"\r\n"))  # empty lines before a request are allowed
    method, target = (words.group(1), url or words.group(2) or b"") if words else (b"", url)
    return ("", "") if not method and not target else (shown_target(method), shown_target(target))


def origin_form(url: bytes) -> bytes:
    """An absolute-form target with an empty path (`http://host:port?q`) as RFC 9112 3.2.1 reads it, `/?q`;
    any other target unchanged (uvicorn took the missing path for a malformed request: a 400)."""
    if url.startswith(b"/"):
        return url
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        return url  # the parser's 400 follows
    if parsed.schema is None or parsed.path is not None:
        return url
    return b"/" + (b"?" + parsed.query if parsed.query is not None else b"")


TE_AND_LENGTH = "both a Transfer-Encoding and a Content-Length (RFC 9112 6.1: send one)"


def chunked_last(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's Transfer-Encoding, if it has one, ends in chunked (llhttp's test: one token, any case)."""
    codings = b",".join(value for name, value in headers if name == b"transfer-encoding")
    return not codings or codings.rsplit(b",", 1)[-1].strip(b" \t").lower() == b"chunked"


# llhttp's reasons for the framing faults it refuses within the headers, before on_headers_complete's checks run,
# and what the 400 says of each (it sent the client to fix its request line)
PARSER_FRAMING_FAULTS = {
    # a coding after chunked (`chunked, gzip`), or chunked twice, in one Transfer-Encoding line or two
    "Invalid `Transfer-Encoding` header value": "a Transfer-Encoding whose last coding is not chunked, or with chunked "
    "twice (RFC 9112 6.1: chunked once, last)",
    "Content-Length can't be present with Transfer-Encoding": TE_AND_LENGTH,
    "Transfer-Encoding can't be present with Content-Length": TE_AND_LENGTH,
}


def framing_fault(parser_reason: str) -> str | None:
    """What a 400 says of the parser's error when it refused the body's framing in the headers, else None."""
    return PARSER_FRAMING_FAULTS.get(parser_reason)


def codings_before_chunked(headers: list[tuple[bytes, bytes]]) -> str:
    """The transfer codings applied before a request's final chunked (`gzip` of `gzip, chunked`), comma-joined and
    cut for an error message; "" when there are none. The server implements chunked alone (RFC 9112 6.1: 501)."""
    codings = b",".join(value for name, value in headers if name == b"transfer-encoding").split(b",")[:-1]
    named = b", ".join(token for coding in codings if (token := coding.strip(b" \t")))
    return named[:60].decode("ascii", "backslashreplace")


class UpgradeBody:
    """The body of a request carrying `Upgrade` (curl --http2's h2c, a WebSocket header), which the API ignores
    (RFC 9110 7.8): httptools takes what follows its head for the new protocol and reads no body, and the app saw
    an empty one ('the body is empty'). Read here by a parser of its own, framed as the head says (Content-Length,
    chunked, or none)."""

    def __init__(
        self, headers: list[tuple[bytes, bytes]], on_body: Callable[[bytes], None], on_complete: Callable[[], None]
    ) -> None:
        self.on_body, self._on_complete = on_body, on_complete
        self.complete = False
        framing = b"".join(name + b": " + value + b"\r\n" for name, value in headers if name in FRAMING)
        self.parser = httptools.HttpRequestParser(self)
        self.parser.feed_data(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + framing + b"\r\n")

    def on_message_complete(self) -> None:  # the parser's callback
        if not self.complete:
            self.complete = True
            self._on_complete()

    def feed(self, data: bytes) -> None:
        """The body's bytes as they come (httptools.HttpParserError for a malformed chunk); what follows the body
        is not read (the connection closes after the answer)."""
        if self.complete:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.complete:  # after it: the bytes past the body, refused as a closed connection's
                raise


FRAMING = (b"content-length", b"transfer-encoding")
