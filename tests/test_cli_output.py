"""The CLI when its output cannot be written (a full disk, a reader that closed the pipe): one line, exit 1, never a
traceback; a secret printed once that could not be printed is not kept."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import IO

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.events_support import seed_store

KEY = Fernet.generate_key().decode()
FULL = "error: cannot write the output (No space left on device)"


def cli(dsn: str, *args: str, stdout: IO[str] | int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "PLINQY_SECRET_KEY": KEY, "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
    return subprocess.run(
        [sys.executable, "-m", "search_service", *args], env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
        timeout=180,
    )  # fmt: skip


@pytest.fixture
def full() -> Iterator[IO[str]]:
    with open("/dev/full", "w") as device:
        yield device


@pytest.fixture
def closed_pipe() -> Iterator[int]:
    """A pipe whose reader is gone, as `| true` leaves it: a write gets EPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    yield writer
    os.close(writer)


def ok(dsn: str, *args: str) -> str:
    out = cli(dsn, *args, stdout=subprocess.PIPE)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_command_whose_output_cannot_be_written_says_so_in_one_line(
    db: psycopg.Connection, fresh_db_url: str, full: IO[str]
) -> None:
    store = seed_store(db)
    batch = db.execute(
        "INSERT INTO import_batch (store_id, source, kind, status) VALUES (%s, 'csv', 'csv', 'completed') RETURNING id",
        (store,),
    ).fetchone()
    assert batch is not None
    for args in (
        ("keys", "list"),
        ("imports", "list"),
        ("tasks", "stats"),
        ("db", "url"),
        ("connections", "list"),
        ("webhooks", "list"),
        ("prune", "--older-than", "30d", "--dry-run"),
        ("imports", "errors", str(batch[0])),
        ("imports", "errors", str(batch[0]), "--output", "/dev/full"),
    ):
        out = cli(fresh_db_url, *args, stdout=full)
        assert (out.returncode, out.stderr) == (1, FULL + "\n"), args


def test_a_reader_that_closed_the_pipe_ends_a_listing_quietly(
    db: psycopg.Connection, fresh_db_url: str, closed_pipe: int
) -> None:
    seed_store(db)
    out = cli(fresh_db_url, "imports", "list", stdout=closed_pipe)
    assert (out.returncode, out.stderr) == (1, "")


def test_a_secret_that_could_not_be_shown_is_not_kept(
    db: psycopg.Connection, fresh_db_url: str, full: IO[str], closed_pipe: int
) -> None:
    """`keys create >/dev/full` (or `| true`) left an active key nobody saw; so did the other secrets shown once."""
    store = str(seed_store(db))
    for stdout, reason in ((full, "No space left on device"), (closed_pipe, "Broken pipe")):
        out = cli(fresh_db_url, "keys", "create", "--store", store, stdout=stdout)
        assert (out.returncode, out.stderr) == (1, f"error: cannot write the output ({reason}); no key was made\n")
    assert db.execute("SELECT count(*) FROM api_key").fetchone() == (0,)
    out = cli(fresh_db_url, "connect", "webhook", "--store", store, stdout=full)
    assert out.returncode == 1 and out.stderr.endswith(f"{FULL}; no connection was made\n"), out.stderr
    assert db.execute("SELECT count(*) FROM ingest_connection").fetchone() == (0,)
    hook = ("webhooks", "add", "--store", store, "--url", "http://127.0.0.1:9/hook")
    out = cli(fresh_db_url, *hook, stdout=full)
    assert (out.returncode, out.stderr) == (1, f"{FULL}; no webhook was made\n")
    assert db.execute("SELECT count(*) FROM store_webhook").fetchone() == (0,)

    webhook_id = ok(fresh_db_url, *hook).split()[1]
    secret = db.execute("SELECT secret FROM store_webhook").fetchone()
    out = cli(fresh_db_url, "webhooks", "rotate-secret", webhook_id, stdout=full)
    assert (out.returncode, out.stderr) == (1, f"{FULL}; the secret was not rotated\n")
    assert db.execute("SELECT secret FROM store_webhook").fetchone() == secret

    connection_id = ok(fresh_db_url, "connect", "webhook", "--store", store).split()[1]
    secret = db.execute("SELECT secret_enc FROM ingest_connection").fetchone()
    out = cli(fresh_db_url, "connections", "update", connection_id, "--new-webhook-secret", stdout=full)
    assert out.returncode == 1 and out.stderr.endswith(f"{FULL}; the connection was not changed\n"), out.stderr
    assert db.execute("SELECT secret_enc FROM ingest_connection").fetchone() == secret


def test_an_output_file_that_cannot_be_opened_is_said_as_any_unwritable_output(
    db: psycopg.Connection, fresh_db_url: str, tmp_path: os.PathLike[str]
) -> None:
    """`imports errors ID --output PATH` into a folder that does not exist (or onto a folder) said click's own
    `Error: Could not open file '…': …`, unlike every other output the CLI cannot write (README: `error: cannot
    write the output (REASON)`, exit 1)."""
    store = seed_store(db)
    batch = db.execute(
        "INSERT INTO import_batch (store_id, source, kind, status) VALUES (%s, 'csv', 'csv', 'completed') RETURNING id",
        (store,),
    ).fetchone()
    assert batch is not None
    missing = os.path.join(tmp_path, "no-such-folder", "errors.csv")
    for path, reason in ((missing, "No such file or directory"), (os.fspath(tmp_path), "Is a directory")):
        out = cli(fresh_db_url, "imports", "errors", str(batch[0]), "--output", path, stdout=subprocess.PIPE)
        said = f"error: cannot write the output (cannot open {path}: {reason})\n"
        assert (out.returncode, out.stderr) == (1, said), out.stderr
