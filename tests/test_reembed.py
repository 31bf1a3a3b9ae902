"""`plinqy-search reembed`: bulk, resumable after Ctrl-C, idempotent, refuses a model of the wrong dimension."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from embeddings.encoder import DEFAULT_CACHE_DIR, EncoderConfig, load_encoder
from embeddings.reembed import ReembedError, check_dimension, database_identity, reembed
from embeddings.text import text_hash
from embeddings.worker import product_text


def seed(conn: psycopg.Connection, n: int) -> None:
    cat = conn.execute("INSERT INTO category (name) VALUES ('Pets') RETURNING id").fetchone()[0]
    conn.execute(
        "INSERT INTO product_master (name, brand, category_id) "
        "SELECT 'Dog food adult chicken ' || i || ' kg', 'Happy Paws', %s FROM generate_series(1, %s) i",
        (cat, n),
    )


# The CLI as a user's terminal starts it: with Ctrl-C raising KeyboardInterrupt. A test run started in the
# background of a non-interactive shell (`make test &`, some CI runners) ignores SIGINT, and a child
# inherits that, so the signal this test sends would be ignored.
_CLI_WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'plinqy-search'; runpy.run_module('search_service', run_name='__main__', alter_sys=True)"
)


class OnATerminal:
    """The command with stderr on a terminal (a pty of 160 columns), where its progress bar is drawn (on a pipe:
    none); `communicate` answers what it wrote there."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=follower, text=True)
        os.close(follower)
        self._drawn: list[bytes] = []
        self._reader = threading.Thread(target=self._read, args=(leader,), daemon=True)
        self._reader.start()

    def _read(self, leader: int) -> None:
        with contextlib.suppress(OSError):  # EIO once the command has closed the terminal
            while chunk := os.read(leader, 65536):
                self._drawn.append(chunk)
        os.close(leader)

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        self._reader.join(timeout)
        return out, b"".join(self._drawn).decode("utf-8", "replace")


def run_cli(dsn: str, *args: str, cache: Path) -> OnATerminal:
    env = {**os.environ, "DATABASE_URL": dsn, "PLINQY_CACHE_DIR": str(cache)}
    return OnATerminal([sys.executable, "-c", _CLI_WITH_CTRL_C, "reembed", *args], env)


def model_cache(tmp_path: Path) -> Path:
    """A cache folder for the subprocess that reuses the suite's ONNX export instead of exporting again."""
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    for item in DEFAULT_CACHE_DIR.iterdir():
        (cache / "models" / item.name).symlink_to(item)
    return cache


def embedded(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone()[0])


def test_interrupted_all_resumes_and_a_second_run_writes_nothing(fresh_db_url: str, tmp_path: Path) -> None:
    cache = model_cache(tmp_path)
    n = 400
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, n)
        started = conn.execute("SELECT now()").fetchone()[0]
        proc = run_cli(fresh_db_url, "--all", "--batch-size", "20", cache=cache)
        deadline = time.monotonic() + 120
        while embedded(conn) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        done_first = embedded(conn)
        assert proc.returncode == 130, err[-1500:]
        assert "run the same command again to resume" in err and "Traceback" not in err
        assert 40 <= done_first < n
        # the bar's last word counts the batch whose write finished on the way out (it said a batch fewer)
        assert re.findall(r"written=(\d+)", err)[-1] == str(done_first), err[-1500:]
        first_times = dict(conn.execute("SELECT id, ai_embedded_at FROM product_master WHERE ai_vector IS NOT NULL"))

        resumed = run_cli(fresh_db_url, "--all", "--batch-size", "50", cache=cache)
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err[-1500:]
        assert f"wrote {n - done_first}" in out  # finished work was not redone
        again = dict(conn.execute("SELECT id, ai_embedded_at FROM product_master"))
        assert all(again[pid] == at for pid, at in first_times.items())
        assert all(at is not None and at >= started for at in again.values())

        encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
        for mode in ("missing", "stale"):
            report = reembed(fresh_db_url, encoder, mode=mode, cache_dir=cache, progress=False)  # type: ignore[arg-type]
            assert report.written == 0, mode
        rows = conn.execute("SELECT p.id, p.ai_text_hash, p.ai_model FROM product_master p").fetchall()
        assert {r[2] for r in rows} == {encoder.model_id}


