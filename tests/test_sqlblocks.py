"""The SQL registry: named parameters, header/body agreement checked at load, fragments, both drivers' forms."""

from __future__ import annotations

import pytest

from embeddings.sqlblocks import SqlBlockError, parse_statements

GOOD = """
-- fragment: price_filter
-- params: min_price numeric|null, max_price numeric|null
(:min_price::numeric IS NULL OR sp.price >= :min_price::numeric)
  AND (:max_price::numeric IS NULL OR sp.price <= :max_price::numeric)

-- name: listings
-- params: store_ids uuid[], min_price numeric|null (inclusive, in the store's currency),
--         max_price numeric|null, pattern text
-- A comment that mentions :not_a_param is not a parameter.
SELECT '{}'::bigint[] AS empty, '10:30' AS t, 100 % 7 AS m
FROM store_product sp
WHERE sp.store_id = ANY(:store_ids::uuid[]) AND {{ price_filter }} AND sp.sku LIKE :pattern;

-- name: none_here
-- params: none
SELECT 1
"""


def test_named_parameters_render_for_both_drivers() -> None:
    statements = parse_statements(GOOD)
    stmt = statements["listings"]
    assert stmt.params == ("store_ids", "min_price", "max_price", "pattern")
    assert "ANY($1::uuid[])" in stmt.sql and "$2::numeric" in stmt.sql and "$3::numeric" in stmt.sql
    assert "LIKE $4" in stmt.sql and "'{}'::bigint[]" in stmt.sql and "'10:30'" in stmt.sql
    assert "%(store_ids)s::uuid[]" in stmt.psycopg and "100 %% 7" in stmt.psycopg
    assert stmt.bind(pattern="a%", max_price=None, min_price=1, store_ids=[]) == ([], 1, None, "a%")
    assert statements["none_here"].params == ()


def test_bind_refuses_missing_and_unknown_names() -> None:
    stmt = parse_statements(GOOD)["listings"]
    with pytest.raises(TypeError, match="missing parameters \\['pattern'\\]"):
        stmt.bind(store_ids=[], min_price=None, max_price=None)
    with pytest.raises(TypeError, match="unknown parameters \\['brand'\\]"):
        stmt.bind(store_ids=[], min_price=None, max_price=None, pattern="", brand="x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: a\n-- params: x int\nSELECT :x + :y", "used but not declared: \\['y'\\]"),
        ("-- name: a\n-- params: x int, y int\nSELECT :x", "declared but not used: \\['y'\\]"),
        ("-- name: a\nSELECT 1", "no '-- params:' line"),
        ("-- name: a\n-- params: none\n", "is empty"),
        ("-- name: a\n-- params: none\nSELECT 1\n-- name: a\n-- params: none\nSELECT 2", "duplicate"),
        ("-- name: a\n-- params: none\nSELECT {{ nope }}", "unknown fragment 'nope'"),
    ],
)
def test_a_header_that_disagrees_with_its_body_fails_at_load(text: str, message: str) -> None:
    with pytest.raises(SqlBlockError, match=message):
        parse_statements(text)
