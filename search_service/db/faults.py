"""Errors that say the database connection itself failed (a restart, `pg_terminate_backend`), not the work on it."""

from __future__ import annotations

from typing import Any

import asyncpg


class DatabaseRefused(ConnectionError):
    """The database refused a new connection (55000: `ALLOW_CONNECTIONS false`): it may come back, like a restart."""


# InternalClientError: a query sent while asyncpg reads a terminated idle connection's FATAL ("cannot switch to
# state 12; another operation (2) is in progress": no second operation of ours, the connection is dead).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    ConnectionError,  # DatabaseRefused included
    OSError,
)


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect, a refusal raised as DatabaseRefused. Only at connect: a statement's 55000 is a real error."""
    try:
        return await asyncpg.connect(dsn, **kwargs)
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise DatabaseRefused(f"{type(exc).__name__}: {exc}") from exc
