"""The milliseconds each stage of a search took (`explain`'s and the metrics' timings)."""

from __future__ import annotations

import time


class StageClock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round((now - self._last) * 1000, 3)
        self._last = now
