"""POS connector commands: `connections list|disable|enable|update`; the `connect` ones' options (the commands:
connect_pos.py; `sync`: connector_sync.py)."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from search_service.cli import interrupted
from search_service.cli.common import (
    UsageMistake,
    UserFacingError,
    connect,
    echo,
    echo_webhook_url,
    option_mistake,
    refuse_a_wrong_secret_key,
    shown_once,
    user_errors,
)
from search_service.settings import Settings
from search_service.timetext import utc_text

if TYPE_CHECKING:
    from search_service.ingest.connection_edits import ConnectionUpdate, UpdatedConnection
    from search_service.ingest.stores import StoreError

# Per vendor: (option, credential key, help); every credential is stored encrypted and never shown again.
VENDOR_OPTIONS: dict[str, list[tuple[str, str, str]]] = {
    "lightspeed-r": [("--account", "account", "R-Series account ID."), ("--token", "token", "OAuth access token.")],
    "lightspeed-x": [
        ("--domain-prefix", "domain_prefix", "The retailer's domain prefix (NAME.retail.lightspeed.app)."),
        ("--token", "token", "Personal or OAuth access token."),
    ],
    "erply": [
        ("--client-code", "client_code", "Erply account number."),
        ("--username", "username", "API user (with --password)."),
        ("--password", "password", "API user's password."),
        ("--session-key", "session_key", "A session key instead of user and password."),
    ],
    "shopify": [
        ("--shop", "shop", "The shop's domain (NAME.myshopify.com)."),
        ("--token", "token", "Admin API token."),
    ],
}
# The vendors that send webhooks (factory.PUSH_SOURCES): what `--secret` is there. R-Series sends none: no option.
SECRET_HELP: dict[str, str] = {
    "lightspeed-x": "The webhook signing secret: the X-Series app's client secret",
    "erply": "The webhook signing secret: Erply's webhook secret",
    "shopify": "The webhook signing secret: the Shopify app's secret",
}
# Per vendor: webhook signature details the vendors do not document (docs/connectors.md): (option, config key,
# choices, help); the first choice is the default. Stored in the connection's config, not secret.
SIGNATURE_OPTIONS: dict[str, list[tuple[str, str, tuple[str, ...], str]]] = {
    "lightspeed-x": [
        ("--signature-encoding", "signature_encoding", ("hex", "base64"), "How X-Signature's HMAC is written."),
        ("--signature-message", "signature_message", ("raw", "payload"),
         "What X-Signature covers: the raw form body, or the `payload` field's JSON."),
    ],
    "erply": [
        ("--signature-message", "signature_message", ("id", "items"),
         "What the event's `hmac` covers: the event id, or the compact JSON of its items."),
        ("--signature-encoding", "signature_encoding", ("hex", "base64"), "How the `hmac` is written."),
    ],
}  # fmt: skip
# Secrets may come from the environment (or a hidden prompt, or stdin) instead of the command line, where `ps` and
# the shell's history show them: the option given alone (`--token`) reads its variable. Only a named option is
# read: a variable left exported from an earlier step changed what a later command did not name.
FROM_ENV = "\x00from-env"
SECRET_ENVVARS = {
    "token": "PLINQY_POS_TOKEN",
    "password": "PLINQY_POS_PASSWORD",
    "session_key": "PLINQY_POS_SESSION_KEY",
    "secret": "PLINQY_CONNECTION_SECRET",
}
LOCATION_HELP = {
    "lightspeed-r": "the R-Series shopID",
    "lightspeed-x": "the X-Series outlet_id",
    "erply": "the Erply warehouseID",
    "shopify": "the Shopify location_id",
}


def _option_attrs(flag: str, key: str, text: str) -> dict[str, Any]:
    """An option's settings; a secret one given alone reads its environment variable, else asks (kept out of
    `ps`)."""
    envvar = SECRET_ENVVARS.get(key)
    if envvar is None:
        return {"default": None, "help": text}
    alone = f" `{flag}` alone: from ${envvar}, else asked for (hidden)."
    return {"default": None, "is_flag": False, "flag_value": FROM_ENV, "help": text + alone}


def secret_option(flag: str, key: str, text: str) -> click.Option:
    return click.Option([flag, key], **_option_attrs(flag, key, text))


def secret_values(values: dict[str, str | None]) -> dict[str, str | None]:
    """The secret options given alone, read from their variable or a hidden prompt (stdin when piped)."""
    out = dict(values)
    for key, value in values.items():
        if value == FROM_ENV:
            envvar = SECRET_ENVVARS[key]
            flag = "--" + key.replace("_", "-")
            out[key] = os.environ.get(envvar) or _read_secret(flag, envvar)
    return out


def _read_secret(flag: str, envvar: str) -> str:
    """A piped secret's first line (getpass read the terminal instead, and warned of echo without one), else asked
    for, hidden."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline().strip()
        if not line:  # named: "its environment variable" left the operator to find which in the help
            raise UsageMistake(f"{flag} given alone: no value on stdin, and {envvar} is unset or empty: "
                               f"set it, pipe the value, or give {flag} VALUE")  # fmt: skip
        return line
    try:
        return str(click.prompt(flag, hide_input=True, err=True))
    except click.exceptions.Abort:  # Ctrl-C (or Ctrl-D) at the prompt: click said "Aborted!", exit 1
        interrupted()


