"""Prometheus metrics of the API, in a registry of the app's own (tests build many apps in one process).

With `serve --workers N` each worker process exposes its own numbers; scrape them per process, or run one
worker per container.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    import asyncpg
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from search_service.api.query_cache import QueryEmbeddingCache
    from search_service.engine.vectors import VectorCache

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector(Collector):
    """Pool and cache gauges, read when scraped (never stale, no bookkeeping on the hot path)."""

    def __init__(
        self,
        get_pool: Callable[[], asyncpg.Pool | None],
        cache: QueryEmbeddingCache,
        get_vectors: Callable[[], VectorCache | None],
    ) -> None:
        self._get_pool = get_pool
        self._cache = cache
        self._get_vectors = get_vectors

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pool = self._get_pool()
        if pool is not None:
            size, idle = pool.get_size(), pool.get_idle_size()
            yield GaugeMetricFamily("plinqy_db_pool_size", "Connections open in the pool.", value=size)
            yield GaugeMetricFamily("plinqy_db_pool_idle", "Idle connections in the pool.", value=idle)
            yield GaugeMetricFamily("plinqy_db_pool_in_use", "Connections checked out.", value=size - idle)
            yield GaugeMetricFamily("plinqy_db_pool_max", "Pool capacity.", value=pool.get_max_size())
        cache = self._cache
        yield GaugeMetricFamily("plinqy_query_cache_entries", "Query embeddings cached.", value=len(cache))
        yield GaugeMetricFamily(
            "plinqy_query_cache_hit_ratio",
            "Query-embedding cache hits / lookups since start.",
            value=cache.hit_ratio,
        )
        vectors = self._get_vectors()
        if vectors is not None and vectors.loaded and vectors.refreshed_at is not None:
            yield GaugeMetricFamily(
                "plinqy_vector_cache_vectors", "Product vectors held in memory for the exact scan.", value=len(vectors)
            )
            yield GaugeMetricFamily(
                "plinqy_vector_cache_age_seconds",
                "Seconds since the in-memory vectors were last refreshed (searches also check newer ones in SQL).",
                value=time.monotonic() - vectors.refreshed_at,
            )
            yield GaugeMetricFamily(
                "plinqy_vector_cache_refresh_stamps",
                "Change stamps the last refresh read (its cost; after a bulk re-embed, the vectors written since).",
                value=vectors.last_refresh_stamps,
            )
            yield GaugeMetricFamily(
                "plinqy_vector_cache_write_horizon_known",
                "1: refreshes read from the write horizon; 0: from the 60 s look-back (grant the API's role"
                " pg_read_all_stats, or no prepared transactions / no standby).",
                value=1.0 if vectors.write_horizon_known else 0.0,
            )


class Metrics:
    def __init__(
        self,
        cache: QueryEmbeddingCache,
        get_pool: Callable[[], asyncpg.Pool | None],
        get_vectors: Callable[[], VectorCache | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_latency = Histogram(
            "plinqy_http_request_duration_seconds",
            "HTTP request latency by route template, method, status and search strategy.",
            ["route", "method", "status", "strategy"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search_latency = Histogram(
            "plinqy_search_duration_seconds",
            "Time inside the search engine (database), by mode and strategy chosen.",
            ["mode", "strategy"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.embed_latency = Histogram(
            "plinqy_query_embedding_duration_seconds",
            "Time to embed one query with the model (cache misses only).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "plinqy_query_cache_lookups",
            "Query-embedding cache lookups by result (hit or miss).",
            ["result"],
            registry=self.registry,
        )
        self.unavailable = Counter(
            "plinqy_unavailable_responses",
            "503 responses by reason (statement_timeout, pool_exhausted, database, model).",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(get_pool, cache, get_vectors))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware timing every HTTP request, labelled by the route template (not the raw path)."""
        histogram = self.http_latency

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = _route_template(scope)
                state: Any = scope.get("state") or {}
                strategy = str(state.get("search_strategy", "")) if isinstance(state, dict) else ""
                histogram.labels(route, scope.get("method", ""), str(status), strategy).observe(
                    time.perf_counter() - start
                )

        return timed


def _route_template(scope: Scope) -> str:
    handler: Any = scope.get("route_handler")
    template = scope.get("path_template")
    if isinstance(template, str) and template:
        return template
    if handler is not None and getattr(handler, "paths", None):
        return sorted(handler.paths)[0]
    return "unmatched"
