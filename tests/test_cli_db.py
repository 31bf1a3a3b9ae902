"""`plinqy-search db …` and `migrate` as a user runs them: real processes, a real cluster, one-line errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from search_service.db.cluster import free_port, machine_memory, shared_buffers


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "search_service", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def embedded_env() -> Iterator[dict[str, str]]:
    # Not pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="plinqy-cli-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PLINQY_PGDATA=str(root / "pgdata"), PLINQY_DB_PORT=str(free_port()))
    yield env
    run_cli("db", "down", env=env)
    shutil.rmtree(root, ignore_errors=True)


def test_db_up_twice_status_url_migrate_down(embedded_env: dict[str, str]) -> None:
    port = embedded_env["PLINQY_DB_PORT"]
    first = run_cli("db", "up", env=embedded_env)
    assert first.returncode == 0, first.stderr
    assert f"started on 127.0.0.1:{port}" in first.stdout
    second = run_cli("db", "up", env=embedded_env)
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout

    status = run_cli("db", "status", env=embedded_env)
    assert status.returncode == 0 and "running" in status.stdout
    url = run_cli("db", "url", env=embedded_env).stdout.strip()
    assert url == f"postgresql://postgres@127.0.0.1:{port}/plinqy"

    migrated = run_cli("migrate", env=embedded_env)
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert count is not None and count[0] >= 16
        owner = conn.execute("SELECT usename FROM pg_stat_activity WHERE backend_type = 'checkpointer'").fetchone()
        assert owner is not None
        buffers = conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))").fetchone()
        assert buffers is not None and f"{buffers[0] // 2**20}MB" == shared_buffers(machine_memory())
    data_owner = Path(embedded_env["PLINQY_PGDATA"]).stat().st_uid
    if os.geteuid() == 0:
        import pwd

        assert data_owner == pwd.getpwnam("postgres").pw_uid

    down = run_cli("db", "down", env=embedded_env)
    assert down.returncode == 0 and "stopped" in down.stdout
    stopped = run_cli("db", "status", env=embedded_env)
    assert stopped.returncode == 3 and "stopped" in stopped.stdout
    not_running = run_cli("migrate", env=embedded_env)
    assert_one_line_error(not_running, "db up")


def _buffered_blocks(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
        row = conn.execute(
            "SELECT count(*) FROM pg_buffercache b JOIN pg_database d ON d.oid = b.reldatabase "
            "WHERE d.datname = current_database() AND b.relfilenode = pg_relation_filenode(%s::regclass)",
            (table,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _restart(env: dict[str, str]) -> None:
    for action in ("down", "up"):
        proc = run_cli("db", action, env=env)
        assert proc.returncode == 0, proc.stderr


def test_a_restart_reads_back_the_blocks_shared_buffers_held(embedded_env: dict[str, str]) -> None:
    """autoprewarm: `db down` records the blocks in shared buffers, `db up` reads them back before any search asks;
    without the record (the control) they start out of the buffers. A cluster made before the settings file
    existed (no include line) gets it at its next start."""
    assert run_cli("db", "up", env=embedded_env).returncode == 0
    url = run_cli("db", "url", env=embedded_env).stdout.strip()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS warm_probe")
        conn.execute("CREATE TABLE warm_probe (id int, pad text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO warm_probe SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        conn.execute("SELECT count(*) FROM warm_probe")
    held = _buffered_blocks(url, "warm_probe")
    assert held >= 500  # ~20000 rows of ~230 bytes: the whole table

    data = Path(embedded_env["PLINQY_PGDATA"])
    conf = data / "postgresql.conf"
    conf.write_text("".join(ln for ln in conf.read_text().splitlines(True) if "plinqy-search.conf" not in ln))
    (data / "plinqy-search.conf").unlink()
    _restart(embedded_env)
    assert "include_if_exists = 'plinqy-search.conf'" in conf.read_text()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        assert row == ("pg_prewarm",)
    deadline = time.monotonic() + 30
    while (back := _buffered_blocks(url, "warm_probe")) < held and time.monotonic() < deadline:
        time.sleep(0.2)
    assert back >= held

    run_cli("db", "down", env=embedded_env)
    (data / "autoprewarm.blocks").unlink()
    assert run_cli("db", "up", env=embedded_env).returncode == 0
    time.sleep(1.0)  # what autoprewarm would have loaded by now (it loaded the table within ~0.1 s above)
    assert _buffered_blocks(url, "warm_probe") == 0
    assert run_cli("db", "down", env=embedded_env).returncode == 0


def test_a_start_that_fails_says_why_in_one_line(embedded_env: dict[str, str]) -> None:
    """A setting the server refuses (here one ALTER SYSTEM would have written) stops the start: the error quotes
    the server's own reason, not only where its log is."""
    assert run_cli("db", "up", env=embedded_env).returncode == 0  # initialised, whatever ran before
    assert run_cli("db", "down", env=embedded_env).returncode == 0
    auto = Path(embedded_env["PLINQY_PGDATA"]) / "postgresql.auto.conf"
    kept = auto.read_text()
    auto.write_text(kept + "shared_buffers = 'lots'\n")
    try:
        failed = run_cli("db", "up", env=embedded_env)
        assert_one_line_error(failed, "did not start", 'invalid value for parameter "shared_buffers"', ".log")
    finally:
        auto.write_text(kept)
    again = run_cli("db", "up", env=embedded_env)
    assert again.returncode == 0, again.stderr
    assert run_cli("db", "down", env=embedded_env).returncode == 0


