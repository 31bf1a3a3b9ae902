"""A batch counts the mappings of it that raised apart from its claims.

`batch_crashed` gave a batch up once its `attempts` reached 5, but `attempts` counts every claim, a takeover after a
killed worker included: a batch whose workers were killed a few times was failed at its first error ("mapping
failed 7 times"), with no retry and a pause that grew with the kills. `mapping_failures` counts the errors alone.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 17:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE import_batch ADD COLUMN mapping_failures integer NOT NULL DEFAULT 0")


def downgrade() -> None:
    """For development only: drops each batch's count of failed mappings. Upgrading again resets it to 0: a batch
    that had used up its retries gets them all again. In production, restore a backup instead."""
    op.execute("ALTER TABLE import_batch DROP COLUMN mapping_failures")
