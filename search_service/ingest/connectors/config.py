"""Connector settings (`Settings.connectors`), read from the environment once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from search_service.envconfig import env_float, env_int
from search_service.ingest.connectors.http import RetryPolicy


@dataclass(frozen=True)
class ConnectorsConfig:
    sync_interval_s: float = 300.0  # PLINQY_SYNC_INTERVAL_S: how often the worker polls each enabled connection
    retry_base_s: float = 30.0  # PLINQY_SYNC_RETRY_BASE_S: first retry after a failed sync, doubling
    check_s: float = 5.0  # PLINQY_SYNC_CHECK_S: how often the sync job looks for due connections
    http_timeout_s: float = 15.0  # PLINQY_SYNC_HTTP_TIMEOUT_S: one vendor request, whole
    http_attempts: int = 5  # PLINQY_SYNC_HTTP_ATTEMPTS: tries per vendor request (429, 5xx, timeouts)
    max_wait_s: float = 30.0  # PLINQY_SYNC_MAX_WAIT_S: a longer Retry-After ends the sync (recorded, resumed later)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConnectorsConfig:
        return cls(
            sync_interval_s=env_float(env, "PLINQY_SYNC_INTERVAL_S", 300.0, 1, 86400 * 7),
            retry_base_s=env_float(env, "PLINQY_SYNC_RETRY_BASE_S", 30.0, 0.1, 86400),
            check_s=env_float(env, "PLINQY_SYNC_CHECK_S", 5.0, 0.05, 3600),
            http_timeout_s=env_float(env, "PLINQY_SYNC_HTTP_TIMEOUT_S", 15.0, 0.05, 600),
            http_attempts=env_int(env, "PLINQY_SYNC_HTTP_ATTEMPTS", 5, 1, 50),
            max_wait_s=env_float(env, "PLINQY_SYNC_MAX_WAIT_S", 30.0, 0, 3600),
        )

    def policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.http_attempts, max_delay_s=self.max_wait_s, timeout_s=self.http_timeout_s)
