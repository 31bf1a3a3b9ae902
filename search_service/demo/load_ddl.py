"""What a bulk load takes off the catalogue and puts back: secondary indexes, droppable constraints, the audit
trigger."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql
from tqdm import tqdm

from .load_report import LoadReport

SECONDARY_INDEX_TABLES = ("store", "product_master", "store_product")
AUDIT_TRIGGER = "trg_store_product_audit_insert"
CATALOGUE_TABLES = ("category", "store", "product_master", "store_product")

_SECONDARY_INDEXES = sql.SQL(
    """
SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = {table}::regclass
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint k
      WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY c.relname
"""
)


_DROPPABLE_CONSTRAINTS = sql.SQL(
    """
SELECT k.conname, pg_get_constraintdef(k.oid), k.contype
FROM pg_constraint k
WHERE k.conrelid = {table}::regclass
  AND (k.contype = 'f'
       OR (k.contype IN ('p', 'u')
           AND NOT EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = k.conindid)))
ORDER BY k.contype = 'f', k.conname
"""
)


def catalogue_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {
        t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])  # type: ignore[index]
        for t in CATALOGUE_TABLES
    }


def catalogue_is_empty(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM store) OR EXISTS (SELECT 1 FROM product_master) "
        "OR EXISTS (SELECT 1 FROM category) OR EXISTS (SELECT 1 FROM store_product)"
    ).fetchone()
    return not bool(row and row[0])


def secondary_indexes(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    """(qualified name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    rows = conn.execute(_SECONDARY_INDEXES.format(table=sql.Literal(table))).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def droppable_constraints(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, str]]:
    """(name, definition, type) of the table's foreign keys and of its primary-key/unique constraints that no
    foreign key depends on: keys first, foreign keys last (the order to re-add them in)."""
    rows = conn.execute(_DROPPABLE_CONSTRAINTS.format(table=sql.Literal(table))).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def trigger_enabled(conn: psycopg.Connection[Any], table: str, trigger: str) -> bool:
    row = conn.execute(
        "SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s", (table, trigger)
    ).fetchone()
    return bool(row) and row[0] != "D"  # type: ignore[index]


def _strip(conn: psycopg.Connection[Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Drop the secondary indexes and the droppable constraints; return what is needed to put them back."""
    dropped: list[tuple[str, str]] = []
    constraints: list[tuple[str, str, str, str]] = []
    for table in SECONDARY_INDEX_TABLES:
        for name, definition in secondary_indexes(conn, table):
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
            dropped.append((name, definition))
        for name, definition, kind in droppable_constraints(conn, table):
            constraints.append((table, name, definition, kind))
    # Foreign keys go first: a key constraint cannot be dropped while a foreign key leans on it.
    for table, name, _definition, _kind in sorted(constraints, key=lambda c: c[3] != "f"):
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    return dropped, constraints


def _restore(
    conn: psycopg.Connection[Any],
    dropped: list[tuple[str, str]],
    constraints: list[tuple[str, str, str, str]],
    report: LoadReport,
    quiet: bool,
) -> None:
    """Re-add the constraints (keys before the foreign keys that need them) and recreate the indexes."""
    t0 = time.perf_counter()
    for table, name, definition, _kind in sorted(constraints, key=lambda c: c[3] == "f"):
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
            )
        )
        report.constraints_readded.append(name)
    for name, definition in tqdm(dropped, desc="indexes", disable=quiet, leave=False):
        conn.execute(sql.SQL(definition))
        report.indexes_recreated.append(name)
    report.index_seconds = time.perf_counter() - t0


def _set_trigger(conn: psycopg.Connection[Any], enabled: bool) -> None:
    action = sql.SQL("ENABLE" if enabled else "DISABLE")
    conn.execute(sql.SQL("ALTER TABLE store_product {} TRIGGER {}").format(action, sql.Identifier(AUDIT_TRIGGER)))