def test_an_interrupted_restart_says_to_resume_without_restart(fresh_db_url: str, tmp_path: Path) -> None:
    """`--all --restart` stopped by Ctrl-C said "run the same command again to resume": that command starts over."""
    cache = model_cache(tmp_path)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 200)
        proc = run_cli(fresh_db_url, "--all", "--restart", "--batch-size", "20", cache=cache)
        deadline = time.monotonic() + 120
        while embedded(conn) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-1500:]
        assert "finished batches are saved; run it again without --restart to resume" in err, err[-1500:]
        resumed = run_cli(fresh_db_url, "--all", "--batch-size", "50", cache=cache)
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0 and "resumed the run started at" in out, (out, err[-1500:])


@pytest.mark.parametrize(
    ("options", "again"),
    [((), "run the same command again"), (("--restart",), "run it again without --restart")],
    ids=["all", "restart"],
)
def test_a_connection_lost_mid_run_says_so_and_a_rerun_resumes(
    fresh_db_url: str, tmp_path: Path, options: tuple[str, ...], again: str
) -> None:
    """Its connections terminated mid-run (a restart, a failover) said "cannot reach the database (…): check
    DATABASE_URL (its host, port and database name)", of a URL that had worked: now that the connection was lost,
    the finished batches are kept and the same command resumes. `--restart` said "run the same command again"
    too, which starts over: it says to run it again without --restart, as its Ctrl-C does."""
    cache = model_cache(tmp_path)
    n, ours = 400, "datname = current_database() AND application_name LIKE 'plinqy-reembed%'"
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, n)
        proc = run_cli(fresh_db_url, "--all", *options, "--batch-size", "20", cache=cache)
        deadline = time.monotonic() + 120
        while embedded(conn) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {ours}")
        _out, err = proc.communicate(timeout=60)
        done_first = embedded(conn)
    assert proc.returncode == 1, err[-1500:]
    said = re.findall(r"error: [^\r\n]*", err)
    assert said == [
        "error: lost the database connection mid-run (terminating connection due to administrator command): "
        f"the batches it finished are saved; {again} to resume"
    ], err[-1500:]
    assert "DATABASE_URL" not in err and "Traceback" not in err and 40 <= done_first < n
    resumed = run_cli(fresh_db_url, "--all", "--batch-size", "50", cache=cache)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "resuming the run started at" in err, err[-1500:]
    assert f"wrote {n - done_first}" in out


def test_the_bar_of_a_limited_run_counts_the_products_read_not_whole_batches(fresh_db_url: str, tmp_path: Path) -> None:
    """`--limit 30 --batch-size 20` showed 40/30 on its bar (the whole second batch) while it wrote 30."""
    cache = model_cache(tmp_path)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 50)
    proc = run_cli(fresh_db_url, "--missing", "--limit", "30", "--batch-size", "20", cache=cache)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-1500:]
    assert "wrote 30" in out
    shown = re.findall(r"(\d+)/30 ", err)
    assert shown and max(int(n) for n in shown) == 30, err[-1500:]
    assert re.findall(r"written=(\d+)", err)[-1] == "30", err[-1500:]
    assert " products/s" in err and not re.search(r"[\d?]products?\b", err), err[-1500:]  # "25.3product/s"


def test_stale_reembeds_changed_text_and_other_models(fresh_db_url: str, tmp_path: Path) -> None:
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 30)
        assert reembed(fresh_db_url, encoder, mode="missing", cache_dir=tmp_path, progress=False).written == 30
        conn.execute("UPDATE product_master SET brand = 'Wolfsblut' WHERE name LIKE '%% 1 kg'")
        conn.execute("UPDATE product_master SET ai_model = 'some-older-model@0' WHERE name LIKE '%% 2 kg'")
        report = reembed(fresh_db_url, encoder, mode="stale", cache_dir=tmp_path, progress=False)
        assert (report.scanned, report.written) == (30, 2)
        from embeddings import queue

        products = queue.load_products(conn, [r[0] for r in conn.execute("SELECT id FROM product_master")])
        for product in products.values():
            assert product["ai_text_hash"] == text_hash(product_text(product))


