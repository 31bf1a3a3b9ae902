"""An import of hundreds of thousands of rows, as the API answers it under its statement timeout: its errors CSV
came in one statement (503 "retry shortly" for every try past a few hundred thousand rows), and its status counted
the rows with notes by reading every row of the batch (a 503 for a 1M-row import on a busy machine)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from search_service.db.sql import statement
from tests.ingest_helpers import bearer, ingest_settings, new_store, serve, store_key

BIG = 300_000  # rows of the big batch: one statement reading them all took 2.6 s in psql, a page of them 0.08 s
TIMEOUT_MS = 600  # between the two, with room either side for a slower machine


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = ingest_settings(db_url, tmp_path_factory.mktemp("keys"))
    with serve(dataclasses.replace(settings, statement_timeout_ms=TIMEOUT_MS), None) as url:
        yield url


def stored_batch(conn: psycopg.Connection, store: uuid.UUID, rows: int, status: str, error: str | None) -> str:
    """A completed CSV batch of `rows` rows, all of one status and error, stored as `import csv` leaves them."""
    batch = conn.execute(
        "INSERT INTO import_batch (store_id, source, kind, status, total_rows, processed_rows, finished_at) "
        "VALUES (%s, 'csv', 'csv', 'completed', %s, %s, now()) RETURNING id",
        (store, rows, rows),
    ).fetchone()
    assert batch is not None
    conn.execute(
        "INSERT INTO imported_product_raw (import_batch_id, row_number, payload, raw, status, error) "
        "SELECT %s, n, jsonb_build_object('sku', 'X-' || n, 'name', 'Bad ' || n, 'price', '-1', 'quantity', '1'), "
        "       jsonb_build_array('X-' || n, 'Bad ' || n, '-1', '1'), %s, %s "
        "FROM generate_series(1, %s) n",
        (batch[0], status, error, rows),
    )
    return str(batch[0])


def test_a_big_imports_errors_come_whole_a_page_at_a_time_within_the_statement_timeout(
    base: str, conn: psycopg.Connection
) -> None:
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    batch = stored_batch(conn, store, BIG, "rejected", "price must not be negative")
    # a duplicate replaced by a rejected row across a page's edge: the page joins the row that replaced it
    edge = 5000  # ingest.batch_rows.ROWS_PAGE
    conn.execute(
        "UPDATE imported_product_raw SET status = 'duplicate', replaced_by_row = %s, error = 'replaced by row ' || %s "
        "WHERE import_batch_id = %s AND row_number = %s",
        (edge + 1, edge + 1, batch, edge),
    )
    answer = httpx.get(f"{base}/v1/imports/{batch}/errors", headers=bearer(key), timeout=120)
    assert answer.status_code == 200, answer.text  # was 503 "the database took too long; retry shortly"
    assert (
        answer.content.startswith(b'\xef\xbb\xbf"row","reason","cells"\n')
        and answer.content.count(b"\xef\xbb\xbf") == 1
    )
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert table[0] == ["row", "reason", "cells"] and len(table) == BIG + 1
    assert [int(r[0]) for r in table[1:]] == list(range(1, BIG + 1))
    assert table[edge][1] == (
        f"duplicate: replaced by row {edge + 1}; row {edge + 1}, which replaced it, was rejected: this sku is left "
        "as it was"
    )
    assert table[BIG][1:] == ["price must not be negative", f"X-{BIG}", f"Bad {BIG}", "'-1", "1"]


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans read: those they returned and those their filters removed."""
    own = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0) if "Scan" in plan["Node Type"] else 0
    return own * plan.get("Actual Loops", 1) + sum(_rows_read(p) for p in plan.get("Plans", []))


def test_an_imports_status_counts_its_noted_rows_without_reading_the_others(
    base: str, conn: psycopg.Connection
) -> None:
    """`noted_rows` was counted by reading every row of the batch (a whole-table scan for a big one: 1.8 s, 503s
    on a busy machine): it now reads the noted rows alone."""
    store = new_store(conn)
    key = store_key(conn, store, "listings:write")
    batch = stored_batch(conn, store, 50_000, "mapped", None)
    conn.execute(
        "UPDATE imported_product_raw SET error = 'price rounded to cents' "
        "WHERE import_batch_id = %s AND row_number IN (7, 20000, 49999)",
        (batch,),
    )
    answer = httpx.get(f"{base}/v1/imports/{batch}", headers=bearer(key), timeout=30)
    assert answer.status_code == 200 and answer.json()["noted_rows"] == 3, answer.text
    count = statement("ingest/batches", "batch_noted_rows")
    explained = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {count.psycopg}", {"batch_id": batch}).fetchone()
    assert explained is not None
    plan = explained[0] if isinstance(explained[0], list) else json.loads(explained[0])
    assert _rows_read(plan[0]["Plan"]) <= 3, plan  # it read all 50,000
