"""Per-key rate limit shared by every API process: one token bucket per API key in an UNLOGGED table.

`serve --workers N` ran one in-memory bucket per process, so a key could reach N times its rate. The bucket now
lives in PostgreSQL and is taken in the statement that authenticates the key (one upsert, no extra round trip).
UNLOGGED: no WAL for a row that changes on every write request; after a crash the table is empty and every key
starts with a full bucket, which is what a restart did before.

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-03 09:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key_rate",
        sa.Column("key_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("tokens", sa.Float(precision=53), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("stamp", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_key.id"], name=op.f("fk_api_key_rate_key_id_api_key"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_key_rate")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("api_key_rate")
