"""A database role that connects but lacks rights on what the code reads or writes (SQLSTATE 42501: a read-only or
unprivileged role in DATABASE_URL): told apart from a database that is away, and said with what to do (it was a
500 "internal error" from the API and a traceback from the CLI)."""

from __future__ import annotations

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


async def missing_write_rights(conn: Any) -> list[str]:
    """`table: INSERT, UPDATE` for each table the API writes on which the connected role lacks a right it needs."""
    rows = await conn.fetch(statement("db/rights", "missing_write_rights").sql)
    return [f"{row['table_name']}: {row['lacking']}" for row in rows]


def cannot_write(url: str | None, missing: list[str]) -> str:
    """One line for the operator: which role, the rights on which tables it lacks, what to do."""
    return (
        f"{_who(url)} may not write what the API writes (it lacks {'; '.join(missing)}): grant it those rights, or "
        "set DATABASE_URL to the role that ran `plinqy-search migrate`"
    )
