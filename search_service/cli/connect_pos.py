"""`connect lightspeed-r|lightspeed-x|erply|shopify`: a store's POS connection, one enabled a store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import click

from search_service.cli.common import (
    UsageMistake,
    UserFacingError,
    connect,
    echo,
    echo_webhook_url,
    refuse_a_wrong_secret_key,
    user_errors,
)
from search_service.cli.connectors import (
    LOCATION_HELP,
    SECRET_HELP,
    SIGNATURE_OPTIONS,
    VENDOR_OPTIONS,
    check_base_url,
    secret_option,
    secret_values,
)
from search_service.settings import Settings


def connect_command(source: str) -> click.Command:
    @click.pass_obj
    @user_errors
    def command(settings: Settings, store_id: UUID, location: str, base_url: str | None, secret: str | None,
                **credentials: str | None) -> None:  # fmt: skip
        signature = {key: credentials.pop(key) for _, key, _, _ in SIGNATURE_OPTIONS.get(source, [])}
        values = {**credentials, "secret": secret}  # read from stdin in the order given (click processes them so)
        given = secret_values({key: values[key] for key in click.get_current_context().params if key in values})
        secret = given.pop("secret")
        _create(settings, source, store_id, location, base_url, secret, given, signature)

    params: list[click.Parameter] = [
        click.Option(["--store", "store_id"], required=True, type=click.UUID, help="The Plinqy store."),
        click.Option(["--location"], required=True, help=f"The vendor location: {LOCATION_HELP[source]}."),
        click.Option(["--base-url"], default=None, help="Another API host (a proxy, a sandbox, a test server)."),
    ]
    if source in SECRET_HELP:
        params.append(
            secret_option("--secret", "secret", f"{SECRET_HELP[source]} (two, space-separated, in a rotation).")
        )
    else:  # R-Series sends no webhooks: its secret was stored and never used; refused in _create, saying so
        params.append(click.Option(["--secret"], hidden=True, default=None))
    params += [secret_option(flag, key, text) for flag, key, text in VENDOR_OPTIONS[source]]
    params += [
        click.Option([flag, key], type=click.Choice(choices), default=choices[0], show_default=True, help=text)
        for flag, key, choices, text in SIGNATURE_OPTIONS.get(source, [])
    ]
    doc = (
        f"Connect a store to {source} ({LOCATION_HELP[source]} -> --store); prints the connection id. A store has "
        "one enabled POS connection (another location: a store of its own)."
    )
    return click.Command(source, callback=command, params=params, help=doc)


def _create(settings: Settings, source: str, store_id: UUID, location: str, base_url: str | None,
            secret: str | None, credentials: dict[str, str | None],
            signature: dict[str, str | None]) -> None:  # fmt: skip
    from search_service.ingest.connectors.factory import CREDENTIALS, PUSH_SOURCES, ConnectionError_, check_credentials

    creds = {k: v.strip() for k, v in credentials.items() if v and v.strip()}
    for host_part in ("shop", "domain_prefix"):  # host names: one spelling, so one account (and one sync lock)
        if host_part in creds:
            creds[host_part] = creds[host_part].lower()
    location = location.strip()  # the vendors' location ids are compared as text
    if base_url is not None:
        check_base_url(base_url)
    if not location:
        raise UsageMistake(f"--location is empty: give {LOCATION_HELP[source]}")
    if secret is not None and source not in PUSH_SOURCES:
        raise UsageMistake(f"--secret: {source} sends no webhooks (it is polled only): leave --secret out")
    if secret is not None and not 1 <= len(secret.split()) <= 2:
        raise UsageMistake("--secret takes the webhook signing secret, or two space-separated during a rotation")
    try:
        check_credentials(source, creds)
    except ConnectionError_ as exc:  # an option missing or malformed
        raise UsageMistake(str(exc)) from None
    account = f"{source}:{creds.get(CREDENTIALS[source][0], '')}"
    config: dict[str, Any] = {"location": location, "account": account, **signature}
    refuse_a_wrong_secret_key(settings)  # its credentials under a key the others do not open: unreadable later
    new_id = _store_connection(settings, source, store_id, location, base_url, secret, creds, config)
    echo(f"connection {new_id} ({source}, location {location} -> store {store_id})")
    if source in PUSH_SOURCES and secret:
        echo_webhook_url(settings, new_id, "configure it at the vendor, signed with --secret")
    elif source in PUSH_SOURCES:  # a delivery to a connection without a secret is answered as an unknown id
        echo(f"no --secret: the connection is polled only; webhooks are answered 404 until you set one with "
             f"`plinqy-search connections update {new_id} --secret`", err=True)  # fmt: skip
    echo(f"first sync: plinqy-search sync {new_id} (or let `plinqy-search worker` poll it)")


def _store_connection(settings: Settings, source: str, store_id: UUID, location: str, base_url: str | None,
                      secret: str | None, creds: dict[str, str], config: dict[str, Any]) -> UUID:  # fmt: skip
    """The new connection's id; refused when the store has this location's connection or another POS one enabled
    (checked under the store's lock: two `connect`s at once cannot both pass)."""
    from search_service.ingest.connection_edits import (
        enabled_pos_connection,
        lock_store,
        refuse_a_second_pos,
        same_location_connection,
    )
    from search_service.ingest.stores import StoreError, create_connection

    with connect(settings) as conn, conn.transaction():
        try:
            lock_store(conn, store_id)
            if (existing := same_location_connection(conn, store_id, source, location)) is not None:
                other = enabled_pos_connection(conn, store_id, other_than=existing[0])
                raise UserFacingError(_reconnect_message(existing, other, store_id, source, location))
            refuse_a_second_pos(conn, store_id)
            return create_connection(
                conn, settings.secret_box(), store_id=store_id, source=source, secret=secret, credentials=creds,
                config=config, external_location=location, base_url=base_url,
            ).id  # fmt: skip
        except StoreError as exc:
            raise UserFacingError(exc.message) from None


def _reconnect_message(existing: tuple[UUID, bool], other: tuple[UUID, str, str] | None, store_id: UUID,
                       source: str, location: str) -> str:  # fmt: skip
    """Why a second connection to the location is refused, and how to go on with the one there (a disabled one: on
    again with its cursor, not a new one; first the store's other enabled POS connection off, or enable refuses)."""
    cid, enabled = existing
    there = f"connection {cid} already connects store {store_id} to {source} location {location}"
    update = f"`plinqy-search connections update {cid}`"
    if enabled:
        return f"{there}: change its credentials or secret with {update}"
    if other is not None:
        oid, other_source, other_location = other
        return (
            f"{there}, disabled, and the store's POS connection {oid} ({other_source} location {other_location}) is "
            f"enabled (a store takes one): disable it first (`plinqy-search connections disable {oid}`), then "
            f"`plinqy-search connections enable {cid}` turns this one back on (its cursor kept); {update} changes "
            "its credentials or secret"
        )
    return (
        f"{there}, disabled: `plinqy-search connections enable {cid}` turns it back on (its cursor kept), and "
        f"{update} changes its credentials or secret"
    )
