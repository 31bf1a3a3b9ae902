"""`db` (the embedded cluster: up, down, status, url) and `migrate`."""

from __future__ import annotations

import sys

import click

from search_service.cli.common import (
    UNREACHABLE_DATABASE,
    FiniteFloatRange,
    UsageMistake,
    connect,
    database_url,
    echo,
    embedded_cluster,
    user_errors,
)
from search_service.db import migrate as migrate_mod
from search_service.db import rights
from search_service.db.rights import LACKS_RIGHTS, lacks_rights
from search_service.errortext import first_line
from search_service.settings import Settings


@click.group()
def db() -> None:
    """The embedded PostgreSQL cluster (ignored when DATABASE_URL is set)."""


def _refuse_when_external(settings: Settings, action: str) -> bool:
    if not settings.uses_embedded_db:
        echo(f"DATABASE_URL is set, so the embedded cluster is not used; nothing to {action}.")
        return True
    return False


@db.command("up")
@click.pass_obj
@user_errors
def db_up(settings: Settings) -> None:
    """Initialise (once) and start the embedded cluster."""
    if _refuse_when_external(settings, "start"):
        return
    echo(f"embedded database {embedded_cluster(settings).up()}")


@db.command("down")
@click.pass_obj
@user_errors
def db_down(settings: Settings) -> None:
    """Stop the embedded cluster."""
    if _refuse_when_external(settings, "stop"):
        return
    echo(f"embedded database {embedded_cluster(settings).down()}")


@db.command("status")
@click.pass_obj
@user_errors
def db_status(settings: Settings) -> None:
    """Report the database's state: the embedded cluster's, or whether DATABASE_URL's answers and its role has the
    rights the API and the worker need (exit 3 when it is not running, not reachable or lacks rights)."""
    if not settings.uses_embedded_db:
        try:
            with connect(settings):
                pass
        except UNREACHABLE_DATABASE as exc:
            echo(f"external database (DATABASE_URL) is not reachable: {first_line(exc)}")
            sys.exit(3)
        migrate_mod.check_server(settings.database_url)  # the extensions this code needs
        if (refused := _refused(settings.database_url)) is not None:  # it said "reachable" of a role without rights
            echo(f"external database (DATABASE_URL) is reachable, but {refused}")
            sys.exit(3)
        echo("external database (DATABASE_URL) is reachable")
        return
    status = embedded_cluster(settings).status()
    echo(f"embedded database {status.describe()}")
    if not status.running:
        sys.exit(3)


def _refused(url: str) -> str | None:
    """What the role may not do that the API and the worker need, in /readyz's words: read the revision, write what
    they (and their triggers) write; None when it may."""
    try:
        migrate_mod.current_revision(url)
    except LACKS_RIGHTS as exc:
        return lacks_rights(url, exc)
    return rights.cannot_write_now(url, rights.WRITERS, "what the API and the worker's jobs write")


@db.command("url")
@click.pass_obj
def db_url(settings: Settings) -> None:
    """Print the DATABASE_URL every command uses."""
    echo(settings.database_url)


@click.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@click.option(
    "--lock-timeout",
    "lock_timeout_s",
    default=migrate_mod.DEFAULT_LOCK_TIMEOUT_S,
    show_default=True,
    envvar="PLINQY_MIGRATE_LOCK_TIMEOUT_S",
    show_envvar=True,
    type=FiniteFloatRange(0.1, 3600),
    help="Seconds a migration waits for a lock another session holds before the run rolls back and names it.",
)
@click.pass_obj
@user_errors
def migrate(settings: Settings, revision: str, lock_timeout_s: float) -> None:
    """Create the extensions and every table (alembic upgrade). One run at a time: a second waits for the first."""
    url = database_url(settings)
    try:
        before = migrate_mod.upgrade(url, revision, lock_timeout_s, on_wait=lambda message: echo(message, err=True))
    except migrate_mod.UnknownRevision as exc:
        raise UsageMistake(str(exc)) from None
    after = migrate_mod.current_revision(url)
    echo(f"database at revision {after}" + (" (it was already there: nothing to do)" if after == before else ""))
