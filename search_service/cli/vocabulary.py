"""`vocabulary`: the words typo correction works with."""

from __future__ import annotations

import click

from search_service.cli.common import UserFacingError, connect, echo, user_errors
from search_service.settings import Settings


@click.group()
def vocabulary() -> None:
    """The words typo correction works with (search_term)."""


@vocabulary.command("prune")
@click.pass_obj
@user_errors
def vocabulary_prune(settings: Settings) -> None:
    """Drop words no product name or brand uses any more, and duplicates (product writes wait meanwhile)."""
    from search_service.engine import vocabulary as vocabulary_mod

    with connect(settings) as conn:
        try:
            report = vocabulary_mod.prune(conn)
        except vocabulary_mod.VocabularyBusy as exc:
            raise UserFacingError(str(exc)) from None
    echo(f"removed {report.removed} word(s), {report.kept} kept")
