"""search_service.db.hnsw sizes maintenance_work_mem for HNSW builds; checked against pgvector's own build here."""

from __future__ import annotations

import psycopg

from search_service.db import hnsw

N = 6000


def _build(conn: psycopg.Connection, memory_kb: int) -> list[str]:
    """Build the schema's HNSW index (m=16, ef_construction=64) over the test vectors; pgvector's notices."""
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    conn.execute("DROP INDEX IF EXISTS hv_hnsw")
    conn.execute(f"SET maintenance_work_mem = '{memory_kb}kB'")
    conn.execute("SET max_parallel_maintenance_workers = 0")
    conn.execute("CREATE INDEX hv_hnsw ON hv USING hnsw (v vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
    return notices


def test_build_memory_keeps_the_graph_in_memory(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TEMP TABLE hv AS SELECT (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384)"
        " WHERE g > 0)::vector(384) AS v FROM generate_series(1, %s) AS g",
        (N,),
    )
    per_vector_kb = N * hnsw.BYTES_PER_VECTOR // 1024
    assert not [n for n in _build(conn, per_vector_kb) if "no longer fits" in n]
    # The estimate is not loose: half of it spills, so a pgvector whose graph grew would fail the line above.
    assert [n for n in _build(conn, per_vector_kb // 2) if "no longer fits" in n]
    # Sized by that figure: the small scale keeps the cluster's 1 GB, the large scale's 1M vectors get what they need.
    assert hnsw.build_memory(100_000) == "1024MB"
    assert int(hnsw.build_memory(1_000_000).removesuffix("MB")) * 2**20 >= 1_000_000 * hnsw.BYTES_PER_VECTOR
