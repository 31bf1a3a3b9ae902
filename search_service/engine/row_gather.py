"""Rows of a large array gathered a chunk at a time into a buffer each thread keeps.

A gather of a whole subset at once (136k int8 rows of a 1M generation: a 52 MB array) writes fresh pages each
time, and a page fault costs ~2 µs on this virtual machine: the gather took about twice as long as copying the
rows. Chunks of GATHER_ROWS rows go into the same few MiB, call after call, and are scored before the next.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

GATHER_ROWS = 8192  # 3 MiB of int8 rows of 384: a buffer per thread that gathers, kept for the process's life

_buffers = threading.local()


def _buffer(row_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    buffer: np.ndarray | None = getattr(_buffers, "rows", None)
    if buffer is None or buffer.shape[1:] != row_shape or buffer.dtype != dtype:
        buffer = np.empty((GATHER_ROWS, *row_shape), dtype=dtype)
        _buffers.rows = buffer
    return buffer


def gathered(source: np.ndarray, rows: np.ndarray) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """(a slice of `rows`, its row numbers, those rows of `source`), a chunk at a time. Each chunk lives in this
    thread's buffer and is overwritten by the next one: use it before asking for the next; never nest two."""
    array = np.asarray(source)  # a memmap's rows as a plain array (np.memmap's own indexing costs more)
    rows = np.asarray(rows, dtype=np.intp)
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= len(array)):
        raise IndexError(f"rows outside 0..{len(array) - 1}")
    buffer = _buffer(array.shape[1:], array.dtype)
    for start in range(0, len(rows), len(buffer)):
        part = slice(start, min(start + len(buffer), len(rows)))
        chunk = buffer[: part.stop - start]
        # checked above; mode="raise" would gather into a temporary array first, the fresh pages again
        at = rows[part]
        np.take(array, at, axis=0, out=chunk, mode="clip")
        yield part, at, chunk
