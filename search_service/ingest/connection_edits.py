"""A connection's secrets, credentials and host changed in place (`connections update`): a leaked or rotated
webhook secret or vendor token needed a new connection before (a new webhook URL at the vendor, a first sync again,
and the old one still polling)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.ingest.stores import StoreError, new_webhook_secret


@dataclass(frozen=True)
class ConnectionUpdate:
    secret: str | None = None  # the signing secret(s), space-separated: "NEW OLD" during a rotation, then "NEW"
    new_webhook_secret: bool = False  # a `webhook` connection: a new whsec_ secret, the unconfirmed ones kept
    credentials: dict[str, str] = field(default_factory=dict)  # vendor credentials to replace (others kept)
    base_url: str | None = None  # "" : back to the vendor's own host
    signature: dict[str, str] = field(default_factory=dict)  # webhook signature settings to replace (config keys)


@dataclass(frozen=True)
class UpdatedConnection:
    source: str
    changed: list[str]
    new_secret: str | None  # made by new_webhook_secret: shown once
    older_kept: int = 0  # with new_secret: the secrets before it, none confirmed yet, still accepted
    older_dropped: int = 0  # with new_secret: the oldest unconfirmed ones no longer accepted (MAX_WEBHOOK_SECRETS)


# The webhook signature settings a vendor's connection may change (the same choices as `connect`'s options):
# the vendors do not document them, so a connection whose webhooks all answer 401 tries the others.
SIGNATURE_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "lightspeed-x": {"signature_encoding": ("hex", "base64"), "signature_message": ("raw", "payload")},
    "erply": {"signature_encoding": ("hex", "base64"), "signature_message": ("id", "items")},
}


# --new-webhook-secret keeps every secret not yet confirmed (`--secret NEW`) accepted: the sender may still sign
# with any of them (a rotation's output lost and the command run again cut off the live one). At most this many in
# all, the newest first; past it the oldest unconfirmed one goes, and the command says so. The stored list's last
# is the one in use (set by `connect` or `--secret`; rotations only put new ones before it): it is never dropped.
MAX_WEBHOOK_SECRETS = 3


def _sql(name: str) -> str:
    return statement("ingest/stores", name).psycopg


def _current(conn: Any, connection_id: UUID) -> tuple[Any, ...]:
    row = conn.execute(_sql("connection"), {"connection_id": connection_id}).fetchone()
    if row is None:
        raise StoreError("connection_id", f"no connection {connection_id}")
    return tuple(row)


def _is_webhook_secret(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        return 24 <= len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) <= 64
    except binascii.Error:
        return False


def _secrets(source: str, update: ConnectionUpdate, box: SecretBox, secret_enc: bytes | None) -> tuple[str, str, int]:
    """(the secret text to store, a new secret to show once or "", how many unconfirmed secrets it drops)."""
    if update.new_webhook_secret:
        if source != "webhook":
            raise StoreError("new_webhook_secret", "only a webhook connection makes its own secret: give --secret")
        new = new_webhook_secret()
        old = box.decrypt(secret_enc).split() if secret_enc else []
        unconfirmed, live = old[:-1], old[-1:]  # the sender's live secret is the last: past the cap it stays
        kept = unconfirmed[: MAX_WEBHOOK_SECRETS - 1 - len(live)]
        return " ".join([new, *kept, *live]), new, len(unconfirmed) - len(kept)
    given = (update.secret or "").split()
    if not 1 <= len(given) <= 2:
        raise StoreError("secret", "give the signing secret, or two space-separated (new, old) during a rotation")
    if source == "webhook" and not all(_is_webhook_secret(secret) for secret in given):
        raise StoreError("secret", "a webhook connection's secret is whsec_ and 24-64 bytes in base64")
    return " ".join(given), "", 0


def _signature(source: str, signature: dict[str, str]) -> str:
    """The settings as the config's JSON to merge, each checked against the source's choices."""
    choices = SIGNATURE_CHOICES.get(source)
    for key, value in signature.items():
        option = "--" + key.replace("_", "-")
        if choices is None:
            raise StoreError(key, f"{option}: a {source} connection has no signature settings (lightspeed-x, erply)")
        if value not in choices[key]:
            raise StoreError(key, f"{option} of a {source} connection is one of {', '.join(choices[key])}")
    return json.dumps(signature)


def _a(source: str) -> str:
    return ("an " if source[0] in "aeiou" else "a ") + source


def _refuse_what_the_source_lacks(source: str, update: ConnectionUpdate) -> None:
    """StoreError naming an option the connection's vendor has no use for: it was merged in, accepted and reset the
    backoff (`--username` on a Shopify connection), changing nothing the vendor reads."""
    from search_service.ingest.connectors.factory import CREDENTIALS, PUSH_SOURCES

    if update.secret is not None and source in CREDENTIALS and source not in PUSH_SOURCES:  # R-Series: polled only
        raise StoreError("secret", f"{_a(source)} connection has no --secret (the vendor sends no webhooks)")
    for key in update.credentials:
        if key not in CREDENTIALS.get(source, ()):
            raise StoreError(key, f"{_a(source)} connection has no --{key.replace('_', '-')}")
    if update.base_url is not None and source not in CREDENTIALS:  # a webhook connection reads no vendor
        raise StoreError("base_url", f"{_a(source)} connection has no --base-url (it reads from no vendor)")


def _credentials(source: str, box: SecretBox, stored: bytes | None, given: dict[str, str]) -> tuple[bytes, str | None]:
    """(the merged credentials encrypted, the new vendor account key or None when it stays), checked as `connect`
    checks them: a connection made with the wrong shop or account is corrected in place."""
    from search_service.ingest.connectors.factory import CREDENTIALS, ConnectionError_, check_credentials

    old = json.loads(box.decrypt(stored)) if stored else {}
    host_parts = {k: v.lower() for k, v in given.items() if k in ("shop", "domain_prefix")}  # one spelling: one lock
    merged = {**old, **given, **host_parts}
    try:
        check_credentials(source, merged)
    except ConnectionError_ as exc:
        raise StoreError("credentials", str(exc)) from None
    first = CREDENTIALS[source][0]  # names the vendor account
    account = None if merged.get(first) == old.get(first) else f"{source}:{merged[first]}"
    return box.encrypt(json.dumps(merged)), account


def update_connection(conn: Any, box: SecretBox, connection_id: UUID, update: ConnectionUpdate) -> UpdatedConnection:
    """Replace what `update` names; the config and the connection's id (its webhook URL) stay, and the cursor unless
    the vendor account changes (another account's cursor means nothing: a first sync)."""
    _id, _store, source, secret_enc, credentials_enc, _config, _enabled = _current(conn, connection_id)
    _refuse_what_the_source_lacks(source, update)
    params: dict[str, Any] = {"connection_id": connection_id, "secret_enc": None, "credentials_enc": None,
                              "base_url": update.base_url or None, "vendor_host": update.base_url == "",
                              "due_again": False, "drop_wait": False, "account": None,
                              "signature": _signature(source, update.signature)}  # fmt: skip
    changed: list[str] = []
    shown, older, dropped = "", 0, 0
    if update.secret is not None or update.new_webhook_secret:
        text, shown, dropped = _secrets(source, update, box, secret_enc)
        older = len(text.split()) - 1 if shown else 0
        params["secret_enc"] = box.encrypt(text)
        changed.append("signing secret")
    if update.credentials:
        params["credentials_enc"], params["account"] = _credentials(source, box, credentials_enc, update.credentials)
        changed.append("credentials (" + ", ".join(sorted(update.credentials)) + ")")
        if params["account"] is not None:
            changed.append(f"vendor account (now {params['account']}: the next sync is a first one)")
    if update.base_url is not None:
        changed.append("base URL" if update.base_url else "base URL (the vendor's own again)")
    if update.signature:
        changed.append(
            "signature settings (" + ", ".join(f"{k}={v}" for k, v in sorted(update.signature.items())) + ")"
        )
    if not changed:
        raise StoreError("options", "nothing to change: give --secret, a credential, --base-url or a signature setting")
    # new credentials or host: the backoff was for the old ones; the vendor's asked wait (the account's quota) goes
    # with a new host or account only
    params["due_again"] = bool(update.credentials) or update.base_url is not None
    params["drop_wait"] = update.base_url is not None or params["account"] is not None
    conn.execute(_sql("update_connection_secrets"), params)
    return UpdatedConnection(source, changed, shown or None, older, dropped)


def same_location_connection(conn: Any, store_id: UUID, source: str, location: str) -> tuple[UUID, bool] | None:
    """(id, enabled) of the store's connection to this vendor location (an enabled one first), or None."""
    row = conn.execute(
        _sql("same_location_connection"), {"store_id": store_id, "source": source, "external_location": location}
    ).fetchone()
    return None if row is None else (row[0], bool(row[1]))


def pos_sources() -> list[str]:
    """The POS sources: a store has one of them enabled at a time (a `webhook` one, the store's own, runs beside)."""
    from search_service.ingest.connectors.factory import SOURCES

    return list(SOURCES)


def lock_store(conn: Any, store_id: UUID) -> None:
    """The store's row locked to the transaction's end: `connect`s and `enable`s into one store, one at a time."""
    if conn.execute(_sql("lock_store"), {"store_id": store_id}).fetchone() is None:
        raise StoreError("store", f"no store with id {store_id}")


def enabled_pos_connection(conn: Any, store_id: UUID, other_than: UUID | None) -> tuple[UUID, str, str] | None:
    """(id, source, location) of the store's enabled POS connection other than `other_than`, or None."""
    params = {"store_id": store_id, "sources": pos_sources(), "other_than": other_than}
    row = conn.execute(_sql("enabled_pos_connection"), params).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def refuse_a_second_pos(conn: Any, store_id: UUID, other_than: UUID | None = None) -> None:
    """StoreError naming the store's other enabled POS connection, if it has one: the SKUs of two are one namespace,
    and each sync overwrote the other's listings (two locations' stock flipping on every poll). Under lock_store."""
    if (other := enabled_pos_connection(conn, store_id, other_than)) is None:
        return
    cid, source, location = other
    raise StoreError(
        "store",
        f"store {store_id} already has an enabled POS connection, {cid} ({source} location {location}), and a store "
        f"takes one (their SKUs would overwrite each other's listings): disable it first (`plinqy-search connections "
        f"disable {cid}`), or connect this location as a store of its own (`plinqy-search stores create`)",
    )


def enable_connection(conn: Any, connection_id: UUID) -> None:
    """Enable a connection; a POS one only while its store has no other POS connection enabled (StoreError)."""
    with conn.transaction():
        _id, store_id, source, *_ = _current(conn, connection_id)
        if source in pos_sources():
            lock_store(conn, store_id)
            refuse_a_second_pos(conn, store_id, other_than=connection_id)
        conn.execute(statement("ingest/connectors", "enable_connection").psycopg, {"connection_id": connection_id})
