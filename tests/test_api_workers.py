"""`serve --workers 2` as a real process: the metrics of every worker in each scrape, one vector copy mapped by both.

The catalogue is synthetic (random unit vectors, no model needed to build it); the server embeds the query
texts with the real model. Marked slow: two worker processes each load the model (~10-20 s on 2 cores).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import bench_memory
from benchmarks.run import Server
from search_service.demo.synthetic import SyntheticSpec, seed_synthetic

pytestmark = pytest.mark.slow
SEARCHES = 24


@pytest.fixture(scope="module")
def two_workers(make_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = make_database()
    seed_synthetic(url, SyntheticSpec(products=400, stores=12, listings=1500))
    server = Server(url, 1024, tmp_path_factory.mktemp("api") / "api.log", workers=2)
    try:
        server.wait_ready()
        run_dirs = [metrics_dir(server), vector_dir(server)]
        assert all(d.is_dir() for d in run_dirs)
        yield server
    finally:
        server.stop()
    assert not any(d.exists() for d in run_dirs)  # serve removes its run's directories when it stops (SIGTERM)


def mapped_files(pid: int) -> list[Path]:
    return [Path(line.split()[-1]) for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line]


def metrics_dir(server: Server) -> Path:
    """PROMETHEUS_MULTIPROC_DIR of the run (forked workers' /proc/PID/environ is the supervisor's at exec):
    the directory of the metric files a worker maps."""
    return next(p.parent for p in mapped_files(worker_pids(server)[0]) if p.suffix == ".db")


def vector_dir(server: Server) -> Path:
    """PLINQY_VECTOR_SHARED_DIR of the run: <dir>/<database key>/gen-N/matrix.npy is mapped."""
    generation = bench_memory.mapped_generation(worker_pids(server)[0])
    assert generation is not None
    return Path(generation).parents[2]


def scrape(base: str) -> dict[str, float]:
    """Sample name (with its labels) -> value, from one /metrics answer on a new connection."""
    text = httpx.get(base + "/metrics", timeout=30).text
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix + "["))


def worker_pids(server: Server) -> list[int]:
    pids = bench_memory.worker_pids(server)
    assert len(pids) == 2, pids
    return pids


def test_every_scrape_counts_the_searches_of_both_workers(two_workers: Server) -> None:
    base = two_workers.base

    def one(i: int) -> int:
        params = {"q": f"synthetic product {i}", "lat": "52.52", "lon": "13.405", "radius_m": "20000"}
        return httpx.get(base + "/v1/search", params=params, timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:  # new connections, several at once: both workers take some
        assert list(pool.map(one, range(SEARCHES))) == [200] * SEARCHES
    served = {p.stem.rsplit("_", 1)[1] for p in metrics_dir(two_workers).glob("histogram_*.db")}
    # every worker writes its own files (a worker uvicorn restarted under load leaves its old ones, still summed)
    assert {str(pid) for pid in worker_pids(two_workers)} <= served
    for _ in range(8):  # each scrape may be answered by either worker
        samples = scrape(base)
        assert total(samples, "plinqy_search_duration_seconds_count") == SEARCHES
        http = [
            v
            for k, v in samples.items()
            if k.startswith("plinqy_http_request_duration_seconds_count") and "/v1/search" in k
        ]
        assert sum(http) == SEARCHES
        ratios = [k for k in samples if k.startswith("plinqy_query_cache_hit_ratio")]
        assert len(ratios) == 2  # one per live worker (label pid)
        assert total(samples, "plinqy_db_pool_max") == 2 * 10  # summed over the workers


def test_both_workers_map_one_vector_generation(two_workers: Server) -> None:
    files = [bench_memory.mapped_generation(pid) for pid in worker_pids(two_workers)]
    assert files[0] is not None and files[0] == files[1]
    inodes = set()
    for pid in worker_pids(two_workers):
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if line.endswith(files[0]):
                inodes.add(int(line.split()[4]))
    assert len(inodes) == 1 and os.stat(files[0]).st_ino in inodes
    for _ in range(4):
        samples = scrape(two_workers.base)
        assert total(samples, "plinqy_vector_cache_generation") == 1  # livemin over the workers
        assert total(samples, "plinqy_vector_cache_vectors") == 400


def test_workers_share_the_model_the_supervisor_loaded(two_workers: Server) -> None:
    """Forked after the model was loaded: most of each worker's memory is pages it shares (the model's packed
    weights, the imported code), not pages of its own."""
    for pid in worker_pids(two_workers):
        memory = bench_memory.smaps_rollup(pid)
        assert memory["rss"] - memory["pss"] > 100 * 2**20, memory


def test_a_worker_that_dies_is_replaced(two_workers: Server) -> None:
    before = worker_pids(two_workers)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = bench_memory.worker_pids(two_workers)
        if len(pids) == 2 and before[0] not in pids:
            break
        time.sleep(0.2)
    after = worker_pids(two_workers)
    assert before[0] not in after and before[1] in after
    params = {"q": "synthetic product 3", "limit": "3"}
    while time.monotonic() < deadline:  # once the new worker is ready, every search succeeds, whichever answers
        with ThreadPoolExecutor(4) as pool:
            codes = list(
                pool.map(lambda _: httpx.get(two_workers.base + "/v1/search", params=params).status_code, range(8))
            )
        if codes == [200] * 8:
            break
        time.sleep(0.5)
    assert codes == [200] * 8
