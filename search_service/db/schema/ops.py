"""Operations: the embedding queue (ai_task), feature flags, the system log, the listings' change log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT, JSONB, UUID

from search_service.db.schema.base import (
    TASK_STATUSES,
    _bigint_pk,
    _in,
    _timestamps,
    metadata,
)

ai_task = Table(
    "ai_task",
    metadata,
    _bigint_pk(),
    # SET NULL, not CASCADE: a task whose product vanished completes as a recorded no-op.
    Column("product_master_id", UUID(as_uuid=True), ForeignKey("product_master.id", ondelete="SET NULL")),
    Column("kind", Text, nullable=False, server_default="embed_product"),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("priority", SmallInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("5")),
    Column("run_after", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("result", Text),
    *_timestamps(),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint(_in("status", TASK_STATUSES), name="status"),
    CheckConstraint("attempts >= 0 AND max_attempts > 0", name="attempts"),
    CheckConstraint("status <> 'running' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)", name="lease"),
    Index(
        "uq_ai_task_one_pending_per_product",
        "product_master_id",
        unique=True,
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_ai_task_claim",
        text("priority DESC"),
        "run_after",
        "id",
        postgresql_where=text("status = 'pending'"),
    ),
    Index("ix_ai_task_lease", "locked_until", postgresql_where=text("status = 'running'")),
    Index("ix_ai_task_product_master_id", "product_master_id"),
    Index("ix_ai_task_failed", "id", postgresql_where=text("status = 'failed'")),
)


feature_flag = Table(
    "feature_flag",
    metadata,
    _bigint_pk(),
    Column("key", CITEXT, nullable=False, unique=True),
    Column("description", Text),
    Column("is_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("rollout_percent", SmallInteger, nullable=False, server_default=text("100")),
    Column("payload", JSONB),
    *_timestamps(),
    CheckConstraint("rollout_percent BETWEEN 0 AND 100", name="rollout_percent"),
)


system_log = Table(
    "system_log",
    metadata,
    _bigint_pk(),
    Column("level", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("context", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("level", ("debug", "info", "warning", "error", "critical")), name="level"),
    Index("ix_system_log_created_at", "created_at"),
)


# The listings whose sellable state may have changed, for the API's in-memory candidate sets (migration 0012:
# written by statement triggers on store_product; engine/candidates.py).
listing_change = Table(
    "listing_change",
    metadata,
    Column("seq", BigInteger, primary_key=True),  # GENERATED ALWAYS AS IDENTITY in the migration
    Column("xid", BigInteger, nullable=False),  # the writing top-level transaction (pg_current_xact_id)
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("product_master_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Index("ix_listing_change_xid", "xid"),
)

# The highest listing_change.seq pruned (prune_listing_changes): a reader behind it rebuilds its sets.
listing_change_pruned = Table(
    "listing_change_pruned",
    metadata,
    Column("one", Boolean, primary_key=True, server_default=text("true")),
    Column("seq", BigInteger, nullable=False),
    CheckConstraint("one", name="one"),
)

# The stores' places' version (migration 0019): bumped by every statement that adds, removes, moves, activates or
# deactivates a store, and by no other (0053); the API's in-memory store places (engine/store_locator.py) are
# current while it holds.
store_geo_version = Table(
    "store_geo_version",
    metadata,
    Column("only_row", Boolean, primary_key=True, server_default=text("true")),
    Column("version", BigInteger, nullable=False, server_default=text("1")),
    CheckConstraint("only_row", name="only_row"),
)
