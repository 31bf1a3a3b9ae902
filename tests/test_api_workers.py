"""`serve --workers 2` as a real process: the metrics of every worker in each scrape, one vector copy mapped by both,
one rate limit per API key across both.

The catalogue is synthetic (random unit vectors, no model needed to build it); the server embeds the query
texts with the real model. Marked slow: two worker processes each load the model (~10-20 s on 2 cores).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import bench_memory
from benchmarks.run import Server
from search_service.demo.synthetic import SyntheticSpec, seed_synthetic
from tests.ingest_helpers import bearer, new_store, store_key

pytestmark = pytest.mark.slow
SEARCHES = 24
RATE_PER_S, BURST = 0.01, 6  # a key may make 6 writes, then one per 100 s


@pytest.fixture(scope="module")
def two_workers(make_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = make_database()
    seed_synthetic(url, SyntheticSpec(products=400, stores=12, listings=1500))
    with pytest.MonkeyPatch.context() as env:  # the server copies the environment when it starts
        env.setenv("PLINQY_INGEST_RATE_PER_S", str(RATE_PER_S))
        env.setenv("PLINQY_INGEST_RATE_BURST", str(BURST))
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


def worker_of(server: Server, client: httpx.Client) -> int:
    """The worker process that accepted this kept-alive client's connection: the one holding the socket whose
    remote port is the client's local port (/proc/net/tcp gives its inode, /proc/PID/fd who holds it)."""
    response = client.get("/healthz")
    return holder_of(server, response.extensions["network_stream"].get_extra_info("client_addr")[1])


def holder_of(server: Server, client_port: int) -> int:
    """The worker process holding the server's end of the connection from this local port."""
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if local_port == server.port and remote_port == client_port:
            inode = fields[9]
    for pid in worker_pids(server):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:  # an fd closed meanwhile
                continue
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def client_per_worker(server: Server) -> dict[int, httpx.Client]:
    """A kept-alive client on each worker (the caller closes them)."""
    clients: dict[int, httpx.Client] = {}
    for _ in range(40):  # new connections until each worker holds one
        client = httpx.Client(base_url=server.base, timeout=60)
        pid = worker_of(server, client)
        if pid in clients:
            client.close()
        else:
            clients[pid] = client
        if len(clients) == 2:
            break
    assert len(clients) == 2, "every connection went to the same worker"
    return clients


