"""The `plinqy-search` command line (the console script's `main`). Commands stay thin: they parse options and call
into modules. The group and its commands are in `commands`, imported by `main` inside its Ctrl-C guard: imported
here, a Ctrl-C in the first second or so (alembic, psycopg, litestar being imported) printed a 47-line traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C ended


def main() -> None:
    """Every command, however early a Ctrl-C comes: one line, `interrupted`, exit 130."""
    try:
        from search_service.cli.commands import main as run_command

        run_command()
    except KeyboardInterrupt:
        interrupted()


def interrupted() -> NoReturn:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED_EXIT) from None
