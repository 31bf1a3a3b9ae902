"""What every schema module shares: the metadata (naming convention), enumerations, column helpers."""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

EMBEDDING_DIM = 384

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

USER_ROLES = ("admin", "store_owner", "store_staff", "customer")
POS_SOURCES = ("lightspeed", "vend", "erply", "shopify_pos", "csv", "webhook")
# Where an import batch came from (migration 0006): the write API, CSV, signed webhooks, the POS connectors.
IngestSource = Literal["api", "csv", "webhook", "lightspeed-r", "lightspeed-x", "erply", "shopify"]
INGEST_SOURCES: tuple[IngestSource, ...] = get_args(IngestSource)  # the API's enum too (ImportStatus.source)
# The POS connectors: their rows are a program's (a price's lone point is a decimal point, ingest/rows.validate).
CONNECTOR_SOURCES = ("lightspeed-r", "lightspeed-x", "erply", "shopify")
# What an ingest connection is (the sources that deliver on their own: webhooks and the POS connectors).
CONNECTION_SOURCES = ("webhook", *CONNECTOR_SOURCES)
# receiving: an upload is still arriving (aborted if it never completes); pending: stored whole, waits for the
# mapping; processing: a worker holds its lease; completed: every row ended mapped/stale/duplicate/rejected.
BatchStatus = Literal["receiving", "pending", "processing", "completed", "failed", "aborted"]
BATCH_STATUSES: tuple[BatchStatus, ...] = get_args(BatchStatus)
RAW_ROW_STATUSES = ("pending", "mapped", "stale", "duplicate", "rejected")
TASK_STATUSES = ("pending", "running", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _uuid_pk() -> Column[object]:
    return Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def _bigint_pk() -> Column[object]:
    return Column("id", BigInteger, Identity(always=False), primary_key=True)


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]
