"""Stores and ingest connections: creation and edits, shared by the API (asyncpg) and the CLI (psycopg)."""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any
from uuid import UUID

import psycopg
import pycountry

from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.ingest.rows import Rejected, parse_currency, trimmed

EMPTY_NAME = "must not be empty"  # a store's name: a 400 of the store writes (api/error_specs.py)
# ISO 3166-1's assigned alpha-2 codes (pycountry's copy), and XK (Kosovo: user-assigned, as the EU and banks use it).
# Any two letters passed: `xx` was stored as the country `XX` of a store's address, where a currency `XXX` is a 400.
ISO_COUNTRIES = frozenset(country.alpha_2 for country in pycountry.countries) | {"XK"}


class StoreError(ValueError):
    """Bad store input; `field` names the offending one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class StoreFields:
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    store_type: str | None = None
    currency: str | None = None
    phone: str | None = None
    website: str | None = None

    def checked(self, *, creating: bool) -> dict[str, Any]:
        """The SQL parameters, validated; StoreError names the first bad field. Text is trimmed as a listing's is
        (surrounding whitespace and invisible format characters: a BOM, a zero-width space), so a blank optional
        field clears it as '' does, and a name of nothing visible is empty."""
        text: dict[str, Any] = {field: trimmed(v) for field, v in asdict(self).items() if isinstance(v, str)}
        return replace(self, **text)._checked_trimmed(creating=creating)

    def _checked_trimmed(self, *, creating: bool) -> dict[str, Any]:
        if creating and (self.name is None or self.lat is None or self.lon is None):
            missing = next(f for f in ("name", "lat", "lon") if getattr(self, f) is None)
            raise StoreError(missing, "is required")
        if self.name == "":
            raise StoreError("name", EMPTY_NAME)
        params = asdict(self)
        for field, value in params.items():
            if isinstance(value, str) and "\x00" in value:
                raise StoreError(field, "must not hold a NUL character (0x00): it cannot be stored as text")
        for field, bound in (("lat", 90.0), ("lon", 180.0)):
            value = getattr(self, field)
            if value is not None and (not math.isfinite(value) or abs(value) > bound):
                raise StoreError(field, f"must be a number between -{bound:g} and {bound:g}")
        if (self.lat is None) != (self.lon is None):
            raise StoreError("lat" if self.lat is None else "lon", "lat and lon go together")
        _check_lengths(params)
        if self.country_code and not re.fullmatch(r"[A-Za-z]{2}", self.country_code):
            raise StoreError("country_code", "must be 2 letters (ISO 3166-1), or empty to clear it")
        if self.country_code and self.country_code.upper() not in ISO_COUNTRIES:
            raise StoreError(
                "country_code", f"{self.country_code!r} is not an ISO 3166-1 country code (e.g. DE, FR, GB)"
            )
        if self.country_code is not None:
            params["country_code"] = self.country_code.upper()
        if self.website and not is_web_address(self.website):
            raise StoreError("website", "must be an http(s) address such as https://shop.example, or empty to clear it")
        if self.currency is not None:
            try:
                params["currency"] = parse_currency(self.currency)
            except Rejected as exc:
                raise StoreError("currency", str(exc)) from None
        elif creating:
            params["currency"] = "EUR"
        return params


# A store's text fields, at most this long ('' clears an optional one).
TEXT_LIMITS = {"name": 200, "address": 500, "city": 200, "postal_code": 32, "store_type": 64, "phone": 64,
               "website": 2048}  # fmt: skip
# A web address's host and port as a browser's `new URL` and urlsplit both read them (a link built from a website
# threw on `http://[`, `https://[::1` and port 99999): a name without `%`, brackets, `<>\^|` or `:`, or a whole IPv6
# address in brackets (its hexadecimal forms); a port, if any, from 1 to 65535.
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join([
    rf"(?:{_H16}:){{7}}{_H16}", rf"(?:{_H16}:){{1,7}}:", rf"(?:{_H16}:){{1,6}}:{_H16}",
    rf"(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}", rf"(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}",
    rf"(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}", rf"(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}",
    rf"{_H16}:(?::{_H16}){{1,6}}", rf":(?:(?::{_H16}){{1,7}}|:)",
])  # fmt: skip
_PORT = r"(?::(?:0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?)?"


def web_host_port(excluded: str = "", port: str = _PORT) -> str:
    """The host and port of is_web_address as a regex, its name without the `excluded` characters too (a class's
    body: request_rules.WEB_ADDRESS states it in the schema, less control characters)."""
    return rf"(?:[^\s/?#@\[\]%<>\\^|:{excluded}]+|\[(?:{_IPV6})\]){port}"


_WEB_ADDRESS = re.compile(rf"https?://{web_host_port()}(?:[/?#]\S*)?", re.IGNORECASE)
_ANY_PORT_TEXT = r"(?::[^/?#@\s]*)?"  # never past an `@`: `u:p@host` is no host `u` with the port `p@host`
_ANY_PORT = re.compile(rf"https?://{web_host_port(port=_ANY_PORT_TEXT)}(?:[/?#]\S*)?", re.IGNORECASE)


def is_web_address(text: str, *, any_port: bool = False) -> bool:
    """An absolute http(s) address with a host and no user name or password (a store's website, a vendor's API),
    which a browser reads as one; `any_port`: whatever follows its host's `:` (to say when only the port is wrong)."""
    return (_ANY_PORT if any_port else _WEB_ADDRESS).fullmatch(text) is not None


