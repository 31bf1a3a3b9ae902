"""How much memory an HNSW index build needs to stay in memory.

pgvector builds the graph in `maintenance_work_mem`; past it the build goes on on disk ("hnsw graph no longer fits
into maintenance_work_mem ... Building will take significantly more time"). Measured here for 384-dimension
vectors at m=16: 32 MB held 14,479 of them, ~2.3 kB each. The large scale's 1M vectors need ~2.2 GB, over the
embedded cluster's 1 GB.
"""

from __future__ import annotations

import math

BYTES_PER_VECTOR = 2560  # 384-d, m=16: ~2.3 kB measured, with a margin
HEADROOM_MB = 64


def build_memory(n_vectors: int, floor_mb: int = 1024) -> str:
    """A `maintenance_work_mem` value under which an HNSW build over `n_vectors` stays in memory (at least
    `floor_mb`, the embedded cluster's own setting)."""
    need_mb = math.ceil(n_vectors * BYTES_PER_VECTOR / 2**20) + HEADROOM_MB
    return f"{max(need_mb, floor_mb)}MB"
