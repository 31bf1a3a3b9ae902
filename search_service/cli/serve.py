"""`serve`: the search API (litestar on uvicorn), one worker process per usable CPU by default."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace

import click

from search_service.cli.common import database_url, user_errors
from search_service.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes [default: one per usable CPU], forked from one that loaded the model: they share it, "
    "and one vector copy.",
)
@click.pass_obj
@user_errors
def serve(settings: Settings, host: str, port: int, workers: int | None) -> None:
    """Run the search API (litestar on uvicorn)."""
    import uvicorn

    database_url(settings)  # fails early, in one line, when the embedded cluster is down
    from search_service.engine.vector_load import return_large_frees

    return_large_frees()  # before any fork: the workers inherit it (vector_load.py)
    # One process per core: a request's Python work (HTTP, asyncpg, the ranking's bookkeeping) holds the GIL,
    # and one process saturated it at ~100 semantic searches/s on the 2-core benchmark machine.
    workers = workers or len(os.sched_getaffinity(0))  # the CPUs this process may run on (cpusets)
    from search_service.api.metrics import multiprocess_dir
    from search_service.engine.vector_files import VectorCopyConfig, shared_dir_for_run

    # The workers map one copy of the vectors, and their metrics go to one directory of files, so a scrape of
    # any worker reports all of them. Each worker builds its own app (and Settings) from this environment.
    # uvicorn re-raises the SIGTERM it stopped for once it has shut down: as SystemExit, the run's directories
    # below are removed on the way out (the default action would end the process first).
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with shared_dir_for_run(settings.cache_dir) as shared:
        if workers == 1:
            from search_service.api.app import create_app

            settings = replace(settings, vector_copy=VectorCopyConfig(shared_dir=shared))
            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
            return
        with multiprocess_dir():
            from search_service.cli.prefork import run_workers

            status = run_workers(settings, host, port, workers)
    if status:
        sys.exit(status)
