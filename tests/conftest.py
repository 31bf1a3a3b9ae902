"""Test infrastructure: a throwaway PostgreSQL cluster, a migrated template database, a database per test.

The suite starts its own cluster in a temporary directory on a free port unless TEST_DATABASE_URL names a server
(its maintenance database, e.g. postgresql://postgres@127.0.0.1:5432/postgres). Migrations run once, into a
template; each test module (or test, where it asks) gets its own database cloned from it in milliseconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from search_service.db import migrate
from search_service.db.cluster import Cluster, free_port
from search_service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _replace_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of the maintenance database of the server under test."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="plinqy-test-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root / "data", free_port(), dbname="postgres")
    cluster.up()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """Name of a database migrated to head once per session."""
    name = f"plinqy_tpl_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate.upgrade(_replace_db(pg_admin_url, name))
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def make_database(pg_admin_url: str, template_db: str) -> Iterator[Callable[..., str]]:
    """Factory: a new database cloned from the migrated template (or empty), dropped when the module ends. Kept
    to the session's end, the ~650 databases of a run (18 MB each, migrated) filled a CI machine's /tmp: the
    cluster crashed ("in recovery mode") and a test's mapped vector file died of SIGBUS."""
    created: list[str] = []

    def factory(*, migrated: bool = True) -> str:
        name = f"plinqy_t_{uuid.uuid4().hex[:12]}"
        template = f'TEMPLATE "{template_db}"' if migrated else "TEMPLATE template0"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" {template}')
        created.append(name)
        return _replace_db(pg_admin_url, name)

    yield factory
    for name in created:
        _drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def db_url(make_database: Callable[..., str]) -> str:
    """A migrated database shared by the tests of one module."""
    return make_database()


@pytest.fixture
def fresh_db_url(make_database: Callable[..., str], pg_admin_url: str) -> Iterator[str]:
    """A migrated database of one's own, for tests that need an empty catalogue; dropped after the test."""
    url = make_database()
    yield url
    _drop_database(pg_admin_url, url.rsplit("/", 1)[1])


@pytest.fixture
def rightless_url(fresh_db_url: str) -> Iterator[str]:
    """`fresh_db_url` as a role that may connect and nothing more (no grant on any table): a read-only or
    unprivileged role put in DATABASE_URL by mistake. A test may grant it some rights (dropped with it)."""
    role = f"plinqy_norights_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    parts = urlsplit(fresh_db_url)
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    finally:
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def db(fresh_db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a database of the test's own."""
    with psycopg.connect(fresh_db_url, autocommit=True) as connection:
        yield connection


# A module's served write API (tests/ingest_helpers.serve) over its database, the keys' file in a temporary
# directory, no model loaded beforehand. A module that needs other settings defines its own `settings`.
@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from tests.ingest_helpers import ingest_settings

    return ingest_settings(db_url, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def base(settings: Settings) -> Iterator[str]:
    from tests.ingest_helpers import serve

    with serve(settings, None) as url:
        yield url


@pytest.fixture(scope="module")
def spec(base: str) -> dict[str, Any]:
    """The served API's OpenAPI document."""
    import httpx

    return httpx.get(f"{base}/schema/openapi.json").json()
