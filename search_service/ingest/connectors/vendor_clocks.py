"""A vendor's times as a row's clocks: a Unix time as `updated_at` (Erply), a stock time as `version`.

A time that cannot be a clock refuses its row alone, with the reason, as ingest refuses such an `updated_at`: one
that raised failed every poll of the connection at its page, and a stock time dropped applied its level unclocked,
over a newer one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from search_service.ingest.connectors.common import Row, compact, to_decimal
from search_service.ingest.rows import CLOCK_AHEAD_MAX
from search_service.ingest.sent_values import as_sent


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
    """A stock row's ordering key: the vendor's stock timestamp in epoch milliseconds, sent as `version`; None when
    none is sent or it does not read (`clocked_level` refuses that row).

    Catalogue rows order by `updated_at` and stock rows by `version`, two independent clocks per listing: a product
    edit is never dropped as older than a later stock move (or the reverse), yet an old stock event after a newer
    one is stale.
    """
    if _unsent(stamp):
        return None
    try:
        when = datetime.fromisoformat(str(stamp).strip().replace("Z", "+00:00"))  # as ingest reads `updated_at`
        return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
    except (ValueError, OverflowError):
        return None


def clocked_level(row: Row, stamp: Any) -> Row:
    """A stock row with its stock clock (`version`) from `stamp` (none without one); refused with its reason
    (`_error`) when the stamp cannot be that clock, as ingest refuses such an `updated_at`: to ingest a version is
    only a number, and a level whose stamp did not read (`yesterday`, a lowercase `z`) applied with none, over a
    newer level; one before 1970 was refused as a negative `version` the sender never sent; one from 2999 made
    every later level of the listing stale for good."""
    version = stock_clock(stamp)
    if why := _not_a_clock(stamp, version):
        return {**compact(row), "_error": f"the stock time {as_sent(stamp)} {why}"}
    return compact({**row, "version": version})


def _unsent(stamp: Any) -> bool:
    return stamp is None or not str(stamp).strip()


def _not_a_clock(stamp: Any, version: int | None) -> str | None:
    if version is None:
        return None if _unsent(stamp) else "is not an ISO-8601 time"
    if version < 0:
        return "is before 1970: a clock that was never set"
    if version > (time.time() + CLOCK_AHEAD_MAX.total_seconds()) * 1000:
        return "is more than a day ahead of this server's clock: check the sender's clock"
    return None
