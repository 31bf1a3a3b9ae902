"""A listing write's answer once its batch is committed: a worker applies it, in order, whatever the API answers,
so no database error after the commit may answer 503 "retry" (see docs/ingest.md)."""

from __future__ import annotations

import logging
from types import TracebackType
from uuid import UUID

import asyncpg

from search_service.api import ingest_schemas as S
from search_service.api.errors import TRANSIENT_DB_ERRORS, Accepted, Unavailable
from search_service.ingest.listing_writes import Queued

log = logging.getLogger("search_service.api")

# what a lost, killed, restarted or slow database raises while a committed write's outcome is read
_OUTCOME_UNREAD: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError, Unavailable)
# a write left to the workers, in the words of why: an earlier batch of the store, or its own mapping past the
# statement timeout; None: mapped inline, its answer unread. Each was told "an earlier import or delivery" is
# waiting, though none was (and the last, that it was not applied yet, though it was).
_MESSAGES: dict[Queued | None, str] = {
    "behind": S.QUEUED_MESSAGE, "timed_out": S.TIMED_OUT_MESSAGE, None: S.UNREAD_MESSAGE,
}  # fmt: skip


def queued(batch_id: UUID, why: Queued | None) -> Accepted:
    """202: the write is taken, its outcome at `status_url` (also `Location`). `why`: as the write's Recorded says
    (None: mapped inline, its answer then unread)."""
    url = f"/v1/imports/{batch_id}"
    return Accepted(S.WriteQueued(batch_id, "queued", url, _MESSAGES[why]), url)


class Committed:
    """Around a listing write: once `batch_id` is set (its batch committed), a database error while waiting for
    or reading its outcome, or releasing the connection, answers `queued`. It answered 503 "retry shortly": the
    write was applied anyway seconds later, a retry stored it twice, a client that gave up found it applied."""

    batch_id: UUID | None = None
    why: Queued | None = None  # why it was left to the workers, if it was (listing_writes.Recorded.queued)

    def __enter__(self) -> Committed:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.batch_id is not None and isinstance(exc, _OUTCOME_UNREAD):
            log.warning(
                "listing write %s is committed but its outcome could not be read (%s: %s): answered queued",
                self.batch_id, type(exc).__name__, exc,
            )  # fmt: skip
            raise queued(self.batch_id, self.why) from exc
