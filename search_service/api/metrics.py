"""Prometheus metrics of the API, in a registry of the app's own (tests build many apps in one process).

`serve --workers N` (N > 1) runs prometheus-client's multiprocess mode: every worker writes its numbers to
files in PROMETHEUS_MULTIPROC_DIR (a fresh directory per run, `multiprocess_dir()`), and a scrape of any worker
sums the counters and histograms of all of them, the ones that exited included (totals never go back). The
state gauges (pool, query cache, vector copy) are read per process: each worker publishes its own once a second
(and the scraped one just before answering), aggregated as `STATE_MODES` says (pool sizes and cache entries
summed over the live workers, the vector copy's age as the oldest, the cache's hit ratio per worker: `pid`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from search_service.api.access_log import answered_status, refused_by_server
from search_service.run_owner import owned_prefix, remove_abandoned

if TYPE_CHECKING:
    import asyncpg
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from search_service.api.query_cache import QueryEmbeddingCache
    from search_service.engine.vectors import VectorCache

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PUBLISH_EVERY_S = 1.0

# How a state gauge of several workers is aggregated (prometheus-client's multiprocess modes; "live": the
# workers alive now). Single-process apps report their own value.
STATE_MODES: dict[str, Any] = {
    "plinqy_db_pool_size": "livesum",
    "plinqy_db_pool_idle": "livesum",
    "plinqy_db_pool_in_use": "livesum",
    "plinqy_db_pool_max": "livesum",
    "plinqy_query_cache_entries": "livesum",
    "plinqy_query_cache_hit_ratio": "liveall",  # a ratio does not sum: one series per worker (label pid)
    "plinqy_vector_cache_vectors": "livemax",
    "plinqy_vector_cache_age_seconds": "livemax",  # the stalest worker
    "plinqy_vector_cache_refresh_stamps": "livemax",
    "plinqy_vector_cache_write_horizon_known": "livemin",  # 0 when any worker reads the look-back
    "plinqy_vector_cache_private_rows": "livesum",
    "plinqy_vector_cache_generation": "livemin",
}
STATE_HELP = {
    "plinqy_db_pool_size": "Connections open in the pool.",
    "plinqy_db_pool_idle": "Idle connections in the pool.",
    "plinqy_db_pool_in_use": "Connections checked out.",
    "plinqy_db_pool_max": "Pool capacity.",
    "plinqy_query_cache_entries": "Query embeddings cached.",
    "plinqy_query_cache_hit_ratio": "Query-embedding cache hits / lookups since start.",
    "plinqy_vector_cache_vectors": "Product vectors held in memory for the exact scan.",
    "plinqy_vector_cache_age_seconds": "Seconds since the in-memory vectors were last refreshed (searches also"
    " check newer ones in SQL).",
    "plinqy_vector_cache_refresh_stamps": "Change stamps the last refresh read (its cost; after a bulk re-embed,"
    " the vectors written since).",
    "plinqy_vector_cache_write_horizon_known": "1: refreshes read from the write horizon; 0: from the 60 s"
    " look-back (grant the API's role pg_read_all_stats, or no prepared transactions / no standby).",
    "plinqy_vector_cache_private_rows": "Rows of the vector copy held privately (changed since the shared"
    " generation was written, or all of them without one).",
    "plinqy_vector_cache_generation": "The shared vector copy's generation mapped (0: a private copy).",
}


def multiprocess_enabled() -> bool:
    """Whether prometheus-client keeps its values in files (decided by the environment at its import)."""
    return MULTIPROC_ENV in os.environ or MULTIPROC_ENV.lower() in os.environ


METRICS_PREFIX = "plinqy-metrics-"


def remove_abandoned_metrics() -> None:
    """The metric files' directories of runs killed before their clean-up (SIGKILL, the OOM killer)."""
    remove_abandoned(Path(tempfile.gettempdir()), METRICS_PREFIX)


