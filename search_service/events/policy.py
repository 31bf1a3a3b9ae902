"""What one attempt's result means for a delivery: delivered, retried later (when), failed, subscription off."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Outcome = Literal["delivered", "retrying", "failed", "held"]  # held: not sent, not counted (cannot sign)
MAX_RETRY_AFTER_S = 86400.0


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    delay_s: float = 0.0  # until the next attempt (retrying, held)
    disable_reason: str | None = None  # switch the subscription off at once


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdecimal():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_delay(attempts: int, schedule: tuple[float, ...], jitter: float, rng: random.Random | None = None) -> float:
    """Delay before attempt attempts+1 (schedule[attempts]), ± jitter of itself."""
    base = schedule[attempts]
    return max(0.0, base * (1 + (rng or random).uniform(-jitter, jitter)))


def decide(
    attempts: int,
    status_code: int | None,
    retry_after: str | None,
    schedule: tuple[float, ...],
    jitter: float,
    rng: random.Random | None = None,
) -> Decision:
    """attempts: the attempts made, this one included. status_code None: no response (timeout, refused...)."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision("delivered")
    if status_code == 410:
        return Decision("failed", disable_reason="the receiver answered 410 Gone")
    if attempts >= len(schedule):
        return Decision("failed")
    delay = retry_delay(attempts, schedule, jitter, rng)
    if status_code in (429, 503):
        asked = parse_retry_after(retry_after)
        if asked is not None:
            delay = max(delay, min(asked, MAX_RETRY_AFTER_S))
    return Decision("retrying", delay)
