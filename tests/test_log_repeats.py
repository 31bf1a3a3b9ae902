"""asyncpg's pool logged "Failed to restore the pool connection floor; retrying" with a traceback for each of its
connections while the database was away (96 lines from two workers in 45 s): once a minute now."""

from __future__ import annotations

import logging

import pytest

from search_service.api.log_repeats import OncePerInterval, quiet_repeated_warnings


def _failure(logger: logging.Logger) -> None:
    try:
        raise ConnectionRefusedError("connection refused at 127.0.0.1:1")
    except ConnectionRefusedError:
        logger.warning("Failed to restore the pool connection floor; retrying", exc_info=True)


def test_a_repeated_warning_is_let_through_once_an_interval_and_says_how_many_were_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    logger = logging.getLogger("test.log_repeats")
    logger.addFilter(OncePerInterval(60.0, clock=lambda: now[0]))
    with caplog.at_level(logging.WARNING, logger="test.log_repeats"):
        for second in range(0, 130, 2):  # one every 2 s for 130 s
            now[0] = float(second)
            _failure(logger)
        logger.warning("another %s message", "kind")
    kept = [r for r in caplog.records if r.name == "test.log_repeats"]
    assert all(r.getMessage().startswith("Failed to restore the pool connection floor; retrying") for r in kept[:3])
    assert all(r.exc_info is None for r in kept)  # one line each: the exception named, no traceback
    assert kept[0].getMessage().endswith("retrying (ConnectionRefusedError: connection refused at 127.0.0.1:1)")
    assert "(ConnectionRefusedError: connection refused at 127.0.0.1:1) [29 more like it" in kept[1].getMessage()
    assert kept[3].getMessage() == "another kind message" and len(kept) == 4


def test_the_api_quiets_asyncpgs_pool() -> None:
    quiet_repeated_warnings()
    quiet_repeated_warnings()  # once a process however often the app is made
    assert sum(isinstance(f, OncePerInterval) for f in logging.getLogger("asyncpg.pool").filters) == 1