def test_one_rate_limit_per_key_across_the_workers(two_workers: Server) -> None:
    with psycopg.connect(two_workers.url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    clients = client_per_worker(two_workers)
    codes = []
    try:
        for i in range(2 * BURST):  # alternately on each worker: per-process buckets would let all 12 through
            client = list(clients.values())[i % 2]
            body = {"name": f"Item {i}", "price": 1, "quantity": 1}
            url = f"/v1/stores/{store}/listings/SKU-{uuid.uuid4().hex[:6]}"
            codes.append(client.put(url, json=body, headers=bearer(key)).status_code)
    finally:
        for client in clients.values():
            client.close()
    assert codes == [200] * BURST + [429] * BURST, codes


def test_workers_share_the_model_the_supervisor_loaded(two_workers: Server) -> None:
    """Forked after the model was loaded: most of each worker's memory is pages it shares (the model's packed
    weights, the imported code), not pages of its own."""
    for pid in worker_pids(two_workers):
        memory = bench_memory.smaps_rollup(pid)
        assert memory["rss"] - memory["pss"] > 100 * 2**20, memory


def test_the_workers_take_the_candidate_sets_and_labels_the_supervisor_loaded(two_workers: Server) -> None:
    """Loaded once before the fork (api/shared_state.py): no worker builds its own sets or loads its labels."""
    log = two_workers.log_path.read_text()
    assert "shared state: candidate sets loaded, facet labels of 400 products" in log
    assert log.count("candidate sets: ") == 1, log  # the supervisor's build only


def test_a_stock_change_reaches_the_next_search_in_every_worker(two_workers: Server) -> None:
    """Every worker holds the sets forked from the supervisor's and applies the change log to them in each search:
    a listing sold out, then restocked, is counted by the very next search of either worker. (At 400 products the
    plan is SQL's exact one, which the sets only steer; test_candidate_sets checks their content with the gather
    plan forced, on copies taken over as a worker takes its supervisor's.)"""
    with psycopg.connect(two_workers.url, autocommit=True) as conn:
        row = conn.execute(
            # a seeded listing: the rate-limit test's new ones have products without a vector, counted by no plan
            "SELECT sp.id, ST_Y(s.location::geometry), ST_X(s.location::geometry) FROM store_product sp "
            "JOIN store s ON s.id = sp.store_id JOIN product_master p ON p.id = sp.product_master_id "
            "WHERE s.is_active AND sp.is_active AND sp.quantity > 0 AND p.is_active AND p.ai_vector IS NOT NULL "
            "ORDER BY sp.id LIMIT 1"
        ).fetchone()
        assert row is not None
        listing, lat, lon = row
        params = {"q": "synthetic product", "lat": lat, "lon": lon, "radius_m": 1, "explain": "true"}

        def counts(clients: dict[int, httpx.Client]) -> list[int]:
            answers = [c.get("/v1/search", params=params) for c in clients.values()]
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            return [int(a.json()["explain"]["candidates"]) for a in answers]

        clients = client_per_worker(two_workers)
        try:
            before = counts(clients)
            assert before[0] == before[1] >= 1
            conn.execute("UPDATE store_product SET quantity = 0 WHERE id = %s", (listing,))
            assert counts(clients) == [before[0] - 1] * 2
            conn.execute("UPDATE store_product SET quantity = 5 WHERE id = %s", (listing,))
            assert counts(clients) == before
        finally:
            for client in clients.values():
                client.close()


def test_a_worker_that_dies_is_replaced(two_workers: Server) -> None:
    """The supervisor starts another; it takes connections once its database pool, model and vector copy are
    ready, so no search meanwhile is refused (it answered 503 "the database is not connected yet" for ~2.5 s) or
    answered from the approximate plan."""
    before = worker_pids(two_workers)
    os.kill(before[0], signal.SIGKILL)
    # until it is dead its listening socket is in the port's group: a connection the kernel hashed to it in that
    # moment is reset as the socket closes (no server can answer it); from then on the group is the live worker's
    deadline = time.monotonic() + 10
    while _alive(before[0]):
        assert time.monotonic() < deadline, "the killed worker did not die"
        time.sleep(0.01)
    params = {"q": "synthetic product 3", "limit": "3"}
    codes: list[int] = []
    cut: list[tuple[int, str]] = []  # connections closed unanswered: the kernel's race with the dead socket (above)
    rounds = [0]

    def search(_: int) -> int:
        try:
            return httpx.get(two_workers.base + "/v1/search", params=params).status_code
        except httpx.TransportError as exc:
            cut.append((rounds[0], repr(exc)))
            return httpx.get(two_workers.base + "/v1/search", params=params).status_code

    replaced_at = None
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:  # fresh connections, spread over both workers' sockets by the kernel
        while time.monotonic() < deadline and (replaced_at is None or time.monotonic() < replaced_at + 4):
            codes += pool.map(search, range(8))
            rounds[0] += 1
            pids = bench_memory.worker_pids(two_workers)
            if replaced_at is None and len(pids) == 2 and before[0] not in pids:
                replaced_at = time.monotonic()
    after = worker_pids(two_workers)
    assert before[0] not in after and before[1] in after
    assert len(codes) > 20 and set(codes) == {200}, sorted(set(codes))
    # in the first round only (one, or two on a loaded machine), each answered when sent again: not a worker's gap
    assert all(round_no == 0 for round_no, _ in cut), cut
    # The raw os.wait() status was logged ('status 9'; an exit code 1 read 256).
    log_text = two_workers.log_path.read_text(errors="replace")
    assert f"worker {before[0]} ended (killed by signal SIGKILL)" in log_text
    # It listens once its vector copy is mapped: it said 'serving' ~1 s before, and answered searches with the
    # approximate HNSW plan meanwhile (SO_REUSEPORT gives a listening worker new connections at once).
    [new] = [pid for pid in after if pid not in before]
    deadline = time.monotonic() + 60  # on a loaded machine it may still be mapping its copy
    while not re.search(rf" \[{new}\] [\w.]+: serving http", log_text) and time.monotonic() < deadline:
        time.sleep(0.2)
        log_text = two_workers.log_path.read_text(errors="replace")
    said = [line.split(": ", 1)[1] for line in log_text.splitlines() if f" [{new}] " in line]
    ready = [i for i, line in enumerate(said) if line.startswith("vector cache: ")]
    serving = [i for i, line in enumerate(said) if line.startswith("serving http")]
    assert ready and serving and ready[0] < serving[0], said


# '<time> <LEVEL> [<pid>] <logger>: …' (logformat.py): the pid tells the workers' identical lines apart
STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \[(\d+)\] [\w.]+: ")


def _alive(pid: int) -> bool:
    """Running: not gone and not a zombie (a zombie's files, its sockets among them, are closed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening_workers(server: Server) -> set[int]:
    """The workers holding a listening socket on the server's port (/proc/net/tcp's LISTEN rows, state 0A)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == server.port and fields[3] == "0A":
            inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for pid in worker_pids(server):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # an fd closed meanwhile
                if os.readlink(fd) in inodes:
                    holders.add(pid)
    return holders