def test_limit_and_via_queue(fresh_db_url: str, tmp_path: Path) -> None:
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 25)
        conn.execute("UPDATE ai_task SET status = 'done'")
        report = reembed(fresh_db_url, encoder, mode="missing", limit=10, cache_dir=tmp_path, progress=False)
        assert (report.scanned, report.written) == (10, 10)
        # One of the 15 still-missing products already has a pending task: it keeps it, and is not counted.
        conn.execute(
            "INSERT INTO ai_task (product_master_id) SELECT id FROM product_master WHERE ai_vector IS NULL LIMIT 1"
        )
        with psycopg.connect(fresh_db_url, autocommit=True) as listener:
            listener.execute("LISTEN ai_task")
            queued = reembed(fresh_db_url, encoder, mode="missing", via_queue=True, cache_dir=tmp_path, progress=False)
            assert list(listener.notifies(timeout=5, stop_after=1))  # idle workers are woken
        assert queued.enqueued == 14 and queued.written == 0
        pending = conn.execute(
            "SELECT count(*), count(DISTINCT product_master_id), min(priority) FROM ai_task WHERE status = 'pending'"
        ).fetchone()
        assert pending == (15, 15, -1)
        again = reembed(fresh_db_url, encoder, mode="missing", via_queue=True, cache_dir=tmp_path, progress=False)
        assert again.enqueued == 0  # ON CONFLICT DO NOTHING: one pending task per product


def test_an_edit_during_a_queued_reembed_is_claimed_before_the_backlog(fresh_db_url: str, tmp_path: Path) -> None:
    """An edited product kept its pending `--via-queue` task at priority -1 (the trigger's ON CONFLICT DO NOTHING):
    new products went first and the edit waited behind the whole backlog, searched by its old text meanwhile."""
    from embeddings import queue

    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 30)
        tools = conn.execute("INSERT INTO category (name) VALUES ('Tools') RETURNING id").fetchone()[0]
        moved = conn.execute(
            "INSERT INTO product_master (name, category_id) VALUES ('Claw hammer', %s) RETURNING id", (tools,)
        ).fetchone()[0]
        urgent = conn.execute("INSERT INTO product_master (name) VALUES ('Urgent kibble') RETURNING id").fetchone()[0]
        conn.execute("UPDATE ai_task SET status = 'done'")
        queued = reembed(fresh_db_url, encoder, mode="missing", via_queue=True, cache_dir=tmp_path, progress=False)
        assert queued.enqueued == 32
        conn.execute("UPDATE ai_task SET priority = 5 WHERE product_master_id = %s", (urgent,))
        edited = conn.execute(  # one of the seeded products (random ids: OFFSET 7 alone was the hammer at times)
            "SELECT id FROM product_master WHERE id <> ALL(%s) ORDER BY id DESC LIMIT 1 OFFSET 7", ([moved, urgent],)
        ).fetchone()[0]
        conn.execute("UPDATE product_master SET name = 'Dog food puppy lamb' WHERE id = %s", (edited,))
        conn.execute("UPDATE category SET name = 'Hand tools' WHERE id = %s", (tools,))  # its products' text
        conn.execute("UPDATE product_master SET name = 'Urgent kibble 2' WHERE id = %s", (urgent,))
        added = conn.execute("INSERT INTO product_master (name) VALUES ('Cat litter') RETURNING id").fetchone()[0]
        claimed = queue.claim(conn, "w1", 4, 30)
        assert {t.product_id for t in claimed} == {urgent, edited, moved, added}  # before the 29 left at -1
        priorities = conn.execute(
            "SELECT product_master_id, priority FROM ai_task WHERE product_master_id = ANY(%s)",
            ([urgent, edited, moved, added],),
        ).fetchall()
        assert dict(priorities) == {urgent: 5, edited: 0, moved: 0, added: 0}  # raised, never lowered
        assert conn.execute("SELECT count(*) FROM ai_task WHERE status = 'pending'").fetchone() == (29,)


def test_a_limited_stale_run_goes_on_where_the_last_one_stopped(fresh_db_url: str, tmp_path: Path) -> None:
    """--limit counts the products re-embedded: counting those read, `--stale --limit 2` read the same first two
    (current) products at every run and never reached the stale ones past them."""
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 12)
        assert reembed(fresh_db_url, encoder, mode="missing", cache_dir=tmp_path, progress=False).written == 12
        last = [r[0] for r in conn.execute("SELECT id FROM product_master ORDER BY id DESC LIMIT 3")]
        conn.execute("UPDATE product_master SET ai_model = 'some-older-model@0' WHERE id = ANY(%s)", (last,))
        runs = [
            reembed(fresh_db_url, encoder, mode="stale", limit=2, batch_size=4, cache_dir=tmp_path, progress=False)
            for _ in range(3)
        ]
        assert [r.written for r in runs] == [2, 1, 0] and runs[0].scanned > 2
        models = conn.execute("SELECT count(*) FROM product_master WHERE ai_model = %s", (encoder.model_id,))
        assert models.fetchone() == (12,)


