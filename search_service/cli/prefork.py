"""`serve --workers N` (N > 1): a supervisor that loads the code and the query model once and forks the workers.

uvicorn's own supervisor spawns each worker as a fresh interpreter, which imports everything again and loads
its own ONNX Runtime session: ~200 MiB of private memory a worker (measured at 200k products: the second
worker cost 287 MiB of PSS). Forked from a supervisor that holds them, the workers share those pages
copy-on-write: the imported modules (frozen out of the collector's reach first, so that collections do not
write to them), the model's weights, which ONNX Runtime pre-packs once and then only reads, and the candidate
sets and facet labels (`api/shared_state.py`: ~140 MiB a worker at 1M products).

The model is loaded before the fork only with one intra-op thread (PLINQY_QUERY_ENCODER_THREADS=1, the
default): a thread pool does not survive a fork. Otherwise each worker loads its own, as before. The
supervisor starts no thread and no event loop; it forks the workers, starts a new one in place of any that
dies, and on SIGTERM, SIGINT or SIGHUP stops them all and waits for them. Each worker listens on a socket of its own
(SO_REUSEPORT: the kernel spreads new connections between them; `port_socket`).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import socket
from typing import Any, NoReturn

from embeddings.encoder import Encoder, EncoderError, load_encoder
from search_service.cli.common import UserFacingError
from search_service.cli.http_server import AnnouncedServer, uvicorn_config
from search_service.cli.ports import bind_port
from search_service.forked import describe_exit
from search_service.logformat import configure_logging
from search_service.settings import Settings

log = logging.getLogger(__name__)


def preload_encoder(settings: Settings) -> Encoder | None:
    """The query model, loaded as a worker would load it, when it is safe to share across a fork. One that cannot
    be loaded (PLINQY_MODEL, or the int8 query form refusing this CPU) stops `serve` with one line, exit 1: it was
    a traceback."""
    if settings.query_encoder_threads != 1:
        return None
    try:
        return load_encoder(settings.query_encoder_config())  # as runtime.py loads it
    except EncoderError as exc:
        raise UserFacingError(f"the model failed to load: {exc}") from None


def _metrics_for_workers() -> None:
    """prometheus-client picks its value class (in-process or multiprocess files) when it is imported; the
    supervisor imported it before PROMETHEUS_MULTIPROC_DIR was set, and the workers inherit that choice."""
    from prometheus_client import values

    values.ValueClass = values.get_value_class()


def port_socket(reserved: socket.socket) -> socket.socket:
    """The socket a worker listens on. With SO_REUSEPORT each worker binds its own and the kernel spreads new
    connections between them: on one shared socket, the worker that woke first accepted every connection waiting
    (asyncio accepts up to the backlog at once), so a burst of keep-alive clients could all land on one worker
    while the other idled (seen at c=8: 8 connections to one worker, 0 to the other). `reserved`: the
    supervisor's bound socket of the group (`reserve_port`)."""
    return _reuse_port_socket(reserved.family, reserved.getsockname()[:2])


def _reuse_port_socket(family: socket.AddressFamily, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def reserve_port(host: str, port: int) -> tuple[socket.socket, bool]:
    """The port, taken before anything is loaded: (the supervisor's socket, whether each worker binds its own).
    It is first bound without SO_REUSEPORT (`bind_port`), which fails if anything listens on it; with
    SO_REUSEPORT the supervisor then holds it bound but not listening (given no connection) for the workers'."""
    sock = bind_port(host, port)
    if not hasattr(socket, "SO_REUSEPORT"):
        sock.set_inheritable(True)
        return sock, False
    family = sock.family
    sock.close()
    return _reuse_port_socket(family, (host, port)), True


def _worker(config: Any, sock: socket.socket, own_socket: bool, supervisor: int, replacement: bool) -> NoReturn:
    """In the forked child: serve until stopped (or the supervisor is gone, however it went), then leave without
    the supervisor's clean-up (the shared directories belong to the supervisor). A `replacement` (of a worker that
    died) listens once its vector copy is mapped: with SO_REUSEPORT it takes new connections as soon as it listens,
    and before the copy its searches took the approximate HNSW plan; its siblings answer meanwhile."""
    from search_service.api.shared_state import exit_after

    if replacement:
        config.app = functools.partial(config.app, vectors_first=True)

    def serve() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        AnnouncedServer(config).run(sockets=[port_socket(sock) if own_socket else sock])

    exit_after(serve, supervisor)


def _log_starting(host: str, port: int, workers: int, shared_model: bool, own_sockets: bool) -> None:
    """Said as the workers are forked; each says 'serving' once it accepts connections (AnnouncedServer)."""
    sockets = "a socket each, SO_REUSEPORT" if own_sockets else "one shared socket"
    log.info(
        "starting http://%s:%d, %d forked workers (model shared: %s; %s)", host, port, workers, shared_model, sockets
    )


def describe_wait_status(status: int) -> str:
    """os.wait()'s status in words: 'exit code 1' (it read 256), 'killed by signal SIGKILL' (it read 9)."""
    return describe_exit(os.waitstatus_to_exitcode(status))


def run_workers(settings: Settings, host: str, port: int, workers: int, reserved: tuple[socket.socket, bool]) -> None:
    """Serve with `workers` forked processes until SIGTERM, SIGINT or SIGHUP (a graceful stop: the caller exits 0).
    `reserved`: `reserve_port`'s answer, taken before anything was loaded."""
    from search_service.api.app import create_app
    from search_service.api.shared_state import preload_shared_state, start_generation_writer

    configure_logging()
    sock, own_sockets = reserved
    _metrics_for_workers()
    encoder = preload_encoder(settings)
    worker_settings = Settings.from_env()  # the run's environment: the shared vector and metric directories
    writer = start_generation_writer(worker_settings)  # meanwhile: the vectors' generation (shared_state.py)
    shared = preload_shared_state(worker_settings)
    app = functools.partial(create_app, worker_settings, encoder=encoder, shared=shared)
    config = uvicorn_config(app, worker_settings, host, port, factory=True)
    gc.collect()
    gc.freeze()  # the objects imported so far stay out of every collection: their pages stay shared
    children: set[int] = set() if writer is None else {writer}
    stopped: list[int] = []
    supervisor = os.getpid()

    def stop(signum: int, _frame: object) -> None:
        if os.getpid() != supervisor:  # a child signalled before it reset the handlers
            os._exit(128 + signum)
        stopped.append(signum)
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    def fork(replacement: bool = False) -> None:
        pid = os.fork()
        if pid == 0:
            _worker(config, sock, own_sockets, supervisor, replacement)
        children.add(pid)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    for _ in range(workers):
        fork()
    _log_starting(host, port, workers, encoder is not None, own_sockets)
    while children:
        pid, status = os.wait()
        children.discard(pid)
        if not stopped and pid != writer:
            log.warning("worker %d ended (%s): starting another", pid, describe_wait_status(status))
            fork(replacement=True)
