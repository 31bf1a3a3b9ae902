"""`plinqy-search vocabulary prune`: the typo-correction vocabulary loses the words no product uses any more."""

from __future__ import annotations

import os

import psycopg
import pytest

from search_service.engine import vocabulary
from tests.test_cli_db import run_cli


def _terms(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT term FROM search_term ORDER BY term, id")]


def test_prune_drops_unused_and_duplicate_words_and_keeps_the_rest(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO product_master (name, brand) VALUES ('Quokka Bar', 'Zeta'), ('Quokka Tin', NULL)")
        conn.execute("UPDATE product_master SET name = 'Quokka Jar' WHERE name = 'Quokka Tin'")
        conn.execute("DELETE FROM product_master WHERE name = 'Quokka Bar'")
        conn.execute("INSERT INTO search_term (term) VALUES ('jar')")  # as two writers adding it at once leave it
        assert _terms(conn) == ["bar", "jar", "jar", "quokka", "tin", "zeta"]

        report = vocabulary.prune(conn)

        assert (report.removed, report.kept) == (4, 2)
        assert _terms(conn) == ["jar", "quokka"]
        assert vocabulary.prune(conn) == vocabulary.PruneReport(removed=0, kept=2)


def test_prune_from_the_command_line(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO product_master (name) VALUES ('Quokka Tin')")
        conn.execute("UPDATE product_master SET name = 'Quokka Jar'")
    proc = run_cli("vocabulary", "prune", env=dict(os.environ, DATABASE_URL=fresh_db_url))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "removed 1 word(s), 2 kept"


def test_prune_waits_for_product_writes_and_gives_up_with_a_clear_error(fresh_db_url: str) -> None:
    # A writer's open transaction holds product_master: prune may not run beside it (the writer could be reusing a
    # word whose last other product prune is about to forget), so it waits, then says so.
    with psycopg.connect(fresh_db_url) as writer, psycopg.connect(fresh_db_url, autocommit=True) as conn:
        writer.execute("INSERT INTO product_master (name) VALUES ('Quokka Jar')")
        with pytest.raises(vocabulary.VocabularyBusy, match="retry"):
            vocabulary.prune(conn, lock_timeout_s=0.2)
        writer.commit()
        assert vocabulary.prune(conn, lock_timeout_s=0.2) == vocabulary.PruneReport(removed=0, kept=2)


def test_a_typo_is_corrected_to_a_word_of_about_its_length(fresh_db_url: str) -> None:
    """A slip adds or drops a letter or two; `xxxxxxxxxx` (trigram sets drop repeats) was corrected to `xxl`."""
    import asyncio

    import asyncpg

    from search_service.engine.search import SearchParams, search

    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = conn.execute(
            "INSERT INTO store (name, location) VALUES ('S', ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326)::geography) "
            "RETURNING id"
        ).fetchone()[0]
        for name in ("XXL Shirt", "Lantern"):
            product = conn.execute("INSERT INTO product_master (name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
                "VALUES (%s, %s, 5, 'EUR', 2)",
                (store, product),
            )

    async def names(q: str) -> list[str]:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            found = await search(conn, SearchParams(q=q, lat=52.5, lon=13.4, mode="keyword"), None)
            return [hit.product.name for hit in found.results]
        finally:
            await conn.close()

    assert asyncio.run(names("xxxxxxxxxx")) == []
    assert asyncio.run(names("lantren")) == ["Lantern"]  # a slip is still corrected
