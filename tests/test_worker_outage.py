"""The embedding worker and an outage of the database as a whole (a full disk, a read-only failover): no attempt
is charged, the worker pauses, says so, and embeds everything once the database takes writes again."""

from __future__ import annotations

import json
import logging
import threading
import time

import psycopg
import pytest

from embeddings.encoder import Encoder
from embeddings.worker import Worker, WorkerConfig
from tests.test_worker import db, encoder

__all__ = ["db", "encoder"]  # test_worker's fixtures (the model loaded once a module, a database a test)


def refuse_vector_writes(conn: psycopg.Connection, sqlstate: str, message: str) -> None:
    """Every write of a vector fails with `sqlstate`, as a full disk or a standby would refuse it."""
    conn.execute(
        f"""CREATE FUNCTION refuse_vector() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', MESSAGE = '{message}'; END $$"""
    )
    conn.execute(
        "CREATE TRIGGER refuse_vector BEFORE UPDATE OF ai_vector ON product_master "
        "FOR EACH ROW EXECUTE FUNCTION refuse_vector()"
    )


def statuses(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM ai_task GROUP BY status").fetchall())


@pytest.mark.parametrize(
    ("sqlstate", "message", "pipeline"),
    [
        ("53100", "could not extend file: No space left on device", True),
        ("25006", "cannot execute UPDATE in a read-only transaction", False),
    ],
)
def test_a_database_refusing_writes_for_a_while_fails_no_task(
    db: psycopg.Connection,
    encoder: Encoder,
    caplog: pytest.LogCaptureFixture,
    sqlstate: str,
    message: str,
    pipeline: bool,
) -> None:
    """Each refused write was charged to its tasks: with the backoff spent in seconds, a refusal of a minute left
    the whole queue `failed` (and the model re-run at every attempt) until `tasks retry --all`."""
    caplog.set_level(logging.INFO, logger="plinqy.worker")
    db.execute("INSERT INTO product_master (name) SELECT 'Garden hose ' || i || ' m' FROM generate_series(1, 24) i")
    refuse_vector_writes(db, sqlstate, message)
    config = WorkerConfig(
        batch_size=8, poll_interval_s=0.2, backoff_base_s=0.1, reconnect_base_s=0.1, reconnect_max_s=0.4,
        pipeline=pipeline,
    )  # fmt: skip
    info = db.info
    worker = Worker(f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}", encoder, config)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        time.sleep(5)  # attempts spent at 0.1 s doubling: a charged task was failed for good within ~2 s
        assert set(statuses(db)) <= {"pending", "running"} and worker.totals.embedded == 0  # running: in hand
        assert db.execute("SELECT max(attempts) FROM ai_task").fetchone() == (0,)
        db.execute("DROP TRIGGER refuse_vector ON product_master")
        deadline = time.monotonic() + 60
        while statuses(db) != {"done": 24} and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.request_stop()
        thread.join(timeout=30)
    assert statuses(db) == {"done": 24}
    assert db.execute("SELECT max(attempts), count(*) FILTER (WHERE ai_vector IS NOT NULL) FROM ai_task "
                      "JOIN product_master p ON p.id = product_master_id").fetchone() == (0, 24)  # fmt: skip
    events = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert not [e for e in events if e["event"] == "task_failed"], caplog.text
    lost = [e for e in events if e["event"] == "db_lost"]
    back = [e for e in events if e["event"] == "db_back"]
    assert len(back) == 1 and back[0]["after_tries"] >= 4, caplog.text
    assert [e["tries"] for e in lost] == [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= back[0]["after_tries"]]
    assert all(message in e["error"] for e in lost), lost
