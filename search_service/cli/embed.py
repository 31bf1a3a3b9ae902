"""`worker` (every background job: import mapping, embedding, …) and `reembed` (the catalogue in bulk)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from search_service.cli.common import (
    UNREACHABLE_DATABASE,
    FiniteFloatRange,
    UsageMistake,
    UserFacingError,
    WholeNumber,
    bars_drawn,
    connect,
    current_database_url,
    echo,
    exit_on_sigterm_while_starting,
    lost_mid_run,
    refuse_a_wrong_secret_key,
    require_cache_dir,
    usable_secret_box,
    user_errors,
)
from search_service.db import rights
from search_service.db.faults import lost_after_connecting
from search_service.logformat import configure_logging
from search_service.settings import Settings
from search_service.timetext import utc_text


def _encoder(settings: Settings) -> Any:
    from embeddings.encoder import EncoderError, load_encoder

    require_cache_dir(settings)  # where the model's converted files go: not blamed on the model
    configure_logging()  # its warning (a cached file made again) in the log's format in every command (reembed's)
    try:
        return load_encoder(settings.encoder)
    except EncoderError as exc:
        raise UserFacingError(str(exc)) from None


# It was "Lease in seconds.", as if of every job's work: the other jobs' leases are settings of their own
LEASE_HELP = (
    "Seconds the embed job holds the embedding tasks it claimed (an import batch's lease is PLINQY_INGEST_LEASE_S, "
    "a webhook delivery's PLINQY_WEBHOOK_LEASE_S)."
)


@click.command()
@click.option(
    "--only",
    multiple=True,
    help="Jobs to run (default: all): sync, import, embed, events; comma-separated, or the option repeated.",
)
@click.option("--batch-size", default=64, show_default=True, type=WholeNumber(1, 4096), help="Tasks per claim.")
@click.option(
    "--poll-interval", default=5.0, show_default=True, type=FiniteFloatRange(0.05, 3600), help="Seconds between polls."
)
@click.option("--lease", default=60.0, show_default=True, type=FiniteFloatRange(1, 86400), help=LEASE_HELP)
@click.option("--drain", is_flag=True, help="Process what is pending (job after job), then exit.")
@click.pass_obj
@user_errors
def worker(
    settings: Settings, only: tuple[str, ...], batch_size: int, poll_interval: float, lease: float, drain: bool
) -> None:
    """Run the background jobs, each in its own process (SIGTERM/SIGINT/SIGHUP: finish what is in hand, exit 0)."""
    exit_on_sigterm_while_starting()
    named = ",".join(only) if only else None  # repeated: every one (the last alone ran, without a word)
    from search_service import worker as worker_mod

    configure_logging()
    with connect(settings):  # unreachable: one line here (main), not a traceback from each job's process
        pass
    url = current_database_url(settings)
    try:
        jobs = worker_mod.select_jobs(named)
    except ValueError as exc:
        raise UsageMistake(str(exc)) from None
    names = [j.name for j in jobs]
    # a role that may not write what the jobs (or their triggers) write: one line now, not each job failing at its
    # first write and restarted for ever
    if refused := rights.cannot_write_now(url, names, f"what the worker's jobs ({', '.join(names)}) write"):
        raise UserFacingError(refused)
    if "embed" in names:
        _encoder(settings)  # a missing model fails here, in one line, before any child starts
    if "sync" in names:
        usable_secret_box(settings)  # likewise an unusable key: a job failing at its start is restarted for ever
    if "events" in names:
        refuse_a_wrong_secret_key(settings)
    options = {
        "batch_size": batch_size,
        "poll_interval": poll_interval,
        "lease": lease,
        "on_start": _log_started,
    }
    code = worker_mod.run(settings, url, only=named, drain=drain, options=options)
    if code:
        sys.exit(code)


def _log_started(worker_id: str) -> None:
    """A line of the worker's log as its others are (a bare `worker ... started` had no time or level)."""
    import json
    import logging

    logging.getLogger("plinqy.worker").info(json.dumps({"event": "started", "worker": worker_id}))


