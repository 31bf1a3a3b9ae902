"""`plinqy-search secrets rotate`: every secret stored with the secret box encrypted again under its first key
(MultiFernet.rotate), so that the keys after it can be dropped. Each table is read in id order, a batch a
transaction (its rows locked while they are rewritten); a secret already under the first key is left as it is, so a
second run (or one after an interruption) rewrites nothing done. A secret that none of the keys opens stops the
run before its batch writes anything, naming its table, row and column; the batches before it stay rotated.
SQL: search_service/db/sql/secrets.sql."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from search_service.db.secretbox import SecretBox, SecretBoxError
from search_service.db.sql import statement

FILE = "db/secrets"


@dataclass(frozen=True)
class SecretTable:
    """A table's encrypted columns; `as_text`: stored as the token's text (store_webhook), else bytea."""

    table: str
    columns: tuple[str, ...]
    as_text: bool
    batch: str  # the SQL blocks that read a batch and write a row back
    rewrite: str


TABLES = (
    SecretTable(
        "ingest_connection", ("secret_enc", "credentials_enc"), False, "connection_batch", "rewrite_connection"
    ),
    SecretTable("store_webhook", ("secret", "previous_secret"), True, "webhook_batch", "rewrite_webhook"),
)


@dataclass
class Tally:
    """A table's rows read and their secrets: encrypted again, or already under the first key (left)."""

    rows: int = 0
    rotated: int = 0
    current: int = 0


class UnopenedSecret(Exception):
    """Stored secrets that none of the keys opens (table, row id, column), found in a batch that was not written."""

    def __init__(self, table: str, unopened: list[tuple[UUID, str]]) -> None:
        row_id, column = unopened[0]
        more = f" (and {len(unopened) - 1} more in its batch)" if len(unopened) > 1 else ""
        super().__init__(f"{table} row {row_id}'s {column}{more}")
        self.table, self.unopened = table, unopened


def secret_rows(conn: Any) -> dict[str, int]:
    """The rows holding a secret, per table (the progress's total)."""
    row = conn.execute(statement(FILE, "secret_rows").psycopg).fetchone()
    return {spec.table: int(count) for spec, count in zip(TABLES, row, strict=True)}


def rotate_all(conn: Any, box: SecretBox, batch_size: int, on_rows: Callable[[int], object]) -> dict[str, Tally]:
    """Every table's secrets under the first key; `on_rows(n)` after each batch of n rows is written.
    UnopenedSecret stops it. `conn`: psycopg in autocommit mode (each batch is a transaction of its own)."""
    tallies = {}
    for spec in TABLES:
        tally = tallies[spec.table] = Tally()
        after: UUID | None = None
        while rows := _rotate_batch(conn, box, spec, after, batch_size, tally):
            after = rows[-1][0]
            on_rows(len(rows))
    return tallies


def _rotate_batch(
    conn: Any, box: SecretBox, spec: SecretTable, after: UUID | None, batch_size: int, tally: Tally
) -> list[Any]:
    """One batch in one transaction, counted in `tally`; the rows read (none: the table is done)."""
    with conn.transaction():
        rows = conn.execute(statement(FILE, spec.batch).psycopg, {"after": after, "batch_size": batch_size}).fetchall()
        rewrites, unopened = [], []
        for row_id, *tokens in rows:
            columns = dict(zip(spec.columns, tokens, strict=True))
            for column, token in list(columns.items()):
                if token is None or box.under_first_key(_as_bytes(token)):
                    tally.current += token is not None
                    continue
                try:
                    rotated = box.rotate(_as_bytes(token))
                except SecretBoxError:
                    unopened.append((row_id, column))
                    continue
                columns[column] = rotated.decode() if spec.as_text else rotated
                tally.rotated += 1
            if columns != dict(zip(spec.columns, tokens, strict=True)):
                rewrites.append({"id": row_id, **columns})
        if unopened:
            raise UnopenedSecret(spec.table, unopened)  # the transaction rolls back: nothing of this batch written
        if rewrites:
            conn.cursor().executemany(statement(FILE, spec.rewrite).psycopg, rewrites)
    tally.rows += len(rows)
    return rows


def _as_bytes(token: str | bytes) -> bytes:
    return token.encode() if isinstance(token, str) else bytes(token)
