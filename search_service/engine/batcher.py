"""Micro-batching of CPU-bound work for concurrent requests (what Triton calls dynamic batching).

A lone call runs at once. Calls that arrive while a batch is running wait, and go together in the next batch:
one model call for several query texts, which costs about as much for a few as for one, so under load the
per-request cost falls instead of requests queueing behind each other. The in-memory vector rankings use it
too: one thread hand-off and one int8 scoring call for the queries that arrived together (the copy is read
once for all of them), while PostgreSQL keeps the other core.

`linger` (Triton's queue delay, sized by the work itself): the calls waiting to run wait a little longer while
other work of the process is under way (`caller()`), at most `linger` times what the last lone call took
(`LINGER_CAP_S` at most), or until every piece of work under way has submitted or ended. Searches reach the ranking at
different times, so without it a batch rarely forms: at 1M rows on this machine, 55-75 % of the rankings ran
alone under load, each a 15 ms read of every row, where four read together cost about what one does. Work alone
in its process never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

LINGER_CAP_S = 0.05  # the longest a lone call waits for company, whatever it costs


class MicroBatcher(Generic[T, R]):
    """`await submit(item)` → `run(items)[i]`, with `run` called in a worker thread, one batch at a time."""

    def __init__(self, run: Callable[[list[T]], Sequence[R]], max_batch: int = 64, linger: float = 0.0) -> None:
        self._run = run
        self.max_batch = max_batch
        self.linger = linger  # 0: a lone call never waits for company
        self.lone_s = 0.0  # what the last batch of one took (wall seconds, the thread hand-off included)
        self._company: asyncio.Event | None = None  # set when every caller under way has submitted or ended
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # held so the running drain is not garbage-collected
        self.batches = 0
        self.items = 0
        self.callers = 0  # work under way that may submit (`caller()`: a search); one alone may use every core
        self.calls = 0  # pieces of work started (`caller()`), ever

    @contextlib.contextmanager
    def caller(self) -> Iterator[None]:
        """Counts a piece of work (a search) under way in this process while it runs."""
        self.callers += 1
        self.calls += 1
        try:
            yield
        finally:
            self.callers -= 1
            self._call_company()  # work that ends without submitting releases the calls waiting for it

    @property
    def alone(self) -> bool:
        return self.callers <= 1

    @property
    def busy(self) -> bool:
        """A batch is under way: what is submitted now waits for it to end."""
        return self._running

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        self._call_company()
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._wait_for_company()
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                batch = [(item, future) for item, future in batch if not future.cancelled()]
                if not batch:
                    continue
                try:
                    started = time.perf_counter()
                    results = await asyncio.to_thread(self._run, [item for item, _ in batch])
                    if len(batch) == 1:
                        self.lone_s = time.perf_counter() - started
                    if len(results) != len(batch):
                        raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
                except Exception as exc:  # every caller of the batch gets the error; the batcher lives on
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.items += len(batch)
                for result, (_, future) in zip(results, batch, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False

    def _call_company(self) -> None:
        if self._company is not None and len(self._waiting) >= self.callers:
            self._company.set()

    async def _wait_for_company(self) -> None:
        """Hold the calls waiting while other work of this process is under way (see the module docstring)."""
        hold = min(self.linger * self.lone_s, LINGER_CAP_S)
        if hold <= 0 or len(self._waiting) >= self.callers:
            return
        self._company = asyncio.Event()
        try:
            await asyncio.wait_for(self._company.wait(), hold)
        except TimeoutError:
            pass
        finally:
            self._company = None
