"""The import job in real processes: a SIGKILL mid-batch loses nothing, SIGTERM exits 0 and gives the batch back."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from benchmarks.run import Server, child_pids
from search_service.ingest import pipeline
from tests.ingest_helpers import new_store, store_key

pytestmark = pytest.mark.slow
ROWS = 1000


def spawn(dsn: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search_service", "worker", "--only", "import", "--poll-interval", "0.2", *args],
        env={**os.environ, "DATABASE_URL": dsn, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def batch_state(conn: psycopg.Connection, batch: uuid.UUID) -> tuple[str, int, int, str | None]:
    row = conn.execute(
        "SELECT status, processed_rows, mapped_rows, locked_by FROM import_batch WHERE id = %s", (batch,)
    ).fetchone()
    assert row is not None
    return row  # type: ignore[return-value]


def wait_for_processed(conn: psycopg.Connection, batch: uuid.UUID, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while batch_state(conn, batch)[1] < at_least:
        assert time.monotonic() < deadline, batch_state(conn, batch)
        time.sleep(0.1)


def seed_batch(conn: psycopg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    store = new_store(conn)
    rows = [{"sku": f"k{i}", "name": f"Item {i}", "price": "1.00", "quantity": i % 7} for i in range(ROWS)]
    return store, pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=rows)


HOLDING = {"PLINQY_INGEST_CHUNK_ROWS": "100", "PLINQY_INGEST_HOLD_S": "60", "PLINQY_INGEST_LEASE_S": "2"}


def test_sigkill_mid_batch_loses_nothing(db: psycopg.Connection, fresh_db_url: str) -> None:
    store, batch = seed_batch(db)
    doomed = spawn(fresh_db_url, **HOLDING)
    wait_for_processed(db, batch, 100)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    time.sleep(2.5)  # the lease lapses; the killed worker's child died with it and wrote nothing more
    status, processed, mapped, _ = batch_state(db, batch)
    assert (status, processed, mapped) == ("processing", 100, 100)
    rescuer = spawn(fresh_db_url, "--drain")
    _out, err = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, err[-2000:]
    assert batch_state(db, batch)[:3] == ("completed", ROWS, ROWS)
    assert db.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (ROWS,)
    statuses = dict(db.execute("SELECT status, count(*) FROM imported_product_raw GROUP BY status").fetchall())
    assert statuses == {"mapped": ROWS}
    listed = db.execute("SELECT count(*) FROM inventory_event WHERE reason = 'listed'").fetchone()
    assert listed == (ROWS,)  # every row applied exactly once


def test_a_drain_waits_out_a_killed_workers_lease_and_finishes_its_batch(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`worker --drain` run while a SIGKILLed worker's lease still ran exited 0 in seconds, silent, the batch left
    `processing` with its rows pending: the drain counted only the batches nobody held."""
    _store, batch = seed_batch(db)
    doomed = spawn(fresh_db_url, **{**HOLDING, "PLINQY_INGEST_LEASE_S": "5"})
    wait_for_processed(db, batch, 100)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    held_by = batch_state(db, batch)[3]
    assert held_by is not None and held_by.startswith("import:")
    rescuer = spawn(fresh_db_url, "--drain")
    _out, err = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, err[-2000:]
    assert batch_state(db, batch)[:3] == ("completed", ROWS, ROWS)
    assert f'"event": "waiting", "batch": "{batch}", "held_by": "{held_by}", "until": ' in err, err[-2000:]


def test_sigterm_exits_zero_and_releases_the_batch(db: psycopg.Connection, fresh_db_url: str) -> None:
    _store, batch = seed_batch(db)
    proc = spawn(fresh_db_url, **HOLDING)
    wait_for_processed(db, batch, 100)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 10
    status, processed, _mapped, locked_by = batch_state(db, batch)
    # queued again, its chunk kept: it read `processing` with no worker and no lease, the API's …/errors "retry in
    # 2 s" for as long as no worker ran
    assert status == "pending" and locked_by is None and processed == 100
    # said as given back, not as a batch done (its line read as a completed one, counted in the stop's summary)
    assert '"event": "batch_released"' in err and '"event": "batch",' not in err, err[-2000:]
    assert '"status": "pending"' in err, err[-2000:]
    drain = spawn(fresh_db_url, "--drain")
    assert drain.wait(timeout=120) == 0
    assert batch_state(db, batch)[:3] == ("completed", ROWS, ROWS)