class RacedEncoder:
    """The real encoder, with another connection writing `statement` to the products while a batch is encoded
    (between the re-embedding's read of the batch and its write)."""

    def __init__(self, url: str, statement: str, params: tuple[object, ...] = ()) -> None:
        self.encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
        self.dim, self.model_id = self.encoder.dim, self.encoder.model_id
        self.has_known_token = self.encoder.has_known_token
        self.url, self.statement, self.params = url, statement, params

    def encode(self, texts: list[str]) -> np.ndarray:
        with psycopg.connect(self.url, autocommit=True) as other:
            register_vector(other)
            other.execute(self.statement, self.params)
        return self.encoder.encode(texts)


def _reembed_raced(url: str, tmp_path: Path, statement: str, params: tuple[object, ...] = ()) -> tuple[object, ...]:
    """Re-embed 5 products while `statement` changes the one named '… 3 kg'; returns that product's row (ai_vector
    IS NULL, ai_model) after checking the other four were written."""
    with psycopg.connect(url, autocommit=True) as conn:
        seed(conn, 5)
        raced = RacedEncoder(url, statement, params)
        report = reembed(url, raced, mode="missing", cache_dir=tmp_path, progress=False)  # type: ignore[arg-type]
        assert (report.scanned, report.written) == (5, 4)
        row = conn.execute("SELECT ai_vector IS NULL, ai_model FROM product_master WHERE name LIKE '%% 3 kg'")
        return tuple(row.fetchone() or ())


def test_a_product_edited_while_embedding_is_left_to_its_task(fresh_db_url: str, tmp_path: Path) -> None:
    edit = "UPDATE product_master SET brand = 'Edited' WHERE name LIKE '%% 3 kg'"
    # not the old text's vector: the edit's pending task embeds the new text
    assert _reembed_raced(fresh_db_url, tmp_path, edit) == (True, None)


def test_a_product_embedded_by_a_worker_meanwhile_keeps_that_vector(fresh_db_url: str, tmp_path: Path) -> None:
    """A vector's write leaves updated_at (migration 0022): the guard compares ai_embedded_at too."""
    worker_vector = np.zeros(384, dtype=np.float32)
    worker_vector[0] = 1.0
    write = (
        "UPDATE product_master SET ai_vector = %s, ai_model = 'worker', ai_embedded_at = now() "
        "WHERE name LIKE '%% 3 kg'"
    )
    assert _reembed_raced(fresh_db_url, tmp_path, write, (worker_vector,)) == (False, "worker")


def test_a_model_of_the_wrong_dimension_is_refused(fresh_db_url: str) -> None:
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        check_dimension(conn, encoder)  # the real column fits the real model
        conn.execute("DROP INDEX ix_product_master_ai_vector_hnsw")
        conn.execute("ALTER TABLE product_master ALTER COLUMN ai_vector TYPE vector(768)")
        with pytest.raises(ReembedError, match=r"makes 384-d vectors but product_master.ai_vector is vector\(768\)"):
            check_dimension(conn, encoder)
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_ENCODER_BACKEND": "onnx"}
    proc = subprocess.run(
        [sys.executable, "-m", "search_service", "reembed", "--missing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the model ") and "vector(768)" in lines[0], proc.stderr


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def test_all_via_queue_reembeds_what_it_queued_and_a_limited_rerun_goes_on(fresh_db_url: str, tmp_path: Path) -> None:
    """`--all --via-queue` queued plain tasks: the worker skipped each (text and model current), ai_embedded_at never
    moved, and a `--limit` rerun queued the same first products again for ever."""
    cache = model_cache(tmp_path)
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_CACHE_DIR": str(cache)}

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "search_service", *args], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout + proc.stderr

    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 25)
        assert "wrote 25" in cli("reembed", "--missing")
        conn.execute("UPDATE ai_task SET status = 'done'")  # the inserts' tasks: the vectors are written
        before = dict(conn.execute("SELECT id, ai_embedded_at FROM product_master"))
        for run in (1, 2):
            assert "enqueued 10 " in cli("reembed", "--all", "--via-queue", "--limit", "10")
            log = cli("worker", "--only", "embed", "--drain", "--poll-interval", "0.2")
            # every line of its log with a time and a level: `worker ... started` was bare
            assert all(LOG_LINE.match(line) for line in log.splitlines()), log
            after = dict(conn.execute("SELECT id, ai_embedded_at FROM product_master"))
            moved = {pid for pid, at in after.items() if at != before[pid]}
            assert len(moved) == 10 * run  # each run re-embedded 10 more products, none twice
        queued = conn.execute(
            "SELECT count(*), count(DISTINCT product_master_id) FROM ai_task WHERE kind = 'reembed_product'"
        ).fetchone()
        assert queued == (20, 20)
        assert "enqueued 5 " in cli("reembed", "--all", "--via-queue", "--limit", "10")  # the last five


