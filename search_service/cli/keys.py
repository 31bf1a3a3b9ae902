"""`keys create|list|revoke`: the write API's keys (shown once, stored hashed)."""

from __future__ import annotations

from uuid import UUID

import click

from search_service.cli.common import UsageMistake, UserFacingError, connect, echo, shown_once, user_errors
from search_service.settings import Settings
from search_service.timetext import utc_text


@click.group()
def keys() -> None:
    """API keys for the write API (shown once, stored hashed)."""


@keys.command("create")
@click.option("--store", "store_id", type=click.UUID, help="The store the key acts for.")
@click.option(
    "--admin",
    is_flag=True,
    help="An admin key, for every store (scopes: stores:write, listings:write, "
    "webhooks:write; --scope narrows them) instead of a store's.",
)
@click.option("--scope", "scopes", multiple=True, help="listings:write, stores:write, webhooks:write (repeatable).")
@click.option("--name", default=None, help="A label to tell keys apart.")
@click.pass_obj
@user_errors
def keys_create(
    settings: Settings, store_id: UUID | None, admin: bool, scopes: tuple[str, ...], name: str | None
) -> None:
    """Create a key; the key itself is printed once, as the last line."""
    from search_service.ingest.keys import ApiKeyError, KeyOptionError, create_key

    if admin == (store_id is not None):
        raise UsageMistake("give either --store STORE_ID or --admin")
    with connect(settings) as conn, shown_once("no key was made"), conn.transaction():
        try:
            new = create_key(conn, store_id=store_id, scopes=list(scopes), name=name)
        except KeyOptionError as exc:  # exit 2, as click's own usage errors
            raise UsageMistake(f"{exc.option}: {exc}") from None
        except ApiKeyError as exc:  # no such store: the command failed
            raise UserFacingError(str(exc)) from None
        owner = "admin" if store_id is None else f"store {store_id}"
        echo(f"created key {new.id} ({owner}, scopes: {', '.join(new.scopes)}); it is shown only now:")
        echo(new.key)


@keys.command("list")
@click.option("--store", "store_id", type=click.UUID, default=None, help="Only this store's keys.")
@click.pass_obj
@user_errors
def keys_list(settings: Settings, store_id: UUID | None) -> None:
    """Keys with their prefix, owner, scopes and state (never the key)."""
    from search_service.ingest.keys import ApiKeyError, list_keys

    with connect(settings) as conn:
        try:
            infos = list_keys(conn, store_id)
        except ApiKeyError as exc:
            raise UserFacingError(str(exc)) from None
    if not infos:
        echo("no API keys")
    for k in infos:
        state = f"revoked {utc_text(k.revoked_at)}" if k.revoked_at else "active"
        used = utc_text(k.last_used_at) if k.last_used_at else "never"
        owner = "admin" if k.is_admin else f"store={k.store_id}"
        echo(k.id, f"{k.prefix}…", owner, ",".join(k.scopes), state, f"used={used}", k.name or "")


@keys.command("revoke")
@click.argument("key_id", type=click.UUID)
@click.pass_obj
@user_errors
def keys_revoke(settings: Settings, key_id: UUID) -> None:
    """Revoke a key: its requests get 401 from now on."""
    from search_service.ingest.keys import ApiKeyError, revoke_key

    with connect(settings) as conn:
        try:
            revoked_at = revoke_key(conn, key_id)
        except ApiKeyError as exc:
            raise UserFacingError(str(exc)) from None
    echo(f"key {key_id} revoked at {utc_text(revoked_at)}")  # as `keys list` says it
