"""A stopping server answers what it was already sent.

uvicorn's shutdown closes its listening sockets, then closes every connection whose request it has not started
(`cycle is None`). Connections the kernel had queued but the worker not yet accepted were reset with the listener,
and accepted ones whose bytes the event loop had not read yet were closed with a request unread (a reset too): with
`serve --workers 3` under load, 5-9 of 40 searches sent before a SIGTERM got no answer, logged nowhere. Before
that shutdown the queue is taken and the bytes read, so those requests are served like the others in flight.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterable

# Long enough for one pass of the event loop to read what the kernel holds (it is there already), short against
# the stop's budget.
READ_PAUSE_S = 0.05


async def take_waiting_connections(servers: Iterable[asyncio.Server], protocol: Callable[[], asyncio.Protocol]) -> int:
    """Accept every connection waiting in the listeners' queues and hand each to `protocol`; returns how many."""
    loop = asyncio.get_running_loop()
    taken = 0
    for server in servers:
        for listener in server.sockets:
            with socket.socket(fileno=os.dup(listener.fileno())) as sock:  # a second descriptor of the listener
                while True:
                    try:
                        conn, _ = sock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # the listener is gone or failing: nothing more to take
                        break
                    conn.setblocking(False)
                    await loop.connect_accepted_socket(protocol, conn)
                    taken += 1
    await asyncio.sleep(READ_PAUSE_S)  # the requests of the connections accepted meanwhile are read, and started
    return taken
