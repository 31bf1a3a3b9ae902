"""`serve`: the search API (litestar on uvicorn), one worker process per usable CPU by default."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

import click

from search_service.cli.common import UsageMistake, WholeNumber, database_url, require_cache_dir, user_errors
from search_service.cli.ports import bind_port
from search_service.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0: every one).")
@click.option("--port", default=8000, show_default=True, type=WholeNumber(1, 65535), help="TCP port.")
@click.option(
    "--workers",
    type=WholeNumber(1, 64),
    help="Worker processes [default: one per usable CPU], forked from one that loaded the model: they share it, "
    "and one vector copy.",
)
@click.pass_obj
@user_errors
def serve(settings: Settings, host: str, port: int, workers: int | None) -> None:
    """Run the search API (litestar on uvicorn). SIGTERM, SIGINT or SIGHUP: a graceful stop, exit 0."""
    if not host.strip():  # `--host "$API_HOST"` unset listened on every interface, saying `http://:8000`
        raise UsageMistake("--host must not be empty: give an address (0.0.0.0 for every interface), or leave it out")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP's default left the directories behind
        signal.signal(signum, _stopped)
    database_url(settings)  # fails early, in one line, when the embedded cluster is down
    require_cache_dir(settings)  # likewise a cache or shared vector directory that cannot be used
    # One process per core: a request's Python work (HTTP, asyncpg, the ranking's bookkeeping) holds the GIL,
    # and one process saturated it at ~100 semantic searches/s on the 2-core benchmark machine.
    workers = workers or len(os.sched_getaffinity(0))  # the CPUs this process may run on (cpusets)
    from search_service.cli import prefork

    # The port first: one taken is one line, before the model and the vectors are loaded (uvicorn binds after).
    reserved = prefork.reserve_port(host, port) if workers > 1 else (bind_port(host, port), False)
    from search_service.engine.vector_load import return_large_frees

    return_large_frees()  # before any fork: the workers inherit it (vector_load.py)
    from search_service.api.metrics import multiprocess_dir, remove_abandoned_metrics
    from search_service.engine.vector_files import shared_dir_for_run

    # The workers map one copy of the vectors, and their metrics go to one directory of files, so a scrape of
    # any worker reports all of them. Each worker builds its own app (and Settings) from this environment.
    with contextlib.closing(reserved[0]), shared_dir_for_run(settings.cache_dir) as shared:
        if workers == 1:  # no metric files of its own; a killed multi-worker run's are removed all the same
            remove_abandoned_metrics()
            _serve_one(settings, host, port, reserved[0], shared)
            return
        with multiprocess_dir():
            prefork.run_workers(settings, host, port, workers, reserved)


def _stopped(_signum: int, _frame: object) -> None:
    """A graceful stop exits 0 (systemd records 143 as a failure). uvicorn re-raises the signal it stopped for once
    it has shut down: as SystemExit, the run's directories are removed on the way out (the default action would
    end the process first)."""
    sys.exit(0)


def _serve_one(settings: Settings, host: str, port: int, sock: socket.socket, shared: Path) -> None:
    from search_service.api.app import create_app
    from search_service.cli.http_server import AnnouncedServer, uvicorn_config
    from search_service.engine.vector_files import VectorCopyConfig

    settings = replace(settings, vector_copy=VectorCopyConfig(shared_dir=shared))
    config = uvicorn_config(create_app(settings), settings, host, port)
    server = AnnouncedServer(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # the app's startup failed (uvicorn.run's exit status for it)
