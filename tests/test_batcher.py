"""search_service.engine.batcher.MicroBatcher: concurrent calls share batches, results go back to their own callers,
an error fails exactly the calls of its batch, and a cancelled caller neither blocks nor breaks the others."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from search_service.engine.batcher import MicroBatcher


def test_concurrent_calls_share_batches_and_get_their_own_results() -> None:
    seen: list[list[int]] = []

    def square(items: list[int]) -> list[int]:
        seen.append(list(items))
        time.sleep(0.02)
        return [i * i for i in items]

    async def body() -> list[int]:
        batcher: MicroBatcher[int, int] = MicroBatcher(square, max_batch=4)
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(10))))

    assert asyncio.run(body()) == [i * i for i in range(10)]
    assert sorted(i for batch in seen for i in batch) == list(range(10))
    assert max(len(b) for b in seen) == 4 and len(seen) < 10


def test_an_error_fails_its_batch_only_and_the_batcher_lives_on() -> None:
    def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky batch")
        return items

    async def body() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(run)
        with pytest.raises(ValueError, match="unlucky"):
            await batcher.submit(13)
        assert await batcher.submit(7) == 7
        assert (batcher.batches, batcher.items) == (1, 1)

    asyncio.run(body())


def test_a_wrong_number_of_results_is_an_error_not_a_misattribution() -> None:
    async def body() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items[:-1])
        with pytest.raises(RuntimeError, match="gave 0 results"):
            await batcher.submit(1)

    asyncio.run(body())


def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    gate = threading.Event()

    def run(items: list[str]) -> list[str]:
        gate.wait(5)
        return [s.upper() for s in items]

    async def body() -> None:
        batcher: MicroBatcher[str, str] = MicroBatcher(run)
        first = asyncio.ensure_future(batcher.submit("a"))
        await asyncio.sleep(0.01)
        doomed = asyncio.ensure_future(batcher.submit("b"))
        kept = asyncio.ensure_future(batcher.submit("c"))
        await asyncio.sleep(0.01)
        doomed.cancel()
        gate.set()
        assert await first == "A"
        assert await kept == "C"
        assert doomed.cancelled()

    asyncio.run(body())


def test_callers_under_way_are_counted_and_released_on_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items)
    assert batcher.alone
    with batcher.caller():
        assert batcher.callers == 1 and batcher.alone  # one search alone may use every core
        with batcher.caller():
            assert batcher.callers == 2 and not batcher.alone
        try:
            with batcher.caller():
                raise ValueError("a search that fails")
        except ValueError:
            pass
        assert batcher.callers == 1
    assert batcher.callers == 0 and batcher.alone
