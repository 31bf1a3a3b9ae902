"""`plinqy-search sync ID [--full]`: one poll of a POS connection now, with a progress bar; Ctrl-C stops after the
batch in hand."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from search_service.cli.common import (
    UsageMistake,
    UserFacingError,
    connect,
    current_database_url,
    echo,
    progress_bar,
    user_errors,
)
from search_service.settings import Settings
from search_service.timetext import utc_text_of

if TYPE_CHECKING:
    from search_service.db.secretbox import SecretBox
    from search_service.ingest.connectors.factory import ConnectionSpec
    from search_service.ingest.connectors.sync import SyncReport


@click.command()
@click.argument("connection_id", type=click.UUID)
@click.option(
    "--full", is_flag=True, help="Read everything again, and remove listings the vendor no longer has (not >50%)."
)
@click.option(
    "--allow-mass-removal",
    is_flag=True,
    help="With --full: remove what the vendor no longer has even when it is more than half of the store's listings.",
)
@click.option("--now", "now", is_flag=True, help="Sync even while the vendor's asked wait (a 429's Retry-After) runs.")
@click.pass_obj
@user_errors
def sync(settings: Settings, connection_id: UUID, full: bool, allow_mass_removal: bool, now: bool) -> None:
    """Poll one POS connection now (its webhooks' re-reads included), with a progress bar. Exit 1 when it failed,
    or when a full sync's removal was refused (more than half of the store's listings)."""
    from search_service.ingest.connectors.job import account_locked
    from search_service.ingest.connectors.sync import ConnectionChanged, SyncFailed, record_rows, reread_spec
    from search_service.ingest.connectors.sync import sync_connection as run_sync

    _failure_said_once()
    if allow_mass_removal and not full:
        raise UsageMistake("--allow-mass-removal goes with --full (only a full sync removes listings)")
    current_database_url(settings)
    with connect(settings) as conn:
        box = settings.secret_box()
        spec = _syncable(conn, box, connection_id, now)
        waiting = partial(echo, "another sync of this vendor account is running: waiting for it", err=True)
        with (
            account_locked(conn, spec.account, waiting),
            progress_bar(f"sync {spec.source}", " items") as bar,
            _stop_on_ctrl_c(_full_again(connection_id, allow_mass_removal) if full else "") as stop,
        ):
            try:
                spec = reread_spec(conn, box, spec)  # what it is now: another sync may have run, an update come
                report = run_sync(conn, spec, record_rows, full=full, policy=settings.connectors.policy(),
                                  on_read=lambda page: bar.update(page.read), stop=stop,
                                  allow_mass_removal=allow_mass_removal)  # fmt: skip
            except ConnectionChanged as exc:
                raise UserFacingError(str(exc)) from None
            except SyncFailed as exc:
                raise UserFacingError(
                    f"sync failed ({exc.failures} in a row; recorded on the connection, the cursor kept): {exc}"
                ) from None
    _tell(connection_id, full, report, allow_mass_removal)


def _failure_said_once() -> None:
    """The command's error line says a failure: the sync's log line (bare, the CLI setting no log format) said it
    a second time above it."""
    from search_service.ingest.connectors.sync import FAILED_LOG

    logging.getLogger("plinqy.connectors").addFilter(lambda record: record.msg is not FAILED_LOG)


def _syncable(conn: Any, box: SecretBox, connection_id: UUID, now: bool) -> ConnectionSpec:
    """The connection as read before its account's lock is waited for (read again once held), if it may sync."""
    from search_service.ingest.connectors.sync import UnknownConnection, load_spec

    try:
        spec = load_spec(conn, box, connection_id)
    except UnknownConnection as exc:
        raise UserFacingError(str(exc)) from None
    if spec.source == "webhook":
        raise UserFacingError("a webhook connection is pushed to, not polled")
    if not spec.enabled:
        raise UserFacingError(f"connection {connection_id} is disabled: `connections enable` it first")
    if not now:
        _refuse_while_asked_to_wait(spec.config)
    return spec


def _refuse_while_asked_to_wait(config: dict[str, Any]) -> None:
    """The vendor's asked wait (`not_before`, from a 429's Retry-After or Erply's quota) not over: going back
    now is refused again, and counts as one more failure."""
    until = float(config.get("not_before") or 0)
    if (wait := until - time.time()) > 0:
        when = utc_text_of(min(until, 253370764800))  # 9999-01-01: a wait stored before it was bounded
        raise UserFacingError(
            f"the vendor asked to wait until {when} ({wait:.0f}s); run again then, or pass --now to try anyway"
        )


def _full_again(connection_id: UUID, allow_mass_removal: bool) -> str:
    """What an interrupted or aborted full pass says: a plain sync (or the worker) goes on from the cursor, but only
    a whole full pass removes, and it is refused again without the option it was given."""
    again = f"plinqy-search sync {connection_id} --full" + (" --allow-mass-removal" if allow_mass_removal else "")
    return f"listings the vendor no longer has are removed only at the end of a whole full pass: run `{again}` again"


def _batches(count: int) -> str:
    return f"{count} batch" if count == 1 else f"{count} batches"


def _tell(connection_id: UUID, full: bool, report: SyncReport, allow_mass_removal: bool) -> None:
    """How the sync ended: interrupted (exit 130), its removal refused (exit 1), or done."""
    if report.interrupted:
        stored = f"interrupted: {report.read} vendor records stored in {_batches(report.pages)} with their cursor"
        if full:
            echo(f"{stored}; {_full_again(connection_id, allow_mass_removal)}", err=True)
        else:
            echo(f"{stored}; `plinqy-search sync {connection_id}` (or the worker) goes on from there", err=True)
        sys.exit(130)
    removed = f"; {report.removed} listing(s) gone at the vendor removed" if report.removed else ""
    if full and report.shifted:  # a deletion between two pages moved a record onto a page already read
        removed = "; the vendor's set shifted while the pass ran: listings it did not read were not removed"
    if report.pages:
        echo(f"synced {report.read} vendor records into {report.rows} rows in {_batches(report.pages)} "
             f"({report.seconds:.1f}s){removed}; the import worker maps them")  # fmt: skip
    else:  # a quiet poll stores only its cursor: no batch for the worker (nor `imports list`) to show
        echo(f"synced {report.read} vendor records: nothing new ({report.seconds:.1f}s){removed}")
    if report.warning:  # a wrong location id synced "successfully" at stock 0
        echo(f"warning: {report.warning}", err=True)
    if report.removal_refused:  # the records are stored, but the pass did not do what --full is for
        raise UserFacingError(report.removal_refused)


@contextlib.contextmanager
def _stop_on_ctrl_c(advice: str) -> Iterator[threading.Event]:
    """Ctrl-C sets the event (the sync stops after the batch in hand, stored with its cursor); a second one
    aborts at once, saying `advice` (a full pass's: run it again) too."""
    stop = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        if stop.is_set():  # at once, not after the vendor's read in flight: the server rolls back the batch in hand
            echo(err=True)  # after the terminal's ^C
            echo("aborted: the batches stored before keep their cursor" + (f"; {advice}" if advice else ""), err=True)
            sys.stderr.flush()
            os._exit(130)
        stop.set()
        echo(err=True)
        echo("stopping after the batch in hand (a first or --full sync reads the vendor's stock levels "
             "first: minutes on a big shop); Ctrl-C again to abort now", err=True)  # fmt: skip

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
