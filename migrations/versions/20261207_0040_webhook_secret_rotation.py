"""A webhook's previous secret, valid for a grace period after a rotation (`…/rotate-secret`).

Rotating a secret meant removing the subscription and adding it again: its pending retries were dropped and its
`sequence` restarted at 1. A rotation now keeps the subscription; until `previous_secret_until` each delivery is
signed with the new secret and the previous one (`webhook-signature: v1,<new> v1,<old>`), so a receiver that still
holds the old secret goes on verifying. The column holds a SecretBox token, as `secret` does.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("store_webhook", sa.Column("previous_secret", sa.Text()))
    op.add_column("store_webhook", sa.Column("previous_secret_until", sa.TIMESTAMP(timezone=True)))


def downgrade() -> None:
    op.drop_column("store_webhook", "previous_secret_until")
    op.drop_column("store_webhook", "previous_secret")
