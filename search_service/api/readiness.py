"""`/readyz`'s report of a runtime: the model, the database and its migrations, the secret key (usable, and the
one the stored secrets open), the vector copy and the suggestion index."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg

from search_service.api.errors import TRANSIENT_DB_ERRORS, Unavailable
from search_service.api.schemas import Readiness
from search_service.db import migrate
from search_service.db.rights import LACKS_RIGHTS, cannot_write, lacks_rights, missing_write_rights
from search_service.engine import catalog

if TYPE_CHECKING:
    from search_service.api.runtime import Runtime

log = logging.getLogger("search_service.api")

# readyz's `database` state for each reason a connection was refused (errors.Unavailable).
_DATABASE_STATES = {"database": "unreachable", "pool_exhausted": "busy", "statement_timeout": "slow", "schema": "ok"}
_NOT_ASKED: tuple[type[BaseException], ...] = (Unavailable, *TRANSIENT_DB_ERRORS)
_CANCEL_MARGIN_S = 0.5  # readiness's time limit past its statements' timeout: the server cancels them first


async def readiness_of(rt: Runtime) -> Readiness:
    checks: dict[str, str] = {}
    reasons: list[str] = []
    checks["model"] = _model_check(rt, reasons)
    # one bound on its database round trips (a stalled database held the answer for a request's budget, 7 s), past
    # the statement timeout: a server that answers cancels the statement itself, and the connection stays usable
    deadline = time.monotonic() + rt.settings.statement_timeout_ms / 1000 + _CANCEL_MARGIN_S
    checks["database"], checks["migrations"] = await _database_checks(rt, reasons, deadline)
    if checks["migrations"] in ("ok", "ahead") and not await _may_write(rt, reasons, deadline):
        checks["database"] = "forbidden"
    # read once: the copy may finish loading while the key check awaits, and the answer said `ready` beside
    # `vectors: loading` (a CI run under load)
    checks["vectors"] = vectors = rt.vectors_state
    vectors_error = rt.vectors_error
    checks["secret_key"] = await _key_check(rt, reasons, checks["migrations"] in ("ok", "ahead"), deadline)
    waiting = checks["database"] != "ok" and rt.suggestions_state == "building"  # nothing builds without it
    checks["suggestions"] = "waiting" if waiting else rt.suggestions_state
    if vectors in ("loading", "failed"):
        loading = "the in-memory vector copy is loading" if checks["database"] == "ok" else (
            "the in-memory vector copy loads once the database answers")  # fmt: skip
        reasons.append(vectors_error or loading)
    # A database that is not reachable says nothing about migrations (no key then, as before).
    checks = {name: state for name, state in checks.items() if state}
    status = "ready" if not reasons else "not ready"
    return Readiness(status=status, checks=dict(sorted(checks.items())), reasons=reasons)


def _model_check(rt: Runtime, reasons: list[str]) -> str:
    if rt.model_ready:
        return "ok"
    if rt.model_error:
        reasons.append(rt.model_error)
        return "failed"
    reasons.append("the model is loading")
    return "loading"


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.05)


@contextlib.asynccontextmanager
async def _bounded(rt: Runtime, deadline: float | None) -> AsyncIterator[Any]:
    """A read-only transaction ending by `deadline`, the wait for its connection included: its statements' timeout
    is what is left less the margin (one that waited for a connection freed by a search ran into the full
    statement timeout: 2.9 s for 2.5)."""
    async with rt.transaction(None if deadline is None else _left(deadline)) as conn:
        if deadline is not None:
            await catalog.bound_statements(conn, max(int((deadline - time.monotonic() - _CANCEL_MARGIN_S) * 1000), 1))
        yield conn


def _slow(rt: Runtime) -> str:
    bound = rt.settings.statement_timeout_ms / 1000
    return f"database: no answer within {bound:g} s (PLINQY_STATEMENT_TIMEOUT_MS): it is stalled or overloaded"


async def _database_checks(rt: Runtime, reasons: list[str], deadline: float) -> tuple[str, str]:
    """(database, migrations) states; "" for migrations when the database could not be asked."""
    try:
        async with _bounded(rt, deadline) as conn:
            versions = await catalog.migration_revisions(conn)
    except asyncpg.UndefinedTableError:
        reasons.append("the database has no migrations applied: run `plinqy-search migrate`")
        return "ok", "missing"
    except Unavailable as exc:  # not connected (yet), every connection busy, too slow to answer, not migrated
        reasons.append(_slow(rt) if exc.reason == "statement_timeout" else exc.detail)
        return _DATABASE_STATES.get(exc.reason, "unreachable"), "missing" if exc.reason == "schema" else ""
    except asyncpg.QueryCanceledError:  # the server's statement timeout: a lock or a stall, not unreachable
        reasons.append(_slow(rt))
        return "slow", ""
    except TRANSIENT_DB_ERRORS as exc:
        reasons.append(f"database: {type(exc).__name__}: {exc}")
        return "unreachable", ""
    except LACKS_RIGHTS as exc:  # it answers, but refuses this role: a grant to make, not a wait (it was a 500)
        reasons.append(lacks_rights(rt.settings.database_url, exc))
        return "forbidden", ""
    if versions == [rt.head_revision]:
        return "ok", "ok"
    current = versions[0] if versions else None
    state = migrate.schema_state(current, rt.head_revision)  # behind, ahead (newer code) or missing
    if state == "ahead":  # `migrate` runs under live APIs (README): the older code serves on; ready, said once
        if not rt.schema_ahead_logged:
            log.warning(
                "%s (still ready: a newer schema serves older code)", migrate.schema_advice(current, rt.head_revision)
            )
            rt.schema_ahead_logged = True
        return "ok", state
    reasons.append(migrate.schema_advice(current, rt.head_revision))
    return "ok", state


async def _may_write(rt: Runtime, reasons: list[str], deadline: float) -> bool:
    """Whether the role has the rights the API's writes need (key authentication's and their triggers' included),
    asked until it has: a read-only role read as ready while every keyed request was a 503 saying "see /readyz"."""
    if rt.may_write:
        return True
    try:
        async with _bounded(rt, deadline) as conn:
            missing = await missing_write_rights(conn)
    except _NOT_ASKED:  # the database checks above say why
        return True
    if missing:
        reasons.append(cannot_write(rt.settings.database_url, missing))
        return False
    rt.may_write = True
    return True


async def check_key_at_start(rt: Runtime) -> None:
    """Once the pool has connected at start-up: a key that opens no stored secret is logged then, as the operator
    starts the server (it was logged at the first /readyz, which a deployment may never ask)."""
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):  # not migrated: readiness says it
        await _key_check(rt, [], migrated=True)


async def _key_check(rt: Runtime, reasons: list[str], migrated: bool, deadline: float | None = None) -> str:
    """`unusable` (malformed, unreadable: not ready), `wrong` (it opens none of a few stored secrets: a mistyped key
    file path made a new key there, and every connection's webhooks answered 503 while readyz said ok) or `ok`.
    A wrong key leaves the API ready: searches and the writes are served; it is logged and shown here."""
    if (problem := rt.settings.secret_key_problem()) is not None:
        reasons.append(problem)
        return "unusable"
    if not migrated:
        return "ok"
    try:
        async with _bounded(rt, deadline) as conn:
            tokens = await catalog.some_stored_secrets(conn)
    except _NOT_ASKED:  # the database checks above say why
        return "ok"
    except LACKS_RIGHTS as exc:  # a role that reads the revision but not the secrets' tables: not ready, said
        reasons.append(lacks_rights(rt.settings.database_url, exc))
        return "ok"
    box = rt.settings.secret_box()
    if tried := box.opens_none_of(tokens):
        if not rt.wrong_key_logged:
            log.warning(
                "the secret key (%s) opens none of %d stored secrets tried: is it the key they were stored with? "
                "(%s)", box.source, tried, box.fix,
            )  # fmt: skip
            rt.wrong_key_logged = True
        return "wrong"
    return "ok"