def test_one_stores_big_batch_holds_up_no_other_stores_small_batches(db: psycopg.Connection, fresh_db_url: str) -> None:
    """One worker mapped one batch at a time: a store's 1M-row import held every other store's CSV and delivery
    `pending` for minutes. Of its claim loops (PLINQY_INGEST_CONCURRENCY, 2) one stays free for small batches: the
    big batch held mid-way, other stores' small ones are mapped within seconds, and a second big one waits."""
    _store, big = seed_batch(db)
    _other, second_big = seed_batch(db)
    proc = spawn(fresh_db_url, **{**HOLDING, "PLINQY_INGEST_LEASE_S": "60"})
    try:
        wait_for_processed(db, big, 100)  # its first chunk mapped, then held for 60 s
        item = {"name": "Small one", "price": "1.00", "quantity": 5}
        csv = pipeline.record_batch(db, store_id=new_store(db), source="csv", kind="csv",
                                    rows=[{"sku": "E1", **item}, {"sku": "E2", **item}])  # fmt: skip
        delivery = pipeline.record_batch(db, store_id=new_store(db), source="webhook", kind="webhook",
                                         rows=[{"sku": "D1", **item}])  # fmt: skip
        deadline = time.monotonic() + 3
        while {batch_state(db, b)[:2] for b in (csv, delivery)} != {("completed", 2), ("completed", 1)}:
            assert time.monotonic() < deadline, [batch_state(db, b) for b in (csv, delivery)]
            time.sleep(0.05)
        assert batch_state(db, big)[:2] == ("processing", 100)
        assert batch_state(db, second_big)[:2] == ("pending", 0)  # the free loop takes no big batch
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert batch_state(db, big)[0] == "pending" and batch_state(db, big)[3] is None  # given back on the stop
    assert re.search(r'"event": "stopped", "workers": \["import:[^"]+", "import:[^"]+"\], "batches": 2,', err), err


def test_an_upload_whose_api_was_killed_while_receiving_it_is_aborted_by_the_import_job(
    db: psycopg.Connection, fresh_db_url: str, tmp_path: Path
) -> None:
    """SIGKILL the API (real processes) while it receives a CSV upload: its batch stays `receiving`, nothing of it
    stored. The import job aborts it once older than PLINQY_INGEST_UPLOAD_TIMEOUT_S, saying why; a newer upload
    that may still be arriving is left alone."""
    store = new_store(db)
    key = store_key(db, store, "listings:write")
    server = Server(fresh_db_url, 0, tmp_path / "api.log")
    try:
        server.wait_ready()
        host, port = "127.0.0.1", server.port
        head = (
            f"POST /v1/stores/{store}/imports HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\nsku,name,price,quantity\nk1,Kale,1,1\n"
        )
        with socket.create_connection((host, port)) as sock:
            sock.sendall(head.encode())
            deadline = time.monotonic() + 30
            while db.execute("SELECT count(*) FROM import_batch WHERE store_id = %s", (store,)).fetchone() != (1,):
                assert time.monotonic() < deadline, "the upload never opened its batch"
                time.sleep(0.05)
            for pid in [*child_pids(server.proc.pid), server.proc.pid]:
                os.kill(pid, signal.SIGKILL)
    finally:
        server.proc.wait(timeout=30)
    stuck = db.execute("SELECT id, status FROM import_batch WHERE store_id = %s", (store,)).fetchone()
    assert stuck is not None and stuck[1] == "receiving"
    fresh = pipeline.record_batch(db, store_id=new_store(db), source="csv", kind="csv", rows=[])
    db.execute("UPDATE import_batch SET status = 'receiving' WHERE id = %s", (fresh,))
    db.execute("UPDATE import_batch SET created_at = now() - interval '2 hours' WHERE id = %s", (stuck[0],))
    drain = spawn(fresh_db_url, "--drain", PLINQY_INGEST_UPLOAD_TIMEOUT_S="3600")
    _out, err = drain.communicate(timeout=120)
    assert drain.returncode == 0, err[-2000:]
    row = db.execute("SELECT status, error FROM import_batch WHERE id = %s", (stuck[0],)).fetchone()
    assert row is not None and row[0] == "aborted" and "never arrived whole" in row[1]
    assert "upload_aborted" in err
    assert db.execute("SELECT status FROM import_batch WHERE id = %s", (fresh,)).fetchone() == ("receiving",)
    count = "SELECT count(*) FROM imported_product_raw WHERE import_batch_id = %s"
    assert db.execute(count, (stuck[0],)).fetchone() == (0,)