@click.command()
@click.option("--missing", "modes", flag_value="missing", multiple=True, help="Products without a vector.")
@click.option("--stale", "modes", flag_value="stale", multiple=True, help="Wrong model or changed text.")
@click.option("--all", "modes", flag_value="all", multiple=True, help="Every product (resumable).")
@click.option("--batch-size", default=256, show_default=True, type=WholeNumber(1, 100000))
@click.option(
    "--limit",
    default=None,
    type=WholeNumber(1, None),
    help="Stop after this many products re-embedded (or newly queued); a rerun goes on from there.",
)
@click.option("--via-queue", is_flag=True, help="Enqueue ai_tasks for the workers instead of embedding here.")
@click.option("--restart", is_flag=True, help="--all: start over instead of resuming an interrupted or limited run.")
@click.pass_obj
@user_errors
def reembed(
    settings: Settings, modes: tuple[str, ...], batch_size: int, limit: int | None, via_queue: bool, restart: bool
) -> None:
    """Re-embed the catalogue in bulk (Ctrl-C is safe: run again to resume)."""
    from embeddings.reembed import ReembedError
    from embeddings.reembed import reembed as run_reembed
    from search_service.worker import settle_heap

    mode = _one_mode(modes, restart)
    url = current_database_url(settings)
    encoder = _encoder(settings)
    settle_heap()
    try:
        report = run_reembed(
            url,
            encoder,
            mode=mode,  # type: ignore[arg-type]
            batch_size=batch_size,
            limit=limit,
            via_queue=via_queue,
            cache_dir=settings.cache_dir,
            progress=bars_drawn(),
            restart=restart,
            on_resume=lambda resumed: _say_resumed(resumed, via_queue),
        )
    except ReembedError as exc:
        raise UserFacingError(str(exc)) from None
    except KeyboardInterrupt:
        echo(f"interrupted: finished batches are saved; {_how_to_resume(restart)} to resume", err=True)
        sys.exit(130)
    except UNREACHABLE_DATABASE as exc:
        if not lost_after_connecting(exc):  # connecting failed: main's advice on the URL
            raise
        raise UserFacingError(lost_mid_run(exc, _how_to_resume(restart))) from None
    echo(_summary(report, via_queue))


def _how_to_resume(restart: bool) -> str:
    return "run it again without --restart" if restart else "run the same command again"  # --restart starts over


def _one_mode(modes: tuple[str, ...], restart: bool) -> str:
    if len(set(modes)) != 1:  # two would run the larger silently (--missing --all: the whole catalogue)
        given = " and ".join(f"--{m}" for m in dict.fromkeys(modes))
        raise UsageMistake(f"choose one of --missing, --stale or --all{f' (not {given})' if modes else ''}")
    if restart and modes[0] != "all":  # --missing and --stale keep no checkpoint: each run selects what is left
        raise UsageMistake(f"--restart is for --all (--{modes[0]} always goes on with what is left)")
    return modes[0]


def _summary(report: Any, via_queue: bool) -> str:
    action = f"enqueued {report.enqueued}" if via_queue else f"wrote {report.written}"
    if report.no_vector:  # a text the model reads as [UNK] only gets no vector (docs/engine.md)
        action += f" ({report.no_vector} without a vector: no token the model knows)"
    if report.resumed_from is not None:
        action += f" (resumed the run started at {_when(report.resumed_from)})"
    return f"reembed --{report.mode}: scanned {report.scanned}, {action} in {report.seconds:.1f}s ({report.rate:.0f}/s)"


def _when(moment: datetime) -> str:
    return utc_text(moment)


def _say_resumed(report: Any, via_queue: bool) -> None:
    """Before the walk: a resumed `--all` skips what was embedded since its start (a checkpoint may be days old)."""
    command = "reembed --all --via-queue" if via_queue else "reembed --all"
    echo(
        f"{command}: resuming the run started at {_when(report.resumed_from)}, {report.left} products not "
        "re-embedded since (--restart starts over)",
        err=True,
    )
