"""Ingest settings (`Settings.ingest`), read from the environment once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from search_service.envconfig import env_float, env_int


@dataclass(frozen=True)
class IngestConfig:
    # Per API key: a token bucket of `rate_burst` requests refilled at `rate_per_s` (429 + Retry-After past it).
    rate_per_s: float = 50.0
    rate_burst: float = 200.0
    max_upload_bytes: int = 100 * 1024 * 1024  # CSV imports and webhook bodies (413 past it)
    max_webhook_bytes: int = 5 * 1024 * 1024
    webhook_tolerance_s: int = 300  # Standard Webhooks: a timestamp further off than this is refused
    batch_chunk_rows: int = 5000  # rows a worker maps per transaction
    lease_s: float = 60.0  # a worker's hold on a batch; a killed worker's batch is taken over after it
    lanes: int = 2  # a big batch of independent rows is mapped on this many connections at once (lanes.py)
    concurrency: int = 2  # claim loops of one import job; one of them is kept for small batches (worker.py)
    upload_timeout_s: float = 3600.0  # a batch still `receiving` after this is aborted by the import job
    upload_idle_s: float = 30.0  # an upload whose bytes stop arriving for this long is aborted (408)

    def mapping_session(self) -> dict[str, str]:
        """A mapping connection's server settings: a transaction left idle past the lease (a frozen worker: SIGSTOP,
        a paused VM, a partition) is ended by the server, so the store's lock it held goes and the next worker's
        takeover happens (it waited on that lock for ever). Not under 10 s: a chunk's own pauses under load."""
        return {"idle_in_transaction_session_timeout": str(int(max(self.lease_s, 10.0) * 1000))}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestConfig:
        return cls(
            rate_per_s=env_float(env, "PLINQY_INGEST_RATE_PER_S", 50.0, 0.01, 1e6),
            rate_burst=env_float(env, "PLINQY_INGEST_RATE_BURST", 200.0, 1, 1e7),
            max_upload_bytes=env_int(env, "PLINQY_INGEST_MAX_UPLOAD_BYTES", 100 * 1024 * 1024, 1024, 2**34),
            max_webhook_bytes=env_int(env, "PLINQY_INGEST_MAX_WEBHOOK_BYTES", 5 * 1024 * 1024, 1024, 2**30),
            batch_chunk_rows=env_int(env, "PLINQY_INGEST_CHUNK_ROWS", 5000, 1, 1_000_000),
            lease_s=env_float(env, "PLINQY_INGEST_LEASE_S", 60.0, 1, 86400),
            lanes=env_int(env, "PLINQY_INGEST_LANES", 2, 1, 16),
            concurrency=env_int(env, "PLINQY_INGEST_CONCURRENCY", 2, 1, 16),
            upload_timeout_s=env_float(env, "PLINQY_INGEST_UPLOAD_TIMEOUT_S", 3600.0, 1, 7 * 86400),
            upload_idle_s=env_float(env, "PLINQY_INGEST_UPLOAD_IDLE_S", 30.0, 0.1, 3600),
        )
