"""API keys: `plq_` + 43 random URL-safe characters (256 bits), stored as sha256 hex, checked in constant time.

A key belongs to one store (`store_id`) or is an admin key (`store_id` NULL). Scopes name what it may do:
`listings:write` (listings, imports, connections of its store), `stores:write` (admin: create and edit stores).
The key itself is shown once, when created; only its hash and a display prefix are stored, and it is never
logged. `authenticate` (asyncpg, for the API) and the psycopg functions (for the CLI) share the SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from search_service.db.sql import statement

KEY_PREFIX = "plq_"
DISPLAY_CHARS = 12  # `plq_` + 8 characters: enough to tell keys apart, far too few to guess the rest
SCOPES = ("listings:write", "stores:write", "webhooks:write")
ADMIN_DEFAULT_SCOPES = ("stores:write", "listings:write", "webhooks:write")
STORE_DEFAULT_SCOPES = ("listings:write",)


class ApiKeyError(ValueError):
    """A key operation that cannot be done (unknown store or key, unknown scope)."""


class KeyOptionError(ApiKeyError):
    """The key asked for is described wrongly (a scope unknown or not a store key's, a bad name): the caller's
    mistake, not a failed operation. `option`: the command line's option that described it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class NewKey:
    id: UUID
    key: str  # shown once
    prefix: str
    store_id: UUID | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class KeyInfo:
    id: UUID
    prefix: str
    store_id: UUID | None
    scopes: tuple[str, ...]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.store_id is None


@dataclass(frozen=True)
class Principal:
    """Who a request's key says it is."""

    key_id: UUID
    store_id: UUID | None
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.store_id is None

    def may(self, scope: str, store_id: UUID | None = None) -> bool:
        """Whether this key has `scope` for `store_id` (admin keys act for every store; store keys for their own)."""
        return scope in self.scopes and (self.is_admin or (store_id is not None and self.store_id == store_id))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_scopes(scopes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise KeyOptionError("--scope", f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(scopes))


KEY_NAME_MAX = 200  # a label for people, as a store's name is


def create_key(
    conn: psycopg.Connection, *, store_id: UUID | None, scopes: tuple[str, ...] | list[str], name: str | None = None
) -> NewKey:
    """A new key for a store (or an admin key with store_id None). The returned `key` is never stored."""
    scopes = check_scopes(scopes or (ADMIN_DEFAULT_SCOPES if store_id is None else STORE_DEFAULT_SCOPES))
    if store_id is not None and "stores:write" in scopes:  # a key that could do nothing with it
        raise KeyOptionError(
            "--scope", "stores:write is an admin key's scope (creating and changing stores): use --admin"
        )
    if name is not None and (len(name) > KEY_NAME_MAX or any(unicodedata.category(ch) == "Cc" for ch in name)):
        raise KeyOptionError("--name", f"at most {KEY_NAME_MAX} characters, no control characters")
    if store_id is not None:
        _require_store(conn, store_id)
    key = generate_key()
    params = {
        "key_prefix": key[:DISPLAY_CHARS],
        "key_hash": hash_key(key),
        "store_id": store_id,
        "scopes": list(scopes),
        "name": name,
    }
    row = conn.execute(statement("ingest/keys", "insert_key").psycopg, params).fetchone()
    assert row is not None
    return NewKey(row[0], key, key[:DISPLAY_CHARS], store_id, scopes)


def _require_store(conn: psycopg.Connection, store_id: UUID) -> None:
    row = conn.execute(statement("ingest/keys", "store_exists").psycopg, {"store_id": store_id}).fetchone()
    if not row or not row[0]:
        raise ApiKeyError(f"no store with id {store_id}")


def list_keys(conn: psycopg.Connection, store_id: UUID | None = None) -> list[KeyInfo]:
    if store_id is not None:  # a mistyped id said "no API keys"
        _require_store(conn, store_id)
    rows = conn.execute(statement("ingest/keys", "list_keys").psycopg, {"store_id": store_id}).fetchall()
    return [KeyInfo(r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], r[7]) for r in rows]


def revoke_key(conn: psycopg.Connection, key_id: UUID) -> datetime:
    row = conn.execute(statement("ingest/keys", "revoke_key").psycopg, {"key_id": key_id}).fetchone()
    if row is None:
        raise ApiKeyError(f"no API key with id {key_id}")
    return row[1]


def _verified(row: Any, presented_hash: str) -> Principal | None:
    # The lookup is by hash; comparing again in constant time keeps the decision itself timing-safe.
    if row is None or not hmac.compare_digest(row["key_hash"], presented_hash) or row["revoked_at"] is not None:
        return None
    return Principal(row["id"], row["store_id"], frozenset(row["scopes"]))


async def authenticate(conn: Any, key: str, rate_per_s: float, burst: float) -> tuple[Principal | None, float]:
    """The principal of a presented key (asyncpg connection, autocommit), or None when unknown or revoked, and the
    seconds it must wait before its next request (0.0: it may go now). One statement: the lookup, the key's last
    use and a token from its rate bucket, shared by every API process (table api_key_rate)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None, 0.0
    presented = hash_key(key)
    stmt = statement("ingest/keys", "authenticate")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(key_hash=presented, rate=rate_per_s, burst=burst))
    principal = _verified(row, presented)
    if principal is None or row["allowed"]:
        return principal, 0.0
    return principal, max(0.0, 1.0 - float(row["tokens"])) / rate_per_s
