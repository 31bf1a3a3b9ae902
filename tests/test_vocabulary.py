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