@contextlib.contextmanager
def multiprocess_dir(env: MutableMapping[str, str] | None = None) -> Iterator[Path]:
    """The metric files' directory of one `serve` run, in `env` (os.environ) for the workers it starts: the one
    PROMETHEUS_MULTIPROC_DIR names, emptied now (files of an earlier run would be summed in), or a fresh
    temporary one, removed afterwards."""
    env = os.environ if env is None else env
    given = env.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    remove_abandoned_metrics()
    path = Path(tempfile.mkdtemp(prefix=owned_prefix(METRICS_PREFIX)))
    env[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        env.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _forget_dead_workers(path: Path) -> None:
    """Drop the live gauges of workers that exited (a crash skips their atexit)."""
    for file in path.glob("gauge_live*_*.db"):
        pid = int(file.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            prom_multiprocess.mark_process_dead(pid, str(path))
        except PermissionError:
            pass  # alive, another user's


def state_values(
    pool: asyncpg.Pool | None, cache: QueryEmbeddingCache, vectors: VectorCache | None
) -> dict[str, float]:
    """The state gauges of this process, read now."""
    values: dict[str, float] = {}
    if pool is not None:
        size, idle = pool.get_size(), pool.get_idle_size()
        values |= {
            "plinqy_db_pool_size": size,
            "plinqy_db_pool_idle": idle,
            "plinqy_db_pool_in_use": size - idle,
            "plinqy_db_pool_max": pool.get_max_size(),
        }
    values["plinqy_query_cache_entries"] = len(cache)
    values["plinqy_query_cache_hit_ratio"] = cache.hit_ratio
    if vectors is not None and vectors.loaded and vectors.refreshed_at is not None:
        values |= {
            "plinqy_vector_cache_vectors": len(vectors),
            "plinqy_vector_cache_age_seconds": time.monotonic() - vectors.refreshed_at,
            "plinqy_vector_cache_refresh_stamps": vectors.last_refresh_stamps,
            "plinqy_vector_cache_write_horizon_known": 1.0 if vectors.write_horizon_known else 0.0,
            "plinqy_vector_cache_private_rows": vectors.private_rows,
            "plinqy_vector_cache_generation": vectors.generation,
        }
    return values


class _StateCollector(Collector):
    """Pool and cache gauges, read when scraped (never stale, no bookkeeping on the hot path): one process."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, value in self._read().items():
            yield GaugeMetricFamily(name, STATE_HELP[name], value=value)


class _StatePublisher:
    """Multiprocess mode: this worker's state gauges, written to its metric files once a second (a daemon
    thread: reads of a few counters) and before each scrape it answers."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read
        # Made when first set: a multiprocess gauge is written (0) as it is made, so a vector copy never loaded
        # read as age 0, fresh, where one process omits the series until it has a value.
        self._gauges: dict[str, Gauge] = {}
        self._gauges_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plinqy-metrics-publisher", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def publish(self) -> None:
        for name, value in self._read().items():
            with self._gauges_lock:  # the publisher thread and a scrape
                gauge = self._gauges.get(name)
                if gauge is None:
                    gauge = Gauge(name, STATE_HELP[name], registry=None, multiprocess_mode=STATE_MODES[name])
                    self._gauges[name] = gauge
            gauge.set(value)

    def _run(self) -> None:
        while not self._stop.wait(PUBLISH_EVERY_S):
            with contextlib.suppress(Exception):  # a read racing the pool's start-up: next second
                self.publish()

    def close(self) -> None:
        self._stop.set()
        path = os.environ.get(MULTIPROC_ENV)
        if path:
            prom_multiprocess.mark_process_dead(os.getpid(), path)


def _observe(histogram: Any, scope: Scope, status: int | None, seconds: float) -> None:
    state: Any = scope.get("state") or {}
    strategy = str(state.get("search_strategy", "")) if isinstance(state, dict) else ""
    status = answered_status(scope, 500) if status is None else status
    histogram.labels(_route_template(scope), asked_method(scope), str(status), strategy).observe(seconds)


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

        def read_state() -> dict[str, float]:
            return state_values(get_pool(), cache, get_vectors())

        self.multiprocess = multiprocess_enabled()
        self._publisher: _StatePublisher | None = None
        if self.multiprocess:
            self._publisher = _StatePublisher(read_state)
        else:
            self.registry.register(_StateCollector(read_state))

    def render(self) -> bytes:
        """The exposition text: this process's registry, or in multiprocess mode every worker's files."""
        if self._publisher is None:
            return generate_latest(self.registry)
        path = Path(os.environ[MULTIPROC_ENV])
        with contextlib.suppress(Exception):
            self._publisher.publish()
        _forget_dead_workers(path)
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry, str(path))
        return generate_latest(registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware timing every HTTP request, labelled by the route template (not the raw path)."""
        histogram = self.http_latency

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status: int | None = None  # no head yet: uvicorn answers 500, unless the client left (499)
            scope.setdefault("state", {})["plinqy_timed"] = True  # routed (count_unrouted counts the others)

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = answered_status(scope, int(message["status"]))
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                if not refused_by_server(scope):  # serve's protocol logged and counted its own answer
                    _observe(histogram, scope, status, time.perf_counter() - start)

        return timed

    def count_unrouted(self, scope: Any, status: int, seconds: float = 0.0) -> None:
        """An answer given before any route's middleware ran (the router's 404 and 405, `OPTIONS *`, a CORS
        preflight): counted under route "unmatched", so a flood of them shows."""
        if not (scope.get("state") or {}).get("plinqy_timed"):
            status = answered_status(scope, status)
            self.http_latency.labels("unmatched", asked_method(scope), str(status), "").observe(seconds)

    def count_refused(self, method: str, status: int, seconds: float) -> None:
        """An answer serve's protocol gave before the app saw the request (400, 405, 408, 414, 431, 501): route
        "refused"; a method it does not know (a 501's, any token) as "other", so a scanner adds no series."""
        shown = method if method in KNOWN_METHODS else "other"
        self.http_latency.labels("refused", shown, str(status), "").observe(seconds)


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
# The method the client asked, where the app answers it as another (head_requests.py: a HEAD served as a GET)
ASKED_METHOD = "plinqy.asked_method"


def asked_method(scope: Any) -> str:
    return str(scope.get(ASKED_METHOD) or scope.get("method", ""))


def _route_template(scope: Scope) -> str:
    handler: Any = scope.get("route_handler")
    template = scope.get("path_template")
    if isinstance(template, str) and template:
        return template
    if handler is not None and getattr(handler, "paths", None):
        return sorted(handler.paths)[0]
    return "unmatched"
