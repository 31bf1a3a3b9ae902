"""search_service.engine.batcher.MicroBatcher: concurrent calls share batches, results go back to their own callers,
an error fails exactly the calls of its batch, a cancelled caller neither blocks nor breaks the others, and under
load a call lingers for the other searches under way (never alone, never past the cap)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from search_service.engine.batcher import LINGER_CAP_S, MicroBatcher
from search_service.engine.vectors import VectorCache
from search_service.settings import Settings, SettingsError


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


def _timed_square(seen: list[list[int]], cost_s: float) -> Callable[[list[int]], list[int]]:
    def square(items: list[int]) -> list[int]:
        seen.append(list(items))
        time.sleep(cost_s)
        return [i * i for i in items]

    return square


def test_under_load_a_lingering_call_waits_for_the_other_searches_and_they_rank_together() -> None:
    """Two searches under way: the first to submit waits (linger x the last lone call's time) until the second
    has submitted too, and one batch serves both; without linger they run apart."""
    for linger, want in ((5.0, [[0], [1, 2]]), (0.0, [[0], [1], [2]])):
        seen: list[list[int]] = []

        async def body(linger: float = linger, seen: list[list[int]] = seen) -> None:
            batcher: MicroBatcher[int, int] = MicroBatcher(_timed_square(seen, 0.01), linger=linger)
            assert await batcher.submit(0) == 0  # alone: runs at once, and gives the lone call's time
            assert batcher.lone_s >= 0.01

            async def search(i: int, delay: float) -> int:
                with batcher.caller():
                    await asyncio.sleep(delay)  # the searches reach the ranking at different times
                    return await batcher.submit(i)

            assert await asyncio.gather(search(1, 0.0), search(2, 0.02)) == [1, 4]

        asyncio.run(body())
        assert seen == want, linger


def test_a_call_never_waits_alone_and_never_past_the_cap() -> None:
    """Alone in its process a call runs at once; with a search under way that never submits, the wait ends at
    linger x the lone call's time, capped by LINGER_CAP_S."""
    seen: list[list[int]] = []

    async def body() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(_timed_square(seen, 0.01), linger=20.0)
        await batcher.submit(0)
        with batcher.caller():  # one search: alone, so no wait
            started = time.perf_counter()
            assert await batcher.submit(3) == 9
            assert time.perf_counter() - started < 0.04
        with batcher.caller(), batcher.caller():  # a second search under way that never ranks
            started = time.perf_counter()
            assert await batcher.submit(4) == 16
            waited = time.perf_counter() - started
        assert LINGER_CAP_S <= waited < LINGER_CAP_S + 0.1  # 20 x ~0.01 s, capped

    asyncio.run(body())
    assert seen == [[0], [3], [4]]


def test_a_search_that_ends_without_ranking_releases_the_call_waiting_for_it() -> None:
    seen: list[list[int]] = []

    async def body() -> float:
        batcher: MicroBatcher[int, int] = MicroBatcher(_timed_square(seen, 0.01), linger=20.0)
        await batcher.submit(0)  # a lone call's time: the wait would be capped at LINGER_CAP_S

        async def gathers_instead() -> None:
            with batcher.caller():
                await asyncio.sleep(0.005)  # ends without submitting

        with batcher.caller():
            started = time.perf_counter()
            _, squared = await asyncio.gather(gathers_instead(), batcher.submit(5))
            assert squared == 25
            return time.perf_counter() - started

    assert asyncio.run(body()) < LINGER_CAP_S  # released when the other search ended, not at the cap
    assert seen == [[0], [5]]


def test_plinqy_rank_linger_reaches_the_vector_copys_batcher_and_bad_values_are_refused() -> None:
    assert Settings.from_env({}).rank_linger == 3.0 and Settings.from_env({"PLINQY_RANK_LINGER": "0"}).rank_linger == 0
    for bad in ("soon", "-1", "nan", "21"):
        with pytest.raises(SettingsError, match="PLINQY_RANK_LINGER"):
            Settings.from_env({"PLINQY_RANK_LINGER": bad})
    assert VectorCache(dim=8, rank_linger=2.5).batcher.linger == 2.5
    assert VectorCache(dim=8).batcher.linger == 0  # off unless the API's settings ask for it
