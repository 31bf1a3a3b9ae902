"""Keeping a mapped generation's pages in memory (vector_files.py).

A generation's arrays are file mappings: their pages live in the page cache, and the kernel may drop any of them
that lies idle, not only under memory pressure. The benchmark machine runs DAMON with a `pageout` scheme (pages
not accessed for ~60 s are paged out), so a row a search re-scores, or a candidate's int8 row, could cost a read
from disk where the private float32 copy of earlier sessions, anonymous memory on a machine without swap, never
could. Each process that maps a generation therefore locks its pages as they are faulted in (`mlock2` with
MLOCK_ONFAULT: a plain `mlock` of the copy-on-write mappings would fault every page in for writing, a private copy
of the whole matrix in every process) and then faults them all in for reading (MADV_POPULATE_READ), so the first
searches do not pay for it either. The pages stay shared between the processes (page cache, counted once in their
PSS); munmap unlocks them when a process drops the generation.

Locking needs CAP_IPC_LOCK or an RLIMIT_MEMLOCK above the generation's size (1.1 GiB at 1M products; the default
for other users is often 8 MiB): without it the pages are still faulted in, and a warning says how to allow it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import mmap
import os
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)

MLOCK_ONFAULT = 1  # mlock2's flag (linux/mman.h)
MADV_POPULATE_READ = 22  # Linux 5.14 (not in Python 3.11's mmap module)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mlock2.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.munlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not Linux with glibc: the kernel keeps its own policy
        return None


def _span(array: np.ndarray) -> tuple[int, int]:
    """(page-aligned start, length to the array's end) of an array's memory."""
    start = array.ctypes.data
    aligned = start - start % mmap.PAGESIZE
    return aligned, array.nbytes + (start - aligned)


def keep_resident(arrays: Iterable[np.ndarray]) -> bool:
    """Lock these mapped arrays' pages as they are faulted in, then fault them in; True when locked. On failure
    (the limit, an old kernel) nothing stays locked and the pages are faulted in all the same."""
    libc = _libc()
    parts = [a for a in arrays if a.nbytes]
    if libc is None or not parts:
        return False
    locked: list[tuple[int, int]] = []
    error = 0
    for part in parts:
        span = _span(part)
        if libc.mlock2(span[0], span[1], MLOCK_ONFAULT) != 0:
            error = ctypes.get_errno()
            break
        locked.append(span)
    if error:
        for span in locked:
            libc.munlock(*span)
        _warn_once(error)
    for part in parts:
        libc.madvise(*_span(part), MADV_POPULATE_READ)  # EINVAL before Linux 5.14: they fault in as read
    return not error


@functools.cache
def _warn_once(error: int) -> None:
    log.warning(
        "vector generation: pages not locked in memory (%s): the kernel may page out rows idle for a while; "
        "allow it with CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK (systemd LimitMEMLOCK=infinity, docker "
        "--ulimit memlock=-1)",
        os.strerror(error),
    )
