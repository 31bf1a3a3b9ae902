"""The stores' places' version from a sequence, written back if its row is gone.

Migration 0019's counter restarted with its row: a `TRUNCATE … RESTART IDENTITY` of every table (as the benchmark
harness's `wipe` does) left `store_geo_version` empty, so store writes bumped nothing, and a version written again
from 1 could equal the version of an API's copy taken before the wipe. A free-standing sequence never hands out a
number twice (TRUNCATE restarts only the sequences its tables own), and each bump upserts the row.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 20:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = """
CREATE OR REPLACE FUNCTION store_geo_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {body}
    RETURN NULL;
END $$;
"""
COUNTER = "UPDATE store_geo_version SET version = version + 1;"
SEQUENCE = (
    "INSERT INTO store_geo_version (only_row, version) VALUES (true, nextval('store_geo_version_seq'))"
    " ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version;"
)


def upgrade() -> None:
    op.execute(
        "CREATE SEQUENCE store_geo_version_seq;"
        " SELECT setval('store_geo_version_seq', coalesce((SELECT max(version) FROM store_geo_version), 0) + 1);"
    )
    op.execute(BUMP.format(body=SEQUENCE))


def downgrade() -> None:
    op.execute(BUMP.format(body=COUNTER))
    op.execute("DROP SEQUENCE store_geo_version_seq")
