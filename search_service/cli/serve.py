"""`serve`: the search API (litestar on uvicorn), one worker process per usable CPU by default."""

from __future__ import annotations

import os

import click

from search_service.cli.common import database_url, user_errors
from search_service.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes [default: one per usable CPU]. Each holds its own model and in-memory vector copy.",
)
@click.pass_obj
@user_errors
def serve(settings: Settings, host: str, port: int, workers: int | None) -> None:
    """Run the search API (litestar on uvicorn)."""
    import uvicorn

    database_url(settings)  # fails early, in one line, when the embedded cluster is down
    # One process per core: a request's Python work (HTTP, asyncpg, the ranking's bookkeeping) holds the GIL,
    # and one process saturated it at ~100 semantic searches/s on the 2-core benchmark machine.
    workers = workers or len(os.sched_getaffinity(0))  # the CPUs this process may run on (cpusets)
    if workers == 1:
        from search_service.api.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    # Each worker process builds its own app (and its Settings.from_env) from the inherited environment.
    uvicorn.run(
        "search_service.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
