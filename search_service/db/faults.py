"""Errors that say the database connection itself failed (a restart, `pg_terminate_backend`), not the work on it."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import asyncpg
import psycopg

# How long connecting waits for a database that accepts the connection but never answers (a hung or stopped
# server, a black-holing firewall): every command and job waited for ever (psycopg: 130 s a try, asyncpg: 60 s).
CONNECT_TIMEOUT_S = 5


class DatabaseRefused(ConnectionError):
    """The database refused a new connection (55000: `ALLOW_CONNECTIONS false`): it may come back, like a restart."""


class DatabaseSilent(ConnectionError):
    """Connecting timed out: the server took the connection but did not answer (asyncpg's own TimeoutError has
    no message)."""


def bound_psycopg_connects() -> None:
    """libpq's PGCONNECT_TIMEOUT for this process and the jobs it forks, so that every psycopg.connect (the CLI's,
    the workers', reembed's) gives up on a silent database; an operator's own value (or the URL's) is kept."""
    os.environ.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))


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


# A psycopg session the server ended: terminated or shut down (57P01), another backend's crash (57P02), idle too
# long (57P05), a connection exception (08). Connecting's own failures carry no SQLSTATE: libpq's text only.
ENDED_SESSION_SQLSTATES = ("57P01", "57P02", "57P05", "08")
# psycopg's own words (no SQLSTATE) for a socket that closed under a connection it had made (a crash, the network)
ENDED_SOCKET_TEXTS = ("consuming input failed", "sending query", "flushing failed", "the connection is")


def lost_after_connecting(exc: BaseException) -> bool:
    """Whether a psycopg error says a connection that was made and worked ended mid-run (a restart, a failover,
    `pg_terminate_backend`), not that connecting failed: the URL is not to blame then."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    if exc.sqlstate:
        return exc.sqlstate.startswith(ENDED_SESSION_SQLSTATES)
    return exc.pgconn is None and str(exc).startswith(ENDED_SOCKET_TEXTS)


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect within CONNECT_TIMEOUT_S (DatabaseSilent after it), a refusal raised as DatabaseRefused.
    Only at connect: a statement's 55000 is a real error."""
    timeout = kwargs.setdefault("timeout", CONNECT_TIMEOUT_S)
    try:
        return await asyncpg.connect(dsn, **kwargs)
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise DatabaseRefused(f"{type(exc).__name__}: {exc}") from exc
    except TimeoutError:
        raise silent_at_connect(timeout) from None


def silent_at_connect(timeout_s: float) -> DatabaseSilent:
    """asyncpg's TimeoutError at connect, saying what timed out and after how long (its own text is empty)."""
    return DatabaseSilent(f"connection timeout expired: no answer within {timeout_s:g} s")


def lost_connection_text(exc: BaseException) -> str:
    """A lost connection's error as the log says it. asyncpg's InternalClientError ("cannot switch to state 15;
    another operation (2) is in progress") is its own state after the server's FATAL on an idle connection (the
    message itself is dropped): said as what happened."""
    if isinstance(exc, asyncpg.InternalClientError) and str(exc).startswith("cannot switch to state"):
        return "the server ended the connection (pg_terminate_backend, a restart or a shutdown)"
    return f"{type(exc).__name__}: {exc}"


class Outage:
    """A job's lost database in its log: a `db_lost` line on the 1st, 2nd, 4th, 8th... failed try in a row (the
    pause between tries doubles to 10 s: an hour away is a dozen lines, not 360 a job), and one `db_back` line
    once it is connected again (there was none)."""

    def __init__(self, logger: logging.Logger, **who: str) -> None:
        self.log, self.who, self.tries = logger, who, 0

    def lost(self, exc: BaseException) -> None:
        self.tries += 1
        if self.tries & (self.tries - 1) == 0:
            error = lost_connection_text(exc)[:300]
            self.log.warning(json.dumps({"event": "db_lost", **self.who, "tries": self.tries, "error": error}))

    def connected(self) -> None:
        if self.tries:
            self.log.info(json.dumps({"event": "db_back", **self.who, "after_tries": self.tries}))
            self.tries = 0
