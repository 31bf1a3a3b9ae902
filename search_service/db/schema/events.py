"""Listing audit and events: history, the re-index queue, inventory events, store webhooks and their outbox."""

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
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from search_service.db.schema.base import (
    _bigint_pk,
    _in,
    _timestamps,
    _uuid_pk,
    metadata,
)

# Audit rows outlive the listing they describe, so they hold ids without foreign keys.
history_store_product = Table(
    "history_store_product",
    metadata,
    _bigint_pk(),
    Column("store_product_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("product_master_id", UUID(as_uuid=True), nullable=False),
    Column("operation", Text, nullable=False),
    Column("old_row", JSONB),
    Column("new_row", JSONB),
    Column("changed_by", Text, nullable=False, server_default=text("current_user")),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("operation", ("INSERT", "UPDATE", "DELETE")), name="operation"),
)


search_index_queue = Table(
    "search_index_queue",
    metadata,
    _bigint_pk(),
    Column("entity_type", Text, nullable=False),
    Column("entity_id", UUID(as_uuid=True), nullable=False),
    Column("operation", Text, nullable=False),
    Column("enqueued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("processed_at", DateTime(timezone=True)),
    CheckConstraint(_in("entity_type", ("store_product", "product_master", "store")), name="entity_type"),
    CheckConstraint(_in("operation", ("INSERT", "UPDATE", "DELETE")), name="operation"),
    Index("ix_search_index_queue_unprocessed", "id", postgresql_where=text("processed_at IS NULL")),
)


inventory_event = Table(
    "inventory_event",
    metadata,
    _bigint_pk(),
    Column("store_product_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("product_master_id", UUID(as_uuid=True), nullable=False),
    Column("old_quantity", Integer),
    Column("new_quantity", Integer),
    Column("delta", Integer, nullable=False),
    Column("reason", Text, nullable=False, server_default="update"),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


store_webhook = Table(
    "store_webhook",
    metadata,
    _uuid_pk(),
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", Text),
    Column("events", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("failure_count", Integer, nullable=False, server_default=text("0")),
    Column("last_delivery_at", DateTime(timezone=True)),
    *_timestamps(),
    # Migration 0007 (events): why a subscription was switched off, and since when its deliveries have failed
    # without a success in between (24 hours of that disables it). `secret` holds the SecretBox token.
    Column("disabled_reason", Text),
    Column("failing_since", DateTime(timezone=True)),
    # Migration 0040: after a rotation the old secret's token, which also signs deliveries until the time given.
    Column("previous_secret", Text),
    Column("previous_secret_until", DateTime(timezone=True)),
    CheckConstraint("url ~ '^https?://'", name="url"),
    CheckConstraint("failure_count >= 0", name="failure_count"),
)


WEBHOOK_DELIVERY_STATUSES = ("pending", "retrying", "delivered", "failed")


# The next event number of each store (migration 0007). No foreign key: a store's deletion cascades into its
# listings, whose listing.deleted events still take a number.
webhook_store_seq = Table(
    "webhook_store_seq",
    metadata,
    Column("store_id", UUID(as_uuid=True), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, server_default=text("0")),
)


# Each subscription's deliveries numbered 1, 2, 3… (its body's `sequence`; migration 0027), locked like the store's.
webhook_subscription_seq = Table(
    "webhook_subscription_seq",
    metadata,
    Column("webhook_id", UUID(as_uuid=True), ForeignKey("store_webhook.id", ondelete="CASCADE"), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, server_default=text("0")),
)


# The outbox: written by triggers in the transaction of the change itself (migration 0007).
webhook_event = Table(
    "webhook_event",
    metadata,
    _bigint_pk(),
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    # The change's statement time, the payload's occurred_at too: the body's `timestamp` (migration 0044).
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("statement_timestamp()")),
    UniqueConstraint("store_id", "seq", name="uq_webhook_event_store_id_seq"),
    Index("ix_webhook_event_created_at", "created_at"),
)


# One row per event and subscription; the dispatchers' queue (SKIP LOCKED claims, leases, fenced results).
webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    _bigint_pk(),
    Column("event_id", BigInteger, ForeignKey("webhook_event.id", ondelete="CASCADE"), nullable=False, index=True),
    Column(
        "webhook_id", UUID(as_uuid=True), ForeignKey("store_webhook.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("message_id", Text, nullable=False),  # the webhook-id header: the same on every attempt
    Column("sequence", BigInteger),  # the subscription's number of it (NULL: a ping, or fanned out before 0027)
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("last_url", Text),  # where the last attempt was sent (the subscription's URL may change since)
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
    CheckConstraint("attempts >= 0", name="attempts"),
    Index(
        "ix_webhook_delivery_due",
        "next_attempt_at",
        "id",
        postgresql_where=text("status IN ('pending', 'retrying')"),
    ),
    Index("ix_webhook_delivery_failed", "id", postgresql_where=text("status = 'failed'")),
)