def check_base_url(base_url: str) -> None:
    """--base-url: an http(s) address with a port a connection can use (one message says which part is wrong)."""
    from search_service.ingest.stores import is_web_address

    authority = re.sub(r"^[^:/?#]*://|[/?#].*$", "", base_url, flags=re.S)  # [user:password@]host[:port]
    if "@" in authority:  # it said "no usable port", quoting the password
        raise UsageMistake("--base-url must not hold a user name or password (user:password@host)")
    if re.search(r"[?#]", base_url):  # the vendor's paths are joined to it: requests went to the base path itself
        raise UsageMistake("--base-url must not hold a query or a fragment (?… or #…): give the address only")
    if not is_web_address(base_url, any_port=True):
        raise UsageMistake(f"--base-url {base_url!r} is not an http(s) address such as https://api.example.com")
    if not is_web_address(base_url):  # 0, past 65535, or not a number
        raise UsageMistake(f"--base-url {base_url!r} has no usable port: give one from 1 to 65535, or none")


@click.group()
def connections() -> None:
    """Ingest connections (webhooks and POS connectors)."""


@connections.command("list")
@click.pass_obj
@user_errors
def connections_list(settings: Settings) -> None:
    """Every connection with its state, last sync and last failure (never a credential)."""
    from search_service.db.sql import statement

    config = settings.connectors
    params = {"interval_s": config.sync_interval_s, "retry_base_s": config.retry_base_s}
    with connect(settings) as conn:
        rows = conn.execute(statement("ingest/connectors", "list_connections").psycopg, params).fetchall()
    if not rows:
        echo("no connections")
    for row in rows:
        cid, store_id, source, location, enabled, last_sync, failures, error, error_at, first_rows, *rest = row
        no_levels, *due = rest
        state = "enabled" if enabled else "disabled"
        synced = utc_text(last_sync) if last_sync else "never"
        if first_rows is not None:  # it said "never" of a first sync killed after storing thousands of items
            synced += f" (a first sync stored {first_rows} items, unfinished: the next sync resumes from its cursor)"
        columns = [cid, source, f"location={location or '-'}", f"store={store_id}", state, f"synced={synced}"]
        if failures:
            columns += [f"failures={failures}", f"last_error={utc_text(error_at)}: {error}"]
        if (next_attempt := due[0]) is not None:  # backing off, or the vendor asked to wait: `sync` waits too
            asked = " (the vendor asked to wait; `sync ID --now` tries anyway)" if due[1] else ""
            columns.append(f"next_attempt={utc_text(next_attempt)}{asked}")
        if no_levels:  # until a sync reads a level
            columns.append(f"warning={no_levels}")
        echo(*columns)


def _set_enabled(settings: Settings, connection_id: UUID, enabled: bool) -> None:
    from search_service.db.sql import statement
    from search_service.ingest.connection_edits import enable_connection
    from search_service.ingest.stores import StoreError

    with connect(settings) as conn:
        if enabled:  # a POS connection only while its store has no other enabled
            try:
                enable_connection(conn, connection_id)
            except StoreError as exc:
                raise UserFacingError(exc.message) from None
        else:
            disable = statement("ingest/connectors", "disable_connection").psycopg
            if conn.execute(disable, {"connection_id": connection_id}).fetchone() is None:
                raise UserFacingError(f"no connection {connection_id}")
    echo(f"connection {connection_id} {'enabled' if enabled else 'disabled'}")


def _toggle_command(enabled: bool, help_text: str) -> click.Command:
    @click.command(help=help_text)
    @click.argument("connection_id", type=click.UUID)
    @click.pass_obj
    @user_errors
    def toggle(settings: Settings, connection_id: UUID) -> None:
        _set_enabled(settings, connection_id, enabled)

    return toggle


connections.add_command(
    _toggle_command(False, "Stop polling a connection and refuse its webhooks (`connections enable` undoes it)."),
    "disable",
)
connections.add_command(
    _toggle_command(True, "Poll a disabled connection again and take its webhooks (a POS one: while its store has "
                    "no other POS connection enabled)."),
    "enable",
)  # fmt: skip


def _account_options(command: Any) -> Any:
    """Each vendor's account option (`--shop`, `--account`...): a connection made with the wrong account is
    corrected in place, and starts over with a first sync."""
    for flag, key, text in reversed([options[0] for options in VENDOR_OPTIONS.values()]):
        command = click.option(flag, key, default=None, help=f"{text} Another account: a first sync.")(command)
    return command