def test_a_resumed_all_says_so_per_database_and_mode_and_restart_starts_over(fresh_db_url: str, tmp_path: Path) -> None:
    """A later `--all` took an old checkpoint's start as its cut-off without a word, even one an `--all --via-queue`
    run left (it only queued), and the same database spelled otherwise (`localhost`, `?connect_timeout=5`) got a
    checkpoint of its own. Now a resumed run says since when and how many are left; `--restart` starts over."""
    cache = model_cache(tmp_path)

    def cli(*args: str, url: str = fresh_db_url, code: int = 0) -> tuple[str, str]:
        env = {**os.environ, "DATABASE_URL": url, "PLINQY_CACHE_DIR": str(cache)}
        proc = subprocess.run([sys.executable, "-m", "search_service", "reembed", *args], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == code, proc.stderr[-2000:]
        return proc.stdout, proc.stderr

    resumed = re.compile(r"reembed --all: resuming the run started at (\S+Z), (\d+) products not re-embedded since")
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        seed(conn, 30)
        assert "wrote 30" in cli("--missing")[0]
        conn.execute("UPDATE ai_task SET status = 'done'")
        assert "enqueued 10 " in cli("--all", "--via-queue", "--limit", "10")[0]
        # the worker embeds the ten it queued: after that run's start
        conn.execute("UPDATE product_master SET ai_embedded_at = now() WHERE id IN (SELECT product_master_id "
                     "FROM ai_task WHERE status = 'pending')")  # fmt: skip
        out, err = cli("--all", "--limit", "5")  # embeds here: not scoped by the queued run
        assert "wrote 5 " in out and "resuming" not in err + out, err
        other_spelling = fresh_db_url.replace("127.0.0.1", "localhost") + "?connect_timeout=5"
        out, err = cli("--all", "--limit", "5", url=other_spelling)
        said = resumed.search(err)
        assert said and said[2] == "25" and "(--restart starts over)" in err, err
        assert "wrote 5 (resumed the run started at " + said[1] + ")" in out, out
        out, err = cli("--all", "--restart", "--limit", "5")
        assert "wrote 5 " in out and "resuming" not in err + out, err
        said = resumed.search(cli("--all", "--limit", "5")[1])
        assert said and said[2] == "25", said
        assert len(list(cache.glob("reembed-all-*.json"))) == 2  # the queued run's, and this one's
        assert "--restart is for --all" in cli("--missing", "--restart", code=2)[1]


def test_the_checkpoint_names_the_database_not_the_url(fresh_db_url: str) -> None:
    """The server's names for the database, however the URL spells it; a role denied pg_control_system() gets the
    address, port and name the connection reached."""
    other_spelling = fresh_db_url.replace("127.0.0.1", "localhost") + "?connect_timeout=5"
    with psycopg.connect(fresh_db_url, autocommit=True) as conn, psycopg.connect(other_spelling) as other:
        named = database_identity(conn)
        assert named == database_identity(other)
        system, oid = conn.execute(
            "SELECT (SELECT system_identifier FROM pg_control_system()), oid FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone()
        assert named == f"{system}/{oid}"
        role = f"plinqy_no_control_{os.getpid()}"
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")  # this database's copy only
        try:
            as_role = other_spelling.replace("postgres@", f"{role}@")
            with psycopg.connect(as_role, autocommit=True) as limited:
                port, dbname = conn.info.port, conn.info.dbname
                assert database_identity(limited) == f"127.0.0.1:{port}/{dbname}"
        finally:
            conn.execute(f"DROP ROLE {role}")
