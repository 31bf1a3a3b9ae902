"""A mapped generation's pages are kept in memory (`engine/resident.py`): locked as they fault in and faulted in at
once, without a private copy of a copy-on-write mapping (a plain mlock would write-fault every page)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import numpy as np

from search_service.engine import resident, vector_files


def mapping_kib(path: Path) -> dict[str, int]:
    """Rss, Locked and Anonymous (KiB) of this process's mappings of `path` (/proc/self/smaps)."""
    totals = {"Rss": 0, "Locked": 0, "Anonymous": 0}
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            inside = fields[-1] == str(path)
        elif inside and fields[0].rstrip(":") in totals:
            totals[fields[0].rstrip(":")] += int(fields[1])
    return totals


def can_lock(nbytes: int) -> bool:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return os.geteuid() == 0 or soft == resource.RLIM_INFINITY or soft >= nbytes


def test_a_copy_on_write_mapping_is_locked_and_faulted_in_without_a_private_copy(tmp_path: Path) -> None:
    path = tmp_path / "matrix.npy"
    written = np.random.default_rng(0).standard_normal((8192, 384)).astype(np.float16)  # 6 MiB
    np.save(path, written)
    os.posix_fadvise(os.open(path, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)  # not in the page cache now
    mapped = np.load(path, mmap_mode="c")  # as vector_files maps a growing array
    before = mapping_kib(path)
    locked = resident.keep_resident([mapped[:6000]])  # the rows written; the rest as a sparse tail would be
    after = mapping_kib(path)
    want_kib = mapped[:6000].nbytes // 1024
    assert before["Rss"] < want_kib // 2  # not faulted in by the mapping itself
    assert after["Rss"] >= want_kib  # faulted in at once
    assert after["Anonymous"] == 0  # the page cache's pages, shared: no private copy
    if can_lock(mapped.nbytes):
        assert locked and after["Locked"] >= want_kib
    else:  # no CAP_IPC_LOCK and a small RLIMIT_MEMLOCK: nothing stays locked
        assert not locked and after["Locked"] == 0
    assert np.array_equal(mapped, written)
    mapped[0, 0] = 1.0  # still copy-on-write: a write copies its page only
    assert 0 < mapping_kib(path)["Anonymous"] <= 8


def test_an_opened_generation_keeps_its_rows_resident(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n, dim, capacity = 3000, 384, 5000
    meta = vector_files.GenerationMeta(0, n, dim, None, None, 1.0)
    keys = np.sort(rng.integers(1, 2**63, size=(n, 2), dtype=np.uint64), axis=0)
    arrays: dict[str, np.ndarray | vector_files.Filled] = {
        "matrix": rng.standard_normal((n, dim)).astype(np.float32),
        "key": keys,
        "stamp": np.zeros(n, dtype=np.int64),
        "rows8": rng.integers(1, 128, size=(n, dim), dtype=np.uint8),
        "offset": np.zeros(n, dtype=np.int32),
        "scale": np.ones(n, dtype=np.float32),
        "error": np.zeros(n, dtype=np.float32),
        "order": np.arange(n, dtype=np.int64),
        "first": np.zeros(1, dtype=np.uint64),
    }
    generation = vector_files.write_generation(tmp_path, meta, arrays, capacity=capacity)
    matrix = mapping_kib(generation.path / "matrix.npy")
    rows8 = mapping_kib(generation.path / "rows8.npy")
    assert matrix["Rss"] >= n * dim * 2 // 1024 and rows8["Rss"] >= n * dim // 1024
    assert matrix["Rss"] < capacity * dim * 2 // 1024  # the sparse tail is left alone
    assert matrix["Anonymous"] == 0 and rows8["Anonymous"] == 0
    if can_lock(n * dim * 3):
        assert matrix["Locked"] >= n * dim * 2 // 1024 and rows8["Locked"] >= n * dim // 1024
