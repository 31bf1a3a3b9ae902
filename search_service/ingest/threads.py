"""A mapping round's per-row CPU work, run in a worker thread once the round is large.

Validating, deciding and encoding a round of 1,000 rows (payloads decoded, text checked, attributes written as
JSON) took the event loop for hundreds of milliseconds: in the API (a listing batch mapped inline) every search of
the process waited. From ROWS_OFF_LOOP rows on the work runs in anyio's worker thread, the loop serving other
requests meanwhile (the work holds the GIL, which the interpreter hands back every few milliseconds). A smaller
round stays on the loop: its work (~20-300 µs a row) costs less than a hop would add (~0.04 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")

ROWS_OFF_LOOP = 32


async def rows_off_loop(rows: int, work: Callable[..., T], *args: object) -> T:
    """`work(*args)`, in a worker thread for `rows` of ROWS_OFF_LOOP or more; its exception as raised."""
    return work(*args) if rows < ROWS_OFF_LOOP else await anyio.to_thread.run_sync(work, *args)
