"""One sync of one connection: pages from the vendor, each stored with its cursor in one transaction.

The cursor is saved in the transaction that records the page's rows, so it never runs ahead of what is stored:
a sync that dies (vendor down, rate limit, malformed page, a killed process) resumes from the last stored page.
A failure is recorded on the connection (`connections list` shows it) and backs the next attempt off.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg.types.json import Jsonb

from search_service.controlchars import escape_control_chars
from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.ingest.connectors.common import Cursor, Page
from search_service.ingest.connectors.factory import (
    CREDENTIALS,
    ConnectionError_,
    ConnectionSpec,
    build_connector,
    parse_secrets,
)
from search_service.ingest.connectors.http import RateLimited, RetryPolicy, VendorError
from search_service.ingest.connectors.links import link_params, removal_params, removal_rows, unique
from search_service.ingest.connectors.paging import announced, coalesced, prefetched

log = logging.getLogger("plinqy.connectors")

# Stores one page's rows (a raw batch of the ingest pipeline); runs inside the page's transaction.
Recorder = Callable[[Any, ConnectionSpec, Page], None]


# The failure's log line; `plinqy-search sync` says it in its own error line instead (once, not twice)
FAILED_LOG = "sync of connection %s failed (%d in a row): %s"


class SyncFailed(RuntimeError):
    """The sync stopped; the failure is recorded on the connection (the `failures`-th in a row) and the stored pages
    stay stored."""

    def __init__(self, message: str, failures: int = 1) -> None:
        super().__init__(message)
        self.failures = failures


class UnknownConnection(LookupError):
    pass


class ConnectionChanged(SyncFailed):
    """The connection was disabled, or its credentials (the account) or host updated, while the sync waited for its
    account or ran: nothing more of it is stored, not its cursor nor its outcome (the update's reset stands)."""


def changed(spec: ConnectionSpec, what: str = "was disabled or updated") -> ConnectionChanged:
    return ConnectionChanged(
        f"connection {spec.id} {what} during this sync: its outcome is dropped (the change stands); "
        f"`plinqy-search sync {spec.id}` syncs it as it is now"
    )


def as_read(spec: ConnectionSpec) -> dict[str, Any]:
    """What a sync's writes compare with (a compare-and-set): the connection still the one it read."""
    return {"connection_id": spec.id, "stamp": spec.stamp, "base_url": spec.base_url}


@dataclass
class SyncReport:
    pages: int = 0  # raw batches stored (a page with no rows stores only its cursor)
    read: int = 0
    rows: int = 0
    removed: int = 0  # listings a full sync found gone at the vendor
    removal_refused: str = ""  # why a full sync removed none of them (more than half of the store's listings)
    interrupted: bool = False  # stopped (SIGTERM) after a stored batch; resumes from its cursor
    shifted: bool = False  # the vendor's set shifted under the pass: a listing not read may still be there
    seconds: float = 0.0
    items: int = 0  # product upserts read
    levels: int = 0  # stock levels of the connection's location read (on an upsert or a stock row)
    warning: str | None = None  # a first or full pass read items and no level at all: the location id is wrong?

    def add(self, page: Page) -> None:
        self.pages += bool(page.rows)
        self.read, self.rows = self.read + page.read, self.rows + len(page.rows)
        self.shifted = self.shifted or page.shifted
        for row in page.rows:
            self.items += row.get("op") == "upsert"
            self.levels += row.get("op") in ("upsert", "stock") and "quantity" in row

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


def _sql(name: str) -> Any:
    return statement("ingest/connectors", name).psycopg


def load_spec(conn: Any, box: SecretBox, connection_id: UUID | str) -> ConnectionSpec:
    row = conn.execute(_sql("get_connection"), {"connection_id": str(connection_id)}).fetchone()
    if row is None:
        raise UnknownConnection(f"no connection {connection_id}")
    (cid, store_id, source, location, base_url, secret_enc, credentials_enc, config, cursor, enabled, _f, currency) = (
        row
    )
    credentials = json.loads(box.decrypt(credentials_enc)) if credentials_enc else {}
    secrets = parse_secrets(box.decrypt(secret_enc)) if secret_enc else []
    return ConnectionSpec(
        id=cid,
        store_id=store_id,
        source=source,
        location=str(location or (config or {}).get("location") or ""),
        base_url=base_url,
        credentials=credentials,
        secrets=secrets,
        config=dict(config or {}),
        cursor=dict(cursor or {}),
        currency=(currency or "EUR").strip(),
        enabled=bool(enabled),
        stamp=bytes(credentials_enc) if credentials_enc else None,
    )


def reread_spec(conn: Any, box: SecretBox, spec: ConnectionSpec) -> ConnectionSpec:
    """The connection as it is once its account's lock is held: a sync that waited goes on from the cursor the other
    left; one disabled or moved to another account (another lock) meanwhile is refused."""
    try:
        now = load_spec(conn, box, spec.id)
    except UnknownConnection:
        raise changed(spec, "was removed") from None
    if not now.enabled or now.account != spec.account:
        raise changed(spec, "was disabled" if not now.enabled else f"moved to account {now.account}")
    return now


def _store_page(conn: Any, spec: ConnectionSpec, page: Page, recorder: Recorder) -> None:
    links = unique(page.links)
    with conn.transaction():
        if links:
            if params := removal_params(spec.id, spec.store_id, links):  # the variants its products no longer hold
                page.rows = page.rows + removal_rows(links, conn.execute(_sql("removed_variants"), params))
            conn.execute(_sql("save_links"), link_params(spec.id, links))
        if page.rows:
            recorder(conn, spec, page)
        if conn.execute(_sql("save_cursor"), {**as_read(spec), "cursor": Jsonb(page.cursor)}).fetchone() is None:
            raise changed(spec)  # rolls the page back: the connection is no longer the one read


def record_failure(
    conn: Any, connection_id: UUID, error: str, wait_s: float | None = None, spec: ConnectionSpec | None = None
) -> int:
    """Recorded; with the sync's `spec`, only while the connection is as it read it (else 0)."""
    not_before = time.time() + wait_s if wait_s else None
    params = {"connection_id": connection_id, "error": error[:500], "not_before": not_before, "guarded": bool(spec)}
    params.update(as_read(spec) if spec else {"stamp": None, "base_url": None})
    row = conn.execute(_sql("record_sync_failure"), params).fetchone()
    return int(row[0]) if row else 0


def sync_connection(
    conn: Any,
    spec: ConnectionSpec,
    recorder: Recorder,
    *,
    full: bool = False,
    policy: RetryPolicy | None = None,
    on_read: Callable[[Page], object] | None = None,
    batch_rows: int = 5000,
    stop: threading.Event | None = None,
    allow_mass_removal: bool = False,
) -> SyncReport:
    """Poll the vendor once, storing page after page; raises SyncFailed after recording the failure. `on_read`
    sees each vendor page as it is read. A set `stop` ends the sync after the batch in hand (stored with its
    cursor); the connection stays due. `allow_mass_removal`: a full pass removes what it found gone even past
    half of the store's listings."""
    report, started = SyncReport(), time.perf_counter()
    seen: set[str] | None = set() if full else None
    cursor: Cursor = spec.cursor
    try:
        connector = build_connector(spec, policy)
    except ConnectionError_ as exc:  # a stored credential no request can carry
        raise _failed(conn, spec, exc) from None
    try:
        apply_triggers(conn, spec, recorder)
        vendor_pages = prefetched(connector.pages(spec.cursor, full=full), halt=stop)
        for page in coalesced(announced(vendor_pages, on_read), batch_rows):
            _store_page(conn, spec, page, recorder)
            cursor = page.cursor
            if seen is not None:
                seen.update(str(r["sku"]) for r in page.rows if r.get("op") != "stock" and "sku" in r)
            report.add(page)
            if stop is not None and stop.is_set():
                break
        # stopped: the pass is not finished (a full one's vanished listings are not known), whatever was read
        report.interrupted = stop is not None and stop.is_set()
    except (VendorError, httpx.HTTPError, ArithmeticError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _failed(conn, spec, exc) from exc
    except psycopg.Error as exc:  # the database refused a page (rolled back): recorded, not a traceback
        if conn.closed:  # the database is gone, not the sync: nothing can record it
            raise
        raise _failed(conn, spec, exc) from exc
    finally:
        connector.close()
        report.seconds = time.perf_counter() - started
    if not report.interrupted:
        _note_levels(conn, spec, report, full=full)
        _finish_pass(conn, spec, recorder, report, seen, cursor, allow_mass_removal)
    return report


def _failed(conn: Any, spec: ConnectionSpec, exc: Exception) -> SyncFailed:
    """The failure recorded on the connection (backing its next attempt off), logged, and to be raised."""
    message = failure_message(spec, exc)
    failures = record_failure(conn, spec.id, message, exc.wait_s if isinstance(exc, RateLimited) else None, spec)
    if not failures:  # the old credentials' (or a disabled connection's) failure: not the connection's now
        log.info("sync of connection %s failed, not recorded: %s", spec.id, escape_control_chars(message))
        return changed(spec)
    log.warning(FAILED_LOG, spec.id, failures, escape_control_chars(message))
    return SyncFailed(message, failures)


def failure_message(spec: ConnectionSpec, exc: Exception) -> str:
    """A failure as recorded, logged and shown; credentials the vendor refused (or a stored one no request can
    carry) say which to replace, and how."""
    if isinstance(exc, psycopg.Error):  # its first line: the HINT and DETAIL lines follow on others
        return f"{type(exc).__name__}: {exc.diag.message_primary or exc}"
    if isinstance(exc, ConnectionError_):
        fix = f": update it with `plinqy-search connections update {spec.id} {exc.option}`" if exc.option else ""
        return f"{exc}{fix}"
    if isinstance(exc, RateLimited):  # not its class's name: what it is
        return f"rate-limited by the vendor: {exc}"
    if isinstance(exc, VendorError) and exc.status == 404:  # the account or address is wrong (or gone), not data
        account = "--" + CREDENTIALS[spec.source][0].replace("_", "-")
        return f"the vendor knows no such account or address ({exc}): check the connection's {account} and --base-url"
    if not (isinstance(exc, VendorError) and exc.status in (401, 403)):
        return f"{type(exc).__name__}: {exc}"
    hint = {401: ": token wrong or revoked", 403: ": the token lacks an access this sync needs"}[exc.status]
    flag, more = "--token", ""
    if spec.source == "erply":  # its refusals name themselves (wrong username or password, a session gone)
        hint, flag = "", "--password" if "password" in spec.credentials else "--session-key"
        more = " (with --username U if the user is wrong)" if flag == "--password" else ""
    return (
        f"the vendor refused the credentials ({exc}{hint}): update them with "
        f"`plinqy-search connections update {spec.id} {flag}`{more}"
    )


def _note_levels(conn: Any, spec: ConnectionSpec, report: SyncReport, *, full: bool) -> None:
    """A first or full pass that read items but no stock level at the connection's location warns, and its warning
    stays on the connection (`connections list`) until a sync reads a level: a location id the vendor does not
    know synced "successfully" with every listing at 0. The data is stored all the same (a store may have none)."""
    if report.levels:
        if "no_levels" in spec.config:
            conn.execute(_sql("clear_no_levels"), as_read(spec))
        return
    if not report.items:
        return
    warning = (
        f"{spec.source} location {spec.location} returned no stock levels for any of {report.items} items: check the "
        f"location id; to change it, `plinqy-search connections disable {spec.id}` and connect the right location"
    )
    params = {**as_read(spec), "warning": warning, "full": full}
    if conn.execute(_sql("note_no_levels"), params).fetchone() is not None:  # a first or full pass
        report.warning = warning
        log.warning("connection %s: %s", spec.id, warning)


def _finish_pass(
    conn: Any,
    spec: ConnectionSpec,
    recorder: Recorder,
    report: SyncReport,
    seen: set[str] | None,
    cursor: Cursor,
    allow_mass_removal: bool,
) -> None:
    """A complete pass: a full one removes what the vendor no longer returns (unless its set shifted under it: a
    listing not read may be one a deletion moved onto a page already read); then the success is recorded."""
    if seen is not None and report.shifted:
        log.warning("connection %s: full sync's set shifted while it ran: listings not read are not removed", spec.id)
    elif seen is not None:  # a full pass; one that saw nothing would remove everything: refused like any over half
        removed = remove_vanished(conn, spec, seen, recorder, cursor, allow_mass_removal)
        if isinstance(removed, str):
            report.removal_refused = removed
            return  # refused, and recorded as the connection's last error
        report.removed, report.pages = removed, report.pages + bool(removed)  # the removal is a batch of its own
    if conn.execute(_sql("record_sync_success"), as_read(spec)).fetchone() is None:
        raise changed(spec)


def remove_vanished(
    conn: Any, spec: ConnectionSpec, seen: set[str], recorder: Recorder, cursor: Cursor, allow_all: bool = False
) -> int | str:
    """After a complete full pass: delete the listings the vendor no longer returns (how many). A pass that would
    remove more than half of the store's active listings is refused (a vendor glitch must not empty a store) and
    recorded, unless `allow_all`: the refusal's message is returned."""
    params = {"connection_id": spec.id, "store_id": spec.store_id, "seen": sorted(seen)}
    vanished = conn.execute(_sql("vanished_listings"), params).fetchall()
    if not vanished:
        return 0
    if len(vanished) * 2 > int(vanished[0][1]) and not allow_all:
        message = (
            f"full sync: {len(vanished)} of {vanished[0][1]} listings no longer at the vendor; not removed: more "
            "than half of the store's active listings (a vendor glitch must not empty a store); if they are really "
            f"gone: `plinqy-search sync {spec.id} --full --allow-mass-removal`"
        )
        record_failure(conn, spec.id, message, spec=spec)
        log.warning("connection %s: %s", spec.id, message)
        return message
    rows = [{"op": "delete", "sku": sku} for sku, _ in vanished]
    _store_page(conn, spec, Page("catalog", rows, cursor, 0), recorder)
    return len(rows)


def parse_trigger(delivery_id: str) -> list[tuple[str, str | None]]:
    """`trigger:stock=p-9|delete=123 <vendor id>` -> [("stock", "p-9"), ("delete", "123")]."""
    wants = delivery_id.removeprefix("trigger:").split(" ", 1)[0]
    return [(w.partition("=")[0], w.partition("=")[2] or None) for w in wants.split("|") if w]


def apply_triggers(conn: Any, spec: ConnectionSpec, recorder: Recorder) -> None:
    """Webhook deliveries that asked for more than rows: queue stock re-reads, delete a deleted product's listings."""
    mark = int(spec.cursor.get("delivery_mark") or 0)
    triggers = conn.execute(_sql("pending_triggers"), {"connection_id": spec.id, "mark": mark}).fetchall()
    if not triggers:
        return
    cursor = dict(spec.cursor)
    repoll = list(cursor.get("repoll_stock") or [])
    deletes: list[dict[str, Any]] = []
    for _id, delivery_id in triggers:
        for what, ref in parse_trigger(delivery_id):
            if what == "stock" and ref and ref not in repoll:
                repoll.append(ref)
            elif what == "delete" and ref:
                skus = conn.execute(_sql("skus_of_parent"), {"connection_id": spec.id, "parent_id": ref}).fetchall()
                deletes += [{"op": "delete", "sku": sku} for (sku,) in skus]
    cursor.update(repoll_stock=repoll, delivery_mark=int(triggers[-1][0]))
    _store_page(conn, spec, Page("catalog", deletes, cursor, len(triggers)), recorder)
    spec.cursor = cursor


def record_rows(conn: Any, spec: ConnectionSpec, page: Page) -> None:
    """The default recorder: the page as one raw batch of the ingest pipeline (kind `sync`)."""
    from search_service.ingest.pipeline import record_batch

    record_batch(conn, store_id=spec.store_id, source=spec.source, kind="sync", rows=page.rows, connection_id=spec.id)
