"""Micro-batching of CPU-bound work for concurrent requests (what Triton calls dynamic batching).

A lone call runs at once. Calls that arrive while a batch is running wait, and go together in the next batch:
one model call for several query texts, which costs about as much for a few as for one, so under load the
per-request cost falls instead of requests queueing behind each other. The in-memory vector rankings use it
too: one thread hand-off and one int8 scoring call for the queries that arrived together (the copy is read
once for all of them), while PostgreSQL keeps the other core.

A batch may wait a moment (`hold_s`) for the callers still heading for a submission (`caller()`, until they
submit or settle): where a batch of eight costs what one does (a 1M-row int8 ranking streams 366 MB whatever the
batch: 44 ms for one query, 48 for eight), one more query in the batch saves a whole call's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Caller:
    """A caller under way (`MicroBatcher.caller()`): heading for a submission until it settles."""

    def __init__(self, batcher: MicroBatcher[Any, Any]) -> None:
        self._batcher = batcher
        self.heading = True

    def settled(self) -> None:
        """It has submitted, or will not: batches stop waiting for it."""
        if self.heading:
            self.heading = False
            self._batcher.heading -= 1
            self._batcher.wake()


class MicroBatcher(Generic[T, R]):
    """`await submit(item)` → `run(items)[i]`, with `run` called in a worker thread, one batch at a time.
    `hold_s`: how long a batch may wait for callers heading for it (0: never; a callable: asked per batch)."""

    def __init__(
        self, run: Callable[[list[T]], Sequence[R]], max_batch: int = 64, hold_s: float | Callable[[], float] = 0.0
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.hold_s = hold_s
        self.heading = 0  # callers under way that have not settled
        self.held = 0  # batches that waited for a caller (a test and the curious read it)
        self._arrival: asyncio.Event | None = None
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # held so the running drain is not garbage-collected
        self.batches = 0
        self.items = 0
        self.callers = 0  # callers under way that may submit (`caller()`): one alone may use every core

    @contextlib.contextmanager
    def caller(self) -> Iterator[Caller]:
        """Counts a piece of work (a search) under way in this process while it runs; heading for a submission
        until it calls `settled()` (at the latest when it ends)."""
        handle = Caller(self)
        self.callers += 1
        self.heading += 1
        try:
            yield handle
        finally:
            handle.settled()
            self.callers -= 1

    def wake(self) -> None:
        if self._arrival is not None:
            self._arrival.set()

    @property
    def alone(self) -> bool:
        return self.callers <= 1

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        self.wake()
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._hold()
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                batch = [(item, future) for item, future in batch if not future.cancelled()]
                if not batch:
                    continue
                try:
                    results = await asyncio.to_thread(self._run, [item for item, _ in batch])
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

    async def _hold(self) -> None:
        """Wait, up to the hold, while callers are heading for a submission and the batch has room."""
        hold = self.hold_s() if callable(self.hold_s) else self.hold_s
        if hold <= 0 or self.heading <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold
        self.held += 1
        while self.heading > 0 and len(self._waiting) < self.max_batch and (left := deadline - loop.time()) > 0:
            self._arrival = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), left)
        self._arrival = None
