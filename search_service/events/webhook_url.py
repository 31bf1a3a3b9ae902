"""A webhook URL in one spelling (RFC 3986 6.2.2), so "one active subscription a URL" holds whatever the spelling.

`HTTPS://Example.com:443/a/../%61ll?` and `https://example.com/all` are one receiver: compared as written, the
second got 201 and the receiver each event twice under one webhook-id (and the database's lower-case scheme check
refused the first with a 500). httpx parses (scheme and host lower case, the port a number, dot segments resolved);
this module adds what httpx leaves: percent-escapes of unreserved characters decoded, the others' hex upper case, a
default port and an empty query dropped, an IPv6 literal in lower case, and the slash a path's last dot segment
leaves (RFC 3986 5.2.4: `/a/b/..` and `/a/.` are `/a/`; httpx made them `/a`, another resource to many receivers).
"""

from __future__ import annotations

import re
import urllib.parse
from urllib.parse import unquote

import httpx

from search_service.engine.text import INVISIBLE_CHARS
from search_service.events.ssrf import numeric_address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# a path ending in a dot segment (`/a/b/..`, `/a/.`), up to the query: its resolution keeps the slash before it
_LAST_DOT_SEGMENT = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*(?:/[^?#]*)?/\.\.?)(?=[?#]|$)")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# WHATWG drops these around a URL (urllib the leading ones); httpx read ` https://…` as a relative path: a 500
# and a no-break or zero-width space a page's copy brings (a trailing one was stored in the path, `/w%C2%A0`)
_AROUND = re.compile(rf"^[\x00-\x20\s{INVISIBLE_CHARS}]+|[\x00-\x20\s{INVISIBLE_CHARS}]+$")


def _escape_case(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _canonical_host(host: str) -> str:
    """One spelling of a host: an IP literal as its address (`134744072`, `8.8.2056` and `8.8.8.8` are one, as the
    SSRF guard reads them; IPv6 compressed), a percent-encoded name as its IDNA A-label, no trailing dot (`a.b.` is
    `a.b`, and an IP literal with one was looked up in the DNS as a name)."""
    if "%" in host:
        literal = unquote(host).partition("%")[0]
        address = numeric_address(literal)
        if address is not None:  # an IPv6 with a zone id: one address when global (the guard refuses the others)
            return address.compressed if address.version == 6 and not address.is_link_local else host
        try:
            host = httpx.URL(f"http://{unquote(host)}/").raw_host.decode("ascii").lower()
        except (httpx.InvalidURL, UnicodeError, ValueError):
            return host
    if host.endswith(".") and host.strip("."):
        host = host.rstrip(".")
    address = numeric_address(host)
    return host if address is None else address.compressed


def normalized(url: str) -> str:
    """The URL in its one spelling; a URL httpx cannot read, or not http(s) with a host, comes back as it was (the
    SSRF guard then says what is wrong with it). A fragment is kept: the caller refuses it. Spaces and control
    characters around it are dropped, invisible ones too (a trailing space was sent as `%20`, a leading one made
    the URL relative)."""
    url = _AROUND.sub("", url)
    decoded = _ESCAPE.sub(_escape_case, url)  # before parsing: `%2E%2E` is a dot segment too
    decoded = _LAST_DOT_SEGMENT.sub(r"\1/", decoded)  # `/a/b/..` as `/a/b/../`: httpx then keeps the slash
    try:
        parsed = httpx.URL(decoded)
    except (httpx.InvalidURL, ValueError):
        return url
    scheme = parsed.scheme
    host = _canonical_host(parsed.raw_host.decode("ascii").lower())
    if scheme not in _DEFAULT_PORTS or not host:
        return url
    if ":" in host:
        host = f"[{host}]"
    port = "" if parsed.port in (None, _DEFAULT_PORTS[scheme]) else f":{parsed.port}"
    path, _, query = parsed.raw_path.decode("ascii").partition("?")
    userinfo = parsed.userinfo.decode("ascii")
    return (
        f"{scheme}://{userinfo + '@' if userinfo else ''}{host}{port}{path or '/'}"
        f"{'?' + query if query else ''}{'#' + parsed.fragment if parsed.fragment else ''}"
    )


def url_host(url: str) -> str:
    """The host (and port) of a webhook URL for a log line: never its path or query, which may carry a token."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "?"
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host
