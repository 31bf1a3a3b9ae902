"""Which database errors are the database's as a whole (an outage), not a task's own fault.

A disk full (class 53), a shutdown, a cancel or a statement timeout (57), an I/O error (58), a lost connection (08,
or none: the server never answered) and a read-only server (25006: a failover's standby) fail every task alike for
as long as they last; charging attempts for them turned a minute's refusal into dead letters for a whole queue.
"""

from __future__ import annotations

import psycopg

OUTAGE_CLASSES = frozenset({"08", "53", "57", "58"})
OUTAGE_STATES = frozenset({"25006"})  # read_only_sql_transaction


def is_database_outage(exc: BaseException) -> bool:
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # no answer from the server: the connection broke
        return isinstance(exc, psycopg.OperationalError)
    return state[:2] in OUTAGE_CLASSES or state in OUTAGE_STATES
