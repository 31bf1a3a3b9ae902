"""A connection whose server went silent while it owed a reply: a network stall, a partition, a hung proxy. A
connection without a client-side timeout (the API's state loads: api/refresh.py) waited on it for ever.

A timeout per statement would cut a healthy load (a vector copy or a listing-bucket load runs for many seconds at
1M products), so what is bounded is the silence: no byte from the server for `SILENT_REPLY_S` while a reply is owed
(a request sent since the last reply ended, or a reply begun and not ended by ReadyForQuery). A connection
merely idle, or its client busy between statements, owes nothing and is never cut. TCP keepalive (short idle,
interval and count) finds a peer gone from the network sooner; it cannot find a silent peer whose kernel still
answers (a hung proxy), which the watch does. Where the kernel says when data last moved (Linux's TCP_INFO) that
is read, so an event loop held up for a moment does not count as the server's silence; elsewhere, and on a Unix
socket, the bytes the connection has read say it, and only a reply begun can be found silent.

Whether a request went since the last reply ended is the kernel's count of data segments sent, noted as each
reply ends. The kernel's times of the last data sent and received (in jiffies: 4 ms at HZ=250) could not say it:
a statement sent in the tick its predecessor's reply came (the next statement of a refresh) looked sent no later
than the last byte received, owing nothing, and a stall that caught it left its refresher waiting for ever, with
no line logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from search_service.db.faults import DatabaseSilent

SILENT_REPLY_S = 120.0  # a reply owed and no byte for this long: the connection is dropped (a busy server's
# longest pause before a big result's first row is seconds at 1M products)
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 15, 5, 4  # a peer gone: found in ~35 s
READY_FOR_QUERY = b"Z\x00\x00\x00\x05"  # then the transaction status: I, T or E
TCP_INFO_BYTES = 160  # struct tcp_info up to tcpi_data_segs_out (Linux 4.6); an older kernel's is shorter
LAST_DATA_AT = (44, 52)  # struct tcp_info's tcpi_last_data_sent and _recv: ms since data last went, came
NOT_SENT_AT, DATA_SEGS_OUT_AT = 144, 156  # tcpi_notsent_bytes (written, not sent yet), tcpi_data_segs_out


class ReplyTap(asyncio.Protocol):
    """Between a connection's transport and its protocol: notes when the server last sent bytes and whether they
    ended a reply, then hands them on."""

    def __init__(self, protocol: Any, sent: Callable[[], int | None]) -> None:
        self.protocol = protocol
        self.received_at = time.monotonic()
        self.tail = READY_FOR_QUERY + b"I"  # the last bytes received (a message may be split between reads)
        self.sent = sent  # the kernel's count of data segments sent (None: not known)
        self.sent_by_reply_end = sent()  # that count when the last reply ended

    def data_received(self, data: bytes) -> None:
        self.received_at = time.monotonic()
        self.tail = (self.tail + data)[-6:]
        if self.reply_ended():  # before the protocol, which may answer at once
            self.sent_by_reply_end = self.sent()
        self.protocol.data_received(data)

    def reply_ended(self) -> bool:
        return self.tail[:5] == READY_FOR_QUERY and self.tail[5:] in (b"I", b"T", b"E")

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return bool(self.protocol.eof_received()) if hasattr(self.protocol, "eof_received") else None

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()


class SilenceWatch:
    """Drops `conn` when its server stays silent while owing a reply (`guarded`), and says so as DatabaseSilent."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        transport: Any = getattr(conn, "_transport")  # noqa: B009 (asyncpg has no public way to its transport)
        sock = transport.get_extra_info("socket")
        self.tcp = sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)
        self.sock = sock if self.tcp and hasattr(socket, "TCP_INFO") else None
        self.tap = ReplyTap(transport.get_protocol(), self._data_segments_sent)
        transport.set_protocol(self.tap)
        if self.tcp:
            _keep_alive(sock)
        self.dropped_after: float | None = None

    def _data_segments_sent(self) -> int | None:
        if self.sock is None:
            return None
        info = _tcp_info(self.sock)
        return struct.unpack_from("<I", info, DATA_SEGS_OUT_AT)[0] if len(info) >= TCP_INFO_BYTES else None

    def _asked_since_reply(self, info: bytes, sent_later: bool) -> bool:
        """Whether a request went (or waits to go) since the last reply ended. A kernel without the count (before
        Linux 4.6): `sent_later`, its times, which miss a request sent in the tick its predecessor's reply came."""
        ended_at = self.tap.sent_by_reply_end
        if len(info) < TCP_INFO_BYTES or ended_at is None:
            return sent_later
        sent, not_sent = (struct.unpack_from("<I", info, at)[0] for at in (DATA_SEGS_OUT_AT, NOT_SENT_AT))
        return sent != ended_at or not_sent > 0

    def silent_for(self) -> float:
        """How long the server has been silent while owing a reply (0: it owes none)."""
        now = time.monotonic()
        if self.sock is not None:
            info = _tcp_info(self.sock)
            sent_ago, received_ago = (struct.unpack_from("<I", info, at)[0] / 1000 for at in LAST_DATA_AT)
            received_ago = min(received_ago, now - self.tap.received_at)
            owed = self._asked_since_reply(info, sent_ago < received_ago) or not self.tap.reply_ended()
            return min(sent_ago, received_ago) if owed else 0.0
        return 0.0 if self.tap.reply_ended() else now - self.tap.received_at

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, SILENT_REPLY_S / 4))
            silent = self.silent_for()
            if silent > SILENT_REPLY_S:
                self.dropped_after = silent
                self.conn.terminate()
                return

    @contextlib.asynccontextmanager
    async def guarded(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection, watched while the block runs; DatabaseSilent if the watch dropped it."""
        watch = asyncio.create_task(self._watch(), name="plinqy-silence-watch")
        try:
            yield self.conn
        except Exception as exc:
            if self.dropped_after is not None:
                raise DatabaseSilent(
                    f"no answer for {self.dropped_after:.0f} s while a reply was owed (limit {SILENT_REPLY_S:g} s): "
                    "connection dropped"
                ) from exc
            raise
        finally:
            watch.cancel()


def _tcp_info(sock: Any) -> bytes:
    info: bytes = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES)
    return info


def _keep_alive(sock: Any) -> None:
    """TCP keepalive with short timers, where the platform has them (Linux's names; macOS has TCP_KEEPALIVE)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
