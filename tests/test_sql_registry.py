"""The SQL registry (search_service.db.sql): every file of the package loads and passes the header/body check,
and a real block whose header disagrees with its body fails to load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from embeddings.sqlblocks import SqlBlockError, parse_statements
from search_service.db.sql import (
    CACHEABLE_STATEMENT_BYTES,
    PACKAGE_ROOT,
    check_all,
    sql_files,
    statement,
    statements,
)


def test_every_sql_file_of_the_package_loads() -> None:
    files = sql_files()
    assert {"engine/search", "engine/vectors", "engine/stats", "engine/vocabulary", "engine/catalog"} <= set(files)
    assert check_all() == sum(len(statements(f)) for f in files) > 0


def test_no_engine_statement_uses_positional_placeholders_in_its_source() -> None:
    for name in ("search", "vectors", "stats", "vocabulary", "catalog"):
        text = (PACKAGE_ROOT / "engine" / "sql" / f"{name}.sql").read_text()
        code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
        assert not re.search(r"\$\d", code), name


def test_the_listing_filter_is_written_once() -> None:
    text = (PACKAGE_ROOT / "engine" / "sql" / "search.sql").read_text()
    # listing_terms, and sellable_listing (what the in-memory candidate sets hold)
    assert text.count("sp.quantity > 0") == 2 and text.count("p.category_id = ANY") == 1
    assert text.count("plinqy_fold(p.brand) = plinqy_fold(:brand") == 1
    # the shared filters reach every statement that ranks or checks products
    for name in ("rank_exact", "rank_hnsw", "filter_ranked", "rank_keyword"):
        assert {"store_ids", "in_stock", "min_price", "max_price", "category_ids", "brand"} <= set(
            statement("engine/search", name).params
        ), name


def _block(text: str, name: str) -> str:
    start = text.index(f"-- name: {name}\n")
    end = text.find("\n-- name:", start + 1)
    return text[start : len(text) if end < 0 else end]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # the header names a parameter the body no longer uses
        ("LIMIT :top_n::int", "LIMIT 10", "declared but not used: \\['top_n'\\]"),
        # the body uses a parameter the header does not declare
        ("LIMIT :top_n::int", "LIMIT :top_k::int", "used but not declared: \\['top_k'\\]"),
    ],
)
def test_a_real_block_whose_header_and_body_disagree_fails(old: str, new: str, message: str) -> None:
    text = (PACKAGE_ROOT / "engine" / "sql" / "search.sql").read_text()
    assert "rank_exact" in parse_statements(text)  # the unmodified file loads
    block = _block(text, "rank_exact")
    assert block.count(old) == 1
    mutated = text.replace(block, block.replace(old, new))
    with pytest.raises(SqlBlockError, match=message):
        parse_statements(mutated, "mutated search.sql")


def test_a_fragment_whose_header_and_body_disagree_fails() -> None:
    text = (PACKAGE_ROOT / "engine" / "sql" / "search.sql").read_text()
    header = "-- params: in_stock bool, min_price numeric|null, max_price numeric|null\n"
    assert text.count(header) == 1
    mutated = text.replace(header, "-- params: in_stock bool, min_price numeric|null\n")
    with pytest.raises(SqlBlockError, match=r"listing_terms.*used but not declared: \['max_price'\]"):
        parse_statements(mutated, "mutated search.sql")


def test_the_api_refuses_to_start_on_a_block_whose_header_disagrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runtime.build checks every SQL file: a broken block stops the start-up, naming the block."""
    from search_service.api.runtime import Runtime
    from search_service.db import sql
    from search_service.settings import Settings

    (tmp_path / "engine" / "sql").mkdir(parents=True)
    (tmp_path / "engine" / "sql" / "broken.sql").write_text(
        "-- name: drifted\n-- params: store_id uuid\nSELECT :store_id, :sku\n", encoding="utf-8"
    )
    monkeypatch.setattr(sql, "PACKAGE_ROOT", tmp_path)
    with pytest.raises(SqlBlockError, match=r"drifted.*used but not declared: \['sku'\]"):
        Runtime.build(Settings.from_env({"PLINQY_VECTOR_CACHE_MAX": "0"}))


def test_every_statement_fits_the_prepared_statement_cache() -> None:
    # asyncpg's default (15 KiB) dropped rank_keyword from its cache once comments took it past: every call was
    # parsed and planned again (1 -> 5-10 ms on the probe catalogue), its generic plan never kept
    for file in sql_files():
        for name, stmt in statements(file).items():
            assert len(stmt.sql.encode()) <= CACHEABLE_STATEMENT_BYTES, (file, name)
