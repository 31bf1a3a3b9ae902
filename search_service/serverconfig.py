"""The HTTP server's limits on its clients (`Settings.server`): a request head's size and read time, keep-alive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from search_service.envconfig import env_float, env_int


@dataclass(frozen=True)
class ServerConfig:
    # A request line and headers past this: 414 (the URL alone) or 431, and the connection closed. Five clients
    # sending 60 MB headers held 300 MB until they left. At most 64 KiB: httptools refuses a longer URL anyway.
    max_header_bytes: int = 32 * 1024
    # A request head not whole this long after its first byte: 408, closed (a slow client held its connection
    # open for as long as it trickled a header line every few seconds).
    header_timeout_s: float = 10.0
    # An idle connection (kept alive, or opened with nothing sent) is closed after this. Behind a load balancer,
    # set it above the balancer's own idle timeout (AWS ALB: 60 s, so 65): otherwise the balancer may send a
    # request on a connection this server is closing, and answer its client 502.
    keep_alive_s: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerConfig:
        return cls(
            max_header_bytes=env_int(env, "PLINQY_MAX_HEADER_BYTES", 32 * 1024, 1024, 64 * 1024),
            header_timeout_s=env_float(env, "PLINQY_HEADER_TIMEOUT_S", 10.0, 0.1, 300.0),
            keep_alive_s=env_int(env, "PLINQY_KEEP_ALIVE_S", 5, 1, 3600),
        )
