"""The ingest CLI as a user runs it: keys, stores, connections, CSV import, prune, and the worker's jobs."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest

from search_service.controlchars import escape_control_chars
from tests.ingest_helpers import bearer, drain_imports, new_store, store_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cli(dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "search_service", *args],
        env={**os.environ, "DATABASE_URL": dsn, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def cli_on_a_terminal(dsn: str, *args: str | bytes, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """The command with stderr on a terminal (a pty), where the progress bars are drawn: its result and stderr."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # 0 columns: tqdm drew nothing
    command = [sys.executable, "-m", "search_service", *args]
    environment = {**os.environ, "DATABASE_URL": dsn, **env}
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=follower, text=True) as proc:
        os.close(follower)
        drawn = []
        with contextlib.suppress(OSError):  # EIO once the command has closed the terminal
            while chunk := os.read(leader, 65536):
                drawn.append(chunk)
        os.close(leader)
        stdout = proc.stdout.read() if proc.stdout else ""
        returncode = proc.wait(timeout=180)
    stderr = b"".join(drawn).decode("utf-8", "replace")
    return subprocess.CompletedProcess(command, returncode, stdout, stderr), stderr


@pytest.fixture
def dsn(fresh_db_url: str) -> str:
    return fresh_db_url


def create_store(dsn: str) -> UUID:
    out = cli(dsn, "stores", "create", "--name", "Kiez Laden", "--lat", "52.4986", "--lon", "13.4030")
    assert out.returncode == 0, out.stderr
    return UUID(out.stdout.strip())  # the id alone, for STORE=$(...)


def test_keys_create_list_revoke(dsn: str) -> None:
    store = create_store(dsn)
    out = cli(dsn, "keys", "create", "--store", str(store), "--scope", "listings:write", "--name", "till")
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("plq_") and len(key) >= 36
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT key_hash, key_prefix FROM api_key").fetchall()
    assert len(stored) == 1 and key not in stored[0][0] and key.startswith(stored[0][1])
    listed = cli(dsn, "keys", "list")
    assert listed.returncode == 0 and key not in listed.stdout and "active" in listed.stdout
    key_id = listed.stdout.split()[0]
    assert cli(dsn, "keys", "revoke", key_id).returncode == 0
    assert "revoked" in cli(dsn, "keys", "list").stdout
    both = cli(dsn, "keys", "create", "--store", str(store), "--admin")
    assert both.returncode == 2 and both.stderr.startswith("error: give either")  # a usage mistake, as click's
    neither = cli(dsn, "keys", "create")
    assert neither.returncode == 2 and neither.stderr.strip() == "error: give either --store STORE_ID or --admin"
    missing = cli(dsn, "keys", "create", "--store", "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b")
    assert missing.returncode == 1 and "no store with id 0b7e9f5c" in missing.stderr  # the command failed


def test_keys_list_says_its_times_in_utc_whatever_the_sessions_zone(dsn: str) -> None:
    """`keys list` printed a key's last use and revocation as `2026-12-07 00:21`, no zone, in the database
    session's zone (America/New_York here): the key was used at 05:21 UTC."""
    store = create_store(dsn)
    for name in ("used", "revoked"):
        assert cli(dsn, "keys", "create", "--store", str(store), "--name", name).returncode == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone = 'America/New_York'")
        conn.execute("UPDATE api_key SET last_used_at = '2026-12-07 05:21:44+00'")
        conn.execute("UPDATE api_key SET revoked_at = '2026-12-07 06:00:00+00' WHERE name = 'revoked'")
    lines = {line.split("\t")[-1]: line.split("\t") for line in cli(dsn, "keys", "list").stdout.splitlines()}
    assert lines["used"][4:6] == ["active", "used=2026-12-07T05:21:44Z"], lines
    assert lines["revoked"][4:6] == ["revoked 2026-12-07T06:00:00Z", "used=2026-12-07T05:21:44Z"], lines


def test_imports_connections_and_prune_lines_say_their_times_in_utc_whatever_the_sessions_zone(
    dsn: str, tmp_path: Path
) -> None:
    """`imports list` (created, finished, a lease's end), `connections list` (last sync, last error, next attempt),
    `prune` and `tasks prune` printed times with no zone, in the database session's (America/New_York here) or with
    its abbreviation: read as UTC, hours off. They say UTC with its `Z`, as `keys list` does."""
    store = create_store(dsn)
    env = {"PLINQY_SECRET_KEY_FILE": str(tmp_path / "key")}
    assert cli(dsn, "connect", "webhook", "--store", str(store), **env).returncode == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone = 'America/New_York'")
        conn.execute(
            "INSERT INTO import_batch (store_id, source, status, created_at, finished_at) VALUES "
            "(%s, 'csv', 'completed', '2026-12-07 05:21:44+00', '2026-12-07 05:22:01+00')",
            (store,),
        )
        conn.execute(
            "INSERT INTO import_batch (store_id, source, status, locked_by, locked_until, started_at, created_at)"
            " VALUES (%s, 'csv', 'processing', 'import:host:7', '2100-01-01 00:00:00+00', now(), now())",
            (store,),
        )
        conn.execute(
            "UPDATE ingest_connection SET last_sync_at = '2026-12-07 05:21:44+00', consecutive_failures = 1, "
            "last_error = 'HTTP 503', last_error_at = '2026-12-07 06:00:00+00', "
            """config = config || '{"not_before": 4102444800}'::jsonb"""
        )
    processing, completed = cli(dsn, "imports", "list").stdout.splitlines()
    assert "\tcreated=2026-12-07T05:21:44Z\tfinished=2026-12-07T05:22:01Z" in completed, completed
    assert "\tleased_by=import:host:7 until 2100-01-01T00:00:00Z" in processing, processing
    [connection] = cli(dsn, "connections", "list").stdout.splitlines()
    assert "\tsynced=2026-12-07T05:21:44Z\t" in connection, connection
    assert "\tlast_error=2026-12-07T06:00:00Z: HTTP 503\tnext_attempt=2100-01-01T00:00:00Z " in connection, connection
    utc = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    pruned = cli(dsn, "prune", "--dry-run").stdout.splitlines()
    assert pruned and all(re.fullmatch(rf"would delete \d+ row\(s\) of \w+ older than {utc}", p) for p in pruned), (
        pruned
    )
    tasks = cli(dsn, "tasks", "prune", "--older-than", "1d", "--dry-run").stdout.strip()
    assert re.fullmatch(rf"would delete 0 done task\(s\) that finished before {utc}", tasks), tasks


