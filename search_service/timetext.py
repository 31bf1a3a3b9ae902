"""A time as every command prints it: UTC, ISO 8601 with its `Z`, as the API writes times."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(when: datetime) -> str:
    """`when` in UTC with its `Z`, to the second: a time without its zone (the database session's, the terminal's)
    was read in the reader's own zone, hours off."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text_of(epoch_s: float) -> str:
    """An epoch time (a vendor's asked wait, stored as seconds) as utc_text writes it."""
    return utc_text(datetime.fromtimestamp(epoch_s, UTC))
