"""The service's SQL registry: every `.sql` file of `search_service`, loaded once, each statement got one way.

    from search_service.db.sql import statement
    rows = await conn.fetch(stmt.sql, *stmt.bind(store_ids=ids, ...))   # asyncpg
    cur.execute(stmt.psycopg, {"store_ids": ids, ...})                   # psycopg

where `stmt = statement("engine/search", "rank_exact")`: `search_service/engine/sql/search.sql`, block rank_exact.
Parsing and the header/body check are `embeddings.sqlblocks`' (see there for the file format). `check_all()`
loads every file, so a block whose header and body disagree fails at start-up and in the suite.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from embeddings.sqlblocks import SqlBlockError, Statement, load_statements

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# asyncpg keeps a prepared statement (and so its generic plan) only up to a size, 15 KiB by default, comments
# included: rank_keyword grew past it and was parsed and planned again on every call (1 -> 5-10 ms). The API's and
# the benchmarks' connections take this instead; every statement here must fit it (tests/test_sql_registry.py).
CACHEABLE_STATEMENT_BYTES = 64 * 1024

__all__ = [
    "CACHEABLE_STATEMENT_BYTES",
    "PACKAGE_ROOT",
    "SqlBlockError",
    "Statement",
    "check_all",
    "sql_files",
    "statement",
    "statements",
]


@cache  # by name: a search looks statements up ~10 times, and building the path took ~4 µs of the ~5 a lookup
def statements(file: str) -> dict[str, Statement]:
    """Every statement of `search_service/<package>/sql/<name>.sql` (file = "package/name"), parsed once."""
    package, _, name = file.partition("/")
    return load_statements(PACKAGE_ROOT / package / "sql" / f"{name}.sql")


def statement(file: str, name: str) -> Statement:
    try:
        return statements(file)[name]
    except KeyError:
        raise SqlBlockError(f"no SQL block {name!r} in the SQL file {file!r}") from None


def sql_files() -> list[str]:
    """The registry's file names (`engine/search`, …), for `check_all` and the tests."""
    return sorted(f"{p.parent.parent.name}/{p.stem}" for p in PACKAGE_ROOT.glob("*/sql/*.sql"))


def check_all() -> int:
    """Load and check every file; returns how many statements there are."""
    return sum(len(statements(f)) for f in sql_files())
