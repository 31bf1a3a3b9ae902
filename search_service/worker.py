"""`plinqy-search worker`: every background job, each in its own child process, under one supervisor.

    plinqy-search worker                       # every job, until SIGTERM/SIGINT
    plinqy-search worker --only embed,import   # some of them
    plinqy-search worker --drain               # process what is pending, then exit (jobs one after another,
                                               # in `order`: imports first, so their new products get embedded)

Each job is a child process (forked before any model or connection exists; it dies with the supervisor, so a
SIGKILL of the worker leaves no orphan holding leases). Every job keeps its work in PostgreSQL under leases, so a
SIGKILL loses nothing: the next run takes the lapsed leases over. SIGTERM/SIGINT go to every child; each finishes
or releases what it holds and exits; the supervisor exits 0. Without --drain, a job that crashes is restarted
after a growing pause (1 s doubling to 60 s; 1 s again after a healthy run of a minute).

ADDING A JOB (e.g. the events helper's `events`, the connectors helper's `sync`): write a function
`run(ctx: JobContext) -> int` (exit code; install your own SIGTERM handler; honour `ctx.drain`), then one line:

    JOBS["events"] = Job("events", run_events, order=40, help="deliver outgoing store webhooks")

in `search_service/worker.py`'s `_register_builtin_jobs` (or `register(Job(...))` at import of a module that this
file imports). `ctx.settings` is the Settings, `ctx.dsn` the database URL, `ctx.options` the CLI's extra options.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from search_service.db.rights import LACKS_RIGHTS, lacks_rights
from search_service.db.secretbox import SecretBoxError
from search_service.envconfig import ConfigError, env_float
from search_service.forked import describe_exit, die_with
from search_service.settings import Settings

log = logging.getLogger("plinqy.supervisor")


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    dsn: str
    drain: bool
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[JobContext], int]
    order: int = 50  # --drain runs jobs in this order; producers before consumers
    help: str = ""


JOBS: dict[str, Job] = {}


def register(job: Job) -> None:
    JOBS[job.name] = job


def settle_heap() -> None:
    """Keep what start-up built (modules, the model, the settings) out of every later collection. A job's full
    collections otherwise walk that whole heap again and again: 70 ms each, a third of the import job's CPU (a
    100k-row CSV, perf). Call it once a job is set up, before its loop."""
    gc.collect()
    gc.freeze()


def _run_embed(ctx: JobContext) -> int:
    from embeddings.encoder import load_encoder
    from embeddings.worker import WorkerConfig, run_worker

    env = ctx.settings.env
    config = WorkerConfig(
        batch_size=int(ctx.options.get("batch_size", 64)),
        poll_interval_s=float(ctx.options.get("poll_interval", 5.0)),
        lease_seconds=float(ctx.options.get("lease", 60.0)),
        drain=ctx.drain,
        fail_marker=env.get("PLINQY_WORKER_FAIL_MARKER") or None,
        hold_s=env_float(env, "PLINQY_WORKER_HOLD_S", 0.0, 0.0, 3600.0),  # tests only
    )
    encoder = load_encoder(ctx.settings.encoder)
    settle_heap()
    failed = run_worker(ctx.dsn, encoder, config, on_start=ctx.options.get("on_start"))
    if ctx.drain and failed:  # the work asked for was not all done (README: exit 1, one line)
        print(f"error: embed job: {failed} task(s) failed for good: `plinqy-search tasks failed` lists them, "
              "`tasks retry` requeues them", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _run_import(ctx: JobContext) -> int:
    from search_service.ingest.worker import ImportWorkerOptions, run_import_worker

    options = ImportWorkerOptions(
        drain=ctx.drain,
        poll_interval_s=float(ctx.options.get("poll_interval", 5.0)),
        hold_s=env_float(ctx.settings.env, "PLINQY_INGEST_HOLD_S", 0.0, 0.0, 3600.0),  # tests only
    )
    settle_heap()
    return run_import_worker(ctx.dsn, ctx.settings.ingest, options)


def _run_events(ctx: JobContext) -> int:
    from search_service.events.dispatcher import run_dispatcher

    settings = ctx.settings
    settle_heap()
    run_dispatcher(
        ctx.dsn, settings.events, settings.secret_box(), drain=ctx.drain, on_start=ctx.options.get("on_start")
    )
    return 0


def _run_sync(ctx: JobContext) -> int:
    import threading

    from search_service.ingest.connectors.job import run_sync_loop

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # finish the page in hand (its cursor is saved), then exit
        signal.signal(signum, lambda *_: stop.set())
    settings = ctx.settings
    settle_heap()
    report = run_sync_loop(ctx.dsn, settings.secret_box(), settings.connectors, drain=ctx.drain, stop=stop)
    log.info(json.dumps({"event": "stopped", "job": "sync", "synced": report.synced, "failed": report.failed}))
    return 0


def _register_builtin_jobs() -> None:
    register(Job("sync", _run_sync, order=10, help="poll the POS connections (Lightspeed, Erply, Shopify)"))
    register(Job("import", _run_import, order=20, help="map stored import batches into products and listings"))
    register(Job("embed", _run_embed, order=30, help="embed products from the ai_task queue"))
    register(Job("events", _run_events, order=40, help="deliver outgoing store webhooks"))


_register_builtin_jobs()


def select_jobs(only: str | None) -> list[Job]:
    """The jobs named in `only` (comma-separated; all when None), in their order; ValueError on an unknown name."""
    if only is not None and not only.strip(", "):
        raise ValueError(f"--only names no job: choose from {', '.join(sorted(JOBS))} (or leave it out for all)")
    names = [n.strip() for n in only.split(",") if n.strip()] if only else list(JOBS)
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise ValueError(f"unknown job {unknown[0]!r}: choose from {', '.join(sorted(JOBS))}")
    return sorted((JOBS[n] for n in dict.fromkeys(names)), key=lambda j: j.order)


def _child_main(job: Job, ctx: JobContext, supervisor: int) -> None:
    die_with(supervisor, signal.SIGKILL)  # a SIGKILLed worker leaves no child behind holding leases
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a hang-up reaches the whole group: the supervisor stops the job
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked across the fork (Supervisor._start)
    try:
        sys.exit(job.run(ctx))
    except (SecretBoxError, ConfigError) as exc:  # one line, as every command says it, not a traceback per job
        print(f"error: {job.name} job: {exc}", file=sys.stderr)
        sys.exit(1)
    except LACKS_RIGHTS as exc:  # a read-only role passes the checks before the fork: main() never sees this
        print(f"error: {job.name} job: {lacks_rights(ctx.dsn, exc)}", file=sys.stderr)
        sys.exit(1)


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}  # SIGHUP as `serve` takes it: its default left tasks
HEALTHY_RUN_S = 60.0  # a job that ran this long (or its last pause, if longer) before it crashed starts afresh


@dataclass
class RestartBackoff:
    """The pause before restarting a crashed job: 1 s, doubling to 60 s while it keeps crashing soon after a
    start, and 1 s again once it ran healthily for a while (else one crash hours after early trouble cost 60 s)."""

    first_s: float = 1.0
    max_s: float = 60.0
    delay_s: float = 1.0
    started_at: float = 0.0

    def started(self, now: float) -> None:
        self.started_at = now

    def next_delay(self, now: float) -> float:
        if now - self.started_at >= max(HEALTHY_RUN_S, self.delay_s):
            self.delay_s = self.first_s
        delay = self.delay_s
        self.delay_s = min(self.delay_s * 2, self.max_s)
        return delay


class Supervisor:
    def __init__(self, jobs: list[Job], ctx: JobContext) -> None:
        self.jobs, self.ctx = jobs, ctx
        self.mp = multiprocessing.get_context("fork")
        self.children: dict[str, multiprocessing.process.BaseProcess] = {}
        self.stopping = False

    def _start(self, job: Job) -> multiprocessing.process.BaseProcess:
        proc = self.mp.Process(target=_child_main, args=(job, self.ctx, os.getpid()), name=f"plinqy-{job.name}")
        # A stop signal in the fork's window ran the supervisor's handler in the child (inherited), which took it:
        # the child never stopped and the worker hung on SIGTERM. Blocked, it waits for _child_main's SIG_DFL.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.children[job.name] = proc
        return proc

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.is_alive() and proc.pid is not None:
                with_signal(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._stop)
        if self.ctx.drain:
            return self._drain()
        return self._supervise()

    def _drain(self) -> int:
        failed = []
        for job in self.jobs:
            if self.stopping:
                break
            proc = self._start(job)
            proc.join()
            if proc.exitcode not in (0, None) and not self.stopping:
                failed.append(f"{job.name} ({describe_exit(proc.exitcode)})")
        if failed:
            log.error(json.dumps({"event": "jobs_failed", "jobs": failed}))
            return 1
        return 0

    def _supervise(self) -> int:
        backoffs = {j.name: RestartBackoff() for j in self.jobs}
        restart_at: dict[str, float] = {}
        for job in self.jobs:
            self._start(job)
            backoffs[job.name].started(time.monotonic())
        while True:
            alive = [p for p in self.children.values() if p.is_alive()]
            if self.stopping:
                for proc in alive:
                    proc.join()
                return 0
            for job in self.jobs:
                proc = self.children[job.name]
                if proc.is_alive():
                    continue
                now = time.monotonic()
                if job.name not in restart_at:
                    delay = backoffs[job.name].next_delay(now)
                    ended = describe_exit(proc.exitcode if proc.exitcode is not None else 0)
                    log.warning(json.dumps({"event": "job_ended", "job": job.name, "how": ended,
                                            "restart_in_s": round(delay)}))  # fmt: skip
                    restart_at[job.name] = now + delay
                elif now >= restart_at[job.name]:  # not before: popped early, the restart was put off for ever
                    del restart_at[job.name]
                    self._start(job)
                    backoffs[job.name].started(now)
            time.sleep(0.2)


def with_signal(pid: int, signum: int) -> None:
    import os

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def run(settings: Settings, dsn: str, *, only: str | None, drain: bool, options: dict[str, Any]) -> int:
    """Run the selected jobs (see the module docstring); returns the exit code."""
    jobs = select_jobs(only)
    return Supervisor(jobs, JobContext(settings, dsn, drain, options)).run()