def _check_lengths(params: dict[str, Any]) -> None:
    for field, limit in TEXT_LIMITS.items():
        value = params.get(field)
        if isinstance(value, str) and len(value) > limit:
            raise StoreError(field, f"must be at most {limit} characters")
        if isinstance(value, str) and any(unicodedata.category(ch) == "Cc" for ch in value):
            raise StoreError(field, "must not contain control characters (a tab, a line break, NUL)")


def create_store(conn: psycopg.Connection, fields: StoreFields) -> UUID:
    row = conn.execute(statement("ingest/stores", "insert_store").psycopg, fields.checked(creating=True)).fetchone()
    assert row is not None
    return row[0]


async def create_store_async(conn: Any, fields: StoreFields) -> UUID:
    stmt = statement("ingest/stores", "insert_store")
    return await conn.fetchval(stmt.sql, *stmt.bind(**fields.checked(creating=True)))


async def update_store_async(conn: Any, store_id: UUID, fields: StoreFields, is_active: bool | None) -> bool:
    stmt = statement("ingest/stores", "update_store")
    params = {**fields.checked(creating=False), "store_id": store_id, "is_active": is_active}
    return await conn.fetchval(stmt.sql, *stmt.bind(**params)) is not None


async def store_detail_async(conn: Any, store_id: UUID) -> dict[str, Any] | None:
    stmt = statement("ingest/stores", "store_detail")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(store_id=store_id))
    return None if row is None else dict(row)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class NewConnection:
    id: UUID
    secret: str | None  # shown once


def create_connection(
    conn: psycopg.Connection,
    box: SecretBox,
    *,
    store_id: UUID,
    source: str,
    secret: str | None = None,
    credentials: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    external_location: str | None = None,
    base_url: str | None = None,
) -> NewConnection:
    """An ingest connection; secrets and credentials are stored SecretBox-encrypted. For `webhook` a signing secret
    is generated when none is given."""
    if source == "webhook" and secret is None:
        secret = new_webhook_secret()
    params = {
        "store_id": store_id,
        "source": source,
        "secret_enc": None if secret is None else box.encrypt(secret),
        "credentials_enc": None if credentials is None else box.encrypt(json.dumps(credentials)),
        "config": json.dumps(config or {}),
        "external_location": external_location,
        "base_url": base_url,
    }
    try:
        row = conn.execute(statement("ingest/stores", "insert_connection").psycopg, params).fetchone()
    except psycopg.errors.ForeignKeyViolation:
        raise StoreError("store", f"no store with id {store_id}") from None
    assert row is not None
    return NewConnection(row[0], secret)


@dataclass(frozen=True)
class Connection:
    id: UUID
    store_id: UUID
    source: str
    secret_enc: bytes | None
    credentials_enc: bytes | None
    config: dict[str, Any]
    enabled: bool


async def connection_async(conn: Any, connection_id: UUID) -> Connection | None:
    stmt = statement("ingest/stores", "connection")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(connection_id=connection_id))
    if row is None:
        return None
    config = row["config"]
    return Connection(
        row["id"], row["store_id"], row["source"], row["secret_enc"], row["credentials_enc"],
        json.loads(config) if isinstance(config, str) else dict(config or {}), row["enabled"],
    )  # fmt: skip


STORE_INACTIVE = "the store is inactive: the listing is stored, but not shown in search until the store is active again"


def note_store_inactive(results: Iterable[Any]) -> None:
    """A write to an inactive store's listing is mapped as any (deactivating hides a store from shoppers only: its
    keys and webhooks keep working), and its notes say that search does not show it (round_writes.RowResult)."""
    for result in results:
        if result.status == "mapped":
            result.error = "; ".join(filter(None, (result.error, STORE_INACTIVE)))
