"""Schema migrations (alembic) and the checks an external server must pass first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError

from search_service.db import migrate_guard
from search_service.errortext import first_line

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REQUIRED_EXTENSIONS: Mapping[str, str | None] = {
    "uuid-ossp": None,
    "citext": None,
    "postgis": None,
    "vector": "0.8.0",
    "pg_trgm": None,
    "unaccent": None,  # migration 0035: accent folding
    "fuzzystrmatch": None,  # migration 0037: typo correction's edit distance
}
# How long each migration statement waits for a lock another session holds (a long transaction reading a table a
# migration alters): every query queues behind the locks migrate already holds meanwhile.
DEFAULT_LOCK_TIMEOUT_S = 15.0


class MigrationError(RuntimeError):
    """A one-line, user-facing reason why migrating cannot proceed."""


class UnknownRevision(MigrationError):
    """--revision names no revision: the command was called wrongly (exit 2), not a failed migration."""


def sqlalchemy_url(dsn: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def alembic_config(dsn: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = dsn
    cfg.attributes["configure_logger"] = False
    return cfg


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdecimal())


def check_server(dsn: str, required: Mapping[str, str | None] = REQUIRED_EXTENSIONS) -> None:
    """Fail with a clear message when the server is unreachable or lacks an extension."""
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            rows = conn.execute("SELECT name, default_version FROM pg_available_extensions").fetchall()
    except psycopg.OperationalError as exc:
        first = first_line(exc)
        raise MigrationError(
            f"cannot reach the database ({first}): check DATABASE_URL, or unset it to use the embedded cluster"
        ) from None
    available = {name: version for name, version in rows}
    for ext, minimum in required.items():
        if ext not in available:
            raise MigrationError(
                f"extension {ext!r} is not installed on the database server: install it there "
                "(on Debian: sudo bash scripts/install-postgres.sh)"
            )
        if minimum and _version_tuple(available[ext]) < _version_tuple(minimum):
            raise MigrationError(f"extension {ext!r} is {available[ext]} on the server; {minimum} or newer is needed")


def upgrade(
    dsn: str,
    revision: str = "head",
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    on_wait: Callable[[str], None] | None = None,
) -> str | None:
    """Migrate to `revision`, one run at a time per database (`on_wait` hears when this one waits for another);
    returns the revision the database was at before. A lock not granted within `lock_timeout_s` rolls the run
    back: MigrationError naming the session in the way."""
    if not revision.strip():
        raise UnknownRevision("--revision is empty: give a revision (e.g. 0027) or leave it out for head")
    check_server(dsn)
    with migrate_guard.migrate_lock(dsn, on_wait) as lock_conn:  # a run before this one may have moved it
        current = current_revision(dsn)
        if schema_state(current) == "ahead":  # alembic would say it cannot locate that revision, as of a bad --revision
            raise MigrationError(schema_advice(current))
        cfg = alembic_config(dsn)
        cfg.attributes["lock_timeout_ms"] = max(1, round(lock_timeout_s * 1000))
        watch = migrate_guard.LockWatch(lock_conn, cfg.attributes)
        try:
            _refuse_going_back(dsn, current, revision)
            with watch:
                command.upgrade(cfg, revision)
        except CommandError as exc:  # an unknown revision: alembic's words, without its traceback
            where = "the revisions are the files under migrations/versions/; leave --revision out for head"
            raise UnknownRevision(f"{exc} ({where})") from None
        except sqlalchemy.exc.DBAPIError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            after = current_revision(dsn)
            raise MigrationError(
                migrate_guard.lock_timeout_advice(watch.last, lock_timeout_s, current, after)
            ) from None
    return current


def _refuse_going_back(dsn: str, current: str | None, revision: str) -> None:
    """alembic's upgrade to an older revision does nothing and says nothing: `migrate` only goes forward."""
    script = ScriptDirectory.from_config(alembic_config(dsn))
    if current is None or revision in ("head", "heads") or not _known(script, current):
        return
    target = script.get_revision(revision)  # an unknown one raises alembic's CommandError (the caller words it)
    wanted = "base" if target is None else target.revision  # None: `base`, before the first migration
    if wanted != current and (
        target is None or wanted in {r.revision for r in script.iterate_revisions(current, "base")}
    ):
        raise MigrationError(
            f"the database is at revision {current}, past {wanted}: migrate only upgrades "
            "(a downgrade drops data; restore a backup taken at that revision instead)"
        )


def schema_state(current: str | None, head: str | None = None) -> str:
    """`ok` at `head` (this code's, or the one a running process started with); `missing` (no migration), `behind`
    (an older revision) or `ahead` (a later revision, or one this code does not know: migrated by newer code)."""
    if current is None:
        return "missing"
    head = head or head_revision()
    if current == head:
        return "ok"
    script = ScriptDirectory.from_config(alembic_config(""))
    if _descends(script, current, head):  # the files moved on under a running process, and the database with them
        return "ahead"
    return "behind" if _known(script, current) else "ahead"


def _descends(script: ScriptDirectory, revision: str, ancestor: str) -> bool:
    """Whether `revision` is a later revision than `ancestor` in the migrations on disk."""
    try:
        return any(r.revision == ancestor for r in script.iterate_revisions(revision, "base"))
    except (CommandError, RevisionError):  # a revision the files do not know
        return False


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def schema_advice(current: str | None, head: str | None = None) -> str:
    """What to do about a database not at `head` (this code's, or the one a running process started with), in a
    sentence."""
    head = head or head_revision()
    state = schema_state(current, head)
    if state == "missing":
        return "the database has no migrations applied: run `plinqy-search migrate`"
    if state == "ahead" and current is not None and head != head_revision():
        return (
            f"the database is at revision {current}, migrated after this process started (its code needs {head}): "
            "restart it to run the code on disk"
        )
    if state == "ahead":
        return (
            f"the database is at revision {current}, which this code (head {head}) does not know: it was migrated "
            "by newer code; run that code, or restore a backup taken at this code's revision"
        )
    return f"the database is at revision {current}, this code needs {head}: run `plinqy-search migrate`"


def require_current_schema(dsn: str) -> None:
    """MigrationError (one line, what to do) unless the database is at this code's head: a job on an older
    schema fails midway with a missing column."""
    current = current_revision(dsn)
    if schema_state(current) != "ok":
        raise MigrationError(schema_advice(current))


def downgrade(dsn: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(dsn), revision)


def check_drift(dsn: str) -> None:
    """Raise alembic's AutogenerateDiffsDetected when metadata and migrations disagree."""
    command.check(alembic_config(dsn))


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


def current_revision(dsn: str) -> str | None:
    """The database's alembic revision; None before the first migration. Read directly: alembic's context logs
    itself at INFO into a job's log (the worker configures logging first)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else str(row[0])
