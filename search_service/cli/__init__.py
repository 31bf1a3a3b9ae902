"""The `plinqy-search` command line. Commands stay thin: they parse options and call into modules."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

import click

from search_service.cli.common import (
    Duration,
    UserFacingError,
    connect,
    database_url,
    embedded_cluster,
    user_errors,
)
from search_service.db import migrate as migrate_mod
from search_service.settings import Settings, SettingsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Plinqy Search: semantic + geo 'search near me'."""
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as exc:
        raise UserFacingError(str(exc)) from None


@cli.group()
def db() -> None:
    """The embedded PostgreSQL cluster (ignored when DATABASE_URL is set)."""


def _refuse_when_external(settings: Settings, action: str) -> bool:
    if not settings.uses_embedded_db:
        click.echo(f"DATABASE_URL is set, so the embedded cluster is not used; nothing to {action}.")
        return True
    return False


@db.command("up")
@click.pass_obj
@user_errors
def db_up(settings: Settings) -> None:
    """Initialise (once) and start the embedded cluster."""
    if _refuse_when_external(settings, "start"):
        return
    click.echo(f"embedded database {embedded_cluster(settings).up()}")


@db.command("down")
@click.pass_obj
@user_errors
def db_down(settings: Settings) -> None:
    """Stop the embedded cluster."""
    if _refuse_when_external(settings, "stop"):
        return
    click.echo(f"embedded database {embedded_cluster(settings).down()}")


@db.command("status")
@click.pass_obj
@user_errors
def db_status(settings: Settings) -> None:
    """Report the embedded cluster's state (exit 3 when it is not running)."""
    if not settings.uses_embedded_db:
        migrate_mod.check_server(settings.database_url)
        click.echo("external database (DATABASE_URL) is reachable")
        return
    status = embedded_cluster(settings).status()
    click.echo(f"embedded database {status.describe()}")
    if not status.running:
        sys.exit(3)


@db.command("url")
@click.pass_obj
def db_url(settings: Settings) -> None:
    """Print the DATABASE_URL every command uses."""
    click.echo(settings.database_url)


@cli.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@click.pass_obj
@user_errors
def migrate(settings: Settings, revision: str) -> None:
    """Create the extensions and every table (alembic upgrade)."""
    url = database_url(settings)
    migrate_mod.upgrade(url, revision)
    click.echo(f"database at revision {migrate_mod.current_revision(url)}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes [default: one per usable CPU]. Each holds its own model; they share one vector copy.",
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
    from search_service.api.metrics import multiprocess_dir
    from search_service.engine.vector_files import VectorCopyConfig, shared_dir_for_run

    # The workers map one copy of the vectors, and their metrics go to one directory of files, so a scrape of
    # any worker reports all of them. Each worker builds its own app (and Settings) from this environment.
    with shared_dir_for_run(settings.cache_dir) as shared:
        if workers == 1:
            from search_service.api.app import create_app

            settings = replace(settings, vector_copy=VectorCopyConfig(shared_dir=shared))
            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
            return
        with multiprocess_dir():
            uvicorn.run(
                "search_service.api.app:create_app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="info",
            )


def _encoder(settings: Settings) -> Any:
    from embeddings.encoder import EncoderError, load_encoder

    try:
        return load_encoder(settings.encoder)
    except EncoderError as exc:
        raise UserFacingError(str(exc)) from None


def _configure_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)


@cli.command()
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 4096), help="Tasks per claim.")
@click.option(
    "--poll-interval", default=5.0, show_default=True, type=click.FloatRange(0.05, 3600), help="Seconds between polls."
)
@click.option("--lease", default=60.0, show_default=True, type=click.FloatRange(1, 86400), help="Lease in seconds.")
@click.option("--drain", is_flag=True, help="Process until nothing is due, then exit.")
@click.pass_obj
@user_errors
def worker(settings: Settings, batch_size: int, poll_interval: float, lease: float, drain: bool) -> None:
    """Embed products from the ai_task queue (SIGTERM/SIGINT: finish the batch in hand and exit 0)."""
    from embeddings.worker import WorkerConfig, run_worker

    _configure_logging()
    url = database_url(settings)
    config = WorkerConfig(
        batch_size=batch_size,
        poll_interval_s=poll_interval,
        lease_seconds=lease,
        drain=drain,
        fail_marker=settings.env.get("PLINQY_WORKER_FAIL_MARKER") or None,
        hold_s=float(settings.env.get("PLINQY_WORKER_HOLD_S") or 0),
    )
    encoder = _encoder(settings)
    run_worker(url, encoder, config, on_start=lambda wid: click.echo(f"worker {wid} started", err=True))


@cli.group()
def tasks() -> None:
    """Inspect and requeue the ai_task queue."""


