"""A warning that repeats while a dependency is away, logged once a minute: asyncpg's pool logged "Failed to
restore the pool connection floor; retrying" with a traceback for each of its connections as it retried (96 lines
from two workers in a 45 s database outage)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

QUIET_LOGGERS = ("asyncpg.pool",)


class OncePerInterval(logging.Filter):
    """Each message (by its text before formatting) at most once per `interval_s`; the next one it lets through
    says how many were held back. Each names its exception in the line, without the traceback: a dependency away is
    an operating condition, not a bug (the first carried ~20 lines of asyncpg's internals)."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self.seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self.seen[key] = (last[0], last[1] + 1)
            return False
        self.seen[key] = (now, 0)
        exc = record.exc_info[1] if record.exc_info else None
        said = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        held = f" [{last[1]} more like it held back since the last one]" if last is not None else ""
        if said or held:
            extra = said + held
            record.msg = f"{record.msg}{extra.replace('%', '%%') if record.args else extra}"
        record.exc_info, record.exc_text = None, None
        return True


class RepeatedWarning:
    """One call site's warning on `logger`, at most once per `interval_s` with OncePerInterval's count of those
    held back; the logger's other lines are left alone."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self.logger, self.once = logger, OncePerInterval(interval_s)

    def warning(self, msg: str, *args: object) -> None:
        if self.logger.isEnabledFor(logging.WARNING):
            record = self.logger.makeRecord(self.logger.name, logging.WARNING, __file__, 0, msg, args, None)
            if self.once.filter(record):
                self.logger.handle(record)


def quiet_repeated_warnings() -> None:
    """Once a process."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePerInterval) for f in logger.filters):
            logger.addFilter(OncePerInterval())
