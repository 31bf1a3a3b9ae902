"""CPU work sized by a request's body, run off the event loop once the body is large.

A large JSON body's checks (bodies.py: its repeated keys, underflowing numbers, its JSON types) and a large signed
delivery's verification and reading (the source's handler: signature, JSON, rows) took the API worker's event loop
for tens to hundreds of milliseconds, and every search the process was serving waited for them. From OFF_LOOP_BYTES
on they run in a worker thread (anyio's pool), the loop serving other requests meanwhile: the work holds the GIL,
but the interpreter hands it back every few milliseconds, where on the loop nothing else ran until it ended. A
smaller body stays on the loop, held for under a millisecond (64 KiB: 0.3 ms of a batch's checks, 0.8 ms of a
delivery's reading), where the hop (0.04 ms on an idle machine, more under load) would add a sizable share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")

OFF_LOOP_BYTES = 64 * 1024


async def sized_work(size: int, work: Callable[..., T], *args: object) -> T:
    """`work(*args)`, in a worker thread when `size` (the body's bytes) is at least OFF_LOOP_BYTES; its exception
    as raised."""
    if size < OFF_LOOP_BYTES:
        return work(*args)
    return await anyio.to_thread.run_sync(work, *args)
