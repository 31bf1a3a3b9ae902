"""Rows of a large array gathered a chunk at a time into buffers the process keeps.

A gather of a whole subset at once (136k int8 rows of a 1M generation: a 52 MB array) writes fresh pages each
time, and a page fault costs ~2 µs on this virtual machine: the gather took about twice as long as copying the
rows. Chunks of GATHER_ROWS rows go into the same few MiB, call after call, and are scored before the next. A
random row costs ~80 ns (the gather is bound by memory latency: 136k of 1M rows ~11 ms), so a lone search splits
a large subset between threads (quantizer.py), each gathering into a buffer of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

GATHER_ROWS = 8192  # 3 MiB of int8 rows of 384 a buffer; as many buffers as gathers ever ran at once

_free_buffers: list[np.ndarray] = []  # kept for the process's life, lent to one gather at a time
_lock = threading.Lock()


@contextmanager
def _buffer(row_shape: tuple[int, ...], dtype: np.dtype) -> Iterator[np.ndarray]:
    with _lock:
        fits = [i for i, b in enumerate(_free_buffers) if b.shape[1:] == row_shape and b.dtype == dtype]
        buffer = _free_buffers.pop(fits[0]) if fits else None
    if buffer is None:
        buffer = np.empty((GATHER_ROWS, *row_shape), dtype=dtype)
    try:
        yield buffer
    finally:
        with _lock:
            _free_buffers.append(buffer)


def gathered(source: np.ndarray, rows: np.ndarray) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """(a slice of `rows`, its row numbers, those rows of `source`), a chunk at a time. Each chunk lives in a
    buffer lent to this gather and is overwritten by the next one: use it before asking for the next."""
    array = np.asarray(source)  # a memmap's rows as a plain array (np.memmap's own indexing costs more)
    rows = np.asarray(rows, dtype=np.intp)
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= len(array)):
        raise IndexError(f"rows outside 0..{len(array) - 1}")
    with _buffer(array.shape[1:], array.dtype) as buffer:
        for start in range(0, len(rows), len(buffer)):
            part = slice(start, min(start + len(buffer), len(rows)))
            chunk = buffer[: part.stop - start]
            at = rows[part]
            # checked above; mode="raise" would gather into a temporary array first, the fresh pages again
            np.take(array, at, axis=0, out=chunk, mode="clip")
            yield part, at, chunk
