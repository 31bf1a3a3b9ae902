"""The `plinqy-search` command line. Commands stay thin: they parse options and call into modules.

This module builds the group; each area's commands live in their own module, registered at the bottom.
"""

from __future__ import annotations

import click

from search_service.cli.common import UserFacingError
from search_service.settings import Settings, SettingsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Plinqy Search: semantic + geo 'search near me'."""
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as exc:
        raise UserFacingError(str(exc)) from None


def main() -> None:
    cli(prog_name="plinqy-search")


# Command areas, one module each, registered here (they never import this module). A new area: its module,
# one import line and one `cli.add_command` line below.
from search_service.cli.db import db, migrate  # noqa: E402
from search_service.cli.demo import seed_demo  # noqa: E402
from search_service.cli.embed import reembed, worker  # noqa: E402
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