@connections.command("update")
@click.argument("connection_id", type=click.UUID)
@click.option(
    "--secret",
    "secret",
    **_option_attrs("--secret", "secret", "New signing secret(s): 'NEW OLD' (both accepted) during a rotation, "
                    "then 'NEW'."),
)  # fmt: skip
@click.option("--token", "token", **_option_attrs("--token", "token", "A new vendor token."))
@click.option("--password", "password", **_option_attrs("--password", "password", "Erply: its password."))
@click.option("--session-key", "session_key", **_option_attrs("--session-key", "session_key", "Erply: a session key."))
@click.option(
    "--new-webhook-secret",
    is_flag=True,
    help="A webhook connection: make a new secret (printed once, last line); the old ones stay accepted "
    "until `--secret NEW` drops them (3 secrets at most: the oldest goes, said).",
)
@click.option("--username", default=None, help="Erply: a new API user.")
@_account_options
@click.option("--base-url", default=None,
              help="Another API host (a proxy, a sandbox, a test server); '' for the vendor's own again.")  # fmt: skip
@click.option("--signature-encoding", type=click.Choice(("hex", "base64")), help="X-Series, Erply: as `connect`'s.")
@click.option("--signature-message", type=click.Choice(("raw", "payload", "id", "items")),
              help="X-Series raw|payload, Erply id|items: as `connect`'s.")  # fmt: skip
@click.pass_obj
@user_errors
def connections_update(settings: Settings, connection_id: UUID, **options: Any) -> None:
    """Change a connection's signing secret, vendor credentials, host or webhook signature settings in place: its
    id (the webhook URL at the vendor), cursor and other settings stay. New credentials make a failing connection
    due again at once (past its backoff; a wait the vendor asked for stays until a new --base-url)."""
    from search_service.ingest.connection_edits import update_connection
    from search_service.ingest.connectors.factory import PUSH_SOURCES
    from search_service.ingest.stores import StoreError

    update = _connection_update(options)
    refuse_a_wrong_secret_key(settings)  # a key the stored secrets do not open: the connection's are unreadable
    with connect(settings) as conn, shown_once("the connection was not changed"), conn.transaction():
        try:
            done = update_connection(conn, settings.secret_box(), connection_id, update)
        except StoreError as exc:
            raise _update_refused(exc) from None
        echo(f"connection {connection_id} ({done.source}): {', '.join(done.changed)} changed")
        if done.source in PUSH_SOURCES and update.secret:  # perhaps its first: the address its webhooks now reach
            echo_webhook_url(settings, connection_id, "configure it at the vendor, signed with --secret")
        if done.new_secret is not None:
            _echo_rotation(connection_id, done)


def _echo_rotation(connection_id: UUID, done: UpdatedConnection) -> None:
    """A new webhook secret, last: which secrets are still accepted, and any the rotation stopped accepting (a
    second rotation dropped the sender's secret without a word)."""
    from search_service.ingest.connection_edits import MAX_WEBHOOK_SECRETS

    if done.older_dropped:
        oldest = "secret is" if done.older_dropped == 1 else f"{done.older_dropped} secrets are"
        echo(f"the oldest unconfirmed {oldest} no longer accepted (a connection keeps {MAX_WEBHOOK_SECRETS} at most): "
             "a sender still signing with it gets 401; the one in use before the rotations stays accepted")  # fmt: skip
    if done.older_kept:
        older = "the old secret is" if done.older_kept == 1 else f"the {done.older_kept} older secrets are"
        echo(f"{older} accepted too until `plinqy-search connections update {connection_id} --secret NEW`")
    echo("the new signing secret, shown only now:")
    echo(done.new_secret or "")


def _update_refused(exc: StoreError) -> click.ClickException:
    """No such connection: the command failed (exit 1). The rest are options given wrongly (exit 2), named."""
    if exc.field == "connection_id":
        return UserFacingError(exc.message)
    if exc.field in ("secret", "new_webhook_secret"):  # their messages name no option
        return option_mistake(exc.field, exc.message)
    return UsageMistake(exc.message)


def _connection_update(options: dict[str, Any]) -> ConnectionUpdate:
    """`connections update`'s options as a ConnectionUpdate (the secrets read from where they were given)."""
    from search_service.ingest.connection_edits import ConnectionUpdate

    base_url, new_webhook_secret = options.pop("base_url"), options.pop("new_webhook_secret")
    if base_url:  # "": the vendor's own again
        check_base_url(base_url)
    signature = {key: options.pop(key) for key in ("signature_encoding", "signature_message")}
    secret = (credentials := secret_values(options)).pop("secret")
    if new_webhook_secret and secret is not None:  # one or the other: the given one was dropped silently
        raise UsageMistake("--new-webhook-secret makes the secret; leave out --secret (or give --secret alone)")
    given = {key: value.strip() for key, value in credentials.items() if value is not None and value.strip()}
    chosen = {key: value for key, value in signature.items() if value is not None}
    return ConnectionUpdate(secret, new_webhook_secret, given, base_url, chosen)


def register(cli: click.Group, connect_group: click.Group) -> None:
    from search_service.cli.connect_pos import connect_command
    from search_service.cli.connector_sync import sync

    for source in VENDOR_OPTIONS:
        connect_group.add_command(connect_command(source), source)
    cli.add_command(connections)
    cli.add_command(sync)
