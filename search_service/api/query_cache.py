"""A bounded LRU of query embeddings, so a repeated query skips the model.

Lives on the event loop (no locks needed); concurrent misses for the same key share one computation.
Keys carry the model id, so a model change never serves a stale vector.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import numpy as np


class QueryEmbeddingCache:
    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.max_size = max_size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Future[np.ndarray]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def key(model_id: str, query: str) -> tuple[str, str]:
        # Queries differing only in case or inner spacing embed (nearly) identically with an uncased model,
        # but we keep the exact text: correctness over a few extra cache misses.
        return (model_id, query)

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        vector = self._items.get(key)
        if vector is not None:
            self._items.move_to_end(key)
        return vector

    def put(self, key: tuple[str, str], vector: np.ndarray) -> None:
        if self.max_size == 0:
            return
        vector.setflags(write=False)
        self._items[key] = vector
        self._items.move_to_end(key)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    async def get_or_compute(self, key: tuple[str, str], compute: Callable[[], Awaitable[np.ndarray]]) -> np.ndarray:
        """The cached vector, or the result of `compute()`; one computation per key at a time.

        The computation runs as its own task, so a cancelled request (client gone) neither cancels it for
        the other requests waiting on the same key nor loses the result.
        """
        cached = self.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        task = self._inflight.get(key)
        if task is None:
            self.misses += 1
            task = asyncio.ensure_future(compute())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finish(key, done))
        else:
            self.hits += 1
        return await asyncio.shield(task)

    def _finish(self, key: tuple[str, str], task: asyncio.Future[np.ndarray]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self.put(key, task.result())
