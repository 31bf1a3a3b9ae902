"""A version of the stores' places: any statement that adds, removes, moves, activates or deactivates a store bumps it.

The API keeps the active stores' places in memory (engine/store_locator.py) and finds the stores in a radius
there, leaving PostgreSQL only those within a hair of the radius's edge: at 1M products / 10k stores the
radius query read 8,000 store rows and their distances on the spheroid per search (6-14 ms at 20 km). A search
passes the version its copy was taken at; in the search's snapshot a different version means the copy is stale,
and the statement finds the stores itself, as before. One row, bumped once per statement: store writes are rare
(an admin's), so their serialising on this row costs nothing.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE store_geo_version (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            version bigint NOT NULL DEFAULT 1
        );
        INSERT INTO store_geo_version DEFAULT VALUES;
        CREATE FUNCTION store_geo_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE store_geo_version SET version = version + 1;
            RETURN NULL;
        END $$;
        CREATE TRIGGER trg_store_geo_version AFTER INSERT OR DELETE OR UPDATE OF location, is_active ON store
            FOR EACH STATEMENT EXECUTE FUNCTION store_geo_version_bump();
        CREATE TRIGGER trg_store_geo_version_truncate AFTER TRUNCATE ON store
            FOR EACH STATEMENT EXECUTE FUNCTION store_geo_version_bump();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER trg_store_geo_version_truncate ON store;
        DROP TRIGGER trg_store_geo_version ON store;
        DROP FUNCTION store_geo_version_bump();
        DROP TABLE store_geo_version;
        """
    )
