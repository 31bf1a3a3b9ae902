"""`secrets rotate`: the stored secrets encrypted again under the first of the secret key's keys (key rotation)."""

from __future__ import annotations

import click

from search_service.cli.common import (
    UserFacingError,
    WholeNumber,
    connect,
    current_database_url,
    echo,
    progress_bar,
    usable_secret_box,
    user_errors,
)
from search_service.settings import Settings


@click.group()
def secrets() -> None:
    """The secrets stored encrypted (webhook signing secrets, POS credentials) and the secret key."""


@secrets.command("rotate")
@click.option("--batch-size", default=200, show_default=True, type=WholeNumber(1, 100000), help="Rows a transaction.")
@click.pass_obj
@user_errors
def secrets_rotate(settings: Settings, batch_size: int) -> None:
    """Encrypt every stored secret again under the first key of PLINQY_SECRET_KEY (or of the key file), opening
    them with any of its keys: put the new key first and the old one after it (comma-separated) in every process,
    restart them, run this, then drop the old key. Secrets already under the first key are left as they are, so it
    may be run again (after an interruption too). A secret none of the keys opens stops it, naming its row; the
    batch it was in is not written."""
    from search_service.db.secret_rotation import UnopenedSecret, rotate_all, secret_rows

    box = usable_secret_box(settings)
    current_database_url(settings)  # an older schema: one line saying to migrate, not a missing column
    with connect(settings) as conn:
        total = sum(secret_rows(conn).values())
        try:
            with progress_bar("rotate", " rows", total, shown=total > 0) as bar:
                tallies = rotate_all(conn, box, batch_size, bar.update)
        except UnopenedSecret as exc:
            raise UserFacingError(
                f"a stored secret opens with none of the {box.key_count} key(s) of {box.source}: {exc}; nothing of "
                f"its batch was written (the batches before it stay rotated). Add the key it was stored with after the "
                f"first one and run again, or replace that secret (`webhooks rotate-secret`, `connections update`)"
            ) from None
    for table, tally in tallies.items():
        echo(f"{table}: {tally.rows} row(s), {tally.rotated} secret(s) encrypted again under the first key, "
             f"{tally.current} already under it")  # fmt: skip
    if box.key_count == 1:
        echo(f"note: {box.source} holds one key: give the new one first and the old one after it to rotate")
