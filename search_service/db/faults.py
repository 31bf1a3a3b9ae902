"""Errors that say the database connection itself failed (a restart, `pg_terminate_backend`), not the work on it."""

from __future__ import annotations

import asyncpg

# InternalClientError: a query sent while asyncpg reads a terminated idle connection's FATAL ("cannot switch to
# state 12; another operation (2) is in progress": no second operation of ours, the connection is dead).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    ConnectionError,
    OSError,
)
