"""From a stored connection (source, location, base URL, decrypted credentials) to a vendor client."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from search_service.ingest.connectors.common import Connector, MapContext
from search_service.ingest.connectors.erply import Erply
from search_service.ingest.connectors.http import RetryPolicy
from search_service.ingest.connectors.lightspeed_r import LightspeedR
from search_service.ingest.connectors.lightspeed_x import LightspeedX
from search_service.ingest.connectors.shopify import Shopify

# The credentials each vendor needs (all stored encrypted); the first names the vendor account.
CREDENTIALS: dict[str, tuple[str, ...]] = {
    "lightspeed-r": ("account", "token"),
    "lightspeed-x": ("domain_prefix", "token"),
    "erply": ("client_code", "username", "password", "session_key"),
    "shopify": ("shop", "token"),
}
SOURCES = tuple(CREDENTIALS)
# The credentials that name a host or an account in the vendor's URLs, as the vendors write them: a value past
# these went into the address (`--shop evil.com/x` sent the Admin token to https://evil.com/x).
CREDENTIAL_FORMS: dict[tuple[str, str], tuple[re.Pattern[str], str]] = {
    ("lightspeed-r", "account"): (re.compile(r"[0-9]{1,20}", re.A), "the R-Series account ID, digits"),
    ("lightspeed-x", "domain_prefix"): (
        re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.A), "NAME of NAME.retail.lightspeed.app, lower case"),
    ("erply", "client_code"): (re.compile(r"[0-9]{1,20}", re.A), "the Erply account number, digits"),
    ("shopify", "shop"): (
        re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.myshopify\.com", re.A), "NAME.myshopify.com, lower case"),
}  # fmt: skip
HEADER_CREDENTIALS = frozenset({"token"})  # sent in a request's headers (Erply's go in its form, UTF-8)
PUSH_SOURCES = frozenset({"lightspeed-x", "erply", "shopify"})  # R-Series has no item or stock webhooks


class ConnectionError_(ValueError):
    """A connection's stored settings cannot make a client (missing credentials, unknown source); `option`: the
    credential's option that replaces an unusable value (`connections update ID --token`)."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass
class ConnectionSpec:
    id: UUID
    store_id: UUID
    source: str
    location: str
    base_url: str | None
    credentials: dict[str, str] = field(repr=False)
    secrets: list[str] = field(repr=False)
    config: dict[str, Any]
    cursor: dict[str, Any]
    currency: str = "EUR"
    enabled: bool = True
    # the credentials as stored when read (encrypted anew by every update): a sync writes only while they stand
    stamp: bytes | None = field(default=None, repr=False)

    @property
    def ctx(self) -> MapContext:
        return MapContext(location=self.location, currency=self.currency)

    @property
    def account(self) -> str:
        """The vendor account: syncs of one account run one at a time (its rate limit is shared)."""
        first = CREDENTIALS[self.source][0]
        return f"{self.source}:{self.credentials.get(first, self.id)}"


def check_credentials(source: str, credentials: dict[str, str]) -> None:
    if source not in CREDENTIALS:
        raise ConnectionError_(f"unknown POS source {source!r}: use one of {', '.join(SOURCES)}")
    required = CREDENTIALS[source][:2]
    if source == "erply":  # a session key, or a user and password to log in with
        required = ("client_code", "session_key") if credentials.get("session_key") else CREDENTIALS[source][:3]
    needed = [name for name in required if not credentials.get(name)]
    if needed:
        raise ConnectionError_(f"{source} needs {', '.join('--' + n.replace('_', '-') for n in needed)}")
    for name, value in credentials.items():  # a line break in a token would go into a request's headers
        option = f"--{name.replace('_', '-')}"
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ConnectionError_(f"{option} holds a control character (a line break, a tab)", option)
        if name in HEADER_CREDENTIALS and not value.isascii():  # httpx sent it as ASCII: every sync crashed
            raise ConnectionError_(
                f"{option} holds a character that cannot be sent in an HTTP header (not ASCII)", option
            )
    for (vendor, name), (form, words) in CREDENTIAL_FORMS.items():
        given = credentials.get(name)
        if vendor == source and given is not None and not form.fullmatch(given):
            raise ConnectionError_(f"--{name.replace('_', '-')} {given[:80]!r} is not {words}")


def parse_secrets(text: str | None) -> list[str]:
    """The stored webhook secret(s), space-separated (two during a rotation), as ingest stores them."""
    return (text or "").split()


def build_connector(spec: ConnectionSpec, policy: RetryPolicy | None = None) -> Connector:
    check_credentials(spec.source, spec.credentials)
    creds = spec.credentials
    common: dict[str, Any] = {"ctx": spec.ctx, "base_url": spec.base_url, "policy": policy}
    page_size = spec.config.get("page_size")
    if page_size:
        common["page_size"] = int(page_size)
    if spec.source == "lightspeed-r":
        return LightspeedR(account_id=creds["account"], token=creds["token"], **common)
    if spec.source == "lightspeed-x":
        return LightspeedX(domain_prefix=creds["domain_prefix"], token=creds["token"], **common)
    if spec.source == "erply":
        return Erply(
            client_code=creds["client_code"],
            username=creds.get("username"),
            password=creds.get("password"),
            session_key=creds.get("session_key"),
            **common,
        )
    return Shopify(shop=creds["shop"], token=creds["token"], **common)