def test_a_key_or_store_described_wrongly_exits_2_naming_the_option_as_typed(dsn: str) -> None:
    """The README's exit 2 is for a command called wrongly, its own checks too: an unknown or clashing --scope,
    --currency XXX, --country DEU (named `country_code`), an empty --name exited 1, as a failure. A country code
    no country has (`xx`) was stored as `XX`."""
    store = create_store(dsn)
    key = ("keys", "create", "--store", str(store))
    place = ("stores", "create", "--lat", "52.5", "--lon", "13.4")
    cases = [
        ((*key, "--scope", "bogus:scope"), "error: --scope: unknown scope 'bogus:scope': use "),
        ((*key, "--scope", "stores:write"), "error: --scope: stores:write is an admin key's scope"),
        ((*key, "--name", "x" * 201), "error: --name: at most 200 characters"),
        ((*place, "--name", "X", "--currency", "XXX"), "error: --currency 'XXX' is not a current ISO 4217 code"),
        ((*place, "--name", "X", "--country", "DEU"), "error: --country: must be 2 letters (ISO 3166-1)"),
        ((*place, "--name", "X", "--country", "xx"), "error: --country: 'xx' is not an ISO 3166-1 country code"),
        ((*place, "--name", ""), "error: --name: must not be empty"),
        ((*place, "--name", "Kiez\x01Laden"), "error: --name: must not contain control characters"),
    ]
    for args, says in cases:
        out = cli(dsn, *args)
        assert (out.returncode, out.stderr.startswith(says)) == (2, True), (args, out.returncode, out.stderr)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM store").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM api_key").fetchone() == (0,)


def test_stores_create_takes_every_field_post_v1_stores_takes(dsn: str) -> None:
    """`stores create` is "what POST /v1/stores does" (README, its help), but had no --phone or --website, two of
    the API's StoreIn fields: a store made from the command line could get them only through PATCH."""
    place = ("stores", "create", "--name", "Kiez Laden", "--lat", "52.5", "--lon", "13.4")
    out = cli(dsn, *place, "--phone", "+49 30 1234567", "--website", "https://kiez-laden.example")
    assert out.returncode == 0, out.stderr
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT phone, website FROM store WHERE id = %s", (out.stdout.strip(),)).fetchone()
    assert row == ("+49 30 1234567", "https://kiez-laden.example")
    bad = cli(dsn, *place, "--website", "kiez-laden")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --website: must be an http(s) address"), bad.stderr


def test_imports_list_marks_a_lease_past_its_time_lapsed(dsn: str) -> None:
    """A batch whose worker's lease ran out read `leased_by=… until 16:48:00` at 16:56, as if still held."""
    store = create_store(dsn)
    with psycopg.connect(dsn) as conn:
        for worker, until in (("import:gone:1", "- interval '8 minutes'"), ("import:live:2", "+ interval '1 minute'")):
            conn.execute(
                "INSERT INTO import_batch (store_id, source, status, locked_by, locked_until, started_at)"
                f" VALUES (%s, 'csv', 'processing', %s, now() {until}, now())",
                (store, worker),
            )
    listed = cli(dsn, "imports", "list").stdout.splitlines()
    gone, live = (next(line for line in listed if worker in line) for worker in ("import:gone:1", "import:live:2"))
    assert gone.endswith(" (lapsed)") and "(lapsed)" not in live, listed


def test_connect_webhook_prints_secret_once_and_stores_it_encrypted(dsn: str, tmp_path: Path) -> None:
    store = create_store(dsn)
    env = {"PLINQY_SECRET_KEY_FILE": str(tmp_path / "key")}
    out = cli(dsn, "connect", "webhook", "--store", str(store), PLINQY_PUBLIC_BASE_URL="http://10.0.0.5:8000", **env)
    assert out.returncode == 0, out.stderr
    secret = out.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    connection = out.stdout.split()[1]
    assert f"webhook URL: POST http://10.0.0.5:8000/v1/ingest/{connection} " in out.stdout
    with psycopg.connect(dsn) as conn:
        enc = conn.execute("SELECT secret_enc FROM ingest_connection").fetchone()
    assert enc is not None and secret.encode() not in bytes(enc[0])


def test_import_csv_counts_one_row_as_one_row(dsn: str, tmp_path: Path) -> None:
    """A one-row file said `batch … stored: 1 rows` (its summary line, `completed: 1 row`, was right)."""
    store = create_store(dsn)
    one = tmp_path / "one.csv"
    one.write_text("SKU,Price,Quantity,Name\nx1,1.00,2,Thing\n")
    single = cli(dsn, "import", "csv", str(one), "--store", str(store))
    assert single.returncode == 0 and re.search(r"stored: 1 row$", single.stderr, re.M), single.stderr


