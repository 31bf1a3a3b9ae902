"""The API pool's connections: no reset query on release, the pgvector codec registered on each, and a database
that was never migrated told apart from one that does not answer."""

from __future__ import annotations

import asyncpg
from pgvector.asyncpg import register_vector


class ApiConnection(asyncpg.Connection):
    """Pool connections without the reset query on release: requests change no session state (the engine's
    settings are the connection's own from its start; no SET, LISTEN, cursors or advisory locks), so the
    default one (a round trip per request) buys nothing. An open transaction is still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


class NotMigrated(Exception):
    """The database answers but has no vector type: its first migration was never applied."""


async def init_connection(conn: asyncpg.Connection) -> None:
    try:
        await register_vector(conn)
    except ValueError as exc:  # "unknown type: public.vector": readiness said the database was unreachable
        raise NotMigrated("the database has no migrations applied: run `plinqy-search migrate`") from exc