def test_a_drain_aborts_an_upload_whose_lease_lapsed_while_it_waited(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A killed `import csv` left its upload `receiving` under a lease: the drain waited it out, mapped the store's
    later batch, and ended with the dead upload still `receiving` (the sweep ran at its start only), its reason,
    once aborted, blaming 'the server receiving it'."""
    store = new_store(db)
    dead = pipeline.record_batch(db, store_id=store, source="csv", kind="csv", rows=[])
    db.execute(
        "UPDATE import_batch SET status = 'receiving', locked_by = %s, locked_until = now() + interval '3 seconds' "
        "WHERE id = %s",
        (f"cli-import:{dead}", dead),
    )
    later = pipeline.record_batch(db, store_id=store, source="api", kind="listing", rows=[{"sku": "L1", "name": "Leek",
                                  "price": "1", "quantity": 2}])  # fmt: skip
    drain = spawn(fresh_db_url, "--drain", PLINQY_INGEST_UPLOAD_TIMEOUT_S="3600")
    _out, err = drain.communicate(timeout=120)
    assert drain.returncode == 0, err[-2000:]
    assert batch_state(db, later)[0] == "completed"
    row = db.execute("SELECT status, error FROM import_batch WHERE id = %s", (dead,)).fetchone()
    reason = "the upload never arrived whole (the import csv command storing it stopped); send it again"
    assert row == ("aborted", reason)


def test_a_job_that_crashed_is_restarted_after_a_pause(fresh_db_url: str) -> None:
    """The supervisor put the restart off at every pass (and logged it ~5 times a second): a job that crashed, as
    one does when its database connection is cut, stayed dead while the worker looked healthy."""
    proc = spawn(fresh_db_url)
    try:
        deadline = time.monotonic() + 60
        while not (first := child_pids(proc.pid)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 15  # the first pause is 1 s
        while not (again := [pid for pid in child_pids(proc.pid) if pid not in first]):
            assert time.monotonic() < deadline, "the crashed job was not restarted"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert again and proc.returncode == 0, err[-2000:]
    ended = '{"event": "job_ended", "job": "import", "how": "killed by signal SIGKILL", "restart_in_s": 1}'
    assert err.count(ended) == 1  # it said "code -9", then was a line of plain text among the JSON ones


def test_a_batch_whose_mapping_raises_is_recorded_and_given_up_not_crashing_the_job(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A row the database refuses (a trigger raises here) crashed the import job at every claim, and no later
    batch of any store behind it was mapped; now it is recorded, tried again after a pause, failed at the last try."""
    db.execute("""
        CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.sku = 'POISON' THEN RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER trg_poison BEFORE INSERT ON store_product FOR EACH ROW EXECUTE FUNCTION poison();
    """)
    poisoned_store, healthy_store = new_store(db), new_store(db)
    row = {"name": "Thing", "price": "1.00", "quantity": 1}
    poisoned = pipeline.record_batch(db, store_id=poisoned_store, source="csv", kind="csv", rows=[
        {"sku": "fine", **row}, {"sku": "POISON", **row}])  # fmt: skip
    healthy = pipeline.record_batch(db, store_id=healthy_store, source="csv", kind="csv", rows=[{"sku": "a", **row}])
    drain = spawn(fresh_db_url, "--drain")
    _out, err = drain.communicate(timeout=120)
    assert drain.returncode == 0, err[-2000:]
    assert batch_state(db, healthy)[0] == "completed"
    state = db.execute(
        "SELECT status, attempts, error, locked_by, locked_until > now() FROM import_batch WHERE id = %s", (poisoned,)
    ).fetchone()
    assert state is not None and state[0] == "processing" and state[1] == 1 and state[3] is None and state[4]
    assert state[2].startswith("mapping failed: RaiseError: refused by a test trigger")
    # Claims taken over from killed workers are no failures: 20 claims, one failure, one more try (it was failed).
    db.execute("UPDATE import_batch SET attempts = 20, locked_until = NULL WHERE id = %s", (poisoned,))
    assert spawn(fresh_db_url, "--drain").wait(timeout=120) == 0
    again = db.execute("SELECT status, mapping_failures, error FROM import_batch WHERE id = %s", (poisoned,)).fetchone()
    assert again is not None and again[:2] == ("processing", 2) and again[2].startswith("mapping failed: ")
    db.execute(
        "UPDATE import_batch SET mapping_failures = %s, locked_until = NULL WHERE id = %s",
        (pipeline.MAX_MAPPING_ATTEMPTS - 1, poisoned),
    )
    last = spawn(fresh_db_url, "--drain")
    assert last.wait(timeout=120) == 0
    status, error = db.execute("SELECT status, error FROM import_batch WHERE id = %s", (poisoned,)).fetchone()
    assert status == "failed" and error.startswith(
        f"mapping failed {pipeline.MAX_MAPPING_ATTEMPTS} times, now given up"
    )
    assert db.execute(
        "SELECT count(*) FROM imported_product_raw WHERE import_batch_id = %s", (poisoned,)
    ).fetchone() == (2,)  # its rows stay stored


def test_a_terminated_connection_is_reopened_and_the_batch_resumed_within_seconds(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """pg_terminate_backend mid-batch: the job exited and was restarted under a new worker id, which waited out its
    predecessor's 60 s lease (the store's later writes queued meanwhile). Now it reconnects, releases what it held
    and carries on at once, in the same process."""
    store, batch = seed_batch(db)
    proc = spawn(fresh_db_url, PLINQY_INGEST_CHUNK_ROWS="100", PLINQY_INGEST_HOLD_S="0.3", PLINQY_INGEST_LEASE_S="60")
    try:
        wait_for_processed(db, batch, 200)
        terminated = db.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        assert terminated is not None and terminated[0] >= 2  # the job's connection and its listener at least
        cut = time.monotonic()
        deadline = cut + 20  # the chunks left take ~3 s; the lease is 60 s
        while batch_state(db, batch)[0] != "completed":
            assert time.monotonic() < deadline and proc.poll() is None, batch_state(db, batch)
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert '"event": "db_lost"' in err and "job import exited" not in err, err[-2000:]
    assert batch_state(db, batch)[:3] == ("completed", ROWS, ROWS)
    # its log counted only the rows mapped after the loss, and named asyncpg's state, not the connection's end
    said = {event: int(mapped) for event, mapped in re.findall(r'"event": "(batch|stopped)".*?"mapped": (\d+)', err)}
    assert said == {"batch": ROWS, "stopped": ROWS} and "cannot switch to state" not in err, err[-2000:]
    listed = db.execute("SELECT count(*) FROM inventory_event WHERE reason = 'listed'").fetchone()
    assert listed == (ROWS,)  # every row applied exactly once
    assert db.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (ROWS,)


def _stop_inside_a_chunk(db: psycopg.Connection, worker: subprocess.Popen[str]) -> int:
    """SIGSTOP the worker's job process while its connection is inside a chunk's transaction; its pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = child_pids(worker.pid)
        in_chunk = db.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'import:%%'"
            " AND xact_start IS NOT NULL"
        ).fetchone()
        if children and in_chunk:
            os.kill(children[0], signal.SIGSTOP)
            time.sleep(0.5)
            stuck = db.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE 'import:%%' AND state = 'idle in transaction'"
            ).fetchone()
            if stuck:
                return children[0]
            os.kill(children[0], signal.SIGCONT)  # stopped between chunks: try again
        time.sleep(0.005)
    raise AssertionError("never caught the worker inside a chunk")


def test_a_worker_frozen_inside_a_chunk_is_taken_over(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A worker frozen mid-chunk (SIGSTOP; a paused VM, a partition) left its transaction open, holding the store's
    lock: the next worker claimed the batch once the lease lapsed and then waited on that lock for ever, and every
    later write of the store with it. The server now ends such a transaction past the lease (10 s at the least)."""
    store, batch = seed_batch(db)
    frozen = spawn(fresh_db_url, PLINQY_INGEST_CHUNK_ROWS="20", PLINQY_INGEST_LEASE_S="2", PLINQY_INGEST_LANES="1")
    stopped, rescuer = _stop_inside_a_chunk(db, frozen), None
    try:
        time.sleep(2.5)  # the lease lapses
        rescuer = spawn(fresh_db_url, "--drain", PLINQY_INGEST_LEASE_S="2")
        _out, err = rescuer.communicate(timeout=90)
        assert rescuer.returncode == 0, err[-2000:]
        assert batch_state(db, batch)[:3] == ("completed", ROWS, ROWS)
        assert db.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone() == (ROWS,)
        listed = db.execute("SELECT count(*) FROM inventory_event WHERE reason = 'listed'").fetchone()
        assert listed == (ROWS,)  # the frozen chunk rolled back: every row applied exactly once
    finally:
        os.kill(stopped, signal.SIGCONT)
        for proc in (frozen, rescuer):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=10)


def test_a_connection_ended_on_an_idle_socket_is_logged_as_such(caplog: pytest.LogCaptureFixture) -> None:
    """asyncpg's reading of the server's FATAL on an idle connection was logged as the cause: `InternalClientError:
    cannot switch to state 15; another operation (2) is in progress`."""
    import asyncpg

    from search_service.db.faults import Outage

    with caplog.at_level(logging.WARNING, logger="plinqy.test"):
        Outage(logging.getLogger("plinqy.test"), worker="w").lost(
            asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
        )
    assert '"error": "the server ended the connection (pg_terminate_backend, a restart or a shutdown)"' in caplog.text