def test_import_csv_then_strict_and_prune(dsn: str, tmp_path: Path) -> None:
    store = create_store(dsn)
    out = cli(dsn, "import", "csv", str(PROJECT_ROOT / "examples" / "products.csv"), "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert "20 rows, 20 mapped" in out.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("SKU,Price,Quantity,Name\nx1,1.00,1,Thing\nx2,-5,1,Other\n")
    loose = cli(dsn, "import", "csv", str(bad), "--store", str(store))
    assert loose.returncode == 0 and "1 rejected" in loose.stdout and "row 2: rejected" in loose.stdout
    strict = cli(dsn, "import", "csv", str(bad), "--store", str(store), "--strict")
    assert strict.returncode == 3
    nosku = tmp_path / "nosku.csv"
    nosku.write_text("name,price\nx,1\n")
    refused = cli(dsn, "import", "csv", str(nosku), "--store", str(store))
    assert refused.returncode == 1 and "'sku'" in refused.stderr
    with psycopg.connect(dsn) as conn:
        # a batch held by a worker: an operator saw it (and that it was stuck) only in SQL or through the store's key
        conn.execute(
            "INSERT INTO import_batch (store_id, source, status, total_rows, locked_by, locked_until, started_at)"
            " VALUES (%s, 'csv', 'processing', 7, 'import:host:41', now() + interval '1 minute', now())",
            (store,),
        )
        conn.commit()
    listed = cli(dsn, "imports", "list", "--store", str(store)).stdout.splitlines()
    assert len(listed) == 4 and "\tprocessing\t" in listed[0] and "leased_by=import:host:41" in listed[0]
    assert "rows=2 mapped=1 stale=0 duplicate=0 rejected=1" in listed[1]
    assert "rows=20 mapped=20" in listed[3] and "file=products.csv" in listed[3]
    dry = cli(dsn, "imports", "prune", "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0 and "would delete 3 finished batch(es) with 24 raw row(s)" in dry.stdout, dry.stdout
    pruned = cli(dsn, "imports", "prune", "--older-than", "0s")
    assert pruned.returncode == 0 and "deleted 3 finished batch(es) with 24 raw row(s)" in pruned.stdout
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM imported_product_raw").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM store_product").fetchone() == (21,)
        assert conn.execute("SELECT status FROM import_batch").fetchall() == [("processing",)]  # unfinished: kept
    listed = cli(dsn, "imports", "list", "--store", str(store)).stdout.splitlines()
    held = cli(dsn, "imports", "list", "--status", "processing", "--status", "failed").stdout.splitlines()
    assert len(held) == 1 and held[0] == listed[0]
    unknown = cli(dsn, "imports", "list", "--store", "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b")
    assert unknown.returncode == 1 and "no store with id 0b7e9f5c" in unknown.stderr, unknown.stderr


def test_ctrl_c_during_import_csv_gives_the_batch_back_to_the_workers(dsn: str, tmp_path: Path) -> None:
    """It held the batch for the rest of its lease (a minute: the store's writes queued behind it, and a second
    `import csv` said a dead process was mapping it) and said only "Aborted!"."""
    store = create_store(dsn)
    big = tmp_path / "big.csv"
    big.write_text("sku,name,price,quantity\n" + "".join(f"S{i},Item {i},1.00,{i % 7}\n" for i in range(30000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "search_service", "import", "csv", str(big), "--store", str(store)],
        env={**os.environ, "DATABASE_URL": dsn, "PLINQY_INGEST_CHUNK_ROWS": "500"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while not conn.execute("SELECT 1 FROM import_batch WHERE processed_rows > 0").fetchone():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted: batch" in err and "`plinqy-search worker` maps the rest" in err and "Traceback" not in err
        held = conn.execute("SELECT status, locked_by, processed_rows FROM import_batch").fetchone()
        assert held is not None and held[0] == "pending" and held[1] is None and 0 < held[2] < 30000
        # a second import maps that earlier batch first: interrupted, it gives that one back too (it kept it)
        small = tmp_path / "small.csv"
        small.write_text("sku,name,price,quantity\nX1,Extra,1.00,1\n")
        second = subprocess.Popen(
            [sys.executable, "-m", "search_service", "import", "csv", str(small), "--store", str(store)],
            env={**os.environ, "DATABASE_URL": dsn, "PLINQY_INGEST_CHUNK_ROWS": "500"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        before = held[2]
        while not conn.execute("SELECT 1 FROM import_batch WHERE processed_rows > %s", (before,)).fetchone():
            assert time.monotonic() < deadline and second.poll() is None
            time.sleep(0.05)
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=60) == 130
        assert conn.execute("SELECT count(*) FROM import_batch WHERE locked_by IS NOT NULL").fetchone() == (0,)
    drained = cli(dsn, "worker", "--drain", "--only", "import")
    assert drained.returncode == 0, drained.stderr
    with psycopg.connect(dsn) as conn:
        done = conn.execute("SELECT status, processed_rows, mapped_rows FROM import_batch ORDER BY seq").fetchall()
        assert done == [("completed", 30000, 30000), ("completed", 1, 1)]
        assert conn.execute("SELECT count(*) FROM store_product").fetchone() == (30001,)


# The command as the console script runs it, SIGINT at Python's own handler (a terminal's) or ignored (a child of
# a shell's `cmd &`, some CI runners), whatever the test runner's is.
WITH_SIGINT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.{}); from search_service.cli import main; sys.exit(main())"
)


@pytest.mark.parametrize("sigint", ["default_int_handler", "SIG_IGN"])
def test_sigterm_stops_import_csv_as_ctrl_c_does(dsn: str, tmp_path: Path, sigint: str) -> None:
    """SIGTERM (timeout, systemd, docker stop) ended it with exit 143 and no line: the batch stayed `receiving`
    (or `processing`) under its lease, the store's writes queued behind it for up to two minutes. With SIGINT
    ignored (`cmd &`) asyncio has no Ctrl-C handler of its own: SIGTERM was a KeyboardInterrupt inside the loop,
    whose shutdown printed the task's ImportInterrupted as a traceback, then a bare `interrupted`."""
    store = create_store(dsn)
    big = tmp_path / "big.csv"
    big.write_text("sku,name,price,quantity\n" + "".join(f"S{i},Item {i},1.00,{i % 7}\n" for i in range(150000)))

    def started_then_stopped(until: str) -> tuple[int, list[str]]:
        proc = subprocess.Popen(
            [sys.executable, "-c", WITH_SIGINT.format(sigint), "import", "csv", str(big), "--store", str(store)],
            env={**os.environ, "DATABASE_URL": dsn, "PLINQY_INGEST_CHUNK_ROWS": "500"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with psycopg.connect(dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while not conn.execute(until).fetchone():
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        return proc.returncode, [line for line in err.replace("\r", "\n").splitlines() if line.startswith("interr")]

    storing = started_then_stopped("SELECT 1 FROM import_batch WHERE status = 'receiving'")
    assert storing == (130, ["interrupted: before the file was stored: nothing imported"])
    mapping = started_then_stopped("SELECT 1 FROM import_batch WHERE processed_rows > 0")
    assert mapping[0] == 130 and len(mapping[1]) == 1 and mapping[1][0].startswith("interrupted: batch"), mapping
    with psycopg.connect(dsn) as conn:
        batches = conn.execute("SELECT status, locked_by FROM import_batch ORDER BY seq").fetchall()
    assert batches == [("aborted", None), ("pending", None)]  # nothing held: the store's writes go on at once


# The console script's own code (bin/plinqy-search), after a line saying the interpreter is up: a SIGINT before
# that (the interpreter importing `site`, slow on a loaded machine) is the interpreter's, before any of ours runs.
CONSOLE_SCRIPT = "import sys; print('up', flush=True); from search_service.cli import main; sys.exit(main())"


@pytest.mark.parametrize("delay_s", [0.05, 0.2, 0.5, 0.9])
def test_ctrl_c_however_early_is_one_line_and_exit_130(dsn: str, tmp_path: Path, delay_s: float) -> None:
    """A Ctrl-C in the first ~1.5 s (modules being imported: alembic, psycopg) printed a 47-line traceback ending in
    KeyboardInterrupt; one during a command's own imports printed click's "Aborted!" and exited 1."""
    store = create_store(dsn)
    file = tmp_path / "r.csv"
    file.write_text("sku,name,price,quantity\n" + "".join(f"R{i},Item,1,1\n" for i in range(20000)))
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSOLE_SCRIPT, "import", "csv", str(file), "--store", str(store)],
        env={**os.environ, "DATABASE_URL": dsn}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err, err
    said = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("interrupted")]
    # `interrupted`, or, past the progress bar's first line, import csv's own: where the file is
    assert len(said) == 1 and (said[0] == "interrupted" or said[0].startswith("interrupted: ")), err


def test_import_csv_that_loses_its_connection_says_where_its_batch_is_in_one_line(dsn: str, tmp_path: Path) -> None:
    """pg_terminate_backend mid-mapping: a full traceback (ConnectionDoesNotExistError from refresh_statistics),
    rc 1, the batch never named and its lease held for a minute. Now: the batch named once stored, one line saying
    where it is, exit 75, the batch given back to the workers at once."""
    store = create_store(dsn)
    big = tmp_path / "big.csv"
    big.write_text("sku,name,price,quantity\n" + "".join(f"S{i},Item {i},1.00,{i % 7}\n" for i in range(30000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "search_service", "import", "csv", str(big), "--store", str(store)],
        env={**os.environ, "DATABASE_URL": dsn, "PLINQY_INGEST_CHUNK_ROWS": "100", "PLINQY_INGEST_LANES": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while not conn.execute("SELECT 1 FROM import_batch WHERE processed_rows >= 300").fetchone():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        _out, err = proc.communicate(timeout=60)
        batch, status, locked_by, processed = conn.execute(
            "SELECT id, status, locked_by, processed_rows FROM import_batch"
        ).fetchone()  # type: ignore[misc]
    assert proc.returncode == 75, err[-3000:]
    assert "Traceback" not in err and f"batch {batch} stored: 30000 rows" in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines == [
        f"error: lost the database connection: batch {batch} is stored (30000 rows, {processed} mapped) and given "
        "back to the workers: `plinqy-search worker --drain` maps the rest"
    ], err[-3000:]
    assert status == "pending" and locked_by is None and 0 < processed < 30000  # no lease to wait for
    drained = cli(dsn, "worker", "--drain", "--only", "import")
    assert drained.returncode == 0, drained.stderr
    with psycopg.connect(dsn) as conn:
        done = conn.execute("SELECT status, processed_rows, mapped_rows FROM import_batch").fetchall()
        assert done == [("completed", 30000, 30000)]


def test_import_csv_whose_mapping_raises_records_it_on_the_batch_and_gives_it_back_in_one_line(
    dsn: str, tmp_path: Path
) -> None:
    """A row the database refuses (a trigger raises here): a traceback, rc 1, and the batch left `processing`, no
    error recorded, held for the dead command's lease. Now it is recorded as the worker records it (`error`,
    `mapping_failures`, tried again after a pause, failed at the last try), released, and said in one line; a store's
    earlier batch the command maps first too."""
    store = create_store(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$;
            CREATE TRIGGER trg_refuse BEFORE INSERT ON store_product FOR EACH ROW
            WHEN (NEW.store_id = '{store}') EXECUTE FUNCTION refuse();
        """)  # fmt: skip
        first, second = tmp_path / "f4.csv", tmp_path / "later.csv"
        first.write_text("sku,name,price,quantity\nA,x,1,1\nB,y,zz,1\nC,z,1,1\nD,w,1,1\n")
        second.write_text("sku,name,price,quantity\nE,v,1,1\n")
        out = cli(dsn, "import", "csv", str(first), "--store", str(store))
        batch, status, failures, error, locked_by, backing_off = conn.execute(
            "SELECT id, status, mapping_failures, error, locked_by, locked_until > now() FROM import_batch"
        ).fetchone()  # type: ignore[misc]
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
        assert [line for line in out.stderr.splitlines() if line.startswith("error: ")] == [
            f"error: mapping batch {batch} failed (RaiseError: refused by a test trigger): recorded on the batch, "
            "which the workers try again after a pause (given up after 5 failures): `plinqy-search imports list` "
            "shows its error, `plinqy-search worker` maps it"
        ], out.stderr[-3000:]
        assert (status, failures, error) == ("processing", 1, "mapping failed: RaiseError: refused by a test trigger")
        assert locked_by is None and backing_off  # released: the workers' pause, not this command's lease
        # Its last try: the next `import csv` maps it first (the store's order), and it is failed.
        conn.execute("UPDATE import_batch SET mapping_failures = 4, locked_until = NULL WHERE id = %s", (batch,))
        later = cli(dsn, "import", "csv", str(second), "--store", str(store))
        assert later.returncode == 1 and "Traceback" not in later.stderr, later.stderr[-3000:]
        assert f"error: mapping batch {batch} failed (RaiseError: refused by a test trigger) for the 5th time: " \
            "it is failed, given up (its rows stay stored); fix the cause and import the file again" \
            in later.stderr.splitlines(), later.stderr[-3000:]  # fmt: skip
        rows = conn.execute("SELECT status, mapping_failures, locked_by FROM import_batch ORDER BY seq").fetchall()
        assert rows == [("failed", 5, None), ("pending", 0, None)], rows
        conn.execute("DROP TRIGGER trg_refuse ON store_product")
    drained = cli(dsn, "worker", "--drain", "--only", "import")
    assert drained.returncode == 0, drained.stderr[-3000:]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT sku FROM store_product").fetchall() == [("E",)]


def test_import_csv_of_a_big_file_maps_it_in_lanes_with_the_bar_moving(dsn: str, tmp_path: Path) -> None:
    """1,000 rows in chunks of 100: the first chunk, then two lanes (ingest/lanes.py) on their own connections."""
    store = create_store(dsn)
    big = tmp_path / "big.csv"
    big.write_text(
        "sku;name;price;quantity\n" + "".join(f"b{i};Thing {i};1,{i % 100:02d};{i % 4}\n" for i in range(1000))
    )
    out, _ = cli_on_a_terminal(dsn, "import", "csv", str(big), "--store", str(store), PLINQY_INGEST_CHUNK_ROWS="100")
    assert out.returncode == 0, out.stderr
    assert "1000 rows, 1000 mapped" in out.stdout
    shown = {int(m) for m in re.findall(r"(\d+)/1000", out.stderr)}
    assert 1000 in shown and min(shown) < 1000  # a step between the start and the end
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (1000,)
        assert conn.execute("SELECT count(*) FROM inventory_event WHERE reason = 'listed'").fetchone() == (1000,)


def test_the_import_bar_counts_rows_as_words(dsn: str) -> None:
    """Before the total was known the bar read `0row [00:00, ?row/s]`: the unit is " rows", so "0 rows"."""
    store = create_store(dsn)
    out, _ = cli_on_a_terminal(dsn, "import", "csv", str(PROJECT_ROOT / "examples" / "products.csv"), "--store",
                               str(store))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "0 rows [" in out.stderr and " rows/s" in out.stderr, out.stderr
    assert not re.search(r"[\d?]rows?\b", out.stderr), out.stderr


def test_no_progress_bar_is_drawn_on_a_stderr_that_is_no_terminal(dsn: str, tmp_path: Path) -> None:
    """`import csv 2>e.txt` (prune, tasks prune, imports prune, sync, reembed alike) filled the file with the bar's
    `\\r`-separated redraws: the bars are drawn on a terminal only."""
    store = create_store(dsn)
    out = cli(dsn, "import", "csv", str(PROJECT_ROOT / "examples" / "products.csv"), "--store", str(store))
    assert out.returncode == 0 and "completed" in out.stdout, out.stderr
    assert "\r" not in out.stderr and "rows/s" not in out.stderr, out.stderr
    for command in (("imports", "prune", "--older-than", "0s"), ("prune", "--older-than", "0s")):
        pruned = cli(dsn, *command)
        assert pruned.returncode == 0 and "deleted" in pruned.stdout, pruned.stderr
        assert pruned.stderr == "", (command, pruned.stderr)


def test_import_csv_names_its_duplicate_rows_and_a_good_row_lost_to_a_bad_one(dsn: str, tmp_path: Path) -> None:
    """It said "3 duplicate, 1 rejected" and named row 5 alone: which rows were duplicates, and that D2's good row
    was replaced by the rejected one (D2 left unlisted), no output said."""
    store = create_store(dsn)
    file = tmp_path / "d.csv"
    file.write_text("sku,name,price,quantity\nD1,First,1,1\nD1,Second,2,2\n D1 ,Third,3,3\nD2,Good,1,1\nD2,Bad,-1,1\n")
    out = cli(dsn, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("row 5: rejected: price must not be negative"), lines
    assert lines[1].startswith("row 1: duplicate: replaced by row 3, a later row of the same sku") and lines[
        2
    ].startswith("row 2: duplicate: replaced by row 3")
    assert lines[3].startswith("row 4: duplicate: replaced by row 5,") and lines[3].endswith(
        "; row 5, which replaced it, was rejected: this sku is left as it was"
    )
    assert "3 duplicate, 1 rejected" in lines[4]


def test_import_csv_names_its_stale_rows_and_the_errors_csv_lists_them(dsn: str, tmp_path: Path) -> None:
    """A renumbering file sent again: its row retiring the old SKU ends stale, and "1 stale" was all the output
    said: no row line, and the errors CSV (and notes CSV) a header alone; the reason was in the database only."""
    store = create_store(dsn)
    first = tmp_path / "v1.csv"
    first.write_text("sku,gtin,name,price,quantity\nVV1,4000000000136,Hose S,1.00,1\n")
    assert cli(dsn, "import", "csv", str(first), "--store", str(store)).returncode == 0
    renumbered = tmp_path / "v2.csv"
    renumbered.write_text(
        "sku,gtin,name,price,quantity,is_active\nVV1,4000000000136,Hose S,1.00,1,no\nNN1,4000000000136,Hose S,1.00,3,\n"
    )
    assert cli(dsn, "import", "csv", str(renumbered), "--store", str(store)).returncode == 0
    out = cli(dsn, "import", "csv", str(renumbered), "--store", str(store))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("row 1: stale: sku 'VV1' was taken over by another sku") and "'NN1'" in lines[0], lines
    assert "1 mapped (0 with notes, 1 unchanged), 1 stale, 0 duplicate, 0 rejected" in lines[1] and len(lines) == 2
    table = list(csv.reader(io.StringIO(cli(dsn, "imports", "errors", lines[1].split()[1]).stdout.lstrip("\ufeff"))))
    assert len(table) == 2 and table[1][0] == "1" and table[1][1].startswith("stale: sku 'VV1' was taken over"), table
    assert table[1][2:5] == ["VV1", "4000000000136", "Hose S"], table


def test_import_csv_of_a_file_sent_again_says_its_rows_changed_nothing(dsn: str, tmp_path: Path) -> None:
    """The same file twice: both summaries said "20 mapped", though the second wrote nothing (no history, no
    event); an import that changed nothing read as one that rewrote every listing."""
    store = create_store(dsn)
    products = PROJECT_ROOT / "examples" / "products.csv"
    edited = tmp_path / "edited.csv"
    lines = products.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(";2,49;", ";2,59;")  # a price: the listing's
    lines[2] = lines[2].replace("every morning", "every morning, sliced")  # a description: the product's alone
    edited.write_text("".join(lines))
    said = []
    for sent in (products, products, edited):
        out = cli(dsn, "import", "csv", str(sent), "--store", str(store))
        assert out.returncode == 0, out.stderr
        said.append(out.stdout.splitlines()[-1].split(": ", 1)[1])
    assert said == [
        f"20 rows, 20 mapped (0 with notes, {unchanged} unchanged), 0 stale, 0 duplicate, 0 rejected"
        for unchanged in (0, 20, 18)
    ], said
    listed = cli(dsn, "imports", "list", "--store", str(store)).stdout.splitlines()  # it showed no such count
    assert [line.split("\t")[4].split()[-1] for line in listed] == ["unchanged=18", "unchanged=20", "unchanged=0"]


def test_import_csv_says_how_many_rows_it_did_not_name_and_how_to_get_them_all(dsn: str, tmp_path: Path) -> None:
    """It named the first 20 of 30 rejected rows, then "30 rejected": no "and 10 more", no way to get the rest."""
    store = create_store(dsn)
    file = tmp_path / "bad.csv"
    file.write_text("sku,name,price,quantity\n" + "".join(f"B{i},Thing,-1,1\n" for i in range(30)))
    out = cli(dsn, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:20]] == [f"row {i}" for i in range(1, 21)]
    assert lines[20] == "... and 10 more rejected rows" and "30 rejected" in lines[21]
    batch = lines[21].split()[1]
    assert (
        lines[22]
        == f"every rejected, duplicate and stale row: plinqy-search imports errors {batch} --output errors.csv"
    )
    saved = tmp_path / "errors.csv"
    written = cli(dsn, "imports", "errors", batch, "--output", str(saved))
    assert written.returncode == 0 and written.stdout == "", written.stderr
    table = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert len(table) == 31 and table[30][:3] == ["30", "price must not be negative", "B29"]
    piped = cli(dsn, "imports", "errors", batch)
    assert piped.returncode == 0 and piped.stdout == saved.read_text(encoding="utf-8")
    assert cli(dsn, "imports", "errors", batch, "--notes").stdout == '\ufeff"row","note","cells"\n'
    unknown = cli(dsn, "imports", "errors", "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b")
    assert (
        unknown.returncode == 1
        and unknown.stderr == "error: no import batch with id 0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b\n"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE import_batch SET status = 'processing' WHERE id = %s", (batch,))
    busy = cli(dsn, "imports", "errors", batch)
    assert busy.returncode == 1 and busy.stderr.startswith(
        f"error: batch {batch} is processing (30 of 30 rows processed)"
    )


def test_worker_rejects_unknown_job(dsn: str) -> None:
    out = cli(dsn, "worker", "--only", "embed,nope", "--drain")
    assert out.returncode == 2 and "unknown job 'nope'" in out.stderr
    empty = cli(dsn, "worker", "--only", " , ", "--drain")  # ran every job, sync and embed included
    assert empty.returncode == 2 and "--only names no job" in empty.stderr
    # repeated, every one counts: the last alone ran (`--only import --only events` left the imports pending)
    repeated = cli(dsn, "worker", "--only", "nope", "--only", "events", "--drain")
    assert repeated.returncode == 2 and "unknown job 'nope'" in repeated.stderr, repeated.stderr


def test_reembed_refuses_two_modes_rather_than_run_the_larger(dsn: str) -> None:
    both = cli(dsn, "reembed", "--missing", "--all")  # ran --all: the whole catalogue
    assert both.returncode == 2 and both.stderr.strip() == (
        "error: choose one of --missing, --stale or --all (not --missing and --all)"
    )
    neither = cli(dsn, "reembed")
    assert neither.returncode == 2 and neither.stderr.strip() == "error: choose one of --missing, --stale or --all"


def test_import_csv_maps_its_stores_earlier_batches_first_or_says_what_it_waits_for(dsn: str, tmp_path: Path) -> None:
    """With an earlier batch of the store waiting and no worker running, `import csv` sat at 0 rows for ever,
    saying nothing. It maps the earlier batch first (the store's order) once no worker holds it, and says so; while
    a worker's lease on it is live, it says whom it waits for."""
    from search_service.ingest import pipeline

    store = create_store(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        earlier = pipeline.record_batch(conn, store_id=store, source="csv", kind="csv",
                                        rows=[{"sku": "e1", "name": "Early", "price": 1, "quantity": 4}])  # fmt: skip
        # a lease the command's start (2-5 s on a loaded machine: it lapsed first, nothing to wait for) outlives
        conn.execute("UPDATE import_batch SET status = 'processing', locked_by = 'worker-7', "
                     "locked_until = now() + interval '10 seconds' WHERE id = %s", (earlier,))  # fmt: skip
    file = tmp_path / "later.csv"
    file.write_text("sku,name,price,quantity\ne1,Early,1,9\n")
    out = cli(dsn, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert f"waiting: worker-7 is mapping batch {earlier} of this store" in out.stderr
    assert f"mapping this store's earlier batch {earlier} first (csv, 1 row)" in out.stderr
    assert "1 row, 1 mapped" in out.stdout
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM import_batch WHERE id = %s", (earlier,)).fetchone() == ("completed",)
        assert conn.execute("SELECT quantity FROM store_product WHERE sku = 'e1'").fetchone() == (9,)  # in order


def test_import_csv_waiting_on_an_earlier_batchs_pause_after_a_failure_says_so(dsn: str, tmp_path: Path) -> None:
    """An earlier batch of the store in its pause after a failed mapping (no holder) read "waiting: None is mapping
    batch …". It says the batch failed, why, and when it is tried again; then maps it once the pause ends."""
    from search_service.ingest import pipeline

    store = create_store(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        earlier = pipeline.record_batch(conn, store_id=store, source="csv", kind="csv",
                                        rows=[{"sku": "p1", "name": "Paused", "price": 1, "quantity": 4}])  # fmt: skip
        conn.execute("UPDATE import_batch SET status = 'processing', locked_by = NULL, mapping_failures = 1, "
                     "error = 'RaiseError: the trigger said no', locked_until = now() + interval '10 seconds' "
                     "WHERE id = %s", (earlier,))  # fmt: skip
    file = tmp_path / "later.csv"
    file.write_text("sku,name,price,quantity\np1,Paused,1,9\n")
    out = cli(dsn, "import", "csv", str(file), "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert "None" not in out.stderr
    assert re.search(
        rf"waiting: batch {earlier} of this store failed to map \(1 time\(s\): RaiseError: the trigger said no\) "
        r"and is tried again at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(its batches are mapped in order\)",
        out.stderr,
    ), out.stderr
    assert "1 row, 1 mapped" in out.stdout


def own_batch_held(dsn: str, held: str) -> tuple[UUID, list[str]]:
    """`import csv`'s batch of one row, held as `held` (SQL SET items) says, followed until it is mapped here: its
    id and the lines the command printed meanwhile."""
    import asyncio

    import asyncpg

    from search_service.ingest import imports, pipeline
    from search_service.ingest.config import IngestConfig

    store = create_store(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        batch = pipeline.record_batch(conn, store_id=store, source="csv", kind="csv",
                                      rows=[{"sku": "o1", "name": "Own", "price": 1, "quantity": 4}])  # fmt: skip
        conn.execute(f"UPDATE import_batch SET status = 'processing', {held} WHERE id = %s", (batch,))
    told: list[str] = []

    async def follow() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await imports._follow(conn, dsn, batch, f"cli-import:{batch}", IngestConfig(), lambda _: None, told.append)
        finally:
            await conn.close()

    asyncio.run(follow())
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM import_batch WHERE id = %s", (batch,)).fetchone() == ("completed",)
    return batch, told


def test_import_csv_waiting_on_its_own_batch_says_it_is_this_import(dsn: str) -> None:
    """A worker mapping the batch just uploaded read as another's: `waiting: a worker is mapping batch <id> of this
    store`. Its own batch held by a worker for a second, then mapped here."""
    batch, told = own_batch_held(dsn, "locked_by = 'worker-9', locked_until = now() + interval '1 second'")
    assert told == [f"waiting: a worker is mapping this import (batch {batch}); its progress shows here"]


def test_import_csv_waiting_out_its_own_batchs_pause_after_a_failed_mapping_says_so(dsn: str) -> None:
    """Its own batch's mapping failed (a row the database refused) and waits out the pause before it is tried again:
    it said `waiting: a worker is mapping this import`, while nobody was. It says what failed, when it is tried
    again and which attempt that is, and that Ctrl-C leaves it to the workers; then maps it here once the pause ends."""
    paused = "locked_by = NULL, mapping_failures = 2, locked_until = now() + interval '2 seconds'"
    batch, told = own_batch_held(dsn, f"{paused}, error = 'mapping failed: RaiseError: refused by a test trigger'")
    assert len(told) == 1 and re.fullmatch(
        rf"waiting: batch {batch} of this import: mapping it failed \(RaiseError: refused by a test trigger\); it is "
        r"tried again at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(attempt 3 of 5\); Ctrl-C leaves it to the workers",
        told[0],
    ), told


def test_import_csv_reads_a_file_in_the_charset_given(dsn: str, tmp_path: Path) -> None:
    store = create_store(dsn)
    file = tmp_path / "excel.csv"
    file.write_bytes("sku;name;price;quantity\nK-1;Käse 200 g;2,49;3\n".encode("windows-1252"))
    plain = cli(dsn, "import", "csv", str(file), "--store", str(store))
    assert plain.returncode == 0 and "not valid UTF-8" in plain.stdout, plain.stdout
    # the remedy of this door: it named the upload's Content-Type, which the command line has none of
    assert "import it with its charset (--charset windows-1252)" in plain.stdout and "Content-Type" not in plain.stdout
    out = cli(dsn, "import", "csv", str(file), "--store", str(store), "--charset", "windows-1252")
    assert out.returncode == 0 and "1 row, 1 mapped" in out.stdout, out.stdout + out.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT title FROM store_product WHERE sku = 'K-1'").fetchone() == ("Käse 200 g",)


HOLD_CSV_ROWS = """
CREATE OR REPLACE FUNCTION test_hold_csv_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows r JOIN import_batch b ON b.id = r.import_batch_id
               WHERE b.source = 'csv' AND b.store_id = '{store}') THEN
        PERFORM pg_advisory_xact_lock_shared(4242);  -- waits while the test holds it
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER test_hold_csv_rows AFTER INSERT ON imported_product_raw
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION test_hold_csv_rows();
"""


WAITING = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"


def _import_held(db_url: str, conn: psycopg.Connection, store: UUID, file: Path) -> subprocess.Popen[str]:
    """`import csv` started with the storing of its rows held (the test holds the advisory lock 4242)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "search_service", "import", "csv", str(file), "--store", str(store)],
        env={**os.environ, "DATABASE_URL": db_url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not conn.execute(WAITING).fetchone():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    return proc


def test_import_csv_keeps_its_place_in_the_stores_order_while_its_rows_are_stored(
    base: str, db_url: str, tmp_path: Path
) -> None:
    """`import csv` opened its batch and stored the rows in one transaction: while they were stored the batch was
    invisible, a till's PATCH meanwhile was mapped at once (200), and the file mapped after it set the till's level
    back. The batch is committed first now (leased, as an API upload): the PATCH queues behind it. Ctrl-C while
    storing aborts the batch, and the store's writes are no longer held back."""
    with psycopg.connect(db_url, autocommit=True) as conn, psycopg.connect(db_url, autocommit=True) as holder:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
        url = f"{base}/v1/stores/{store}/listings/C-1"
        assert httpx.put(url, json={"name": "Candle", "price": 1, "quantity": 5}, headers=bearer(key)).is_success
        file = tmp_path / "stock.csv"
        file.write_text("sku,name,price,quantity\nC-1,Candle,1.00,50\n")
        conn.execute(HOLD_CSV_ROWS.format(store=store))
        try:
            holder.execute("SELECT pg_advisory_lock(4242)")
            proc = _import_held(db_url, conn, store, file)
            patched = httpx.patch(url, json={"quantity": 3}, headers=bearer(key), timeout=30)
            holder.execute("SELECT pg_advisory_unlock(4242)")
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert patched.status_code == 202, patched.text  # behind the file, not before it
            drain_imports(db_url)
            assert httpx.get(url, headers=bearer(key)).json()["quantity"] == 3  # the file's 50, then the till's 3
            holder.execute("SELECT pg_advisory_lock(4242)")
            proc = _import_held(db_url, conn, store, file)
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 130 and "nothing imported" in err and "Traceback" not in err, err
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            conn.execute("DROP TRIGGER IF EXISTS test_hold_csv_rows ON imported_product_raw")
        last = conn.execute("SELECT status, error FROM import_batch WHERE store_id = %s ORDER BY seq DESC LIMIT 1",
                            (store,)).fetchone()  # fmt: skip
        assert last is not None and last[0] == "aborted" and "interrupted" in last[1], last
        alone = httpx.patch(url, json={"quantity": 1}, headers=bearer(key))
        assert alone.status_code == 200, alone.text  # the aborted import holds nothing back


def test_import_csv_that_loses_every_connection_while_storing_aborts_its_batch(
    base: str, db_url: str, tmp_path: Path
) -> None:
    """The abort ran on the heartbeat's connection, which a restart takes too: the batch stayed `receiving` and
    held the store's writes back until its lease lapsed (two minutes), though the command said "nothing
    imported". It is aborted on a new connection now."""
    with psycopg.connect(db_url, autocommit=True) as conn, psycopg.connect(db_url, autocommit=True) as holder:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
        file = tmp_path / "stock.csv"
        file.write_text("sku,name,price,quantity\nL-1,Lamp,1.00,5\n")
        conn.execute(HOLD_CSV_ROWS.format(store=store))
        mine = (conn.info.backend_pid, holder.info.backend_pid)
        try:
            holder.execute("SELECT pg_advisory_lock(4242)")
            proc = _import_held(db_url, conn, store, file)
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> ALL(%s) AND backend_type = 'client backend'",
                (list(mine),),
            )
            _out, err = proc.communicate(timeout=60)
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            conn.execute("DROP TRIGGER IF EXISTS test_hold_csv_rows ON imported_product_raw")
        assert proc.returncode == 75 and "nothing imported" in err and "Traceback" not in err, err
        last = conn.execute("SELECT status FROM import_batch WHERE store_id = %s ORDER BY seq DESC LIMIT 1",
                            (store,)).fetchone()  # fmt: skip
        assert last == ("aborted",)
    put = httpx.put(f"{base}/v1/stores/{store}/listings/L-2", json={"name": "x", "price": 1, "quantity": 1},
                    headers=bearer(key))  # fmt: skip
    assert put.status_code == 200, put.text  # mapped at once: nothing holds the store back


def test_float_options_refuse_nan_and_infinities(dsn: str) -> None:
    """click's FloatRange let NaN through (it compares false with both bounds): `worker --lease nan` started."""
    for option, args in (
        ("--poll-interval", ("worker", "--poll-interval", "nan")),
        ("--lease", ("worker", "--lease", "nan")),
        ("--lease", ("worker", "--lease", "inf")),
        ("--lat", ("stores", "create", "--name", "x", "--lat", "nan", "--lon", "1")),
        ("--lon", ("stores", "create", "--name", "x", "--lat", "1", "--lon", "inf")),
    ):
        out = cli(dsn, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert f"Invalid value for '{option}'" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_import_csv_checks_the_store_the_charset_and_the_header_before_its_progress_bar(
    dsn: str, tmp_path: Path
) -> None:
    """ "no store with id …" came after an empty progress bar, and an unknown charset was told to "name its charset"
    (the upload's remedy) after one too."""
    store = create_store(dsn)
    file = tmp_path / "stock.csv"
    file.write_text("sku,name,price,quantity\nA-1,Apfel,1,2\n")
    missing = "00000000-0000-0000-0000-000000000001"
    nowhere = cli(dsn, "import", "csv", str(file), "--store", missing)
    assert nowhere.returncode == 1 and nowhere.stderr == f"error: no store with id {missing}\n", nowhere.stderr
    for charset in ("klingon-8", "hex", "undefined", "utf-7"):  # hex: a codec, but not of text; utf-7 rewrites ASCII
        unknown = cli(dsn, "import", "csv", str(file), "--store", str(store), "--charset", charset)
        assert unknown.returncode == 2, unknown.stderr
        assert f"Invalid value for '--charset': '{charset}' is not a text encoding" in unknown.stderr
        assert "import stock.csv" not in unknown.stderr and "name its charset" not in unknown.stderr
    nosku = tmp_path / "nosku.csv"
    nosku.write_text("name,price\nx,1\n")
    header = cli(dsn, "import", "csv", str(nosku), "--store", str(store))
    assert header.returncode == 1 and header.stderr.startswith("error: the file has no 'sku' or 'quantity' column"), (
        header.stderr
    )
    assert header.stderr.count("\n") == 1, header.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM import_batch").fetchone() == (0,)


def test_hold_settings_refuse_what_is_not_a_number(dsn: str) -> None:
    """The test-only holds were read with a bare float(): `nan` slept forever, `x` was a traceback per job."""
    for name, job in (("PLINQY_INGEST_HOLD_S", "import"), ("PLINQY_WORKER_HOLD_S", "embed")):
        for raw in ("nan", "x", "-1"):
            out = cli(dsn, "worker", "--drain", "--only", job, **{name: raw})
            assert out.returncode != 0 and name in out.stderr and "Traceback" not in out.stderr, (name, raw, out.stderr)


def test_imports_list_prints_a_file_name_with_its_control_characters_escaped(dsn: str, tmp_path: Path) -> None:
    """A file's name was printed raw: its ESC sequences set the operator's terminal title and colours, its tab
    added a column to the tab-separated line."""
    store = create_store(dsn)
    name = "ansi\x1b[31mRED\x1b[0m\x1b]0;title\x07\tcol.csv"
    hostile = tmp_path / name
    hostile.write_text("sku,name,price,quantity\nx1,Thing,1.00,1\n")
    assert cli(dsn, "import", "csv", str(hostile), "--store", str(store)).returncode == 0
    shown = cli(dsn, "imports", "list", "--store", str(store)).stdout
    assert "\x1b" not in shown and "\x07" not in shown
    [line] = shown.splitlines()
    assert "\tfile=ansi\\x1b[31mRED\\x1b[0m\\x1b]0;title\\x07\\tcol.csv\t" in line + "\t", line


def test_imports_list_prints_a_file_name_with_its_bidi_controls_escaped(dsn: str, tmp_path: Path) -> None:
    """A right-to-left override (U+202E) and the other bidi format characters were printed raw: the terminal showed
    `photo<RLO>vsc.exe` as `photoexe.csv`, an executable's name as a CSV's."""
    store = create_store(dsn)
    name = "photo\u202evsc.exe\u200e\u200f\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069.csv"
    (tmp_path / name).write_text("sku,name,price,quantity\nx1,Thing,1.00,1\n")
    assert cli(dsn, "import", "csv", str(tmp_path / name), "--store", str(store)).returncode == 0
    [line] = cli(dsn, "imports", "list", "--store", str(store)).stdout.splitlines()
    assert not any("\u200e" <= char <= "\u206f" for char in line), ascii(line)
    escaped = "\\u202e" + "vsc.exe" + "".join(f"\\u{code:04x}" for code in (0x200E, 0x200F, *range(0x202A, 0x202E),
                                                                          *range(0x2066, 0x206A)))  # fmt: skip
    assert f"\tfile=photo{escaped}.csv\t" in line + "\t", line


def test_every_bidi_control_is_escaped() -> None:
    # Unicode's Bidi_Control characters (PropList.txt); the Arabic letter mark U+061C was printed raw
    bidi_controls = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    for code in bidi_controls:
        assert escape_control_chars(f"a{chr(code)}b") == f"a\\u{code:04x}b", hex(code)


def test_the_cli_prints_only_through_its_escaping_echo() -> None:
    """Each command printed with click.echo, so a value from outside was escaped nowhere: common.echo is the one."""
    for module in sorted((PROJECT_ROOT / "search_service" / "cli").glob("*.py")):
        text = module.read_text()
        printing = text.count("click.echo(") + text.count("click.secho(") + text.count("print(")
        assert printing == (1 if module.name == "common.py" else 0), module.name


def _import_named(dsn: str, tmp_path: Path, name: bytes) -> tuple[UUID, subprocess.CompletedProcess[str]]:
    """`import csv` of a one-row file named by these bytes (any but / and NUL), its output read as UTF-8."""
    store = create_store(dsn)
    path = os.fsencode(tmp_path) + b"/" + name
    with open(path, "wb") as file:
        file.write(b"sku,name,price,quantity\nx1,Thing,1.00,1\n")
    out, _ = cli_on_a_terminal(dsn, "import", "csv", path, "--store", str(store))  # the bar shows the name
    return store, out


def test_import_csv_shows_a_file_name_in_its_progress_bar_with_its_control_characters_escaped(
    dsn: str, tmp_path: Path
) -> None:
    """The progress bar's description was the raw name: its OSC sequence set the terminal's title, its colour,
    tab, newline and C1 CSI reached the terminal (every other line goes through the escaping echo)."""
    _, out = _import_named(dsn, tmp_path, b"cat2\x1b]0;PWNED\x07\x1b[31mred\tcol\nline\xc2\x9b2J.csv")
    assert out.returncode == 0, out.stderr
    for raw in ("\x1b", "\x07", "\x9b", "red\tcol", "col\nline"):
        assert raw not in out.stderr, (raw, out.stderr)
    assert "import cat2\\x1b]0;PWNED\\x07\\x1b[31mred\\tcol\\nline\\x9b2J.csv" in out.stderr, out.stderr


def test_import_csv_of_a_file_whose_name_is_not_utf8_stores_it_with_the_bytes_replaced(
    dsn: str, tmp_path: Path
) -> None:
    """A name with a byte that is not UTF-8 reached the database as a surrogate: a traceback, exit 1, no batch."""
    store, out = _import_named(dsn, tmp_path, b"a\x9b.csv")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "1 row, 1 mapped" in out.stdout, out.stdout
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT file_name FROM import_batch WHERE store_id = %s", (store,)).fetchall()
    assert stored == [("a\ufffd.csv",)]


def test_import_csv_of_a_file_over_the_limit_names_the_setting_that_raises_it(dsn: str, tmp_path: Path) -> None:
    """It said "… is larger than 104857600 bytes" alone: the limit is PLINQY_INGEST_MAX_UPLOAD_BYTES, which the
    docs present as the HTTP upload's, so a CLI user could not know how to import a 120 MB catalogue."""
    store = create_store(dsn)
    file = tmp_path / "big.csv"
    file.write_text("sku,name,price,quantity\n" + "".join(f"B{i},Thing,1,1\n" for i in range(200)))
    out = cli(dsn, "import", "csv", str(file), "--store", str(store), PLINQY_INGEST_MAX_UPLOAD_BYTES="1024")
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"error: {file} is larger than 1024 bytes"), out.stderr
    assert "split the file" in out.stderr and "PLINQY_INGEST_MAX_UPLOAD_BYTES" in out.stderr
