"""The vector copy's full load as one binary COPY, decoded by numpy: no Python object per row.

Read row by row through a cursor (an asyncpg Record, a pgvector object and a datetime per product), 1M vectors
took over 80 s of a worker's start-up on the 2-core machine. COPY's binary rows of (uuid, vector, timestamptz)
have one size (`vectors_all_binary` turns a NULL stamp into -infinity), so each chunk of them is one numpy
structured array: ids as the copy's keys (their 16 bytes), vectors from big-endian float4, stamps from
PostgreSQL's microseconds since 2000 to the copy's since 1970.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from search_service.db.sql import statement
from search_service.engine.keyindex import KeyIndex
from search_service.engine.vector_view import NO_STAMP, CopyView

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = len(SIGNATURE) + 8  # flags and header-extension length, both int32 0 here
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in µs since 1970-01-01
LOAD_TIMEOUT_S = 3600.0  # the whole COPY, client side (1M vectors: ~10 s)


def row_dtype(dim: int) -> np.dtype:
    return np.dtype(
        [
            ("fields", ">i2"),
            ("id_size", ">i4"),
            ("id", ">u8", (2,)),
            ("vector_size", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vector", ">f4", (dim,)),
            ("stamp_size", ">i4"),
            ("stamp", ">i8"),
        ]
    )


class BinaryRows:
    """COPY's output, chunk by chunk, into a view: every `batch` complete rows are decoded and applied."""

    def __init__(self, view: CopyView, dim: int, batch: int) -> None:
        self.view, self.dim, self.batch = view, dim, batch
        self.dtype = row_dtype(dim)
        self.buffer = bytearray()
        self.header_read = False
        self.rows = 0

    async def __call__(self, chunk: bytes) -> None:
        self.buffer += chunk
        if not self.header_read and len(self.buffer) >= HEADER:
            if bytes(self.buffer[: len(SIGNATURE)]) != SIGNATURE:
                raise ValueError("not a binary COPY stream")
            del self.buffer[:HEADER]
            self.header_read = True
        if self.header_read and len(self.buffer) >= self.batch * self.dtype.itemsize:
            self._decode()

    def finish(self) -> int:
        """Decode the rows left; returns how many were loaded."""
        self._decode()
        if bytes(self.buffer) != TRAILER:
            raise ValueError(f"a binary COPY row of an unexpected size (vectors of {self.dim} dimensions expected)")
        return self.rows

    def _decode(self) -> None:
        count = len(self.buffer) // self.dtype.itemsize
        if count == 0:
            return
        rows = np.frombuffer(self.buffer, dtype=self.dtype, count=count)
        expected = (3, 16, 4 + 4 * self.dim, self.dim, 8)
        for name, want in zip(("fields", "id_size", "vector_size", "dim", "stamp_size"), expected, strict=True):
            if not np.all(rows[name] == want):
                raise ValueError(f"a binary COPY row of an unexpected shape ({name}: {want} expected)")
        stamps = rows["stamp"].astype(np.int64)
        stamps = np.where(stamps == NO_STAMP, NO_STAMP, stamps + PG_EPOCH_US)
        keys, vectors = rows["id"].astype(np.uint64), rows["vector"].astype(np.float32)
        self.view.apply_arrays(keys, vectors, stamps, self.dim, fresh=True)
        self.rows += count
        del rows
        del self.buffer[: count * self.dtype.itemsize]


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc (elsewhere the allocator keeps its own policy); loaded once."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
LARGE_ALLOCATION = 128 * 1024  # glibc's default threshold, kept fixed
REUSED_ALLOCATION = 32 * 1024 * 1024  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)


def return_large_frees() -> None:
    """Serve every allocation of 128 KiB or more from its own mapping, unmapped when freed (glibc's mallopt
    M_MMAP_THRESHOLD, which also stops glibc from raising the threshold after each large free, up to 32 MiB).
    With the rising threshold a search's transient arrays (at 1M rows, 4 MiB of bounds a query and the
    kernel's products) came from the heap of whichever thread ranked them and stayed resident there: a worker
    held ~110-140 MiB more private memory after a load at 1M than before it. The cost: their pages are faulted
    in afresh each time (~1-2 ms of CPU a batch of queries at 1M rows, against a ~40 ms scan)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION)


def reuse_large_frees() -> None:
    """The opposite, for a process that exits after one load (the generation writer): arrays up to 32 MiB (glibc's
    highest threshold) come from the heap and are reused from it, not mapped and faulted in afresh each time (~2 µs a
    page here: a 5,000-vector batch's arrays cost more to fault in than to compute)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, REUSED_ALLOCATION)
        libc.mallopt(M_TRIM_THRESHOLD, 2 * REUSED_ALLOCATION)  # nor is the heap's top handed back after each


@dataclass
class IdleTrim:
    """When to hand the heap's free pages back (`release_freed_memory`): once no work has started since the last
    check and none is under way, after work (`calls`: work started so far, ever; `busy`: work under way). With large
    arrays outside the heap (`return_large_frees`) a burst of searches still leaves some behind (~47 MiB a
    worker after a load at 1M, returned by a trim); trimmed only when idle, so that searches seldom meet it and
    pages a busy process reuses are not given back only to be faulted in again."""

    seen: int = 0  # `calls` at the last check
    trimmed: int = 0  # `calls` at the last trim

    def due(self, calls: int, busy: bool) -> bool:
        idle = calls == self.seen and not busy
        self.seen = calls
        if idle and calls != self.trimmed:
            self.trimmed = calls
            return True
        return False


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim): the process that loaded the
    copy and wrote it as a generation keeps only the mapping, not the heap the load grew."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


async def load_all(conn: Any, view: CopyView, dim: int, batch: int) -> int:
    """Every stored vector into the (empty) `view`, in the caller's transaction; returns how many."""
    sink = BinaryRows(view, dim, batch)
    await conn.execute(statement("engine/vectors", "load_without_timeout").sql)
    # Room for them at once: grown step by step (x1.25), the arrays were copied ~30 times (20 of 54 s at 1M).
    estimate = await conn.fetchval(statement("engine/vectors", "vector_rows_estimate").sql)
    view.reserve(view.n + int(estimate * 1.02) + 1024, dim)
    # Nor the pool's client-side command_timeout (asyncpg applies it to a COPY as a whole).
    await conn.copy_from_query(
        statement("engine/vectors", "vectors_all_binary").sql, output=sink, format="binary", timeout=LOAD_TIMEOUT_S
    )
    loaded = sink.finish()
    view.index = KeyIndex.rebuilt(view.key, view.n)
    return loaded
