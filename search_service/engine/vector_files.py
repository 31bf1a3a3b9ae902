"""The vector copy's generations on disk: one copy per machine, memory-mapped by every API process.

A generation is a directory of .npy arrays and meta.json under `<root>/<database key>/gen-<number>`, written
once into a temporary directory and renamed into place (readers never see a partial one), then mapped by every
worker: the pages live once in the page cache, whichever processes map them. The matrix is stored in float16
(half of float32's pages: 732 MiB at 1M products; the rankings re-score within `ranking.FLOAT16_ERROR` of
float32 and widen their thresholds by it, so the searches stay exact). The matrix, the ids and
their stamps are mapped copy-on-write with room for appended rows (the file's tail is sparse, never read
until written): a process that refreshes rows writes only its own copies of those pages. The int8 codes (as rows:
`rows8`, quantizer.py) and their bounds are mapped read-only; rows changed since are scored in float32
(`vectors.py`). A generation of the older layout (`codes.npy`, a column a row) is not opened: it is loaded anew.

Each process keeps the pages of the generation it maps in memory (`resident.py`: locked as they fault in, then
faulted in): the kernel may otherwise page out rows idle for a while. Older generations are unlinked when a newer
one is written; a process that still maps one keeps its pages
until it drops the mapping (Linux frees an unlinked file's pages with its last mapping).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from search_service.engine.resident import keep_resident
from search_service.run_owner import owned_prefix, remove_abandoned

log = logging.getLogger(__name__)

# Mapped copy-on-write, with room for rows appended after the generation was written.
GROWING = ("matrix", "key", "stamp")
MATRIX_DTYPE = np.float16
FIXED = ("rows8", "offset", "scale", "error", "order", "first")
PREFIX = "gen-"
SHARED_DIR_ENV = "PLINQY_VECTOR_SHARED_DIR"


@dataclass(frozen=True)
class VectorCopyConfig:
    """Where API processes share the vector copy; None: each process holds its own (tests, one-off apps)."""

    shared_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VectorCopyConfig:
        raw = env.get(SHARED_DIR_ENV)
        return cls(shared_dir=Path(raw) if raw else None)


@dataclass(frozen=True)
class GenerationMeta:
    number: int
    rows: int
    dim: int
    watermark: str | None  # isoformat of the highest stamp held
    horizon: str | None  # the write horizon read before the snapshot (see vectors.py)
    rounded_norm_max: float
    origin: str | None = None  # the product_master table it was loaded from (None: written before it was kept)

    def stamp(self, name: str) -> dt.datetime | None:
        value = getattr(self, name)
        return None if value is None else dt.datetime.fromisoformat(value)


@dataclass(frozen=True)
class Filled:
    """An array written in place by `fill` (into the file's mapping: no copy of it in memory). A GROWING one's
    `shape` is its rows', and `fill` gets the mapping's first rows."""

    shape: tuple[int, ...]
    dtype: type
    fill: Callable[[np.ndarray], None]


def gathered(source: np.ndarray, order: np.ndarray, chunk: int = 65536) -> Filled:
    """`source[order]`, written a chunk of rows at a time (1M float32 rows would take 1.5 GB more at once)."""

    def fill(out: np.ndarray) -> None:
        for start in range(0, len(order), chunk):
            out[start : start + chunk] = source[order[start : start + chunk]]

    return Filled((len(order), *source.shape[1:]), source.dtype.type, fill)


@dataclass
class Generation:
    path: Path
    meta: GenerationMeta
    arrays: dict[str, np.ndarray]


def database_dir(root: Path, identity: str) -> Path:
    """The generations of one database (its identity: server, name, oid), under `root`."""
    return root / hashlib.sha256(identity.encode()).hexdigest()[:16]


def acquire(directory: Path, *, blocking: bool = True) -> int | None:
    """An exclusive lock on `directory` across processes (a file descriptor: `os.close` releases it); None when
    not blocking and another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _numbers(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(p.name[len(PREFIX) :]) for p in directory.glob(PREFIX + "*") if p.name[len(PREFIX) :].isdecimal())


def latest_meta(directory: Path) -> tuple[Path, GenerationMeta] | None:
    numbers = _numbers(directory)
    if not numbers:
        return None
    path = directory / f"{PREFIX}{numbers[-1]:08d}"
    try:
        meta = GenerationMeta(**json.loads((path / "meta.json").read_text()))
    except FileNotFoundError:  # unlinked by a newer writer meanwhile
        return None
    return path, meta


def usable_generation(directory: Path, dim: int, newest: dt.datetime | None, origin: str) -> Generation | None:
    """The newest generation mapped, unless none is usable: of another dimension or layout, unlinked meanwhile,
    written from another product_master table (`origin`: a restore recreates it, and rows embedded since would
    pass the stamp check), or newer than the database (`newest`: its highest stamp; a restore)."""
    found = latest_meta(directory)
    if found is None or found[1].dim != dim:
        return None
    if found[1].origin != origin:
        log.warning("vector cache: %s was written from another product_master (restored?): not used", found[0])
        return None
    watermark = found[1].stamp("watermark")
    if watermark is not None and (newest is None or newest < watermark):
        log.warning("vector cache: %s is newer than the database (restored?): not used", found[0])
        return None
    try:
        return open_generation(*found)
    except FileNotFoundError:  # unlinked meanwhile, or of the older layout (`codes.npy`): loaded anew
        return None


def open_generation(path: Path, meta: GenerationMeta) -> Generation:
    """Map a generation: the growing arrays copy-on-write, the rest read-only. FileNotFoundError: unlinked
    meanwhile, or of the older layout."""
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="c") for name in GROWING}
    arrays |= {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in FIXED}
    # the rows written (a growing array's tail is sparse until rows are appended): locked, faulted in
    keep_resident(array[: meta.rows] if name in GROWING else array for name, array in arrays.items())
    return Generation(path, meta, arrays)


