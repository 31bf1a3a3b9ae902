"""`seed(dsn, scale, seed)`: generate a marketplace and load it, with real-model vectors cached on disk.

Vectors are optional. For `small`/`large` they are computed inline (once: cached as `.npy` under
`<cache_dir>/vectors/`, keyed by seed, scale and model_id, and reused); for `demo` the products are copied without
one and the schema's trigger queues an ai_task per product, which `plinqy-search worker --drain` then embeds.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from tqdm import tqdm

from .load import LoadReport, catalogue_counts, catalogue_is_empty, load, product_text
from .market import Marketplace, Scale, generate, get_scale
from .naming import NAMES_VERSION

if TYPE_CHECKING:
    from embeddings.encoder import Encoder, EncoderConfig

EMBED_BLOCK = 25_000  # products per cached block: an interrupted embedding resumes from the last full block
_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def embed_by_default(scale_name: str) -> bool:
    """Demo leaves embedding to the worker (it is what `make run` shows); bigger scales embed inline."""
    return scale_name != "demo"


def default_workers(scale: Scale) -> int:
    """One transaction for small catalogues; parallel COPY (half the cores, 2-8) from 50k products up."""
    if scale.products < 50_000:
        return 1
    return min(8, max(2, (os.cpu_count() or 2) // 2))


def vector_cache_path(cache_dir: Path, scale: Scale, seed: int, model_id: str) -> Path:
    # names of an older generator had other vectors: never reuse them
    key = _SAFE.sub("_", f"{scale.name}-p{scale.products}-seed{seed}-names{NAMES_VERSION}-{model_id}")
    return Path(cache_dir) / "vectors" / f"{key}.npy"


def product_vectors(
    market: Marketplace,
    encoder: Encoder,
    cache_dir: Path,
    *,
    quiet: bool = False,
) -> np.ndarray:
    """(n_products, dim) float32 vectors of the marketplace's products: from the cache, else encoded in blocks
    (each block saved as it completes, so an interrupted run resumes) and then cached as one `.npy`."""
    path = vector_cache_path(cache_dir, market.scale, market.seed, encoder.model_id)
    n = market.n_products
    if path.exists():
        cached = np.load(path, mmap_mode="r")
        if cached.shape[0] == n:
            return np.asarray(cached, dtype=np.float32)
    parts_dir = path.with_suffix(".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    blocks: list[np.ndarray] = []
    with tqdm(total=n, desc="embedding", unit=" products", unit_scale=True, disable=quiet) as bar:
        for start in range(0, n, EMBED_BLOCK):
            stop = min(start + EMBED_BLOCK, n)
            part = parts_dir / f"{start:09d}-{stop:09d}.npy"
            if part.exists():
                block = np.load(part)
            else:
                texts = [product_text(p) for p in market.products(start, stop)]
                block = np.ascontiguousarray(encoder.encode(texts), dtype=np.float32)
                tmp = part.with_suffix(".tmp.npy")
                np.save(tmp, block)
                tmp.replace(part)
            blocks.append(block)
            bar.update(stop - start)
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, 384), dtype=np.float32)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    for part in parts_dir.glob("*.npy"):
        part.unlink()
    parts_dir.rmdir()
    return vectors


def seed(
    dsn: str,
    scale_name: str | Scale,
    seed: int = 42,
    *,
    embed: bool | None = None,
    cache_dir: Path | str | None = None,
    encoder_config: EncoderConfig | None = None,
    encoder: Encoder | None = None,
    quiet: bool = False,
    workers: int | None = None,
) -> LoadReport:
    """Seed the empty catalogue at `dsn` with the marketplace of (scale, seed). Idempotent: when the catalogue
    already has categories, stores, products or listings, nothing is done and the report says so.

    embed: None → `embed_by_default(scale)`; True → vectors inline (from `encoder`, else one loaded from
    `encoder_config`), cached under `cache_dir`; False → no vectors, the worker embeds from the ai_task queue.
    workers: connections copying at once (None → `default_workers(scale)`; 1 → one all-or-nothing transaction).
    """
    scale = scale_name if isinstance(scale_name, Scale) else get_scale(scale_name)
    report = LoadReport(scale=scale.name, seed=seed)
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not catalogue_is_empty(conn):
            counts = catalogue_counts(conn)
            report.skipped = True
            report.message = (
                "catalogue already seeded, nothing to do (" + ", ".join(f"{t}: {c:,}" for t, c in counts.items()) + ")"
            )
            return report
    market = generate(scale, seed)
    report.generate_seconds = time.perf_counter() - t0
    vectors: np.ndarray | None = None
    model_id: str | None = None
    if embed is None:
        embed = embed_by_default(scale.name)
    if embed:
        t1 = time.perf_counter()
        if encoder is None:
            from embeddings.encoder import EncoderConfig, load_encoder

            encoder = load_encoder(encoder_config or EncoderConfig())
        base = Path(cache_dir) if cache_dir is not None else Path(__file__).resolve().parents[2] / ".cache"
        vectors = product_vectors(market, encoder, base, quiet=quiet)
        model_id = encoder.model_id
        report.embed_seconds = time.perf_counter() - t1
    report.seconds = time.perf_counter() - t0
    if workers is None:
        workers = default_workers(scale)
    return load(dsn, market, vectors=vectors, model_id=model_id, report=report, quiet=quiet, workers=workers)


def seed_summary(report: LoadReport) -> dict[str, Any]:
    """The report as plain data (for JSON)."""
    from dataclasses import asdict

    return asdict(report)
