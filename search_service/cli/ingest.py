"""Ingest commands: `stores create`, `connect webhook`, `import csv`, `imports list|errors|prune` (`keys`: keys.py)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from uuid import UUID

import click

from search_service.cli.common import (
    DURATION_UNITS,
    Duration,
    FiniteFloatRange,
    UserFacingError,
    WholeNumber,
    connect,
    current_database_url,
    echo,
    echo_webhook_url,
    option_mistake,
    progress_bar,
    refuse_a_wrong_secret_key,
    run_stoppable,
    shown_once,
    user_errors,
    write_output,
)
from search_service.cli.keys import keys
from search_service.controlchars import escape_control_chars
from search_service.settings import Settings
from search_service.timetext import utc_text

if TYPE_CHECKING:
    from search_service.ingest.csvfile import CsvRows
    from search_service.ingest.imports import ImportOutcome


@click.group()
def stores() -> None:
    """Stores (what `POST /v1/stores` does, from the command line)."""


@stores.command("create")
@click.option("--name", required=True, help="The store's name, as shoppers see it.")
@click.option("--lat", required=True, type=FiniteFloatRange(-90, 90), help="Latitude of the store, WGS 84 (-90..90).")
@click.option(
    "--lon", required=True, type=FiniteFloatRange(-180, 180), help="Longitude of the store, WGS 84 (-180..180)."
)
@click.option("--address", default=None, help="Street and number.")
@click.option("--city", default=None, help="City.")
@click.option("--postal-code", default=None, help="Postal code.")
@click.option("--country", "country_code", default=None, help="ISO 3166-1 alpha-2, e.g. DE.")
@click.option("--store-type", default=None, help="A free label, e.g. grocery or hardware.")
@click.option("--currency", default="EUR", show_default=True, help="The store's default currency (ISO 4217).")
@click.option("--phone", default=None, help="The store's phone number, as shoppers see it.")
@click.option("--website", default=None, help="The store's http(s) address, e.g. https://shop.example.")
@click.pass_obj
@user_errors
def stores_create(settings: Settings, **fields: object) -> None:
    """Create a store; prints its id alone (STORE=$(plinqy-search stores create ...))."""
    from search_service.ingest.stores import StoreError, StoreFields, create_store

    with connect(settings) as conn:
        try:
            store_id = create_store(conn, StoreFields(**fields))  # type: ignore[arg-type]
        except StoreError as exc:  # every one names an option's value (exit 2)
            raise option_mistake(exc.field, exc.message) from None
    echo(f"created store {store_id}", err=True)
    echo(store_id)  # alone on stdout: `$(...)` captured "created store <id>"


@click.group()
def connect_group() -> None:
    """Connections that deliver a store's data (signed webhooks; the POS connectors)."""


@connect_group.command("webhook")
@click.option("--store", "store_id", required=True, type=click.UUID)
@click.pass_obj
@user_errors
def connect_webhook(settings: Settings, store_id: UUID) -> None:
    """A Standard Webhooks connection: prints its id and its signing secret (once, last line)."""
    from search_service.ingest.stores import StoreError, create_connection

    refuse_a_wrong_secret_key(settings)  # its secret under a key the others do not open: the API could not read it
    with connect(settings) as conn, shown_once("no connection was made"), conn.transaction():
        try:
            new = create_connection(conn, settings.secret_box(), store_id=store_id, source="webhook")
        except StoreError as exc:
            raise UserFacingError(exc.message) from None
        echo(f"connection {new.id}")
        echo_webhook_url(settings, new.id, "Standard Webhooks")
        echo("signing secret, shown only now:")
        echo(new.secret)


@click.group("import")
def import_group() -> None:
    """Import a store's catalogue and stock."""


# `import csv` exits 0 completed, 1 not completed, 3 rows rejected with --strict, 130 Ctrl-C, and this when the
# database connection was lost (sysexits' EX_TEMPFAIL: try again later; the batch, once stored, is kept).
LOST_CONNECTION_EXIT = 75


