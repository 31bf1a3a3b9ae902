"""`seed-demo`: fill an empty catalogue with the generated demo marketplace."""

from __future__ import annotations

import click

from search_service.cli.common import UserFacingError, bars_drawn, database_url, echo, user_errors
from search_service.settings import Settings


@click.command("seed-demo")
@click.option(
    "--scale", type=click.Choice(["demo", "small", "large"]), default="demo", show_default=True, help="How much data."
)
@click.option("--seed", "seed_value", default=42, show_default=True, type=int, help="Random seed.")
@click.option(
    "--embed/--no-embed",
    default=None,
    help="Write real-model vectors in the load (default: yes for small/large; demo leaves them to the worker).",
)
@click.pass_obj
@user_errors
def seed_demo(settings: Settings, scale: str, seed_value: int, embed: bool | None) -> None:
    """Fill an empty catalogue with a generated marketplace (does nothing when it already has data)."""
    import psycopg

    from embeddings.encoder import EncoderError
    from search_service.demo.seed import seed as run_seed

    url = database_url(settings)
    try:
        report = run_seed(
            url,
            scale,
            seed_value,
            embed=embed,
            cache_dir=settings.cache_dir,
            encoder_config=settings.encoder,
            quiet=not bars_drawn(),
        )
    except EncoderError as exc:
        raise UserFacingError(str(exc)) from None
    except psycopg.errors.UndefinedTable:
        raise UserFacingError("the database has no Plinqy schema: run `plinqy-search migrate` first") from None
    for line in report.lines():
        echo(line)
