"""The embedding worker's settings (the CLI builds them from its options and the environment)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    batch_size: int = 64
    poll_interval_s: float = 5.0
    lease_seconds: float = 60.0
    backoff_base_s: float = 2.0
    backoff_max_s: float = 600.0
    drain: bool = False
    # Fault injection for tests and chaos drills: texts containing this marker fail to embed;
    # hold_s sleeps after each claim, so a test can kill a worker that holds a batch.
    fail_marker: str | None = None
    hold_s: float = 0.0
    # Lost database: wait this long (doubling up to reconnect_max_s) before connecting again.
    reconnect_base_s: float = 0.5
    reconnect_max_s: float = 30.0
    # Write batch n (its own connection and thread) while batch n+1 is claimed and embedded: the write's round
    # trips and server time hide behind the model call. benchmarks/bench_worker.py measures both modes.
    pipeline: bool = True
