"""A vendor's times as a row's clocks: a Unix time as `updated_at` (Erply), a stock time as `version`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from search_service.ingest.connectors.common import Row, compact, to_decimal
from search_service.ingest.rows import CLOCK_AHEAD_MAX


def unix_clock(seconds: Any, name: str) -> Row:
    """`updated_at` from a vendor's Unix time in seconds (`name`: its field); {} when none is sent (text, 0 or
    less). One past the year 9999 (sent in milliseconds, 1e20) refuses its row alone, naming both: it raised, and
    every sync of the connection failed at that page for good, its other rows unwritten."""
    number = to_decimal(seconds)
    if number is None or number <= 0:
        return {}
    try:
        return {"updated_at": datetime.fromtimestamp(float(number), UTC).isoformat()}
    except (ValueError, OverflowError, OSError):  # past the year 9999, or past the platform's time_t
        return {"_error": f"updated_at ({name} {str(seconds)[:40]}) is past the year 9999 as a Unix time in seconds"}


def stock_clock(stamp: Any) -> int | None:
    """A stock row's ordering key: the vendor's stock timestamp in epoch milliseconds, sent as `version`.

    Catalogue rows order by `updated_at` and stock rows by `version`, two independent clocks per listing: a product
    edit is never dropped as older than a later stock move (or the reverse), yet an old stock event after a newer
    one is stale.
    """
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def clocked_level(row: Row, stamp: Any) -> Row:
    """A stock row with its stock clock (`version`) from `stamp`; refused with its reason (`_error`) when the stamp
    is more than ingest's bound ahead of this server's clock, as ingest refuses such an `updated_at`: to ingest a
    version is only a number, and one from 2999 made every later level of the listing stale for good."""
    version = stock_clock(stamp)
    if version is not None and version > (time.time() + CLOCK_AHEAD_MAX.total_seconds()) * 1000:
        ahead = f"the stock time {str(stamp)[:40]!r} is more than a day ahead of this server's clock"
        return {**compact(row), "_error": f"{ahead}: check the sender's clock"}
    return compact({**row, "version": version})