def test_a_burst_of_connections_is_spread_over_both_workers(two_workers: Server) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT, cli/prefork.py), so the kernel spreads a burst of
    new connections between them: on one shared socket the worker that woke first could accept all of them (asyncio
    accepts every waiting connection at once) and keep them, kept alive, while the other idled. 16 connections at
    once all on one worker: ~3 in 100,000 when the kernel hashes them."""
    deadline = time.monotonic() + 60  # a worker started in place of a dead one listens once it has started
    while listening_workers(two_workers) != set(worker_pids(two_workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listening_workers(two_workers) == set(worker_pids(two_workers))  # each on a socket of its own
    # connected back to back: the kernel completes them before any worker wakes to accept
    burst = [socket.create_connection(("127.0.0.1", two_workers.port), timeout=10) for _ in range(16)]
    try:
        holders: list[int | None] = [None] * len(burst)
        while None in holders and time.monotonic() < deadline:
            time.sleep(0.05)
            for i, conn in enumerate(burst):
                with contextlib.suppress(AssertionError):  # not accepted yet
                    holders[i] = holders[i] or holder_of(two_workers, conn.getsockname()[1])
    finally:
        for conn in burst:
            conn.close()
    assert set(holders) == set(worker_pids(two_workers)), holders


def test_a_second_server_on_the_same_port_is_refused_at_once(two_workers: Server) -> None:
    """SO_REUSEPORT would let a second `serve` of the same user share the port (and its traffic) silently: the
    supervisor first binds the port without it, before it loads anything, and stops with a one-line error."""
    env = {**os.environ, "DATABASE_URL": two_workers.url}
    address = ["--host", "127.0.0.1", "--port", str(two_workers.port)]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "search_service", "serve", *address, "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"error: cannot listen on 127.0.0.1:{two_workers.port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 60  # before the model, the vectors or the sets are loaded
    assert httpx.get(two_workers.base + "/healthz").status_code == 200  # the first server is untouched


def test_a_key_in_the_query_string_is_kept_out_of_the_access_log(two_workers: Server) -> None:
    """A client that sends its key as `?api_key=` is refused, but the access line wrote the whole, valid key."""
    with psycopg.connect(two_workers.url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{two_workers.base}/v1/stores/{store}/listings/LOG-1"
    answer = httpx.put(url, params={"api_key": key}, json={"name": "x", "price": 1, "quantity": 1})
    assert answer.status_code == 401
    # after a letter or `%20` there was no word boundary: `Bearer%20plq_…` was logged whole
    bearer_text = httpx.get(f"{url}?access_token=Bearer%20{key}&k=x{key}")
    assert bearer_text.status_code in (401, 404)
    encoded = key.replace("plq_", "plq%5F")  # percent-encoded, the key was logged whole
    assert httpx.get(f"{two_workers.base}/v1/search?q={encoded}&limit=1").status_code == 200
    deadline = time.monotonic() + 10
    while "k=xplq_[redacted]" not in two_workers.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "no access line for the requests"
        time.sleep(0.1)
    log_text = two_workers.log_path.read_text(errors="replace")
    assert key not in log_text and "LOG-1?api_key=plq_[redacted]" in log_text
    assert "access_token=Bearer%20plq_[redacted]" in log_text
    assert key[4:] not in log_text and "q=plq_[redacted]&limit=1" in log_text


def test_a_vector_copy_never_loaded_has_no_gauges_with_two_workers(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A database that does not exist: the copy never loads. Its gauges read 0 (an age of 0 s: fresh) with two
    workers, where one worker leaves them out until they have a value."""
    missing = pg_admin_url.rsplit("/", 1)[0] + f"/plinqy_missing_{uuid.uuid4().hex[:8]}"
    server = Server(missing, 1024, tmp_path_factory.mktemp("api") / "api.log", workers=2)
    try:
        deadline, samples = time.monotonic() + 120, {}
        while not any(k.startswith("plinqy_query_cache_entries") for k in samples):  # both workers published
            assert time.monotonic() < deadline and server.proc.poll() is None, server.log_path.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                samples = scrape(server.base)
            time.sleep(0.5)
        time.sleep(1.5)  # a publish or two more
        samples = scrape(server.base)
        refused = httpx.get(f"{server.base}/v1/search", params={"q": "milk", "mode": "keyword"}, timeout=30)
        log_text = server.log_path.read_text()
    finally:
        server.stop()
    assert not [k for k in samples if k.startswith(("plinqy_vector_cache_", "plinqy_db_pool_"))], samples
    # an anonymous client was told the database's name ('database "plinqy_missing_…" does not exist'): the
    # operator's, in the log and on /readyz
    assert (
        refused.status_code == 503
        and refused.json()["error"]["message"] == "the database is unavailable; retry shortly"
    )
    assert missing.rsplit("/", 1)[1] not in refused.text and missing.rsplit("/", 1)[1] in log_text


