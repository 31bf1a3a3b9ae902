"""A database role that connects but lacks rights on what the code reads or writes (SQLSTATE 42501: a read-only or
unprivileged role in DATABASE_URL): told apart from a database that is away, and said with what to do (it was a
500 "internal error" from the API and a traceback from the CLI)."""

from __future__ import annotations

import asyncpg
import psycopg
from psycopg.conninfo import conninfo_to_dict

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


def lacks_rights(url: str | None, exc: BaseException) -> str:
    """One line for the operator: which role, what PostgreSQL refused, what to do."""
    role = role_of(url)
    who = f"the database role '{role}'" if role else "the database role"
    return (
        f"{who} lacks rights ({first_line(exc)}): grant it access to the tables, or set DATABASE_URL to the role "
        "that ran `plinqy-search migrate`"
    )
