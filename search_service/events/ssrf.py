"""The SSRF guard: which webhook URLs we may call, and the addresses we then connect to.

A URL must be https (http only for hosts in PLINQY_WEBHOOK_ALLOW_HOSTS, matched on the host as written), and every
address its host resolves to must be a public unicast one. IP literals are read the way the C resolver reads
them (getaddrinfo with AI_NUMERICHOST: 2130706433, 0177.0.0.1, 127.1, 0x7f000001 are all 127.0.0.1), so no
spelling slips past. The check runs at registration and again before every delivery, and the delivery connects
to an address that was checked (events/transport.py pins them), so a second DNS answer cannot swap it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the name resolves to (tests pass a local table; nothing is sent).
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NETWORKS: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "the cloud metadata address"),
    ("192.0.0.192/32", "a cloud metadata address (Oracle Cloud Classic)"),
    ("100.64.0.0/10", "a carrier-grade NAT (CGNAT) address"),
    # IANA special-purpose blocks that Python 3.11's ipaddress calls global: no webhook receiver lives there
    ("192.0.0.0/24", "an IETF protocol assignment (special-purpose) address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("fc00::/7", "an IPv6 unique local (ULA) address"),
    ("fe80::/10", "an IPv6 link-local address"),
    ("fec0::/10", "an IPv6 site-local address (deprecated, RFC 3879)"),
    ("64:ff9b::/96", "a NAT64 address (it embeds an IPv4 address)"),
    ("2002::/16", "a 6to4 address (it embeds an IPv4 address)"),
    ("2001::/32", "a Teredo address (it embeds an IPv4 address)"),
    # documentation space (2001:db8::/32 Python already calls private): the second prefix, RFC 9637 (2024)
    ("3fff::/20", "an IPv6 documentation address (3fff::/20, RFC 9637)"),
)
_KNOWN = tuple((ipaddress.ip_network(net), why) for net, why in _NETWORKS)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    host: str  # as httpcore will ask to connect to it
    port: int
    addresses: tuple[str, ...]  # the checked addresses to connect to instead, in the resolver's order


def address_problem(ip: IPAddress) -> str | None:
    """Why a webhook may not go to this address (None: a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"an IPv4-mapped IPv6 address (of {ip.ipv4_mapped})"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    for network, why in _KNOWN:
        if ip.version == network.version and ip in network:
            return why
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def numeric_address(host: str) -> IPAddress | None:
    """The address an IP literal means in any spelling the resolver accepts; None for a name."""
    if _CONTROL_OR_SPACE.search(host):  # C reads `8.8.8.8\0.evil` as 8.8.8.8, and inet_aton stops at a space
        return None
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0])


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class CachingResolver:
    """Another resolver's answers per (host, port), kept ttl_s: at hundreds of deliveries a second to one host a
    getaddrinfo (a thread hop) per delivery costs more than the send. The guard still checks the (cached) answers
    at every delivery and the connection goes to an address checked. Failures are not kept."""

    def __init__(self, inner: Resolver = system_resolver, ttl_s: float = 30.0, max_hosts: int = 10_000) -> None:
        self.inner, self.ttl_s, self.max_hosts = inner, ttl_s, max_hosts
        self._answers: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        now = time.monotonic()
        kept = self._answers.get((host, port))
        if kept is not None and kept[0] > now:
            return kept[1]
        answers = await self.inner(host, port)
        if self.ttl_s > 0:
            if len(self._answers) >= self.max_hosts:
                self._answers.clear()
            self._answers[(host, port)] = (now + self.ttl_s, answers)
        return answers


def parse(url: str, allow_hosts: Iterable[str]) -> tuple[str, int]:
    """Syntax: an absolute https URL (http for allowed hosts) with a host; returns its host and port.
    Read with urllib, which takes any host spelling, so an odd one gets its real reason below."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from None
    host = unquote(split.hostname or "")
    if split.scheme not in ("https", "http"):
        raise UnsafeUrl(f"only https URLs are accepted, not {split.scheme or 'a relative URL'}")
    odd = _CONTROL_OR_SPACE.search(url)
    if odd is not None:  # urllib drops leading ones and tabs or newlines anywhere; httpx and the database do not
        raise UnsafeUrl(f"not a valid URL ({odd.group()!r} at position {odd.start()}: percent-encode it)")
    if not host:
        raise UnsafeUrl("the URL has no host")
    if _CONTROL_OR_SPACE.search(host):  # the resolver reads up to a NUL (`8.8.8.8%00.evil` was 8.8.8.8)
        raise UnsafeUrl(f"the host {host!r} holds a space or control character, which no host name or address does")
    if "%" in host and ":" not in host:  # `8.8.8.8%eth0` was looked up in the DNS as a name
        raise UnsafeUrl(f"the host {host!r} holds a zone id (%…), which only follows an IPv6 address")
    bracketed = "[" in split.netloc.rpartition("@")[2]
    if (bracketed or ":" in host) and numeric_address(host.split("%", 1)[0]) is None:  # `[vF.abc]` was looked up
        raise UnsafeUrl(f"the host [{host}] is no IPv6 address")  # (IPvFuture: RFC 3986 allows it, nobody uses it)
    if port == 0:  # `port or 443` below read it as the default, and every send then failed to connect
        raise UnsafeUrl("port 0 is no port a receiver listens on")
    if split.scheme == "http" and host not in set(allow_hosts):
        raise UnsafeUrl("only https URLs are accepted (http only for the hosts in PLINQY_WEBHOOK_ALLOW_HOSTS)")
    return host, port or (443 if split.scheme == "https" else 80)


@functools.lru_cache(maxsize=4096)
def _read(url: str, allowed: frozenset[str]) -> tuple[str, int, IPAddress | None]:
    """What the URL alone says (pure, so kept per URL): its host, port and, for an IP literal, the address."""
    host, port = parse(url, allowed)
    return host, port, numeric_address(host.split("%", 1)[0])  # a zone naming no interface here is still a literal


@functools.lru_cache(maxsize=4096)
def _httpx_url(url: str) -> httpx.URL:
    return httpx.URL(url)


async def check(url: str, allow_hosts: Iterable[str], resolver: Resolver = system_resolver) -> Target:
    """The target of a webhook URL, or UnsafeUrl saying why not. Opens no connection."""
    allowed = frozenset(h.lower() for h in allow_hosts)
    host, port, literal = _read(url, allowed)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = await resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"the host {host} does not resolve ({exc})") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        if not addresses:
            raise UnsafeUrl(f"the host {host} does not resolve")
    if host not in allowed:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                shown = host if str(address) == host else f"{host} ({address})"
                raise UnsafeUrl(f"the host {shown} is {problem}; webhooks go to public addresses only")
    try:
        parsed = _httpx_url(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from None
    # All of them: a host whose first address is down (an AAAA first where IPv6 is broken) is reached on the next.
    return Target(parsed, unquote(parsed.host), port, tuple(dict.fromkeys(str(a) for a in addresses)))
