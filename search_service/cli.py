"""The `plinqy-search` command line. Commands stay thin: they parse options and call into modules."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from search_service import cluster as cluster_mod
from search_service import migrate as migrate_mod
from search_service.settings import Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


class UserFacingError(click.ClickException):
    """Printed as one line, exit code 1, never a traceback."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def user_errors(func: F) -> F:
    """Turn the project's known failure types into one-line messages."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (cluster_mod.ClusterError, migrate_mod.MigrationError, SettingsError) as exc:
            raise UserFacingError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def embedded_cluster(settings: Settings) -> cluster_mod.Cluster:
    return cluster_mod.Cluster(settings.pgdata, settings.db_port, bin_dir=settings.pg_bindir)


def database_url(settings: Settings) -> str:
    """The URL every command uses: DATABASE_URL when set, else the running embedded cluster."""
    if settings.uses_embedded_db:
        status = embedded_cluster(settings).status()
        if not status.running:
            raise UserFacingError("the embedded database is not running: run `plinqy-search db up` (or `make run`)")
    return settings.database_url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Plinqy Search: semantic + geo 'search near me'."""
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as exc:
        raise UserFacingError(str(exc)) from None


@cli.group()
def db() -> None:
    """The embedded PostgreSQL cluster (ignored when DATABASE_URL is set)."""


def _refuse_when_external(settings: Settings, action: str) -> bool:
    if not settings.uses_embedded_db:
        click.echo(f"DATABASE_URL is set, so the embedded cluster is not used; nothing to {action}.")
        return True
    return False


@db.command("up")
@click.pass_obj
@user_errors
def db_up(settings: Settings) -> None:
    """Initialise (once) and start the embedded cluster."""
    if _refuse_when_external(settings, "start"):
        return
    click.echo(f"embedded database {embedded_cluster(settings).up()}")


@db.command("down")
@click.pass_obj
@user_errors
def db_down(settings: Settings) -> None:
    """Stop the embedded cluster."""
    if _refuse_when_external(settings, "stop"):
        return
    click.echo(f"embedded database {embedded_cluster(settings).down()}")


@db.command("status")
@click.pass_obj
@user_errors
def db_status(settings: Settings) -> None:
    """Report the embedded cluster's state (exit 3 when it is not running)."""
    if not settings.uses_embedded_db:
        migrate_mod.check_server(settings.database_url)
        click.echo("external database (DATABASE_URL) is reachable")
        return
    status = embedded_cluster(settings).status()
    click.echo(f"embedded database {status.describe()}")
    if not status.running:
        sys.exit(3)


@db.command("url")
@click.pass_obj
def db_url(settings: Settings) -> None:
    """Print the DATABASE_URL every command uses."""
    click.echo(settings.database_url)


@cli.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@click.pass_obj
@user_errors
def migrate(settings: Settings, revision: str) -> None:
    """Create the extensions and every table (alembic upgrade)."""
    url = database_url(settings)
    migrate_mod.upgrade(url, revision)
    click.echo(f"database at revision {migrate_mod.current_revision(url)}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.pass_obj
@user_errors
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the search API (litestar on uvicorn)."""
    import uvicorn

    database_url(settings)  # fails early, in one line, when the embedded cluster is down
    if workers == 1:
        from search_service.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    # Each worker process builds its own app (and its Settings.from_env) from the inherited environment.
    uvicorn.run(
        "search_service.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def main() -> None:
    cli(prog_name="plinqy-search")