@pytest.mark.parametrize("workers", [1, 2])
def test_every_line_serve_logs_has_its_time_and_level(
    make_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory, workers: int
) -> None:
    """serve's log mixed three formats: uvicorn's 'INFO:     Started server process' and its access lines (no
    time: a request could not be placed in an incident's window), litestar's 'WARNING - <time> - <logger> - …'
    (one worker) and the supervisor's '<time> INFO <logger>: …'. One format now: '<time> <LEVEL> [<pid>] <logger>: …'
    (the pid: three workers logged the same line three times, nothing told them apart)."""
    url = make_database()
    server = Server(url, 1024, tmp_path_factory.mktemp("api") / "api.log", workers=workers)
    try:
        server.wait_ready()
        assert httpx.get(f"{server.base}/v1/search", params={"q": "milk", "mode": "keyword"}).status_code == 200
        deadline = time.monotonic() + 10
        while "GET /v1/search?q=milk" not in server.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, "no access line"
            time.sleep(0.1)
    finally:
        server.stop()
    lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if line.strip()]
    assert lines and [line for line in lines if not STAMPED.match(line)] == [], lines
    # each worker's lines name it: its 'serving' line's pid is the one its message gives (one line each, alike)
    serving = [line for line in lines if "serving http" in line]
    logged_by = [(STAMPED.findall(line)[0][1], line.rsplit("(process ", 1)[1].rstrip(")")) for line in serving]
    assert len({pid for pid, _ in logged_by}) == workers == len(serving), serving
    assert all(pid == said for pid, said in logged_by), serving
    assert any(
        re.search(r' INFO \[\d+\] uvicorn\.access: 127\.0\.0\.1:\d+ - "GET /v1/search\?q=milk', line) for line in lines
    )


def _logged_until(url: str, tmp_path_factory: pytest.TempPathFactory, said: Callable[[str], bool]) -> list[str]:
    """`serve --workers 2` on `url` until its log says what `said` looks for; its lines, each one stamped."""
    server = Server(url, 1024, tmp_path_factory.mktemp("api") / "api.log", workers=2)
    try:
        deadline = time.monotonic() + 60
        while not said(server.log_path.read_text(errors="replace")):
            assert time.monotonic() < deadline and server.proc.poll() is None, server.log_path.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        server.stop()
    lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if line.strip()]
    assert [line for line in lines if not STAMPED.match(line)] == [], lines
    return lines


def test_a_missing_database_is_logged_not_printed_by_the_supervisors_processes(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With no database, the process the supervisor forks to write the shared vectors printed 'shared state: no
    database (…)' bare beside the supervisor's logged warning; it logs it now, as every other line is logged."""
    missing = pg_admin_url.rsplit("/", 1)[0] + f"/plinqy_missing_{uuid.uuid4().hex[:8]}"
    lines = _logged_until(missing, tmp_path_factory, lambda log: "no database (" in log and "serving http" in log)
    writer = [line for line in lines if "shared state: no database (InvalidCatalogNameError: " in line]
    assert len(writer) == 1 and re.search(r" WARNING \[\d+\] search_service\.api\.shared_state: ", writer[0]), lines


def test_a_role_without_rights_is_one_line_from_the_shared_vectors_writer(
    rightless_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With a role that may read nothing, the process the supervisor forks to write the shared vectors logged
    `process N failed` and asyncpg's traceback (25 lines), where everything else says it in one line."""
    lines = _logged_until(  # a worker serving, and the writer's outcome (a failure before)
        rightless_url, tmp_path_factory,
        lambda log: "serving http" in log and ("shared state: not written" in log or " failed\n" in log),
    )  # fmt: skip
    [writer] = [line for line in lines if "shared_state: " in line and "not preloaded" not in line]  # the supervisor's
    role = rightless_url.split("//", 1)[1].split("@", 1)[0]
    assert re.search(r" WARNING \[\d+\] search_service\.api\.shared_state: shared state: not written, the database "
                     f"role '{role}' lacks rights \\(permission denied for table ", writer), writer  # fmt: skip
