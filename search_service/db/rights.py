"""A database role that connects but lacks rights on what the code reads or writes (SQLSTATE 42501: a read-only or
unprivileged role in DATABASE_URL): told apart from a database that is away, and said with what to do (it was a
500 "internal error" from the API and a traceback from the CLI)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import psycopg
from psycopg.conninfo import conninfo_to_dict

from search_service.db.sql import statement
from search_service.errortext import first_line

LACKS_RIGHTS: tuple[type[BaseException], ...] = (
    asyncpg.InsufficientPrivilegeError,
    psycopg.errors.InsufficientPrivilege,
)


def role_of(url: str | None) -> str | None:
    """The role a database URL connects as; None when it names none (libpq's default then) or cannot be read."""
    if not url:
        return None
    try:
        user = conninfo_to_dict(url).get("user")
    except psycopg.ProgrammingError:
        return None
    return str(user) if user else None


def _who(url: str | None) -> str:
    role = role_of(url)
    return f"the database role '{role}'" if role else "the database role"


def lacks_rights(url: str | None, exc: BaseException) -> str:
    """One line for the operator: which role, what PostgreSQL refused, what to do."""
    return (
        f"{_who(url)} lacks rights ({first_line(exc)}): grant it access to the tables, or set DATABASE_URL to the "
        "role that ran `plinqy-search migrate`"
    )


# rights.sql's writers: the API (what `serve` needs) and each job of `plinqy-search worker`, by its name
API = "api"
WRITERS = (API, "sync", "import", "embed", "events")


def _listed(rows: Iterable[Sequence[Any]]) -> list[str]:
    return [f"{table}: {lacking}" for table, lacking in rows]


async def missing_write_rights(conn: Any, writers: Sequence[str] = (API,)) -> list[str]:
    """`table: INSERT, UPDATE` for each table that `writers` (asyncpg) or their triggers write on which the connected
    role lacks a right it needs."""
    stmt = statement("db/rights", "missing_write_rights")
    return _listed(tuple(row) for row in await conn.fetch(stmt.sql, *stmt.bind(writers=list(writers))))


def cannot_write(url: str | None, missing: list[str], what: str = "what the API writes") -> str:
    """One line for the operator: which role, the rights on which tables it lacks, what to do."""
    return (
        f"{_who(url)} may not write {what} (it lacks {'; '.join(missing)}): grant it those rights, or "
        "set DATABASE_URL to the role that ran `plinqy-search migrate`"
    )


def cannot_write_now(url: str, writers: Sequence[str], what: str) -> str | None:
    """`cannot_write`'s line for `writers`, asked on a connection of its own (psycopg, as the commands connect);
    None when the role has every right they need."""
    stmt = statement("db/rights", "missing_write_rights")
    with psycopg.connect(url, autocommit=True) as conn:
        missing = _listed(conn.execute(stmt.psycopg, {"writers": list(writers)}).fetchall())
    return cannot_write(url, missing, what) if missing else None
