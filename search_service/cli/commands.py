"""The `plinqy-search` group: each area's commands live in their own module, registered at the bottom."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, NoReturn

import click

from search_service.cli import interrupted
from search_service.cli.common import (
    OLDER_SCHEMA,
    UNREACHABLE_DATABASE,
    OutputUnwritable,
    UserFacingError,
    database_url,
    echo,
    lost_mid_run,
)
from search_service.db import migrate as migrate_mod
from search_service.db.faults import bound_psycopg_connects, lost_after_connecting
from search_service.db.rights import LACKS_RIGHTS, lacks_rights
from search_service.db.secretbox import SecretBoxError
from search_service.errortext import first_line
from search_service.settings import Settings, SettingsError


class _Group(click.Group):
    """Ctrl-C in a command (its lazy imports too) is `interrupted`, exit 130: click said "Aborted!", exit 1. A command
    that stops gracefully on SIGINT (serve, worker) installs its own handler and exits as it documents."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            interrupted()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            interrupted()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Plinqy Search: semantic + geo 'search near me'."""
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as exc:
        raise UserFacingError(str(exc)) from None


def main() -> None:
    """The command line; a failure every command can meet (the database unreachable or its connection lost
    mid-run, its role without rights, the secret key wrong) is one line saying what to do, exit code 1, not a
    traceback."""
    bound_psycopg_connects()  # a database that never answers: one line after seconds, not a hang
    try:
        cli(prog_name="plinqy-search")
    except SecretBoxError as exc:
        _fail(f"{exc}; set PLINQY_SECRET_KEY or PLINQY_SECRET_KEY_FILE to the key the secrets were stored with")
    except UNREACHABLE_DATABASE as exc:
        reason = first_line(exc)
        if lost_after_connecting(exc):  # a URL that worked is not the problem: a restart or failover was
            _fail(lost_mid_run(exc))
        hint = (
            "check DATABASE_URL (its host, port and database name), or unset it to use the embedded cluster"
            if os.environ.get("DATABASE_URL")  # `db up` starts only the embedded cluster, which DATABASE_URL bypasses
            else "start the embedded cluster: plinqy-search db up"
        )
        _fail(f"cannot reach the database ({reason}): {hint}")
    except OLDER_SCHEMA as exc:  # a command that does not check the revision first met a missing table or column
        advice = _schema_advice()
        if advice is None:
            raise
        _fail(f"{advice} ({type(exc).__name__}: {first_line(exc)})")
    except LACKS_RIGHTS as exc:  # the role in DATABASE_URL connects but may not read or write what the command needs
        _fail(lacks_rights(_configured_url(), exc))
    except OutputUnwritable as exc:
        _output_unwritable(exc)


def _output_unwritable(exc: OutputUnwritable) -> NoReturn:
    """Output that could not be written, by any command: one line, exit 1 (it was a traceback); a reader that
    closed the pipe (`| head`) gets the usual quiet exit unless the command took something back."""
    with contextlib.suppress(OSError, ValueError):  # the interpreter's last flush would fail again, "Exception ignored"
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(exc.cause, BrokenPipeError) and not exc.undone:
        raise SystemExit(1)
    try:
        _fail(f"cannot write the output ({exc})" + (f"; {exc.undone}" if exc.undone else ""))
    except OutputUnwritable:  # stderr cannot take it either
        raise SystemExit(1) from None


def _schema_advice() -> str | None:
    """What to do when the database is not at this code's migration head; None when it is."""
    try:
        url = database_url(Settings.from_env())
        current = migrate_mod.current_revision(url)
    except Exception:  # the error being reported is the one that matters
        return None
    return None if migrate_mod.schema_state(current) == "ok" else migrate_mod.schema_advice(current)


def _configured_url() -> str | None:
    """The URL the commands connect with (the role it names), without a check that the cluster runs."""
    try:
        return Settings.from_env().database_url
    except SettingsError:
        return None


def _fail(message: str) -> NoReturn:
    echo(f"error: {message}", err=True)
    raise SystemExit(1)


# Command areas, one module each, registered here (they never import this module). A new area: its module,
# one import line and one `cli.add_command` line below.
from search_service.cli.db import db, migrate  # noqa: E402
from search_service.cli.demo import seed_demo  # noqa: E402
from search_service.cli.embed import reembed, worker  # noqa: E402
from search_service.cli.secret_key import secrets  # noqa: E402
from search_service.cli.serve import serve  # noqa: E402
from search_service.cli.tasks import tasks  # noqa: E402
from search_service.cli.vocabulary import vocabulary  # noqa: E402

cli.add_command(db)
cli.add_command(migrate)
cli.add_command(serve)
cli.add_command(worker)
cli.add_command(reembed)
cli.add_command(tasks)
cli.add_command(vocabulary)
cli.add_command(seed_demo)
cli.add_command(secrets)

from search_service.cli.events import prune as events_prune  # noqa: E402
from search_service.cli.events import webhooks  # noqa: E402

cli.add_command(webhooks)
cli.add_command(events_prune)

from search_service.cli import ingest as _ingest  # noqa: E402

for _command in _ingest.COMMANDS:
    cli.add_command(_command)
cli.add_command(_ingest.CONNECT, "connect")

from search_service.cli import connectors as _connectors  # noqa: E402

_connectors.register(cli, _ingest.CONNECT)