@tasks.command("stats")
@click.pass_obj
@user_errors
def tasks_stats(settings: Settings) -> None:
    """Counts by status and the age of the oldest pending task."""
    from embeddings import queue

    with connect(settings) as conn:
        stats = queue.stats(conn)
    for status, count in stats.counts.items():
        click.echo(f"{status:<8} {count}")
    age = "-" if stats.oldest_pending_s is None else f"{stats.oldest_pending_s:.1f}s"
    click.echo(f"oldest pending: {age}")


@tasks.command("failed")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.pass_obj
@user_errors
def tasks_failed(settings: Settings, limit: int) -> None:
    """Dead tasks with their last error."""
    from embeddings import queue

    with connect(settings) as conn:
        rows = queue.list_failed(conn, limit)
    if not rows:
        click.echo("no failed tasks")
    for task_id, product_id, attempts, max_attempts, error, _finished in rows:
        click.echo(f"{task_id}\tproduct={product_id}\tattempts={attempts}/{max_attempts}\t{error}")


@tasks.command("retry")
@click.option("--all", "retry_all", is_flag=True, help="Requeue every failed task.")
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
@user_errors
def tasks_retry(settings: Settings, retry_all: bool, ids: tuple[int, ...]) -> None:
    """Requeue failed tasks: `--all` or task IDs."""
    from embeddings import queue

    if retry_all == bool(ids):
        raise UserFacingError("give either --all or one or more task IDs (see `plinqy-search tasks failed`)")
    with connect(settings) as conn:
        requeued = queue.retry_failed(conn, None if retry_all else list(ids))
    click.echo(f"requeued {len(requeued)} task(s)")


@tasks.command("prune")
@click.option("--older-than", required=True, type=Duration(), help="Age of the done tasks to delete: 7d, 12h, 30m.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.pass_obj
@user_errors
def tasks_prune(settings: Settings, older_than: float, dry_run: bool) -> None:
    """Delete done tasks that finished longer ago than --older-than (pending, running and failed ones stay)."""
    from tqdm import tqdm

    from embeddings import queue

    with connect(settings) as conn:
        plan = queue.plan_prune(conn, older_than)
        before = f"that finished before {plan.cutoff:%Y-%m-%d %H:%M:%S %Z}"
        if dry_run:
            click.echo(f"would delete {plan.count} done task(s) {before}")
            return
        with tqdm(total=plan.count, unit="task", desc="tasks prune", disable=plan.count == 0) as bar:
            deleted = queue.prune_done(conn, plan, on_batch=bar.update)
    click.echo(f"deleted {deleted} done task(s) {before}")


@cli.group()
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
    click.echo(f"removed {report.removed} word(s), {report.kept} kept")


@cli.command()
@click.option("--missing", "mode", flag_value="missing", help="Products without a vector.")
@click.option("--stale", "mode", flag_value="stale", help="Wrong model or changed text.")
@click.option("--all", "mode", flag_value="all", help="Every product (resumable).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1, 100000))
@click.option("--limit", default=None, type=click.IntRange(1, None), help="Stop after this many products.")
@click.option("--via-queue", is_flag=True, help="Enqueue ai_tasks for the workers instead of embedding here.")
@click.pass_obj
@user_errors
def reembed(settings: Settings, mode: str | None, batch_size: int, limit: int | None, via_queue: bool) -> None:
    """Re-embed the catalogue in bulk (Ctrl-C is safe: run again to resume)."""
    from embeddings.reembed import ReembedError
    from embeddings.reembed import reembed as run_reembed

    if mode is None:
        raise UserFacingError("choose what to re-embed: --missing, --stale or --all")
    url = database_url(settings)
    encoder = _encoder(settings)
    try:
        report = run_reembed(
            url,
            encoder,
            mode=mode,  # type: ignore[arg-type]
            batch_size=batch_size,
            limit=limit,
            via_queue=via_queue,
            cache_dir=settings.cache_dir,
        )
    except ReembedError as exc:
        raise UserFacingError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: finished batches are saved; run the same command again to resume", err=True)
        sys.exit(130)
    action = f"enqueued {report.enqueued}" if via_queue else f"wrote {report.written}"
    click.echo(f"reembed --{mode}: scanned {report.scanned}, {action} in {report.seconds:.1f}s ({report.rate:.0f}/s)")


@cli.command("seed-demo")
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
            url, scale, seed_value, embed=embed, cache_dir=settings.cache_dir, encoder_config=settings.encoder
        )
    except EncoderError as exc:
        raise UserFacingError(str(exc)) from None
    except psycopg.errors.UndefinedTable:
        raise UserFacingError("the database has no Plinqy schema: run `plinqy-search migrate` first") from None
    except psycopg.OperationalError as exc:
        raise UserFacingError(f"cannot reach the database: {str(exc).strip().splitlines()[0]}") from None
    for line in report.lines():
        click.echo(line)


def main() -> None:
    cli(prog_name="plinqy-search")