def write_generation(
    directory: Path, meta: GenerationMeta, arrays: Mapping[str, np.ndarray | Filled], capacity: int
) -> Generation:
    """Write a generation (numbered past every one there) atomically, drop the older ones, and map it. The
    caller holds `acquire(directory)`. `arrays`: GROWING ones with meta.rows rows, FIXED ones complete."""
    numbers = _numbers(directory)
    meta = GenerationMeta(**{**asdict(meta), "number": (numbers[-1] + 1) if numbers else 1})
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory))
    try:
        for name in GROWING:
            source = arrays[name]
            dtype = MATRIX_DTYPE if name == "matrix" else source.dtype
            out = np.lib.format.open_memmap(
                tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=(capacity, *source.shape[1:])
            )
            if isinstance(source, Filled):
                source.fill(out[: meta.rows])
            else:
                out[: meta.rows] = source[: meta.rows]
            out.flush()
            del out
        for name in FIXED:
            array = arrays[name]
            if isinstance(array, Filled):
                out = np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=array.dtype, shape=array.shape)
                array.fill(out)
                out.flush()
                del out
            else:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
        (tmp / "meta.json").write_text(json.dumps(asdict(meta)))
        path = directory / f"{PREFIX}{meta.number:08d}"
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for number in numbers:  # mapped elsewhere, they live on until unmapped
        shutil.rmtree(directory / f"{PREFIX}{number:08d}", ignore_errors=True)
    return open_generation(path, meta)


@contextlib.contextmanager
def shared_dir_for_run(cache_dir: Path, env: MutableMapping[str, str] | None = None) -> Iterator[Path]:
    """The directory `serve`'s processes share the vector copy in, in `env` (os.environ) for its workers: the
    one PLINQY_VECTOR_SHARED_DIR names (kept: a restart maps its newest generation instead of loading), or a
    fresh one under the cache directory, removed when the run ends (stale vectors of another run are never
    mapped)."""
    env = os.environ if env is None else env
    given = env.get(SHARED_DIR_ENV)
    if given:
        yield Path(given)
        return
    parent = cache_dir / "vector-copy"  # not .cache/vectors: the benchmark's embedded vectors live there
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(parent, "run-")  # runs killed before their clean-up (SIGKILL, OOM)
    path = Path(tempfile.mkdtemp(prefix=owned_prefix("run-"), dir=parent))
    env[SHARED_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        env.pop(SHARED_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