def _known_charset(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--charset names a text encoding (not e.g. rot13, hex or Python's unicode_escape): the upload's own check."""
    from search_service.ingest.csv_text import CsvError, check_charset

    try:
        check_charset(value)
    except CsvError:
        raise click.BadParameter(
            f"{value!r} is not a text encoding: name the file's, e.g. windows-1252 or latin-1 "
            "(leave --charset out for UTF-8)",
            param=param,
        ) from None
    return value


@import_group.command("csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", "store_id", required=True, type=click.UUID, help="The store whose catalogue this is.")
@click.option("--strict", is_flag=True, help="Exit 3 when any row was rejected.")
@click.option(
    "--charset", callback=_known_charset, help="The file's encoding if not UTF-8 (Excel on Windows: windows-1252)."
)
@click.pass_obj
@user_errors
def import_csv(settings: Settings, file: Path, store_id: UUID, strict: bool, charset: str | None) -> None:
    """Import a CSV file (sku, gtin, name, brand, description, category, price, currency, quantity, is_active)."""
    from search_service.ingest.csvfile import CsvError
    from search_service.ingest.imports import (
        ImportConnectionLost,
        ImportInterrupted,
        ImportMappingFailed,
        import_csv_async,
    )
    from search_service.ingest.pipeline import UnknownStore
    from search_service.worker import settle_heap

    dsn = current_database_url(settings)
    reader = _checked_csv(settings, file, store_id, charset)
    # a name's bytes that are not UTF-8 (surrogates here) could not be stored: the batch failed with a traceback
    name = os.fsencode(file.name).decode("utf-8", "replace")
    with progress_bar(f"import {escape_control_chars(name)}", " rows", 0) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        def notice(message: str) -> None:
            bar.write(escape_control_chars(message), file=sys.stderr)

        settle_heap()
        try:
            out = run_stoppable(import_csv_async(dsn, reader, name, store_id, settings.ingest, progress, notice))
        except (CsvError, UnknownStore, ImportMappingFailed) as exc:
            raise UserFacingError(str(exc)) from None
        except (ImportInterrupted, ImportConnectionLost) as stopped:  # one line: where the batch is
            interrupted = isinstance(stopped, ImportInterrupted)
            bar.close()  # before the last line: closing draws the bar again
            echo(f"{'interrupted' if interrupted else 'error'}: {stopped}", err=True)
            sys.exit(130 if interrupted else LOST_CONNECTION_EXIT)
    _report(out, strict)


def _report(out: ImportOutcome, strict: bool) -> None:
    """The first rejected, duplicate, stale and noted rows, the summary line, where the rest are; exit 1 unless
    completed, 3 on --strict rejections."""
    from search_service.ingest.imports import row_count_text

    _first_rows("rejected", out.errors, out.rejected)
    _first_rows("duplicate", out.duplicates or [], out.duplicate)
    _first_rows("stale", out.stales or [], out.stale)  # "1 stale" said neither which row nor why
    _first_rows("note", out.notes or [], out.noted)
    if out.ignored_columns:
        echo(f"ignored columns: {', '.join(out.ignored_columns)}")
    echo(
        f"batch {out.batch_id} {out.status}: {row_count_text(out.total)}, {out.mapped} mapped "
        f"({out.noted} with notes, {out.unchanged} unchanged), {out.stale} stale, {out.duplicate} duplicate, "
        f"{out.rejected} rejected"
    )
    if len(out.errors) + len(out.duplicates or []) + len(out.stales or []) < out.rejected + out.duplicate + out.stale:
        echo(
            f"every rejected, duplicate and stale row: plinqy-search imports errors {out.batch_id} --output errors.csv"
        )
    if len(out.notes or []) < out.noted:
        echo(f"every row with notes: plinqy-search imports errors {out.batch_id} --notes --output notes.csv")
    if out.status != "completed":
        sys.exit(1)
    if strict and out.rejected:
        sys.exit(3)


def _first_rows(kind: str, shown: list[tuple[int, str]], count: int) -> None:
    for number, reason in shown:
        echo(f"row {number}: {kind}: {reason}")
    if count > len(shown):
        echo(f"... and {count - len(shown)} more " + ("rows with notes" if kind == "note" else f"{kind} rows"))


def _checked_csv(settings: Settings, file: Path, store_id: UUID, charset: str | None) -> CsvRows:
    """The file's rows once its size, the store and the header are checked: a refusal is one line, before the
    progress bar (it came after an empty one)."""
    from search_service.ingest.csvfile import CsvError
    from search_service.ingest.imports import open_csv
    from search_service.ingest.pipeline import UnknownStore

    if file.stat().st_size > settings.ingest.max_upload_bytes:
        raise UserFacingError(  # the limit is the upload's: a CLI user would not think of its setting
            f"{file} is larger than {settings.ingest.max_upload_bytes} bytes, the import limit: split the file, or "
            "raise the limit with PLINQY_INGEST_MAX_UPLOAD_BYTES (it bounds API uploads too)"
        )
    try:
        with connect(settings) as conn:
            return open_csv(conn, file, store_id, charset)
    except (CsvError, UnknownStore) as exc:
        raise UserFacingError(str(exc)) from None


@click.group()
def imports() -> None:
    """Import batches."""


BATCH_STATUSES = ("receiving", "pending", "processing", "completed", "failed", "aborted")


@imports.command("list")
@click.option("--store", "store_id", type=click.UUID, help="Only this store's batches.")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(BATCH_STATUSES), help="Only these statuses (repeat it)."
)
@click.option("--limit", default=50, show_default=True, type=WholeNumber(1, 100_000), help="Batches at most.")
@click.pass_obj
@user_errors
def imports_list(settings: Settings, store_id: UUID | None, statuses: tuple[str, ...], limit: int) -> None:
    """Batches newest first (CSV files, listing writes, deliveries, syncs): status, counts, lease, error."""
    from search_service.db.sql import statement

    params = {"store_id": store_id, "statuses": list(statuses) or None, "limit": limit}
    with connect(settings) as conn:
        rows = conn.execute(statement("ingest/batches", "recent_batches").psycopg, params).fetchall()
        store_of = statement("ingest/batches", "store_of").psycopg
        if not rows and store_id is not None and conn.execute(store_of, {"store_id": store_id}).fetchone() is None:
            raise UserFacingError(f"no store with id {store_id}")  # it said "no batches", as of a store with none
    if not rows:
        echo("no batches")
    for row in rows:
        echo(*_batch_columns(*row))


def _batch_columns(
    batch_id: UUID, store_id: UUID, source: str, kind: str, status: str, total: int, mapped: int, stale: int,
    duplicate: int, rejected: int, error: str | None, file_name: str | None, created: datetime,
    finished: datetime | None, locked_by: str | None, locked_until: datetime | None, failures: int,
    pruned: datetime | None, unchanged: int, unprocessed: int,
) -> list[str]:  # fmt: skip
    counts = f"rows={total} mapped={mapped} stale={stale} duplicate={duplicate} rejected={rejected} "
    counts += f"unchanged={unchanged}" + (f" unprocessed={unprocessed}" if unprocessed else "")  # failed: never mapped
    columns = [str(batch_id), f"store={store_id}", f"{source}/{kind}", status, counts]
    columns.append(f"created={utc_text(created)}")
    if finished is not None:
        columns.append(f"finished={utc_text(finished)}")
    if file_name:
        columns.append(f"file={file_name}")
    if locked_by and status == "processing":  # a lease past its time is held by no one: it read as a live worker's
        lapsed = " (lapsed)" if locked_until is not None and locked_until < datetime.now(UTC) else ""
        until = utc_text(locked_until) if locked_until is not None else "-"
        columns.append(f"leased_by={locked_by} until {until}{lapsed}")
    if failures:
        columns.append(f"mapping_failures={failures}")
    if pruned is not None:
        columns.append("rows pruned")
    return columns + ([f"error={' '.join(error.split())}"] if error else [])


@imports.command("errors")
@click.argument("batch_id", type=click.UUID)
@click.option("--notes", is_flag=True, help="The rows mapped with notes instead (GET /v1/imports/ID/notes).")
@click.option("--output", type=click.File("w", encoding="utf-8", lazy=True), help="Write to this file (else stdout).")
@click.pass_obj
@user_errors
def imports_errors(settings: Settings, batch_id: UUID, notes: bool, output: TextIO | None) -> None:
    """An import's rejected, duplicate and stale rows as the CSV GET /v1/imports/ID/errors answers (UTF-8, a BOM)."""
    from search_service.ingest.batch_rows import BatchRowsUnavailable, batch_rows_csv

    with connect(settings) as conn:
        try:
            text = batch_rows_csv(conn, batch_id, "batch_notes" if notes else "batch_errors")
        except BatchRowsUnavailable as exc:
            raise UserFacingError(str(exc)) from None
    if output is None and sys.stdout.isatty():  # a cell's control characters would drive the terminal
        for line in text.splitlines():
            echo(line)
    else:
        write_output(text, output)


@imports.command("prune")
@click.option(
    "--older-than", required=True, type=Duration(), help=f"Age of finished batches, {DURATION_UNITS}: 30d, 12h."
)
@click.option("--dry-run", is_flag=True, help="Count; delete nothing.")
@click.pass_obj
@user_errors
def imports_prune(settings: Settings, older_than: float, dry_run: bool) -> None:
    """Delete the batches (CSV files, listing writes, deliveries, syncs) finished longer ago than --older-than,
    with their raw rows, and the webhook delivery records received before then (kept 2 days at least, for the
    duplicate check). Batches not finished stay; the listings they wrote stay."""
    from search_service.ingest.retention import prune_imports

    with connect(settings) as conn, progress_bar("imports prune", " batches", shown=not dry_run) as bar:
        counts = prune_imports(conn, older_than, dry_run, on_chunk=lambda chunk: bar.update(chunk.batches))
    what = (
        f"{counts.batches} finished batch(es) with {counts.raw_rows} raw row(s), {counts.deliveries} delivery record(s)"
    )
    echo(f"would delete {what}" if dry_run else f"deleted {what}")


COMMANDS = [keys, stores, import_group, imports]
CONNECT = connect_group