def test_port_taken_is_a_one_line_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(tmp_path, "postgres", "postgres")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(PLINQY_PGDATA=str(tmp_path / "pgdata"), PLINQY_DB_PORT=str(port))
        proc = run_cli("db", "up", env=env)
    assert_one_line_error(proc, f"port {port}", "PLINQY_DB_PORT")


def test_missing_binaries_point_to_the_install_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        PLINQY_PGDATA=str(tmp_path / "pgdata"),
        PLINQY_DB_PORT=str(free_port()),
        PLINQY_PG_BINDIR=str(tmp_path / "no-postgres-here"),
    )
    proc = run_cli("db", "up", env=env)
    assert_one_line_error(proc, "scripts/install-postgres.sh")


def test_unreachable_database_url(tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    proc = run_cli("migrate", env=env)
    assert_one_line_error(proc, "cannot reach the database", "DATABASE_URL")
    assert_one_line_error(run_cli("seed-demo", env=env), "cannot reach the database", "check DATABASE_URL")
    status = run_cli("db", "status", env=env)  # as its help says: exit 3 when not reachable (it was 1)
    assert status.returncode == 3 and "external database (DATABASE_URL) is not reachable" in status.stdout


def test_db_status_says_what_the_role_may_not_do(fresh_db_url: str, rightless_url: str) -> None:
    """A DATABASE_URL whose role may read or write nothing: `db status` said the database is reachable, exit 0,
    while /readyz said `database: forbidden` and every command failed. It says so now in /readyz's words."""
    env = dict(os.environ, DATABASE_URL=rightless_url)
    role = rightless_url.split("//", 1)[1].split("@", 1)[0]
    rightless = run_cli("db", "status", env=env)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        reading = run_cli("db", "status", env=env)
        conn.execute(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        conn.execute(f"REVOKE INSERT ON inventory_event FROM {role}")  # written by store_product's trigger
        but_one = run_cli("db", "status", env=env)
        conn.execute(f"GRANT INSERT ON inventory_event TO {role}")
        granted = run_cli("db", "status", env=env)
    reachable = f"external database (DATABASE_URL) is reachable, but the database role '{role}' "
    fix = "or set DATABASE_URL to the role that ran `plinqy-search migrate`\n"
    assert rightless.returncode == 3 and rightless.stdout.startswith(
        f"{reachable}lacks rights (permission denied for table alembic_version): grant it access to the tables, "
    ) and rightless.stdout.endswith(fix), rightless.stdout + rightless.stderr  # fmt: skip
    writes = f"{reachable}may not write what the API and the worker's jobs write (it lacks "
    assert reading.returncode == 3 and reading.stdout.startswith(f"{writes}ai_task: INSERT, UPDATE; api_key: "), (
        reading.stdout + reading.stderr
    )
    assert "; ingest_connection: UPDATE; " in reading.stdout and reading.stdout.endswith(fix), reading.stdout
    assert (
        but_one.returncode == 3 and but_one.stdout == f"{writes}inventory_event: INSERT): grant it those rights, {fix}"
    )
    assert (granted.returncode, granted.stdout) == (0, "external database (DATABASE_URL) is reachable\n"), granted


def test_a_connection_lost_mid_run_is_not_blamed_on_the_url(fresh_db_url: str) -> None:
    """A connection ended mid-run (a restart, a failover; here pg_terminate_backend while each waits on a lock)
    said "cannot reach the database (…): check DATABASE_URL (its host, port and database name)" of a URL that
    had just worked."""
    commands = [("tasks", "prune", "--older-than", "1d"), ("prune",), ("imports", "prune", "--older-than", "1d")]
    env, pipes = dict(os.environ, DATABASE_URL=fresh_db_url), {"stderr": subprocess.PIPE, "text": True}
    waiting = "FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    with psycopg.connect(fresh_db_url, autocommit=True) as admin, psycopg.connect(fresh_db_url) as locker:
        tables = [row[0] for row in locker.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        locker.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        procs = [subprocess.Popen([sys.executable, "-m", "search_service", *c], env=env, **pipes) for c in commands]
        deadline = time.monotonic() + 60
        while admin.execute(f"SELECT count(*) {waiting}").fetchone() != (len(commands),):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.05)
        admin.execute(f"SELECT pg_terminate_backend(pid) {waiting}")
        outcomes = [proc.communicate(timeout=60)[1] for proc in procs]
    for command, proc, stderr in zip(commands, procs, outcomes, strict=True):
        assert proc.returncode == 1 and stderr == (
            "error: lost the database connection mid-run (terminating connection due to administrator command): "
            "the batches it finished are saved; run the same command again to resume\n"
        ), (command, stderr)


def test_a_database_that_never_answers_is_one_line_within_seconds() -> None:
    """A server that takes the connection but never answers (a hung host, a stopped cluster): every command but
    `migrate` waited for ever (psycopg's 130 s a try, asyncpg's 60 s); now each gives up as `migrate` does."""
    commands = [("tasks", "stats"), ("keys", "list"), ("imports", "list"), ("webhooks", "list"),
                ("connections", "list"), ("prune", "--dry-run"), ("reembed", "--missing"), ("worker", "--drain"),
                ("webhooks", "dispatch"), ("migrate",)]  # fmt: skip
    with socket.socket() as silent:  # never accepted: the kernel completes the handshake, nothing answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)
        env = dict(os.environ, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/ob")
        env.pop("PGCONNECT_TIMEOUT", None)
        started = time.monotonic()
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        procs = [subprocess.Popen([sys.executable, "-m", "search_service", *c], env=env, **pipes) for c in commands]
        try:
            for command, proc in zip(commands, procs, strict=True):
                _, stderr = proc.communicate(timeout=max(60 - (time.monotonic() - started), 1))
                done = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
                assert_one_line_error(done, "cannot reach the database", "connection timeout expired", "DATABASE_URL")
                assert proc.returncode == 1, command
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def test_a_malformed_database_url_a_bad_revision_or_an_unusable_key_file_is_one_line(
    pg_admin_url: str, tmp_path: Path
) -> None:
    """Each was a traceback: a DATABASE_URL no driver reads (psycopg's and asyncpg's own errors), `migrate
    --revision` naming none (alembic's), a key file that is a directory or cannot be created (OSError); a
    database that does not exist hinted `db up`, which DATABASE_URL bypasses."""
    for url in ("garbage", "mysql://x@127.0.0.1/db", "postgresql://x@127.0.0.1:abc/db", "host=127.0.0.1 dbname=x"):
        command = ("webhooks", "list") if url == "garbage" else ("keys", "list")  # asyncpg's and psycopg's
        assert_one_line_error(run_cli(*command, env=dict(os.environ, DATABASE_URL=url)), "DATABASE_URL")
    env = dict(os.environ, DATABASE_URL=pg_admin_url)
    bogus = run_cli("migrate", "--revision", "bogus", env=env)
    assert_one_line_error(bogus, "'bogus'", "migrations/versions")
    assert bogus.returncode == 2  # an argument given wrongly, as README's exit codes say (it was 1)
    for key_file in (tmp_path, Path("/proc/no-such-dir/k.key")):
        proc = run_cli("connect", "webhook", "--store", "00000000-0000-0000-0000-000000000000",
                       env={**env, "PLINQY_SECRET_KEY_FILE": str(key_file)})  # fmt: skip
        assert_one_line_error(proc, f"the key file {key_file} (PLINQY_SECRET_KEY_FILE) cannot be read or created")
    for empty in ("", " "):  # taken for unset: the commands then acted on the embedded cluster
        proc = run_cli("db", "status", env=dict(os.environ, DATABASE_URL=empty))
        assert_one_line_error(proc, "DATABASE_URL is set but empty", "unset it")
    missing = pg_admin_url.rsplit("/", 1)[0] + "/no_such_database_here"
    proc = run_cli("keys", "list", env=dict(os.environ, DATABASE_URL=missing))
    assert_one_line_error(proc, "cannot reach the database", "unset it to use the embedded cluster")
    assert "db up" not in proc.stderr


def test_a_query_parameter_or_connect_timeout_libpq_refuses_is_one_line_in_every_database_command(
    pg_admin_url: str,
) -> None:
    """`?bogusparam=1`, `?connect_timeout=abc` and PGCONNECT_TIMEOUT=abc were psycopg's traceback, exit 1, in every
    command that reached the database (serve's workers too)."""
    bogus = dict(os.environ, DATABASE_URL=f"{pg_admin_url}?bogusparam=1")
    for command in (
        ("keys", "list"),
        ("db", "status"),
        ("migrate",),
        ("tasks", "stats"),
        ("worker", "--drain"),
        ("reembed", "--missing"),
        ("webhooks", "dispatch", "--drain"),
        ("serve", "--port", str(free_port()), "--workers", "1"),
    ):
        proc = run_cli(*command, env=bogus, timeout=60)
        assert_one_line_error(proc, "DATABASE_URL", 'invalid URI query parameter: "bogusparam"')
        assert proc.returncode == 1, command
    timeout = dict(os.environ, DATABASE_URL=f"{pg_admin_url}?connect_timeout=abc")
    assert_one_line_error(run_cli("keys", "list", env=timeout), "DATABASE_URL's connect_timeout='abc' is not an")
    timeout = dict(os.environ, DATABASE_URL=pg_admin_url, PGCONNECT_TIMEOUT="abc")
    assert_one_line_error(run_cli("keys", "list", env=timeout), "PGCONNECT_TIMEOUT='abc' is not an integer")
    assert run_cli("db", "url", env=dict(timeout, PGCONNECT_TIMEOUT="7")).returncode == 0


def test_a_password_a_url_cannot_hold_as_written_is_named_not_shown() -> None:
    """libpq's reason quotes the token it could not read, and Python's the port (a password's start, where a '/' in it
    ended the host), and an '@' in it moved the rest into the host that a failed connect named: each printed the
    password (or its part) to the terminal, to CI logs and to serve's log."""
    where = f"127.0.0.1:{free_port()}/db"
    cases = {  # the URL: what the one line says instead
        f"postgresql://u:S3cr3t Pw_h02@{where}": "unexpected spaces found in the password, use percent-encoded",
        f"postgresql://u:S3cr3t%zzPw_h02@{where}": "invalid percent-encoded token in the password",
        f"postgresql://u:S3cr3t%00Pw_h02@{where}": "forbidden value %00 in percent-encoded value in the password",
        f"postgresql://u@{where}?password=S3cr3t Pw_h02": "unexpected spaces found in the password",
        f"postgresql://u:S3cr3t@Pw_h02@{where}": "an '@' in its user name or password: write it as %40",
        f"postgresql://u:S3cr3t/Pw_h02@{where}": "its port is not a number from 0 to 65535; a '/', '?' or '#' in the",
    }
    for url, says in cases.items():
        commands = [("db", "status")]
        if " " in url:
            commands += [("tasks", "stats"), ("serve", "--port", str(free_port()), "--workers", "1")]
        for command in commands:
            proc = run_cli(*command, env=dict(os.environ, DATABASE_URL=url), timeout=60)
            assert "S3cr3t" not in proc.stdout + proc.stderr and "Pw_h02" not in proc.stdout + proc.stderr, url
            assert_one_line_error(proc, "DATABASE_URL", says)
            assert proc.returncode == 1, (url, command)
    typo = run_cli("db", "status", env=dict(os.environ, DATABASE_URL="postgresql://u@127.0.0.1:54x/db"))
    assert_one_line_error(typo, "(its port is not a number from 0 to 65535)")  # no hint where no password was cut


def test_commands_on_a_database_behind_or_ahead_of_the_code_say_so_in_one_line(
    make_database: Callable[..., str], tmp_path: Path
) -> None:
    """A worker or a dispatcher on a database one migration behind died midway with a traceback (a missing
    column); `migrate --revision` to an older one did nothing and said the database was at its revision."""
    from search_service.db.migrate import head_revision

    url, head = make_database(), head_revision()
    env = dict(os.environ, DATABASE_URL=url)
    refused = run_cli("migrate", "--revision", "0025", env=env)
    assert_one_line_error(refused, f"at revision {head}, past 0025: migrate only upgrades")
    assert_one_line_error(run_cli("migrate", "--revision", "base", env=env), "past base")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0026'")
    behind = f"the database is at revision 0026, this code needs {head}: run `plinqy-search migrate`"
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("sku,name,price,quantity\nA,Thing,1.00,1\n")
    for command in (("worker", "--drain", "--only", "import"), ("webhooks", "dispatch", "--drain"),
                    ("import", "csv", str(csv_file), "--store", "00000000-0000-0000-0000-000000000000")):  # fmt: skip
        assert_one_line_error(run_cli(*command, env=env), behind)
    with psycopg.connect(url, autocommit=True) as conn:  # a command that reads first: the table it needs is gone
        conn.execute("ALTER TABLE store_webhook RENAME TO store_webhook_gone")
    assert_one_line_error(run_cli("webhooks", "list", env=env), behind, "UndefinedTable")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE store_webhook_gone RENAME TO store_webhook")
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    ahead = "the database is at revision 0999, which this code (head"
    assert_one_line_error(run_cli("worker", "--drain", "--only", "import", env=env), ahead, "newer code")
    assert_one_line_error(run_cli("migrate", env=env), ahead, "newer code")  # it blamed a --revision not given


def test_external_server_without_an_extension_or_too_old(pg_admin_url: str) -> None:
    from search_service.db import migrate

    migrate.check_server(pg_admin_url)  # the real requirements hold on the test server
    with pytest.raises(migrate.MigrationError, match="'not_an_extension' is not installed"):
        migrate.check_server(pg_admin_url, {**migrate.REQUIRED_EXTENSIONS, "not_an_extension": None})
    with pytest.raises(migrate.MigrationError, match=r"'vector' is .* 99.0 or newer is needed"):
        migrate.check_server(pg_admin_url, {"vector": "99.0"})


def test_external_database_url_wins(pg_admin_url: str) -> None:
    env = dict(os.environ, DATABASE_URL=pg_admin_url, PLINQY_DB_PORT="1")
    assert run_cli("db", "url", env=env).stdout.strip() == pg_admin_url
    up = run_cli("db", "up", env=env)
    assert up.returncode == 0 and "DATABASE_URL is set" in up.stdout


def test_shared_buffers_are_a_quarter_of_the_memory_within_bounds() -> None:
    gib = 2**30
    assert shared_buffers(24 * gib) == "6144MB"
    assert shared_buffers(1 * gib) == "512MB"  # the floor
    assert shared_buffers(256 * gib) == "8192MB"  # the cap
    assert machine_memory() > gib


def test_a_migration_blocked_by_a_lock_rolls_back_within_its_lock_timeout_and_names_the_session(
    make_database: Callable[..., str],
) -> None:
    """A session reading a table a migration alters (a transaction left open) made migrate wait forever, silently,
    holding the locks of the migrations before it: every search queued behind them."""
    from search_service.db import migrate

    url, head = make_database(), migrate.head_revision()
    migrate.downgrade(url, "0034")  # 0035 rebuilds product_master's search column
    env = dict(os.environ, DATABASE_URL=url)
    with psycopg.connect(url, application_name="long-report") as blocker:
        blocker.execute("SELECT count(*) FROM product_master")  # its transaction stays open, ACCESS SHARE held
        pid = blocker.info.backend_pid
        started = time.monotonic()
        blocked = run_cli("migrate", env={**env, "PLINQY_MIGRATE_LOCK_TIMEOUT_S": "1.5"}, timeout=60)
        assert time.monotonic() - started < 30
        assert_one_line_error(
            blocked,
            "waited over 1.5 s for a lock on product_master (AccessExclusiveLock)",
            f"session pid {pid} (application_name 'long-report', state 'idle in transaction', "
            "query 'SELECT count(*) FROM product_master')",
            "nothing of this run was applied",
            "still at revision 0034",
            f"pg_terminate_backend({pid})",
        )
        with psycopg.connect(url, autocommit=True) as other:  # nothing of 0035 stands, and migrate left no backend
            assert other.execute("SELECT count(*) FROM pg_ts_config WHERE cfgname LIKE 'plinqy%'").fetchone() == (0,)
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'plinqy-search migrate%'"
            assert other.execute(waiting).fetchone() == (0,)
    assert migrate.current_revision(url) == "0034"
    bad = run_cli("migrate", "--lock-timeout", "nan", env=env)
    assert bad.returncode == 2 and "Invalid value for '--lock-timeout'" in bad.stderr
    done = run_cli("migrate", env=env)  # the session gone, the same run goes through
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"database at revision {head}"


def test_two_migrate_runs_at_once_take_turns(make_database: Callable[..., str]) -> None:
    """Both ran the same migrations at once: one won, the other died with a long traceback (a duplicate type or
    table). Now the second waits for the first and finds the database at head."""
    from search_service.db import migrate

    url, head = make_database(migrated=False), migrate.head_revision()
    env = dict(os.environ, DATABASE_URL=url)
    command = [sys.executable, "-m", "search_service", "migrate"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=180) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in err
    stdouts = sorted(out.strip() for out, _ in outputs)
    assert stdouts == [
        f"database at revision {head}",
        f"database at revision {head} (it was already there: nothing to do)",
    ]
    assert migrate.current_revision(url) == head
