"""Stores and ingest connections: creation and edits, shared by the API (asyncpg) and the CLI (psycopg)."""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import unicodedata
from dataclasses import asdict, dataclass, replace
from typing import Any
from uuid import UUID

import psycopg

from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.ingest.rows import Rejected, parse_currency, trimmed

EMPTY_NAME = "must not be empty"  # a store's name: a 400 of the store writes (api/error_specs.py)


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
_WEB_ADDRESS = re.compile(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", re.IGNORECASE)


def is_web_address(text: str) -> bool:
    """An absolute http(s) address with a host and no user name or password (a store's website, a vendor's API)."""
    return _WEB_ADDRESS.match(text) is not None


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
